{#- One row per step of every session: page events keyed by their cleaned URL, other events by
    name, consecutive repeats collapsed (var paths.collapse_repeats, default true).

    Incremental (delete+insert on session_id): a session's steps depend on its own events only. The
    change feed is fct_events.processed_at: a run rebuilds the sessions of the events fct_events
    (re)wrote since this table's latest batch (fct_events rewrites whole sessions), and writes a
    tombstone for the stored sessions those events left (their session id changed: a late event
    merged two sessions, a visitor's history moved to the member); the post-hook deletes tombstones
    and rows of another definition_hash (url rules, collapsing or explicit as-of changed: the
    watermark then restarts from scratch and every session is rebuilt). -#}
{%- set paths_config = analytics_paths_config() %}
{%- set current_hash = definition_hash({'url_rules': paths_config.url_rules, 'collapse_repeats': paths_config.collapse_repeats, 'as_of': explicit_as_of()}) %}
{{ config(**scoped_config('session_id', current_hash)) }}
{%- set processed_after = incremental_watermark('processed_at', definition_hash=current_hash) %}

with

{%- if is_incremental() %}

rewritten as (
    -- events fct_events (re)wrote since this table's latest batch
    select event_id, session_id
    from {{ ref('fct_events') }}
    where processed_at > {{ processed_after }}
),

changed_sessions as (
    select session_id from rewritten where session_id is not null
    union
    -- stored sessions whose events now belong to another session (or to none)
    select stored.session_id
    from {{ this }} as stored
    inner join rewritten
        on rewritten.event_id = stored.event_id
    where rewritten.session_id is null or rewritten.session_id <> stored.session_id
),
{%- endif %}

events as (
    select
        session_id,
        customer_id,
        event_id,
        event_at,
        event_type,
        event_name,
        page_path,
        page_url,
        loaded_at
    from {{ ref('fct_events') }}
    where session_id is not null
      and event_at <= {{ analytics_as_of_sql() }}
    {%- if is_incremental() %}
      and session_id in (select session_id from changed_sessions)
    {%- endif %}
),

session_loads as (
    select session_id, max(loaded_at) as source_loaded_at
    from events
    group by session_id
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
                then coalesce({{ analytics_clean_url('page_path', 'page_url', paths_config.url_rules) }}, '(unknown page)')
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
    {%- if paths_config.collapse_repeats %}
    where previous_step_key is null
       or previous_step_key <> step_key
    {%- endif %}
),

final as (
    select
        cast(kept.session_id as {{ dbt.type_string() }}) as session_id,
        cast(kept.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(row_number() over (partition by kept.session_id order by kept.event_number) as {{ dbt.type_int() }}) as step_index,
        cast(kept.step_key as {{ dbt.type_string() }}) as step_key,
        cast(kept.step_type as {{ dbt.type_string() }}) as step_type,
        cast(kept.event_at as {{ dbt.type_timestamp() }}) as step_at,
        cast(kept.event_id as {{ dbt.type_string() }}) as event_id,
        session_loads.source_loaded_at,
        {{ run_started_at_sql() }} as processed_at,
        cast('{{ current_hash }}' as {{ dbt.type_string() }}) as definition_hash
    from kept
    left join session_loads
        on session_loads.session_id = kept.session_id
)

select * from final
{%- if is_incremental() %}

union all

{{ tombstone_rows('changed_sessions', 'final', [
    'session_id', 'customer_id', 'step_index', 'step_key', 'step_type', 'step_at', 'event_id',
    'source_loaded_at', 'processed_at', 'definition_hash'], key='session_id') }}
{%- endif %}
