{{ config(materialized='view') }}
-- Every event with its resolved customer id and the device key sessions are built on.
-- customer_id: the event's own user id when it has one; otherwise the customer its anonymous id
-- maps to in int_identity_graph (the member it was stitched to, or 'anon:<anonymous_id>').
-- A view: fct_events reads it filtered to the events an incremental run has to (re)process.
with

events as (

    select * from {{ ref('stg_segment__events') }}

),

identity_graph as (

    select anonymous_id, customer_id from {{ ref('int_identity_graph') }}

),

final as (

    select
        events.*,
        coalesce(events.user_id, identity_graph.customer_id) as customer_id,
        coalesce(events.anonymous_id, '') as device_key,
        coalesce(events.event_name, '') not in ({{ sql_string_list(var('message_event_names')) }}) as is_sessionized

    from events
    left join identity_graph
        on events.anonymous_id = identity_graph.anonymous_id

)

select * from final
