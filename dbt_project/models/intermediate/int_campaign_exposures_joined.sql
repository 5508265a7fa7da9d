{#-
    One row per campaign × exposed customer (activations.assignments): the arm and exposure time, the
    first send acknowledged by the destination (sync ledger), the campaign's message events of the
    customer after the exposure, and the goal events inside the attribution window.

    Exposure = assignment (intent to treat): holdout and variant customers alike are measured from
    assigned_at, whether or not a message was sent. The attribution window is inclusive at both ends:
    a goal event counts when assigned_at <= event_at <= assigned_at + campaign_attribution_days days.

    Vars (defaults here; see dbt_project/README.md):
      campaign_goal_event        the conversion event name ('Order Completed')
      campaign_attribution_days  days after the exposure a goal event is attributed (7)
      campaign_message_events    {delivered, opened, clicked: [event names]} of message events carrying
                                 properties.campaign_id = the campaign
-#}
{%- set goal_event = var('campaign_goal_event', 'Order Completed') -%}
{%- set attribution_days = var('campaign_attribution_days', 7) | int -%}
{%- set message_events = var('campaign_message_events', {
        'delivered': ['Email Delivered', 'Push Delivered', 'Kakao Delivered'],
        'opened': ['Email Opened', 'Push Opened', 'Kakao Opened'],
        'clicked': ['Email Clicked', 'Push Clicked', 'Kakao Clicked'],
    }) -%}
{%- set all_message_events = message_events['delivered'] + message_events['opened'] + message_events['clicked'] -%}

with

assignments as (

    select
        campaign,
        customer_id,
        arm,
        allocation_round,
        assigned_at,
        {{ dbt.dateadd('day', attribution_days, 'assigned_at') }} as window_ends_at
    from {{ ref('stg_activations__assignments') }}

),

events as (

    select customer_id, event_name, event_at, message_campaign_id, revenue
    from {{ ref('fct_events') }}

),

data_end as (

    -- the latest event time in the data: "now" for deciding whether a window has elapsed
    select max(event_at) as data_ends_at from {{ ref('fct_events') }}

),

sends as (

    select
        campaign,
        sync_key as customer_id,
        min(logged_at) as sent_at
    from {{ ref('stg_activations__sync_log') }}
    where is_delivered_to_destination
    group by campaign, sync_key

),

message_events as (

    select
        assignments.campaign,
        assignments.customer_id,
        min(case when events.event_name in ({{ sql_string_list(message_events['delivered']) }}) then events.event_at end) as delivered_at,
        min(case when events.event_name in ({{ sql_string_list(message_events['opened']) }}) then events.event_at end) as opened_at,
        min(case when events.event_name in ({{ sql_string_list(message_events['clicked']) }}) then events.event_at end) as clicked_at
    from assignments
    inner join events
        on events.customer_id = assignments.customer_id
        and events.message_campaign_id = assignments.campaign
        and events.event_at >= assignments.assigned_at
    where events.event_name in ({{ sql_string_list(all_message_events) }})
    group by assignments.campaign, assignments.customer_id

),

goal_events as (

    select
        assignments.campaign,
        assignments.customer_id,
        min(events.event_at) as first_converted_at,
        max(events.event_at) as last_converted_at,
        count(*) as conversions,
        sum(coalesce(events.revenue, 0)) as revenue
    from assignments
    inner join events
        on events.customer_id = assignments.customer_id
        and events.event_at >= assignments.assigned_at
        and events.event_at <= assignments.window_ends_at
    where events.event_name = '{{ goal_event | replace("'", "''") }}'
    group by assignments.campaign, assignments.customer_id

),

final as (

    select
        assignments.campaign,
        assignments.customer_id,
        assignments.arm,
        assignments.arm = 'holdout' as is_holdout,
        assignments.allocation_round,
        assignments.assigned_at,
        assignments.window_ends_at,
        coalesce(assignments.window_ends_at <= data_end.data_ends_at, false) as is_window_elapsed,
        sends.sent_at,
        sends.sent_at is not null as is_sent,
        message_events.delivered_at,
        message_events.opened_at,
        message_events.clicked_at,
        message_events.delivered_at is not null as is_delivered,
        message_events.opened_at is not null as is_opened,
        message_events.clicked_at is not null as is_clicked,
        goal_events.first_converted_at,
        goal_events.first_converted_at is not null as is_converted,
        coalesce(goal_events.last_converted_at >= message_events.clicked_at, false) as is_converted_after_click,
        cast(coalesce(goal_events.conversions, 0) as {{ dbt.type_int() }}) as conversions,
        cast(coalesce(goal_events.revenue, 0) as decimal(18, 2)) as revenue
    from assignments
    cross join data_end
    left join sends
        on assignments.campaign = sends.campaign
        and assignments.customer_id = sends.customer_id
    left join message_events
        on assignments.campaign = message_events.campaign
        and assignments.customer_id = message_events.customer_id
    left join goal_events
        on assignments.campaign = goal_events.campaign
        and assignments.customer_id = goal_events.customer_id

)

select * from final
