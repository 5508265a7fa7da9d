{#- One row per record a sync run sent or attempted (activations.sync_log). For campaign sends
    sync_name = the campaign (or <campaign>@<channel> for a variant on another channel) and
    sync_key = customer_id. When the table does not exist yet the model
    returns no rows, same columns. -#}
{%- set source_relation = source('activations', 'sync_log') -%}
{%- set existing = adapter.get_relation(
        database=source_relation.database, schema=source_relation.schema,
        identifier=source_relation.identifier) if execute else none -%}
with

{% if existing is not none %}
{%- set source_columns = adapter.get_columns_in_relation(existing) | map(attribute='name') | map('lower') | list %}

source as (

    select * from {{ source_relation }}

),

renamed as (

    select
        cast(run_id as {{ dbt.type_string() }}) as run_id,
        cast(sync_name as {{ dbt.type_string() }}) as sync_name,
        {#- a campaign variant on another channel syncs as <campaign>@<channel> -#}
        cast({{ dbt.split_part('sync_name', "'@'", 1) }} as {{ dbt.type_string() }}) as campaign,
        cast({{ adapter.quote('key') }} as {{ dbt.type_string() }}) as sync_key,
        cast(operation as {{ dbt.type_string() }}) as operation,
        cast(status as {{ dbt.type_string() }}) as status,
        {{ nullif_blank('message') }} as status_message,
        cast(attempt as {{ dbt.type_int() }}) as attempt,
        {#- ledgers created before frequency caps have no channel column -#}
        {% if 'channel' in source_columns %}{{ nullif_blank('channel') }}{% else %}cast(null as {{ dbt.type_string() }}){% endif %} as channel,
        -- TIMESTAMPTZ → UTC wall-clock TIMESTAMP (the session time zone is UTC: profiles.yml)
        cast(logged_at as {{ dbt.type_timestamp() }}) as logged_at,
        status = 'ok' and operation <> 'remove' as is_delivered_to_destination
    from source

)

{% else %}

renamed as (

    select
        cast(null as {{ dbt.type_string() }}) as run_id,
        cast(null as {{ dbt.type_string() }}) as sync_name,
        cast(null as {{ dbt.type_string() }}) as campaign,
        cast(null as {{ dbt.type_string() }}) as sync_key,
        cast(null as {{ dbt.type_string() }}) as operation,
        cast(null as {{ dbt.type_string() }}) as status,
        cast(null as {{ dbt.type_string() }}) as status_message,
        cast(null as {{ dbt.type_int() }}) as attempt,
        cast(null as {{ dbt.type_string() }}) as channel,
        cast(null as {{ dbt.type_timestamp() }}) as logged_at,
        cast(null as {{ dbt.type_boolean() }}) as is_delivered_to_destination
    where 1 = 0

)

{% endif %}

select * from renamed
