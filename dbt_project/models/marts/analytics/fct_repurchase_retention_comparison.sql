{#- Retention of buyers whose second purchase came within the repurchase window (7 days) of the
    first versus one-time buyers (and later repurchasers), by rolling period since the first
    purchase (see fct_repurchase_retention_comparison.yml). -#}
{{ config(materialized='table') }}

-- depends_on: {{ ref('fct_events') }}
-- depends_on: {{ ref('fct_orders') }}

{%- set c = analytics_repurchase_comparison() %}

with

buyers as (
    select *
    from {{ ref('int_repurchase_cohorts_assigned') }}
    where repurchase_group <> 'window_open'
),

as_of as (
    select {{ analytics_as_of_sql() }} as as_of_at
),

periods as (
    {%- set rows = [] %}
    {%- for n in range(0, c.periods + 1) %}{% do rows.append([n]) %}{% endfor %}
    {{ analytics_values_sql(['period_number'], [dbt.type_int()], rows) }}
),

return_periods as (
    -- periods in which each buyer came back (int_repurchase_return_periods, incremental)
    select customer_id, period_number
    from {{ ref('int_repurchase_return_periods') }}
),

{%- if c.retention_type == 'on_or_after' %}
last_periods as (
    select customer_id, max(period_number) as last_period
    from return_periods
    group by customer_id
),
{%- endif %}

customer_periods as (
    select
        buyers.customer_id,
        buyers.repurchase_group,
        periods.period_number,
        {{ dbt.dateadd('second', '(periods.period_number + 1) * ' ~ c.period_seconds, 'buyers.first_purchase_at') }}
            <= as_of.as_of_at as is_period_complete,
        case
            when periods.period_number = 0 then 1
            {%- if c.retention_type == 'on_or_after' %}
            when last_periods.last_period >= periods.period_number then 1
            {%- else %}
            when return_periods.customer_id is not null then 1
            {%- endif %}
            else 0
        end as has_returned
    from buyers
    cross join periods
    cross join as_of
    {%- if c.retention_type == 'on_or_after' %}
    left join last_periods
        on last_periods.customer_id = buyers.customer_id
    {%- else %}
    left join return_periods
        on return_periods.customer_id = buyers.customer_id
        and return_periods.period_number = periods.period_number
    {%- endif %}
),

groups as (
    select repurchase_group, count(*) as group_size
    from buyers
    group by repurchase_group
),

counted as (
    select
        repurchase_group,
        period_number,
        sum(case when is_period_complete then 1 else 0 end) as eligible_customers,
        sum(case when is_period_complete then has_returned else 0 end) as retained_customers
    from customer_periods
    group by repurchase_group, period_number
)

select
    cast(counted.repurchase_group as {{ dbt.type_string() }}) as repurchase_group,
    cast(counted.period_number as {{ dbt.type_int() }}) as period_number,
    cast({{ analytics_string_literal(c.grain) }} as {{ dbt.type_string() }}) as grain,
    cast({{ analytics_string_literal(c.retention_type) }} as {{ dbt.type_string() }}) as retention_type,
    cast(groups.group_size as {{ dbt.type_bigint() }}) as group_size,
    cast(counted.eligible_customers as {{ dbt.type_bigint() }}) as eligible_customers,
    cast(counted.retained_customers as {{ dbt.type_bigint() }}) as retained_customers,
    cast(case
        when counted.eligible_customers > 0 then counted.retained_customers * 1.0 / counted.eligible_customers
    end as {{ analytics_type_double() }}) as retention_rate
from counted
inner join groups
    on groups.repurchase_group = counted.repurchase_group
