{#- One row per campaign and customer: the arm given before anything was sent (activations.assignments).
    When the table does not exist yet (no campaign ever ran) the model returns no rows, same columns. -#}
{%- set source_relation = source('activations', 'assignments') -%}
{%- set existing = adapter.get_relation(
        database=source_relation.database, schema=source_relation.schema,
        identifier=source_relation.identifier) if execute else none -%}
with

{% if existing is not none %}

source as (

    select * from {{ source_relation }}

),

renamed as (

    select
        cast(campaign as {{ dbt.type_string() }}) as campaign,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(arm as {{ dbt.type_string() }}) as arm,
        cast({{ adapter.quote('round') }} as {{ dbt.type_int() }}) as allocation_round,
        -- TIMESTAMPTZ → UTC wall-clock TIMESTAMP (the session time zone is UTC: profiles.yml)
        cast(assigned_at as {{ dbt.type_timestamp() }}) as assigned_at
    from source

)

{% else %}

renamed as (

    select
        cast(null as {{ dbt.type_string() }}) as campaign,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_string() }}) as arm,
        cast(null as {{ dbt.type_int() }}) as allocation_round,
        cast(null as {{ dbt.type_timestamp() }}) as assigned_at
    where 1 = 0

)

{% endif %}

select * from renamed
