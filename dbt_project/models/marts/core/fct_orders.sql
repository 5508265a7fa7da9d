-- One row per order of the shop's export, with its customer, its rank among the customer's
-- completed orders and the session (and so the channel) it was placed in.
-- Money comes from the orders export, not from the Order Completed events.
with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

order_events as (

    -- the Order Completed event of each order (the earliest when an order was tracked twice)
    select order_id, session_id, event_at
    from (
        select
            order_id,
            session_id,
            event_at,
            row_number() over (partition by order_id order by event_at, event_id) as order_event_rank
        from {{ ref('fct_events') }}
        where event_name = 'Order Completed' and order_id is not null
    ) as ranked
    where order_event_rank = 1

),

sessions as (

    select session_id, channel from {{ ref('fct_sessions') }}

),

completed as (

    select
        order_id,
        row_number() over (partition by user_id order by ordered_at, order_id) as order_number
    from orders
    where status = 'completed'

),

final as (

    select
        orders.order_id,
        orders.user_id as customer_id,
        orders.ordered_at,
        orders.ordered_date,
        orders.status,
        orders.status = 'completed' as is_completed,
        orders.currency,
        orders.revenue,
        orders.item_count,
        cast(completed.order_number as {{ dbt.type_bigint() }}) as order_number,
        coalesce(completed.order_number = 1, false) as is_first_order,
        order_events.session_id,
        sessions.channel,
        orders.first_landing_date,
        orders.status_landing_date,
        orders.loaded_at

    from orders
    left join completed
        on orders.order_id = completed.order_id
    left join order_events
        on orders.order_id = order_events.order_id
    left join sessions
        on order_events.session_id = sessions.session_id

)

select * from final
