{#- One row per campaign and allocation round (activations.allocation_rounds): the split in force when
    that round's customers were assigned. When the table does not exist yet the model returns no rows,
    same columns. -#}
{%- set source_relation = source('activations', 'allocation_rounds') -%}
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
        cast({{ adapter.quote('round') }} as {{ dbt.type_int() }}) as allocation_round,
        -- TIMESTAMPTZ → UTC wall-clock TIMESTAMP (the session time zone is UTC: profiles.yml)
        cast(decided_at as {{ dbt.type_timestamp() }}) as decided_at,
        cast(mode as {{ dbt.type_string() }}) as allocation_mode,
        cast(holdout_share as {{ analytics_type_double() }}) as holdout_share,
        cast(weights as {{ dbt.type_string() }}) as variant_weights
    from source

)

{% else %}

renamed as (

    select
        cast(null as {{ dbt.type_string() }}) as campaign,
        cast(null as {{ dbt.type_int() }}) as allocation_round,
        cast(null as {{ dbt.type_timestamp() }}) as decided_at,
        cast(null as {{ dbt.type_string() }}) as allocation_mode,
        cast(null as {{ analytics_type_double() }}) as holdout_share,
        cast(null as {{ dbt.type_string() }}) as variant_weights
    where 1 = 0

)

{% endif %}

select * from renamed
