{#- The drop-off cohort of every funnel step: customers whose best attempt reached step k and not
    step k + 1 (see fct_funnel_dropoff_cohorts.yml). -#}
{{ config(materialized='table') }}

-- depends_on: {{ ref('fct_events') }}

with

reached as (
    select * from {{ ref('int_funnel_steps_reached') }}
),

as_of as (
    select {{ analytics_as_of_sql() }} as evaluated_at
),

funnel_steps as (
    {{ analytics_funnel_steps_values(analytics_funnels()) }}
),

last_steps as (
    select *
    from reached
    where step_number = furthest_step
      and furthest_step < total_steps
)

select
    cast(last_steps.funnel_name as {{ dbt.type_string() }}) as funnel_name,
    cast(last_steps.customer_id as {{ dbt.type_string() }}) as customer_id,
    cast(last_steps.step_number as {{ dbt.type_int() }}) as dropped_after_step,
    cast(last_steps.step_name as {{ dbt.type_string() }}) as dropped_after_step_name,
    cast(next_step.step_name as {{ dbt.type_string() }}) as missed_step_name,
    cast(last_steps.total_steps as {{ dbt.type_int() }}) as total_steps,
    cast(last_steps.attempt_started_at as {{ dbt.type_timestamp() }}) as attempt_started_at,
    cast(last_steps.reached_at as {{ dbt.type_timestamp() }}) as last_step_at,
    cast(last_steps.window_ends_at as {{ dbt.type_timestamp() }}) as window_ends_at,
    cast(last_steps.window_ends_at <= as_of.evaluated_at as {{ dbt.type_boolean() }}) as is_window_elapsed,
    cast(as_of.evaluated_at as {{ dbt.type_timestamp() }}) as evaluated_at
from last_steps
cross join as_of
inner join funnel_steps as next_step
    on next_step.funnel_name = last_steps.funnel_name
    and next_step.step_number = last_steps.step_number + 1
