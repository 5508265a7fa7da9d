{#-
    Behaviour facts of every customer with an event or an order (dim_customers adds traits, the
    as-of date and everything derived from it: recency, RFM, lifecycle). With an explicit var
    as_of_date only events, sessions and orders on or before it count; by default everything loaded
    counts (the default as-of date is the latest event or order date, so nothing is after it).

    Incremental (delete+insert on customer_id): a run recomputes, from their whole history, the
    customers whose events, sessions or orders may have changed since the latest load it processed
    (macro changed_customers_ctes: new events and order versions, devices linked to a member), and
    writes a tombstone for those left with nothing (a visitor whose history moved to the member it
    signed up as), which the post-hook deletes with the rows of any other definition_hash.
-#}
{%- set engagement = var('message_engagement') %}
{%- set lifecycle = var('lifecycle') %}
{%- set actions = ['sent', 'opened', 'clicked'] %}
{%- set current_hash = definition_hash({
        'as_of': explicit_as_of().get('as_of_date'),
        'engagement': engagement,
        'activation_events': lifecycle.activation_events}) %}
{{ config(**scoped_config('customer_id', current_hash)) }}
-- depends_on: {{ ref('stg_segment__identifies') }}
-- depends_on: {{ source('shop', 'orders') }}
{%- set as_of = explicit_as_of().get('as_of_date') %}
{%- set loaded_after = incremental_watermark(definition_hash=current_hash) %}
with

{% if is_incremental() %}

{{ changed_customers_ctes(loaded_after, orders=true) }},

{% endif %}

events as (

    select customer_id, anonymous_id, event_type, event_name, event_at, category, loaded_at
    from {{ ref('fct_events') }}
    where 1 = 1
    {%- if as_of %}
      and event_date <= cast('{{ as_of }}' as date)
    {%- endif %}
    {%- if is_incremental() %}
      and customer_id in (select customer_id from changed_customers)
    {%- endif %}

),

sessions as (

    select customer_id, session_id, started_at, channel, utm_source, utm_campaign, landing_page_path
    from {{ ref('fct_sessions') }}
    where 1 = 1
    {%- if as_of %}
      and session_date <= cast('{{ as_of }}' as date)
    {%- endif %}
    {%- if is_incremental() %}
      and customer_id in (select customer_id from changed_customers)
    {%- endif %}

),

orders as (

    select customer_id, status, is_completed, revenue, ordered_at, loaded_at
    from {{ ref('fct_orders') }}
    where customer_id is not null
    {%- if as_of %}
      and ordered_date <= cast('{{ as_of }}' as date)
    {%- endif %}
    {%- if is_incremental() %}
      and customer_id in (select customer_id from changed_customers)
    {%- endif %}

),

activity as (

    select customer_id, event_at as seen_at, loaded_at from events
    union all
    select customer_id, ordered_at as seen_at, loaded_at from orders

),

customers as (

    select
        customer_id,
        min(seen_at) as first_seen_at,
        max(seen_at) as last_seen_at,
        max(loaded_at) as source_loaded_at
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

keys as (

    select customer_id from customers
    {%- if is_incremental() %}
    union
    -- changed customers with nothing left get a tombstone (definition_hash 'deleted'; post-hook)
    select customer_id from changed_customers
    {%- endif %}

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

final as (

    select
        keys.customer_id,
        customers.first_seen_at,
        customers.last_seen_at,
        cast(coalesce(event_facts.events_count, 0) as {{ dbt.type_bigint() }}) as events_count,
        cast(coalesce(event_facts.page_views_count, 0) as {{ dbt.type_bigint() }}) as page_views_count,
        cast(coalesce(event_facts.devices_count, 0) as {{ dbt.type_bigint() }}) as devices_count,
        event_facts.first_anonymous_id,
        cast(coalesce(event_facts.activation_events_count, 0) as {{ dbt.type_bigint() }}) as activation_events_count,
        {%- for channel in engagement %}
        {%- for action in actions %}
        cast(coalesce(event_facts.{{ channel }}_{{ action }}_events, 0) as {{ dbt.type_bigint() }}) as {{ channel }}_{{ action }}_events,
        {%- endfor %}
        {%- endfor %}
        cast(coalesce(session_facts.sessions_count, 0) as {{ dbt.type_bigint() }}) as sessions_count,
        cast(coalesce(order_facts.orders_count, 0) as {{ dbt.type_bigint() }}) as orders_count,
        cast(coalesce(order_facts.cancelled_orders_count, 0) as {{ dbt.type_bigint() }}) as cancelled_orders_count,
        cast(coalesce(order_facts.refunded_orders_count, 0) as {{ dbt.type_bigint() }}) as refunded_orders_count,
        cast(coalesce(order_facts.revenue, 0) as decimal(18, 2)) as revenue,
        order_facts.first_order_at,
        order_facts.last_order_at,
        first_touch.channel as first_touch_channel,
        first_touch.utm_source as first_touch_utm_source,
        first_touch.utm_campaign as first_touch_utm_campaign,
        first_touch.landing_page_path as first_landing_page_path,
        last_touch.channel as last_touch_channel,
        last_touch.utm_source as last_touch_utm_source,
        last_touch.utm_campaign as last_touch_utm_campaign,
        favourite_categories.category as favourite_category,
        customers.source_loaded_at,
        {{ run_started_at_sql() }} as processed_at,
        cast(case when customers.customer_id is null then 'deleted' else '{{ current_hash }}' end
            as {{ dbt.type_string() }}) as definition_hash

    from keys
    left join customers on keys.customer_id = customers.customer_id
    left join event_facts on keys.customer_id = event_facts.customer_id
    left join session_facts on keys.customer_id = session_facts.customer_id
    left join order_facts on keys.customer_id = order_facts.customer_id
    left join first_touch on keys.customer_id = first_touch.customer_id
    left join last_touch on keys.customer_id = last_touch.customer_id
    left join favourite_categories on keys.customer_id = favourite_categories.customer_id

)

select * from final
