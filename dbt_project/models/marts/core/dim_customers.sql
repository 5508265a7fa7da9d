-- The customer 360: one row per customer — every member (user id) and every visitor never linked
-- to a member ('anon:<anonymous_id>') — seen on or before the as-of date (macros/as_of_date.sql).
-- Behaviour (sessions, events, orders, RFM, lifecycle) is as of that date; traits and consent are
-- the latest known (int_customer_traits). Rules and mappings: README.md.
{%- set lifecycle = var('lifecycle') %}
{%- set rfm = var('rfm') %}
{%- set engagement = var('message_engagement') %}
{%- set actions = ['sent', 'opened', 'clicked'] %}
with

as_of as (

    select {{ as_of_date() }} as as_of_date

),

events as (

    select fct_events.*
    from {{ ref('fct_events') }} as fct_events
    cross join as_of
    where fct_events.event_date <= as_of.as_of_date

),

sessions as (

    select fct_sessions.*
    from {{ ref('fct_sessions') }} as fct_sessions
    cross join as_of
    where fct_sessions.session_date <= as_of.as_of_date

),

orders as (

    select fct_orders.*
    from {{ ref('fct_orders') }} as fct_orders
    cross join as_of
    where fct_orders.ordered_date <= as_of.as_of_date

),

traits as (

    select int_customer_traits.*
    from {{ ref('int_customer_traits') }} as int_customer_traits
    cross join as_of
    where cast(int_customer_traits.first_identified_at as date) <= as_of.as_of_date

),

activity as (

    select customer_id, event_at as seen_at from events
    union all
    select customer_id, ordered_at as seen_at from orders
    union all
    select customer_id, first_identified_at as seen_at from traits

),

customers as (

    select customer_id, min(seen_at) as first_seen_at, max(seen_at) as last_seen_at
    from activity
    group by customer_id

),

event_facts as (

    select
        customer_id,
        count(*) as events_count,
        sum(case when event_type = 'page' then 1 else 0 end) as page_views_count,
        count(distinct anonymous_id) as devices_count,
        min(anonymous_id) as first_anonymous_id,
        sum(case when event_name in ({{ sql_string_list(lifecycle.activation_events) }}) then 1 else 0 end)
            as activation_events_count,
        {%- for channel, names in engagement.items() %}
        {%- for action in actions %}
        sum(case when event_name in ({{ sql_string_list(names.get(action, [])) }}) then 1 else 0 end)
            as {{ channel }}_{{ action }}_events{{ ',' if not loop.last }}
        {%- endfor %}{{ ',' if not loop.last }}
        {%- endfor %}
    from events
    group by customer_id

),

measured_engagement as (

    -- a measure is tracked when the data holds at least one event of its names
    select
        {%- for channel, names in engagement.items() %}
        {%- for action in actions %}
        max(case when event_name in ({{ sql_string_list(names.get(action, [])) }}) then 1 else 0 end)
            as {{ channel }}_{{ action }}_is_tracked{{ ',' if not loop.last }}
        {%- endfor %}{{ ',' if not loop.last }}
        {%- endfor %}
    from events

),

order_facts as (

    select
        customer_id,
        sum(case when is_completed then 1 else 0 end) as orders_count,
        sum(case when status = 'cancelled' then 1 else 0 end) as cancelled_orders_count,
        sum(case when status = 'refunded' then 1 else 0 end) as refunded_orders_count,
        sum(case when is_completed then revenue else 0 end) as revenue,
        min(case when is_completed then ordered_at end) as first_order_at,
        max(case when is_completed then ordered_at end) as last_order_at
    from orders
    group by customer_id

),

session_facts as (

    select customer_id, count(*) as sessions_count
    from sessions
    group by customer_id

),

first_touch as (

    select customer_id, channel, utm_source, utm_campaign, landing_page_path
    from (
        select
            *,
            row_number() over (partition by customer_id order by started_at, session_id) as touch_rank
        from sessions
    ) as ranked
    where touch_rank = 1

),

