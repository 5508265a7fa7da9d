{#- Per campaign and arm: exposures (intent to treat), the message funnel counts, conversions and revenue
    in the attribution window, with what a Welch interval needs downstream (see the YAML). -#}
{{ config(materialized='table') }}

with

exposures as (

    select * from {{ ref('int_campaign_exposures_joined') }}

),

aggregated as (

    select
        campaign,
        arm,
        count(*) as exposed,
        sum(case when is_sent then 1 else 0 end) as sent,
        sum(case when is_delivered then 1 else 0 end) as delivered,
        sum(case when is_opened then 1 else 0 end) as opened,
        sum(case when is_clicked then 1 else 0 end) as clicked,
        sum(case when is_converted then 1 else 0 end) as converted,
        sum(conversions) as conversions,
        sum(case when is_window_elapsed then 1 else 0 end) as exposed_window_elapsed,
        sum(revenue) as revenue,
        sum(cast(revenue as {{ analytics_type_double() }}) * cast(revenue as {{ analytics_type_double() }})) as revenue_sum_squares,
        stddev_samp(cast(revenue as {{ analytics_type_double() }})) as revenue_stddev,
        min(assigned_at) as first_assigned_at,
        max(assigned_at) as last_assigned_at
    from exposures
    group by campaign, arm

)

select
    cast(campaign as {{ dbt.type_string() }}) as campaign,
    cast(arm as {{ dbt.type_string() }}) as arm,
    arm = 'holdout' as is_holdout,
    cast(exposed as {{ dbt.type_bigint() }}) as exposed,
    cast(sent as {{ dbt.type_bigint() }}) as sent,
    cast(delivered as {{ dbt.type_bigint() }}) as delivered,
    cast(opened as {{ dbt.type_bigint() }}) as opened,
    cast(clicked as {{ dbt.type_bigint() }}) as clicked,
    cast(converted as {{ dbt.type_bigint() }}) as converted,
    cast(conversions as {{ dbt.type_bigint() }}) as conversions,
    cast(converted as {{ analytics_type_double() }}) / exposed as conversion_rate,
    cast(revenue as decimal(18, 2)) as revenue,
    cast(revenue as {{ analytics_type_double() }}) / exposed as revenue_per_customer,
    cast(revenue_stddev as {{ analytics_type_double() }}) as revenue_stddev,
    cast(revenue_sum_squares as {{ analytics_type_double() }}) as revenue_sum_squares,
    cast(exposed_window_elapsed as {{ dbt.type_bigint() }}) as exposed_window_elapsed,
    first_assigned_at,
    last_assigned_at,
    cast('{{ var("campaign_goal_event", "Order Completed") | replace("'", "''") }}' as {{ dbt.type_string() }}) as goal_event,
    cast({{ var('campaign_attribution_days', 7) | int }} as {{ dbt.type_int() }}) as attribution_days
from aggregated
