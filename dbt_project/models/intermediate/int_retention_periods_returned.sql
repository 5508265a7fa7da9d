{#- One row per retention definition, cohort entry and period in which the customer returned
    (period 0 for every entry). Definitions come from var `retention`
    (macros/analytics/analytics_retention.sql).

    Incremental (delete+insert on customer_id): a customer's entries and returns depend on their own
    events and orders only, so a run recomputes the customers whose events or orders may have changed
    since the latest load it processed (macro order_scoped_customers_ctes) over their whole history;
    tombstones and rows of another definition_hash (definitions or explicit as-of changed: every
    customer is then recomputed) are deleted by the post-hook. -#}
{%- set retentions = analytics_retentions() %}
{%- set current_hash = definition_hash({'retention': var('retention', []), 'timezone': analytics_timezone(), 'as_of': explicit_as_of()}) %}
{{ config(**scoped_config('customer_id', current_hash)) }}
-- depends_on: {{ ref('fct_events') }}
-- depends_on: {{ ref('fct_orders') }}
-- depends_on: {{ ref('stg_segment__identifies') }}
-- depends_on: {{ source('shop', 'orders') }}
{%- set loaded_after = incremental_watermark(definition_hash=current_hash) %}
{%- set scope = 'scoped_customers' if is_incremental() else none %}

with

{%- if is_incremental() %}

{{ order_scoped_customers_ctes(loaded_after) }},
{%- endif %}

customer_loads as (
    select customer_id, max(loaded_at) as source_loaded_at
    from (
        select customer_id, loaded_at from {{ ref('fct_events') }}
        {%- if scope %}
        where customer_id in (select customer_id from {{ scope }})
        {%- endif %}
        union all
        select customer_id, loaded_at from {{ ref('fct_orders') }}
        where customer_id is not null
        {%- if scope %}
          and customer_id in (select customer_id from {{ scope }})
        {%- endif %}
    ) as loads
    group by customer_id
),

{%- for r in retentions %}

{{ analytics_retention_ctes(r, 'retention_' ~ loop.index, scope) }},
{%- endfor %}

unioned as (
    {{ analytics_union_or_empty('retention', retentions, [
        ['retention_name', dbt.type_string()],
        ['customer_id', dbt.type_string()],
        ['cohort_period', 'date'],
        ['entry_at', dbt.type_timestamp()],
        ['period_number', dbt.type_int()],
    ], ref('fct_events')) }}
),

final as (
    select
        unioned.retention_name,
        unioned.customer_id,
        unioned.cohort_period,
        unioned.entry_at,
        unioned.period_number,
        customer_loads.source_loaded_at,
        {{ run_started_at_sql() }} as processed_at,
        cast('{{ current_hash }}' as {{ dbt.type_string() }}) as definition_hash
    from unioned
    left join customer_loads
        on customer_loads.customer_id = unioned.customer_id
)

select * from final
{%- if is_incremental() %}

union all

{{ tombstone_rows('scoped_customers', 'final', [
    'retention_name', 'customer_id', 'cohort_period', 'entry_at', 'period_number',
    'source_loaded_at', 'processed_at', 'definition_hash']) }}
{%- endif %}
