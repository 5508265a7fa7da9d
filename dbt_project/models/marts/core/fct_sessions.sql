-- One row per browsing session (fct_events.session_id): when, how long, where it started, where
-- it came from (channel) and what it led to. Rebuilt from fct_events on each run (a cheap
-- aggregate: the expensive parts — JSON, identity, sessionisation — are incremental in fct_events).
with

events as (

    select * from {{ ref('fct_events') }}
    where session_id is not null

),

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
        max(case when session_event_number = 1 then timezone end) as event_timezone

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

final as (

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
        cast(row_number() over (
            partition by customer_id order by started_at, session_id
        ) as {{ dbt.type_bigint() }}) as customer_session_number

    from enriched

)

select * from final
