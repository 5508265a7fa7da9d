{#- One row per step of every session: page events keyed by their cleaned URL, other events by
    name, consecutive repeats collapsed (var paths.collapse_repeats, default true). -#}
{{ config(materialized='table') }}

{%- set config = analytics_paths_config() %}

with

events as (
    select
        session_id,
        customer_id,
        event_id,
        event_at,
        event_type,
        event_name,
        page_path,
        page_url
    from {{ ref('fct_events') }}
    where session_id is not null
      and event_at <= {{ analytics_as_of_sql() }}
),

keyed as (
    select
        session_id,
        customer_id,
        event_id,
        event_at,
        case when event_type = 'page' then 'page' else 'event' end as step_type,
        case
            when event_type = 'page'
                then coalesce({{ analytics_clean_url('page_path', 'page_url', config.url_rules) }}, '(unknown page)')
            else coalesce(event_name, '(unnamed event)')
        end as step_key
    from events
),

ordered as (
    select
        *,
        row_number() over (partition by session_id order by event_at, event_id) as event_number,
        lag(step_key) over (partition by session_id order by event_at, event_id) as previous_step_key
    from keyed
),

kept as (
    select *
    from ordered
    {%- if config.collapse_repeats %}
    where previous_step_key is null
       or previous_step_key <> step_key
    {%- endif %}
)

select
    cast(session_id as {{ dbt.type_string() }}) as session_id,
    cast(customer_id as {{ dbt.type_string() }}) as customer_id,
    cast(row_number() over (partition by session_id order by event_number) as {{ dbt.type_int() }}) as step_index,
    cast(step_key as {{ dbt.type_string() }}) as step_key,
    cast(step_type as {{ dbt.type_string() }}) as step_type,
    cast(event_at as {{ dbt.type_timestamp() }}) as step_at,
    cast(event_id as {{ dbt.type_string() }}) as event_id
from kept
