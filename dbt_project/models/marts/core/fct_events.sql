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

    Incremental strategy (README.md, "fct_events"): an incremental run re-processes
      a. every event whose landing day is within var events_lookback_days of the latest landing day
         already loaded (new days, late arrivals — they land in the day they arrive — and re-loaded days);
      b. for each (customer, device) with such an event, every event from the start of the stored
         session in which the earliest of them falls (a late event may merge or split sessions
         only from there on; earlier sessions cannot change);
      c. every event of an anonymous id whose customer changed in int_identity_graph since it
         was stored (a visitor who signed up: their history moves to the member).
    and replaces those rows (delete+insert on event_id). History outside that set is not touched.

    Sessionisation runs on the light columns only (ids, times); the flattened JSON attributes are
    joined at the end, for the selected events only (DuckDB then extracts JSON for those rows alone).
-#}
-- depends_on: {{ ref('int_identity_graph') }}
{%- set timeout_ms = var('session_timeout_minutes') * 60 * 1000 %}
with

events as (

    select event_id, customer_id, user_id, anonymous_id, device_key, event_at, landing_date, is_sessionized
    from {{ ref('int_events_identified') }}

),

{% if is_incremental() %}

landing_cutoff as (

    select {{ dbt.dateadd('day', -1 * var('events_lookback_days'), 'max(landing_date)') }} as cutoff
    from {{ this }}

),

arrived as (

    select events.event_id, events.customer_id, events.device_key, events.event_at, events.is_sessionized
    from events
    cross join landing_cutoff
    where landing_cutoff.cutoff is null  -- the table is still empty: everything has arrived
        or events.landing_date >= landing_cutoff.cutoff

),

arrived_keys as (

    select customer_id, device_key, min(event_at) as first_arrived_at
    from arrived
    where is_sessionized
    group by customer_id, device_key

),

stored_sessions as (

    select
        customer_id,
        coalesce(anonymous_id, '') as device_key,
        session_id,
        min(event_at) as session_started_at
    from {{ this }}
    where session_id is not null
    group by customer_id, coalesce(anonymous_id, ''), session_id

),

restart_points as (

    select
        arrived_keys.customer_id,
        arrived_keys.device_key,
        coalesce(max(stored_sessions.session_started_at), min(arrived_keys.first_arrived_at)) as restart_at
    from arrived_keys
    left join stored_sessions
        on arrived_keys.customer_id = stored_sessions.customer_id
        and arrived_keys.device_key = stored_sessions.device_key
        and stored_sessions.session_started_at <= arrived_keys.first_arrived_at
    group by arrived_keys.customer_id, arrived_keys.device_key

),

restitched_devices as (

    select distinct stored.anonymous_id
    from {{ this }} as stored
    inner join {{ ref('int_identity_graph') }} as identity_graph
        on stored.anonymous_id = identity_graph.anonymous_id
    where stored.user_id is null
        and stored.customer_id <> identity_graph.customer_id

),

event_ids_to_process as (

    select event_id from arrived

    union

    select events.event_id
    from events
    inner join restart_points
        on events.customer_id = restart_points.customer_id
        and events.device_key = restart_points.device_key
        and events.event_at >= restart_points.restart_at

    union

    select events.event_id
    from events
    inner join restitched_devices
        on events.anonymous_id = restitched_devices.anonymous_id

),

to_process as (

    select events.*
    from events
    inner join event_ids_to_process
        on events.event_id = event_ids_to_process.event_id

),

{% else %}

to_process as (

    select * from events

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

{%- set columns = [
    'event_id', 'customer_id', 'user_id', 'anonymous_id', 'event_type', 'event_name', 'page_name',
    'event_at', 'event_date', 'session_id', 'session_event_number', 'page_path', 'page_url',
    'page_title', 'referrer', 'utm_source', 'utm_medium', 'utm_campaign', 'utm_term',
    'utm_content', 'device_type', 'timezone', 'product_id', 'category', 'revenue', 'order_id',
    'message_campaign_id', 'properties', 'landing_date'
] %}

final as (

    select
        {%- for column in columns %}
        {{ 'session_keys' if column in ('session_id', 'session_event_number') else 'attributes' }}.{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ ref('int_events_identified') }} as attributes
    inner join session_keys
        on attributes.event_id = session_keys.event_id

)

select * from final