last_touch as (

    -- last non-direct session up to the first order (or the as-of date): "last non-direct click"
    select customer_id, channel, utm_source, utm_campaign
    from (
        select
            sessions.*,
            row_number() over (
                partition by sessions.customer_id
                order by case when sessions.channel = 'direct' then 1 else 0 end,
                    sessions.started_at desc, sessions.session_id desc
            ) as touch_rank
        from sessions
        left join order_facts
            on sessions.customer_id = order_facts.customer_id
        where order_facts.first_order_at is null
            or sessions.started_at <= order_facts.first_order_at
    ) as ranked
    where touch_rank = 1

),

favourite_categories as (

    select customer_id, category
    from (
        select
            customer_id,
            category,
            row_number() over (
                partition by customer_id order by count(*) desc, max(event_at) desc, category
            ) as category_rank
        from events
        where category is not null
        group by customer_id, category
    ) as ranked
    where category_rank = 1

),

joined as (

    select
        customers.customer_id,
        customers.customer_id not like 'anon:%' as is_member,
        case when customers.customer_id not like 'anon:%' then customers.customer_id end as user_id,
        case when customers.customer_id like 'anon:%' then event_facts.first_anonymous_id end as anonymous_id,
        coalesce(event_facts.devices_count, 0) as devices_count,
        traits.email,
        traits.email_normalized,
        traits.phone,
        traits.phone_e164,
        traits.name,
        traits.timezone,
        traits.consent_email,
        traits.consent_sms,
        traits.consent_push,
        traits.consent_kakao,
        traits.consent_night,
        traits.account_created_at,
        traits.traits_updated_at,
        traits.first_identified_at as signed_up_at,
        customers.first_seen_at,
        customers.last_seen_at,
        {{ dbt.datediff('cast(customers.last_seen_at as date)', 'as_of.as_of_date', 'day') }} as days_since_last_seen,
        first_touch.channel as first_touch_channel,
        first_touch.utm_source as first_touch_utm_source,
        first_touch.utm_campaign as first_touch_utm_campaign,
        first_touch.landing_page_path as first_landing_page_path,
        last_touch.channel as last_touch_channel,
        last_touch.utm_source as last_touch_utm_source,
        last_touch.utm_campaign as last_touch_utm_campaign,
        coalesce(session_facts.sessions_count, 0) as sessions_count,
        coalesce(event_facts.events_count, 0) as events_count,
        coalesce(event_facts.page_views_count, 0) as page_views_count,
        coalesce(order_facts.orders_count, 0) as orders_count,
        coalesce(order_facts.cancelled_orders_count, 0) as cancelled_orders_count,
        coalesce(order_facts.refunded_orders_count, 0) as refunded_orders_count,
        coalesce(order_facts.revenue, 0) as revenue,
        order_facts.first_order_at,
        order_facts.last_order_at,
        {{ dbt.datediff('cast(order_facts.last_order_at as date)', 'as_of.as_of_date', 'day') }} as days_since_last_order,
        favourite_categories.category as favourite_category,
        {%- for channel in engagement %}
        {%- for action in actions %}
        case
            when measured_engagement.{{ channel }}_{{ action }}_is_tracked = 1
                then coalesce(event_facts.{{ channel }}_{{ action }}_events, 0)
        end as {{ channel }}_{{ action }}_count,
        {%- endfor %}
        {%- endfor %}
        coalesce(event_facts.activation_events_count, 0) > 0
            or coalesce(session_facts.sessions_count, 0) >= {{ lifecycle.activation_min_sessions }} as is_activated,
        as_of.as_of_date

    from customers
    cross join as_of
    cross join measured_engagement
    left join traits on customers.customer_id = traits.customer_id
    left join event_facts on customers.customer_id = event_facts.customer_id
    left join session_facts on customers.customer_id = session_facts.customer_id
    left join order_facts on customers.customer_id = order_facts.customer_id
    left join first_touch on customers.customer_id = first_touch.customer_id
    left join last_touch on customers.customer_id = last_touch.customer_id
    left join favourite_categories on customers.customer_id = favourite_categories.customer_id

),

