-- The customer 360: one row per customer — every member (user id) and every visitor never linked
-- to a member ('anon:<anonymous_id>') — seen on or before the as-of date (macros/as_of_date.sql).
-- Behaviour (sessions, events, orders, RFM, lifecycle) is as of that date; traits and consent are
-- the latest known (int_customer_traits). Rules and mappings: README.md.
-- A table rebuilt every run, but a cheap one: the per-customer behaviour facts come aggregated from
-- int_customer_facts (incremental); here only traits, the as-of date and what depends on it
-- (recency, RFM, lifecycle — they change for everybody when the as-of date moves) are added.
{%- set lifecycle = var('lifecycle') %}
{%- set rfm = var('rfm') %}
{%- set engagement = var('message_engagement') %}
{%- set actions = ['sent', 'opened', 'clicked'] %}
with

as_of as (

    select {{ as_of_date() }} as as_of_date

),

facts as (

    -- behaviour facts (incremental; already limited to the as-of date when var as_of_date is set)
    select * from {{ ref('int_customer_facts') }}

),

traits as (

    select int_customer_traits.*
    from {{ ref('int_customer_traits') }} as int_customer_traits
    cross join as_of
    where cast(int_customer_traits.first_identified_at as date) <= as_of.as_of_date

),

customers as (

    select
        coalesce(facts.customer_id, traits.customer_id) as customer_id,
        case
            when facts.first_seen_at is null then traits.first_identified_at
            when traits.first_identified_at is null or facts.first_seen_at <= traits.first_identified_at then facts.first_seen_at
            else traits.first_identified_at
        end as first_seen_at,
        case
            when facts.last_seen_at is null then traits.first_identified_at
            when traits.first_identified_at is null or facts.last_seen_at >= traits.first_identified_at then facts.last_seen_at
            else traits.first_identified_at
        end as last_seen_at
    from facts
    full outer join traits
        on facts.customer_id = traits.customer_id

),

measured_engagement as (

    -- a measure is tracked when the data holds at least one event of its names
    select
        {%- for channel, names in engagement.items() %}
        {%- for action in actions %}
        max(case when {{ channel }}_{{ action }}_events > 0 then 1 else 0 end)
            as {{ channel }}_{{ action }}_is_tracked{{ ',' if not loop.last }}
        {%- endfor %}{{ ',' if not loop.last }}
        {%- endfor %}
    from facts

),

joined as (

    select
        customers.customer_id,
        customers.customer_id not like 'anon:%' as is_member,
        case when customers.customer_id not like 'anon:%' then customers.customer_id end as user_id,
        case when customers.customer_id like 'anon:%' then facts.first_anonymous_id end as anonymous_id,
        coalesce(facts.devices_count, 0) as devices_count,
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
        facts.first_touch_channel,
        facts.first_touch_utm_source,
        facts.first_touch_utm_campaign,
        facts.first_landing_page_path,
        facts.last_touch_channel,
        facts.last_touch_utm_source,
        facts.last_touch_utm_campaign,
        coalesce(facts.sessions_count, 0) as sessions_count,
        coalesce(facts.events_count, 0) as events_count,
        coalesce(facts.page_views_count, 0) as page_views_count,
        coalesce(facts.orders_count, 0) as orders_count,
        coalesce(facts.cancelled_orders_count, 0) as cancelled_orders_count,
        coalesce(facts.refunded_orders_count, 0) as refunded_orders_count,
        coalesce(facts.revenue, 0) as revenue,
        facts.first_order_at,
        facts.last_order_at,
        {{ dbt.datediff('cast(facts.last_order_at as date)', 'as_of.as_of_date', 'day') }} as days_since_last_order,
        facts.favourite_category,
        {%- for channel in engagement %}
        {%- for action in actions %}
        case
            when measured_engagement.{{ channel }}_{{ action }}_is_tracked = 1
                then coalesce(facts.{{ channel }}_{{ action }}_events, 0)
        end as {{ channel }}_{{ action }}_count,
        {%- endfor %}
        {%- endfor %}
        coalesce(facts.activation_events_count, 0) > 0
            or coalesce(facts.sessions_count, 0) >= {{ lifecycle.activation_min_sessions }} as is_activated,
        as_of.as_of_date

    from customers
    cross join as_of
    cross join measured_engagement
    left join facts on customers.customer_id = facts.customer_id
    left join traits on customers.customer_id = traits.customer_id

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
