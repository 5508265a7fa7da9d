{#- Funnel conversion per funnel, breakdown value and step (see fct_funnel_conversion.yml). -#}
{{ config(materialized='table') }}

{%- set funnels = analytics_funnels() %}

with

reached as (
    select * from {{ ref('int_funnel_steps_reached') }}
),

customers as (
    select * from {{ ref('dim_customers') }}
),

events as (
    select * from {{ ref('fct_events') }}
),

entrants as (
    select funnel_name, customer_id
    from reached
    where step_number = 1
),

breakdown_values as (
    select
        funnel_name,
        customer_id,
        cast('overall' as {{ dbt.type_string() }}) as breakdown_name,
        cast('all' as {{ dbt.type_string() }}) as breakdown_value
    from entrants
    {%- for f in funnels %}
    {%- for b in f.breakdowns %}

    union all

    {% if b.kind == 'customer' %}
    select
        entrants.funnel_name,
        entrants.customer_id,
        {{ analytics_string_literal(b.name) }} as breakdown_name,
        coalesce(cast(customers.{{ b.column }} as {{ dbt.type_string() }}), '(none)') as breakdown_value
    from entrants
    left join customers
        on customers.customer_id = entrants.customer_id
    where entrants.funnel_name = {{ analytics_string_literal(f.name) }}
    {%- elif b.kind == 'first_seen_week' %}
    select
        entrants.funnel_name,
        entrants.customer_id,
        {{ analytics_string_literal(b.name) }} as breakdown_name,
        coalesce(
            cast(cast({{ dbt.date_trunc('week', analytics_to_local('customers.first_seen_at')) }} as date) as {{ dbt.type_string() }}),
            '(none)'
        ) as breakdown_value
    from entrants
    left join customers
        on customers.customer_id = entrants.customer_id
    where entrants.funnel_name = {{ analytics_string_literal(f.name) }}
    {%- else %}
    {#- an event property of the attempt's step events: first touch = earliest step with a
        non-null value, last touch = latest, step = the value on that step's event -#}
    select
        entrants.funnel_name,
        entrants.customer_id,
        {{ analytics_string_literal(b.name) }} as breakdown_name,
        coalesce(attributed.breakdown_value, '(none)') as breakdown_value
    from entrants
    left join (
        select
            customer_id,
            breakdown_value,
            row_number() over (
                partition by customer_id
                order by step_number {{ 'desc' if b.attribution == 'last_touch' else 'asc' }}
            ) as touch_rank
        from (
            select
                reached.customer_id,
                reached.step_number,
                cast({{ b.expression }} as {{ dbt.type_string() }}) as breakdown_value
            from reached
            inner join events as e
                on e.event_id = reached.event_id
            where reached.funnel_name = {{ analytics_string_literal(f.name) }}
            {%- if b.attribution == 'step' %}
              and reached.step_number = {{ b.step }}
            {%- endif %}
        ) as touches
        where breakdown_value is not null
    ) as attributed
        on attributed.customer_id = entrants.customer_id
        and attributed.touch_rank = 1
    where entrants.funnel_name = {{ analytics_string_literal(f.name) }}
    {%- endif %}
    {%- endfor %}
    {%- endfor %}
),

funnel_steps as (
    {{ analytics_funnel_steps_values(funnels) }}
),

breakdown_groups as (
    select distinct funnel_name, breakdown_name, breakdown_value
    from breakdown_values
),

step_stats as (
    select
        breakdown_values.funnel_name,
        breakdown_values.breakdown_name,
        breakdown_values.breakdown_value,
        reached.step_number,
        count(*) as customers_entered,
        {{ analytics_median('reached.seconds_from_previous_step') }} as median_seconds_to_convert,
        avg(cast(reached.seconds_from_previous_step as {{ analytics_type_double() }})) as mean_seconds_to_convert,
        {{ analytics_median('reached.seconds_from_first_step') }} as median_seconds_from_first_step
    from breakdown_values
    inner join reached
        on reached.funnel_name = breakdown_values.funnel_name
        and reached.customer_id = breakdown_values.customer_id
    group by 1, 2, 3, 4
),

counted as (
    select
        breakdown_groups.funnel_name,
        breakdown_groups.breakdown_name,
        breakdown_groups.breakdown_value,
        funnel_steps.step_number,
        funnel_steps.step_name,
        funnel_steps.total_steps,
        funnel_steps.funnel_mode,
        coalesce(step_stats.customers_entered, 0) as customers_entered,
        step_stats.median_seconds_to_convert,
        step_stats.mean_seconds_to_convert,
        step_stats.median_seconds_from_first_step
    from breakdown_groups
    inner join funnel_steps
        on funnel_steps.funnel_name = breakdown_groups.funnel_name
    left join step_stats
        on step_stats.funnel_name = breakdown_groups.funnel_name
        and step_stats.breakdown_name = breakdown_groups.breakdown_name
        and step_stats.breakdown_value = breakdown_groups.breakdown_value
        and step_stats.step_number = funnel_steps.step_number
),

with_neighbours as (
    select
        *,
        lag(customers_entered) over (
            partition by funnel_name, breakdown_name, breakdown_value order by step_number
        ) as previous_step_customers,
        lead(customers_entered) over (
            partition by funnel_name, breakdown_name, breakdown_value order by step_number
        ) as next_step_customers,
        max(case when step_number = 1 then customers_entered end) over (
            partition by funnel_name, breakdown_name, breakdown_value
        ) as first_step_customers
    from counted
)

select
    cast(funnel_name as {{ dbt.type_string() }}) as funnel_name,
    cast(breakdown_name as {{ dbt.type_string() }}) as breakdown_name,
    cast(breakdown_value as {{ dbt.type_string() }}) as breakdown_value,
    cast(step_number as {{ dbt.type_int() }}) as step_number,
    cast(step_name as {{ dbt.type_string() }}) as step_name,
    cast(total_steps as {{ dbt.type_int() }}) as total_steps,
    cast(funnel_mode as {{ dbt.type_string() }}) as funnel_mode,
    cast(customers_entered as {{ dbt.type_bigint() }}) as customers_entered,
    cast(next_step_customers as {{ dbt.type_bigint() }}) as customers_converted,
    cast(customers_entered - coalesce(next_step_customers, customers_entered) as {{ dbt.type_bigint() }}) as customers_dropped_off,
    cast(case
        when step_number = 1 then 1.0
        when previous_step_customers > 0 then customers_entered * 1.0 / previous_step_customers
    end as {{ analytics_type_double() }}) as conversion_rate_from_previous,
    cast(case
        when first_step_customers > 0 then customers_entered * 1.0 / first_step_customers
    end as {{ analytics_type_double() }}) as conversion_rate_from_first,
    cast(median_seconds_to_convert as {{ analytics_type_double() }}) as median_seconds_to_convert,
    cast(mean_seconds_to_convert as {{ analytics_type_double() }}) as mean_seconds_to_convert,
    cast(median_seconds_from_first_step as {{ analytics_type_double() }}) as median_seconds_from_first_step
from with_neighbours
