{#-
    The message funnel of every campaign and arm: sent → delivered → opened → clicked → converted.
    A customer reaches a step when they reached the previous one and have the step's event; a later
    step implies the earlier ones (a click without a tracked open still passed the open). A step whose
    events are never tracked for the campaign (e.g. no delivery receipts) is passed by everyone at the
    previous step and flagged is_step_tracked = false. converted = a goal event in the attribution
    window at or after the click (at or after the send when clicks are not tracked).
-#}
{{ config(materialized='table') }}

with

exposures as (

    select * from {{ ref('int_campaign_exposures_joined') }}

),

tracked as (

    select
        campaign,
        max(case when is_delivered then 1 else 0 end) = 1 as delivered_tracked,
        max(case when is_opened then 1 else 0 end) = 1 as opened_tracked,
        max(case when is_clicked then 1 else 0 end) = 1 as clicked_tracked
    from exposures
    group by campaign

),

reached as (

    select
        exposures.campaign,
        exposures.arm,
        exposures.is_holdout,
        tracked.delivered_tracked,
        tracked.opened_tracked,
        tracked.clicked_tracked,
        exposures.is_sent as reached_sent,
        exposures.is_sent
            and (exposures.is_delivered or exposures.is_opened or exposures.is_clicked or not tracked.delivered_tracked)
            as reached_delivered,
        exposures.is_sent
            and (exposures.is_delivered or exposures.is_opened or exposures.is_clicked or not tracked.delivered_tracked)
            and (exposures.is_opened or exposures.is_clicked or not tracked.opened_tracked)
            as reached_opened,
        exposures.is_sent
            and (exposures.is_delivered or exposures.is_opened or exposures.is_clicked or not tracked.delivered_tracked)
            and (exposures.is_opened or exposures.is_clicked or not tracked.opened_tracked)
            and (exposures.is_clicked or not tracked.clicked_tracked)
            as reached_clicked,
        exposures.is_converted_after_click,
        exposures.first_converted_at >= exposures.sent_at as is_converted_after_send
    from exposures
    inner join tracked
        on exposures.campaign = tracked.campaign

),

with_conversion as (

    select
        *,
        case
            when clicked_tracked then reached_clicked and is_converted_after_click
            else reached_clicked and coalesce(is_converted_after_send, false)
        end as reached_converted
    from reached

),

counts as (

    select
        campaign,
        arm,
        is_holdout,
        max(case when delivered_tracked then 1 else 0 end) = 1 as delivered_tracked,
        max(case when opened_tracked then 1 else 0 end) = 1 as opened_tracked,
        max(case when clicked_tracked then 1 else 0 end) = 1 as clicked_tracked,
        count(*) as exposed,
        sum(case when reached_sent then 1 else 0 end) as step_1,
        sum(case when reached_delivered then 1 else 0 end) as step_2,
        sum(case when reached_opened then 1 else 0 end) as step_3,
        sum(case when reached_clicked then 1 else 0 end) as step_4,
        sum(case when reached_converted then 1 else 0 end) as step_5
    from with_conversion
    group by campaign, arm, is_holdout

),

steps as (

    {%- set steps = [
        (1, 'sent', 'true', 'step_1', 'exposed'),
        (2, 'delivered', 'delivered_tracked', 'step_2', 'step_1'),
        (3, 'opened', 'opened_tracked', 'step_3', 'step_2'),
        (4, 'clicked', 'clicked_tracked', 'step_4', 'step_3'),
        (5, 'converted', 'true', 'step_5', 'step_4'),
    ] %}
    {%- for number, name, tracked_flag, column, previous in steps %}
    select
        campaign,
        arm,
        is_holdout,
        {{ number }} as step_number,
        '{{ name }}' as step_name,
        {{ tracked_flag }} as is_step_tracked,
        exposed,
        {{ column }} as customers,
        {{ previous }} as previous_step_customers,
        step_1 as sent_customers
    from counts
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

)

select
    cast(campaign as {{ dbt.type_string() }}) as campaign,
    cast(arm as {{ dbt.type_string() }}) as arm,
    is_holdout,
    cast(step_number as {{ dbt.type_int() }}) as step_number,
    cast(step_name as {{ dbt.type_string() }}) as step_name,
    is_step_tracked,
    cast(exposed as {{ dbt.type_bigint() }}) as exposed,
    cast(customers as {{ dbt.type_bigint() }}) as customers,
    case
        when previous_step_customers > 0
            then cast(customers as {{ analytics_type_double() }}) / previous_step_customers
    end as rate_from_previous_step,
    case
        when sent_customers > 0 then cast(customers as {{ analytics_type_double() }}) / sent_customers
    end as rate_from_sent,
    cast(customers as {{ analytics_type_double() }}) / exposed as rate_from_exposed
from steps