scored as (

    select
        *,
        case when orders_count > 0 then days_since_last_order end as recency_days,
        case when orders_count > 0 then orders_count end as frequency,
        case when orders_count > 0 then revenue end as monetary,
        {{ score_by_thresholds('case when orders_count > 0 then days_since_last_order end', rfm.recency_days, higher_is_better=false) }} as r_score,
        {{ score_by_thresholds('case when orders_count > 0 then orders_count end', rfm.frequency_orders) }} as f_score,
        {{ score_by_thresholds('case when orders_count > 0 then revenue end', rfm.monetary) }} as m_score,
        -- lifecycle: first matching rule wins (README.md)
        case
            when orders_count >= 1 and days_since_last_order > {{ lifecycle.win_back_after_days }} then 'win_back'
            when orders_count >= 1 and days_since_last_order > {{ lifecycle.at_risk_after_days }} then 'at_risk'
            when orders_count >= {{ lifecycle.repeat_min_orders }} then 'repeat_loyal'
            when orders_count >= 1 then 'first_purchase'
            when not is_member then 'first_encounter'
            when days_since_last_seen > {{ lifecycle.win_back_after_days }} then 'win_back'
            when is_activated then 'activation'
            else 'onboarding'
        end as lifecycle_stage
    from joined

),

final as (

    select
        customer_id,
        is_member,
        user_id,
        anonymous_id,
        cast(devices_count as {{ dbt.type_bigint() }}) as devices_count,
        email,
        email_normalized,
        phone,
        phone_e164,
        name,
        timezone,
        consent_email,
        consent_sms,
        consent_push,
        consent_kakao,
        consent_night,
        account_created_at,
        traits_updated_at,
        signed_up_at,
        first_seen_at,
        last_seen_at,
        cast(days_since_last_seen as {{ dbt.type_bigint() }}) as days_since_last_seen,
        first_touch_channel,
        first_touch_utm_source,
        first_touch_utm_campaign,
        first_landing_page_path,
        last_touch_channel,
        last_touch_utm_source,
        last_touch_utm_campaign,
        cast(sessions_count as {{ dbt.type_bigint() }}) as sessions_count,
        cast(events_count as {{ dbt.type_bigint() }}) as events_count,
        cast(page_views_count as {{ dbt.type_bigint() }}) as page_views_count,
        cast(orders_count as {{ dbt.type_bigint() }}) as orders_count,
        cast(cancelled_orders_count as {{ dbt.type_bigint() }}) as cancelled_orders_count,
        cast(refunded_orders_count as {{ dbt.type_bigint() }}) as refunded_orders_count,
        cast(revenue as decimal(18, 2)) as revenue,
        cast(case when orders_count > 0 then revenue / orders_count end as decimal(18, 2)) as average_order_value,
        first_order_at,
        last_order_at,
        cast(days_since_last_order as {{ dbt.type_bigint() }}) as days_since_last_order,
        cast(recency_days as {{ dbt.type_bigint() }}) as recency_days,
        cast(frequency as {{ dbt.type_bigint() }}) as frequency,
        cast(monetary as decimal(18, 2)) as monetary,
        cast(r_score as {{ dbt.type_int() }}) as r_score,
        cast(f_score as {{ dbt.type_int() }}) as f_score,
        cast(m_score as {{ dbt.type_int() }}) as m_score,
        cast(r_score * 100 + f_score * 10 + m_score as {{ dbt.type_int() }}) as rfm_score,
        favourite_category,
        {%- for channel in engagement %}
        {%- for action in actions %}
        cast({{ channel }}_{{ action }}_count as {{ dbt.type_bigint() }}) as {{ channel }}_{{ action }}_count,
        {%- endfor %}
        {%- endfor %}
        is_activated,
        lifecycle_stage,
        as_of_date

    from scored

)

select * from final
