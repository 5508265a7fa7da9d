{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy=('delete+insert' if target.type in ('duckdb', 'postgres') else 'merge'),
        on_schema_change='append_new_columns',
    )
}}
{#-
    One row per track/page/screen/group event (deduplicated on messageId at ingestion) with its
    resolved customer and its session.

    Sessions: the events of one customer on one device (anonymous id) form a session until
    var session_timeout_minutes pass without an event; message events (var message_event_names)
    are not part of any session. session_id is a hash of (customer, device, session start), so it
    is the same whichever run computes it.

    Incremental strategy (README.md, "Incremental strategy"): an incremental run re-processes
      a. every event loaded since the latest load already in the table (raw loaded_at; minus var
         incremental_lookback_days) — new days, late arrivals (they land in the day they arrive)
         and re-loaded days, however old;
      b. for each (customer, device) with such an event, every event from the start of the stored
         session in which the earliest of them falls (a late event may merge or split sessions
         only from there on; earlier sessions cannot change);
      c. every event of an anonymous id whose customer changed in int_identity_graph (only ids
         the graph recomputed since that load can have changed: a visitor who signed up, their
         history moves to the member).
    and replaces those rows (delete+insert on event_id). History outside that set is not touched.

    Sessionisation runs on the light columns only (ids, times). Only the newly loaded events are read
    from int_events_identified (their JSON is flattened there); the stored events a run re-processes
    keep their attributes and only get a new customer (identity graph) and session, so an
    incremental run never re-reads old raw rows.
-#}
-- depends_on: {{ ref('int_identity_graph') }}
{%- set timeout_ms = var('session_timeout_minutes') * 60 * 1000 %}
{%- set loaded_after = incremental_watermark('loaded_at') %}
{%- set columns = [
    'event_id', 'customer_id', 'user_id', 'anonymous_id', 'event_type', 'event_name', 'page_name',
    'event_at', 'event_date', 'session_id', 'session_event_number', 'page_path', 'page_url',
    'page_title', 'referrer', 'utm_source', 'utm_medium', 'utm_campaign', 'utm_term',
    'utm_content', 'device_type', 'timezone', 'product_id', 'category', 'revenue', 'order_id',
    'message_campaign_id', 'properties', 'landing_date', 'loaded_at'
] %}
with

{% if is_incremental() %}

new_events as (

    -- raw rows loaded since the latest load in the table (new days, late arrivals, re-loaded days)
    select *
    from {{ ref('int_events_identified') }}
    where loaded_at > {{ loaded_after }}

),

arrived_keys as (

    select customer_id, device_key, min(event_at) as first_arrived_at
    from new_events
    where is_sessionized
    group by customer_id, device_key

),

relinked_devices as (

    -- anonymous ids whose customer in the graph is not the one stored for their anonymous events
    -- (only ids the graph recomputed since that load can have changed)
    select distinct stored.anonymous_id
    from {{ this }} as stored
    inner join {{ ref('int_identity_graph') }} as identity_graph
        on stored.anonymous_id = identity_graph.anonymous_id
    where identity_graph.source_loaded_at > {{ loaded_after }}
        and stored.user_id is null
        and stored.customer_id <> identity_graph.customer_id

),

touched_anonymous_ids as (

    select device_key as anonymous_id from arrived_keys where device_key <> ''
    union
    select anonymous_id from relinked_devices

),

stored_candidates as (

    -- stored events of the touched devices: they may have to be re-sessionised or re-attributed
    {{ rows_on_devices(this,
        'event_id, user_id, anonymous_id, event_at, loaded_at, session_id is not null as is_sessionized',
        'select anonymous_id from touched_anonymous_ids',
        "select customer_id from arrived_keys where device_key = ''",
        customer_column='user_id',
        where='event_id not in (select event_id from new_events)') }}

),

events as (

    select event_id, customer_id, user_id, anonymous_id, device_key, event_at, loaded_at, is_sessionized
    from new_events

    union all

    select
        stored_candidates.event_id,
        coalesce(stored_candidates.user_id, identity_graph.customer_id) as customer_id,
        stored_candidates.user_id,
        stored_candidates.anonymous_id,
        coalesce(stored_candidates.anonymous_id, '') as device_key,
        stored_candidates.event_at,
        stored_candidates.loaded_at,
        stored_candidates.is_sessionized
    from stored_candidates
    left join {{ ref('int_identity_graph') }} as identity_graph
        on stored_candidates.anonymous_id = identity_graph.anonymous_id

),

stored_session_starts as (

    {{ rows_on_devices(this,
        "customer_id, coalesce(anonymous_id, '') as device_key, event_at as session_started_at",
        "select device_key from arrived_keys where device_key <> ''",
        "select customer_id from arrived_keys where device_key = ''",
        where='session_event_number = 1') }}

),

restart_points as (

    select
        arrived_keys.customer_id,
        arrived_keys.device_key,
        coalesce(max(stored_session_starts.session_started_at), min(arrived_keys.first_arrived_at)) as restart_at
    from arrived_keys
    left join stored_session_starts
        on arrived_keys.customer_id = stored_session_starts.customer_id
        and arrived_keys.device_key = stored_session_starts.device_key
        and stored_session_starts.session_started_at <= arrived_keys.first_arrived_at
    group by arrived_keys.customer_id, arrived_keys.device_key

),

event_ids_to_process as (

    select event_id from new_events

    union

    select events.event_id
    from events
    inner join restart_points
        on events.customer_id = restart_points.customer_id
        and events.device_key = restart_points.device_key
        and events.event_at >= restart_points.restart_at

    union

    select event_id
    from events
    where anonymous_id in (select anonymous_id from relinked_devices)

),

to_process as (

    select events.*
    from events
    inner join event_ids_to_process
        on events.event_id = event_ids_to_process.event_id

),

{% else %}

to_process as (

    select event_id, customer_id, user_id, anonymous_id, device_key, event_at, loaded_at, is_sessionized
    from {{ ref('int_events_identified') }}

),

{% endif %}

sessionized_events as (

    select * from to_process where is_sessionized

),

gaps as (

    select
        *,
        lag(event_at) over (
            partition by customer_id, device_key
            order by event_at, event_id
        ) as previous_event_at
    from sessionized_events

),

session_starts as (

    select
        *,
        case
            when previous_event_at is null then 1
            when {{ dbt.datediff('previous_event_at', 'event_at', 'millisecond') }} > {{ timeout_ms }} then 1
            else 0
        end as is_session_start
    from gaps

),

session_numbers as (

    select
        *,
        sum(is_session_start) over (
            partition by customer_id, device_key
            order by event_at, event_id
            rows between unbounded preceding and current row
        ) as device_session_index
    from session_starts

),

sessions as (

    select
        *,
        min(event_at) over (
            partition by customer_id, device_key, device_session_index
        ) as session_started_at,
        row_number() over (
            partition by customer_id, device_key, device_session_index
            order by event_at, event_id
        ) as session_event_number
    from session_numbers

),

with_session_ids as (

    select
        *,
        {{ dbt.hash(dbt.concat([
            'customer_id', "'|'", 'device_key', "'|'",
            dbt.safe_cast('session_started_at', dbt.type_string())
        ])) }} as session_id
    from sessions

),

unsessionized as (

    select
        event_id,
        cast(null as {{ dbt.type_string() }}) as session_id,
        cast(null as {{ dbt.type_int() }}) as session_event_number
    from to_process
    where not is_sessionized

),

session_keys as (

    select
        event_id,
        session_id,
        cast(session_event_number as {{ dbt.type_int() }}) as session_event_number
    from with_session_ids

    union all

    select event_id, session_id, session_event_number from unsessionized

),

final as (

    {%- if is_incremental() %}

    select
        {%- for column in columns %}
        {{ 'session_keys' if column in ('session_id', 'session_event_number') else 'new_events' }}.{{ column }},
        {%- endfor %}
        {{ run_started_at_sql() }} as processed_at
    from new_events
    inner join session_keys
        on new_events.event_id = session_keys.event_id

    union all

    -- re-processed stored events: same attributes, new customer and session
    select
        {%- for column in columns %}
        {% if column in ('session_id', 'session_event_number') -%}
        session_keys.{{ column }}
        {%- elif column == 'customer_id' -%}
        to_process.customer_id
        {%- else -%}
        stored.{{ column }}
        {%- endif %},
        {%- endfor %}
        {{ run_started_at_sql() }} as processed_at
    from {{ this }} as stored
    inner join to_process
        on stored.event_id = to_process.event_id
    inner join session_keys
        on stored.event_id = session_keys.event_id
    where stored.event_id not in (select event_id from new_events)

    {%- else %}

    select
        {%- for column in columns %}
        {{ 'session_keys' if column in ('session_id', 'session_event_number') else 'attributes' }}.{{ column }},
        {%- endfor %}
        {{ run_started_at_sql() }} as processed_at
    from {{ ref('int_events_identified') }} as attributes
    inner join session_keys
        on attributes.event_id = session_keys.event_id

    {%- endif %}

)

select * from final
