{#- Funnel conversion per funnel, breakdown value and step (see fct_funnel_conversion.yml). -#}
{{ config(materialized='table') }}

{%- set funnels = analytics_funnels() %}

with

reached as (
    select * from {{ ref('int_funnel_steps_reached') }}
),

{%- set customer_columns = ['first_seen_at'] %}
{%- for f in funnels %}{% for b in f.breakdowns %}{% if b.kind == 'customer' and b.column not in customer_columns %}{% do customer_columns.append(b.column) %}{% endif %}{% endfor %}{% endfor %}

customers as (
    select customer_id, {{ customer_columns | join(', ') }}
    from {{ ref('dim_customers') }}
),

funnel_steps as (
    {{ analytics_funnel_steps_values(funnels) }}
),

{#- Per funnel: one row per entrant with the value of every breakdown (b_1, b_2, …), joined 1:1 to the
    entrant's reached steps, then one aggregation over grouping sets — (step) for `overall` and
    (step, b_i) for every breakdown — instead of one join per breakdown. -#}
{%- for f in funnels %}
{%- set p = 'funnel_' ~ loop.index %}
{%- set property_index = namespace(k=0) %}

{{ p }}_entrants as (
    select
        entrants.customer_id
        {%- for b in f.breakdowns %}
        {%- if b.kind == 'customer' %},
        coalesce(cast(customers.{{ b.column }} as {{ dbt.type_string() }}), '(none)') as b_{{ loop.index }}
        {%- elif b.kind == 'first_seen_week' %},
        coalesce(
            cast(cast({{ dbt.date_trunc('week', analytics_to_local('customers.first_seen_at')) }} as date) as {{ dbt.type_string() }}),
            '(none)'
        ) as b_{{ loop.index }}
        {%- else %}
        {%- set property_index.k = property_index.k + 1 %},
        {#- an event property of the attempt's step events (int_funnel_steps_reached.property_breakdown_k):
            first touch = earliest step with a non-null value, last touch = latest, step = that step's -#}
        coalesce(
            max(case when touches.step_number = touches.touch_step_{{ loop.index }} then touches.property_breakdown_{{ property_index.k }} end),
            '(none)'
        ) as b_{{ loop.index }}
        {%- endif %}
        {%- endfor %}
    from (
        select customer_id
        from reached
        where funnel_name = {{ analytics_string_literal(f.name) }} and step_number = 1
    ) as entrants
    left join customers
        on customers.customer_id = entrants.customer_id
    {%- if f.breakdowns | selectattr('kind', 'equalto', 'property') | list %}
    left join (
        select
            reached.*
            {%- set property_index.k = 0 %}
            {%- for b in f.breakdowns %}
            {%- if b.kind == 'property' %}
            {%- set property_index.k = property_index.k + 1 %},
            {%- if b.attribution == 'step' %}
            {{ b.step }}
            {%- else %}
            {{ 'max' if b.attribution == 'last_touch' else 'min' }}(case when property_breakdown_{{ property_index.k }} is not null then step_number end)
                over (partition by customer_id)
            {%- endif %} as touch_step_{{ loop.index }}
            {%- endif %}
            {%- endfor %}
        from reached
        where funnel_name = {{ analytics_string_literal(f.name) }}
    ) as touches
        on touches.customer_id = entrants.customer_id
    group by entrants.customer_id
        {%- for b in f.breakdowns %}
        {%- if b.kind == 'customer' %}, customers.{{ b.column }}{% elif b.kind == 'first_seen_week' %}, customers.first_seen_at{% endif %}
        {%- endfor %}
    {%- endif %}
),

{{ p }}_stats as (
    select
        {%- if f.breakdowns %}
        case
            {%- for b in f.breakdowns %}
            when grouping(entrants.b_{{ loop.index }}) = 0 then {{ analytics_string_literal(b.name) }}
            {%- endfor %}
            else 'overall'
        end as breakdown_name,
        coalesce({% for b in f.breakdowns %}entrants.b_{{ loop.index }}, {% endfor %}'all') as breakdown_value,
        {%- else %}
        'overall' as breakdown_name,
        'all' as breakdown_value,
        {%- endif %}
        reached.step_number,
        count(*) as customers_entered,
        {{ analytics_median('reached.seconds_from_previous_step') }} as median_seconds_to_convert,
        avg(cast(reached.seconds_from_previous_step as {{ analytics_type_double() }})) as mean_seconds_to_convert,
        {{ analytics_median('reached.seconds_from_first_step') }} as median_seconds_from_first_step
    from reached
    inner join {{ p }}_entrants as entrants
        on entrants.customer_id = reached.customer_id
    where reached.funnel_name = {{ analytics_string_literal(f.name) }}
    group by grouping sets (
        (reached.step_number)
        {%- for b in f.breakdowns %},
        (reached.step_number, entrants.b_{{ loop.index }})
        {%- endfor %}
    )
),
{%- endfor %}

step_stats as (
    {%- for f in funnels %}
    select {{ analytics_string_literal(f.name) }} as funnel_name, stats.*
    from funnel_{{ loop.index }}_stats as stats
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as funnel_name,
        cast(null as {{ dbt.type_string() }}) as breakdown_name,
        cast(null as {{ dbt.type_string() }}) as breakdown_value,
        cast(null as {{ dbt.type_int() }}) as step_number,
        0 as customers_entered,
        cast(null as {{ analytics_type_double() }}) as median_seconds_to_convert,
        cast(null as {{ analytics_type_double() }}) as mean_seconds_to_convert,
        cast(null as {{ analytics_type_double() }}) as median_seconds_from_first_step
    from reached
    where 1 = 0
    {%- endfor %}
),

breakdown_groups as (
    -- every entrant reached step 1, so every breakdown value has a step-1 row
    select funnel_name, breakdown_name, breakdown_value
    from step_stats
    where step_number = 1
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
