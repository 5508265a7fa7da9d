{#- The retention matrix: one row per retention definition, cohort and period number
    (see fct_retention_cohorts.yml). -#}
{{ config(materialized='table') }}

-- depends_on: {{ ref('fct_events') }}

{%- set retentions = analytics_retentions() %}

with

returned as (
    select * from {{ ref('int_retention_periods_returned') }}
),

as_of as (
    select {{ analytics_as_of_sql() }} as as_of_at
),

{%- for r in retentions %}
{%- set p = 'retention_' ~ loop.index %}

{{ p }}_cohorts as (
    select
        cohort_period,
        count(*) as cohort_size,
        min(entry_at) as first_entry_at,
        max(entry_at) as last_entry_at
    from returned
    where retention_name = {{ analytics_string_literal(r.name) }}
      and period_number = 0
    group by cohort_period
),

{{ p }}_periods as (
    {%- set rows = [] %}
    {%- for n in range(0, r.periods + 1) %}{% do rows.append([n]) %}{% endfor %}
    {{ analytics_values_sql(['period_number'], [dbt.type_int()], rows) }}
),

{{ p }}_retained as (
    {%- if r.retention_type == 'on' %}
    select cohort_period, period_number, count(*) as retained_customers
    from returned
    where retention_name = {{ analytics_string_literal(r.name) }}
    group by cohort_period, period_number
    {%- else %}
    select entries.cohort_period, periods.period_number, count(*) as retained_customers
    from (
        select customer_id, cohort_period, entry_at, max(period_number) as last_period
        from returned
        where retention_name = {{ analytics_string_literal(r.name) }}
        group by customer_id, cohort_period, entry_at
    ) as entries
    inner join {{ p }}_periods as periods
        on periods.period_number <= entries.last_period
    group by entries.cohort_period, periods.period_number
    {%- endif %}
),

{{ p }}_grid as (
    select
        cohorts.cohort_period,
        periods.period_number,
        cohorts.cohort_size,
        {%- if r.period_mode == 'calendar' %}
        cast({{ dbt.dateadd(r.grain, 'periods.period_number', 'cohorts.cohort_period') }} as date) as period_start,
        {{ dbt.dateadd(r.grain, 'periods.period_number', 'cohorts.cohort_period') }}
            <= {{ analytics_to_local('as_of.as_of_at') }} as is_period_started,
        {{ dbt.dateadd(r.grain, 'periods.period_number + 1', 'cohorts.cohort_period') }}
            <= {{ analytics_to_local('as_of.as_of_at') }} as is_period_complete
        {%- else %}
        cast(null as date) as period_start,
        {{ dbt.dateadd('second', 'periods.period_number * ' ~ r.period_seconds, 'cohorts.first_entry_at') }}
            <= as_of.as_of_at as is_period_started,
        {{ dbt.dateadd('second', '(periods.period_number + 1) * ' ~ r.period_seconds, 'cohorts.last_entry_at') }}
            <= as_of.as_of_at as is_period_complete
        {%- endif %}
    from {{ p }}_cohorts as cohorts
    cross join {{ p }}_periods as periods
    cross join as_of
),

{{ p }}_final as (
    select
        cast({{ analytics_string_literal(r.name) }} as {{ dbt.type_string() }}) as retention_name,
        cast({{ analytics_string_literal(r.cohort_type) }} as {{ dbt.type_string() }}) as cohort_type,
        cast({{ analytics_string_literal(r.retention_type) }} as {{ dbt.type_string() }}) as retention_type,
        cast({{ analytics_string_literal(r.period_mode) }} as {{ dbt.type_string() }}) as period_mode,
        cast({{ analytics_string_literal(r.grain) }} as {{ dbt.type_string() }}) as grain,
        grid.cohort_period,
        grid.period_number,
        grid.period_start,
        grid.cohort_size,
        case
            when grid.period_number = 0 then grid.cohort_size
            {%- if r.retention_type == 'on_or_after' %}
            when not grid.is_period_complete then null
            {%- endif %}
            else coalesce(retained.retained_customers, 0)
        end as retained_customers,
        grid.is_period_complete
    from {{ p }}_grid as grid
    left join {{ p }}_retained as retained
        on retained.cohort_period = grid.cohort_period
        and retained.period_number = grid.period_number
    where grid.is_period_started
),
{%- endfor %}

unioned as (
    {{ analytics_union_or_empty('retention', retentions, [
        ['retention_name', dbt.type_string()],
        ['cohort_type', dbt.type_string()],
        ['retention_type', dbt.type_string()],
        ['period_mode', dbt.type_string()],
        ['grain', dbt.type_string()],
        ['cohort_period', 'date'],
        ['period_number', dbt.type_int()],
        ['period_start', 'date'],
        ['cohort_size', dbt.type_bigint()],
        ['retained_customers', dbt.type_bigint()],
        ['is_period_complete', dbt.type_boolean()],
    ], 'returned') }}
)

select
    retention_name,
    cohort_type,
    retention_type,
    period_mode,
    grain,
    cast(cohort_period as date) as cohort_period,
    cast(period_number as {{ dbt.type_int() }}) as period_number,
    cast(period_start as date) as period_start,
    cast(cohort_size as {{ dbt.type_bigint() }}) as cohort_size,
    cast(retained_customers as {{ dbt.type_bigint() }}) as retained_customers,
    cast(case
        when cohort_size > 0 and retained_customers is not null then retained_customers * 1.0 / cohort_size
    end as {{ analytics_type_double() }}) as retention_rate,
    cast(is_period_complete as {{ dbt.type_boolean() }}) as is_period_complete
from unioned
