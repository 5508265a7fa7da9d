-- One row per browsing session (fct_events.session_id): when, how long, where it started, where
-- it came from (channel) and what it led to.
--
-- Incremental (delete+insert on device_key). The change feed is fct_events.processed_at: fct_events
-- rewrites whole sessions, so the sessions of the events it (re)wrote since this table's latest batch
-- are re-aggregated; every other session of the devices they are on is copied from the table if it
-- still exists (a stored session whose events moved to another session — merged by a late event,
-- re-attributed to the member a visitor signed up as — is dropped). customer_session_number is
-- renumbered for the customers whose sessions changed, copying their sessions on other devices too
-- (with every other session of those devices, since a device is replaced as a whole).
{{
    config(
        materialized=scoped_materialization(),
        unique_key='device_key',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}
{%- set processed_after = incremental_watermark('processed_at') %}
{%- set stored_columns = [
    'session_id', 'customer_id', 'anonymous_id', 'started_at', 'ended_at', 'session_date', 'timezone',
    'started_at_local', 'session_local_date', 'duration_seconds', 'event_count', 'page_view_count',
    'is_bounce', 'is_identified', 'landing_page_path', 'landing_page_url', 'referrer', 'referrer_host',
    'utm_source', 'utm_medium', 'utm_campaign', 'channel', 'device_type', 'order_count', 'revenue'
] %}
with

{% if is_incremental() %}

rewritten as (

    -- sessionised events fct_events (re)wrote since this table's latest batch
    select session_id, customer_id, anonymous_id
    from {{ ref('fct_events') }}
    where processed_at > {{ processed_after }} and session_id is not null

),

touched_anonymous_ids as (

    select distinct anonymous_id from rewritten where anonymous_id is not null

),

touched_deviceless_customers as (

    select distinct customer_id from rewritten where anonymous_id is null

),

existing_session_ids as (

    -- the sessions of the touched devices as they are now
    select distinct session_id
    from (
        {{ rows_on_devices(ref('fct_events'), 'session_id',
            'select anonymous_id from touched_anonymous_ids',
            'select customer_id from touched_deviceless_customers',
            where='session_id is not null') }}
    ) as device_events

),

stored_touched as (

    {{ rows_on_devices(this, '*',
        'select anonymous_id from touched_anonymous_ids',
        'select customer_id from touched_deviceless_customers') }}

),

kept_touched as (

    -- unchanged sessions of the touched devices
    select *
    from stored_touched
    where session_id in (select session_id from existing_session_ids)
        and session_id not in (select session_id from rewritten)

),

renumbered_customers as (

    -- customers with a new, changed or dropped session
    select customer_id from rewritten
    union
    select customer_id from stored_touched
    where session_id not in (select session_id from kept_touched)

),

kept_other as (

    -- the other devices of those customers, copied whole
    select *
    from {{ this }}
    where device_key in (
        select device_key from {{ this }}
        where customer_id in (select customer_id from renumbered_customers)
    )
        and device_key not in (select device_key from stored_touched)

),

events as (

    select *
    from {{ ref('fct_events') }}
    where session_id in (select session_id from rewritten)

),

{% else %}

events as (

    select * from {{ ref('fct_events') }}
    where session_id is not null

),

{% endif %}

aggregated as (

    select
        session_id,
        customer_id,
        anonymous_id,
        min(event_at) as started_at,
        max(event_at) as ended_at,
        count(*) as event_count,
        sum(case when event_type = 'page' then 1 else 0 end) as page_view_count,
        sum(case when event_name = 'Order Completed' then 1 else 0 end) as order_count,
        sum(case when event_name = 'Order Completed' then coalesce(revenue, 0) else 0 end) as revenue,
        max(case when user_id is not null then 1 else 0 end) as has_identified_event,
        -- the first event of the session (session_event_number = 1) describes its start
        max(case when session_event_number = 1 then page_path end) as landing_page_path,
        max(case when session_event_number = 1 then page_url end) as landing_page_url,
        max(case when session_event_number = 1 then referrer end) as referrer,
        max(case when session_event_number = 1 then utm_source end) as utm_source,
        max(case when session_event_number = 1 then utm_medium end) as utm_medium,
        max(case when session_event_number = 1 then utm_campaign end) as utm_campaign,
        max(case when session_event_number = 1 then device_type end) as device_type,
        max(case when session_event_number = 1 then timezone end) as event_timezone,
        max(loaded_at) as source_loaded_at

    from events
    group by session_id, customer_id, anonymous_id

),

enriched as (

    select
        *,
        {{ valid_timezone('event_timezone', "'" ~ var('timezone') ~ "'") }} as session_timezone,
        {{ classify_channel('utm_source', 'utm_medium', 'referrer') }} as channel,
        {{ url_host('referrer') }} as referrer_host
    from aggregated

),

computed as (

    select
        session_id,
        customer_id,
        anonymous_id,
        started_at,
        ended_at,
        cast(started_at as date) as session_date,
        session_timezone as timezone,
        {{ convert_timezone_from_utc('started_at', 'session_timezone') }} as started_at_local,
        cast({{ convert_timezone_from_utc('started_at', 'session_timezone') }} as date) as session_local_date,
        cast({{ dbt.datediff('started_at', 'ended_at', 'second') }} as {{ dbt.type_bigint() }}) as duration_seconds,
        cast(event_count as {{ dbt.type_bigint() }}) as event_count,
        cast(page_view_count as {{ dbt.type_bigint() }}) as page_view_count,
        page_view_count <= 1 as is_bounce,
        has_identified_event = 1 as is_identified,
        landing_page_path,
        landing_page_url,
        referrer,
        referrer_host,
        utm_source,
        utm_medium,
        utm_campaign,
        channel,
        device_type,
        cast(order_count as {{ dbt.type_bigint() }}) as order_count,
        cast(revenue as decimal(18, 2)) as revenue,
        cast(null as {{ dbt.type_bigint() }}) as stored_session_number,
        source_loaded_at
    from enriched

),

all_sessions as (

    select * from computed
    {%- if is_incremental() %}
    {%- for kept in ['kept_touched', 'kept_other'] %}

    union all

    select
        {%- for column in stored_columns %}
        {{ column }},
        {%- endfor %}
        customer_session_number as stored_session_number,
        source_loaded_at
    from {{ kept }}
    {%- endfor %}
    {%- endif %}

),

final as (

    select
        {%- for column in stored_columns %}
        {{ column }},
        {%- endfor %}
        cast(
            {%- if is_incremental() %}
            case
                when customer_id in (select customer_id from renumbered_customers)
                    then row_number() over (partition by customer_id order by started_at, session_id)
                else stored_session_number
            end
            {%- else %}
            row_number() over (partition by customer_id order by started_at, session_id)
            {%- endif %}
            as {{ dbt.type_bigint() }}) as customer_session_number,
        case
            when anonymous_id is not null then {{ dbt.concat(["'device:'", 'anonymous_id']) }}
            else {{ dbt.concat(["'customer:'", 'customer_id']) }}
        end as device_key,
        source_loaded_at,
        {{ run_started_at_sql() }} as processed_at
    from all_sessions

)

select * from final
