{#- One row per retention definition, cohort entry and period in which the customer returned
    (period 0 for every entry). Definitions come from var `retention`
    (macros/analytics/analytics_retention.sql).

    Incremental (delete+insert on customer_id): a customer's entries and returns depend on their own
    events and orders only, so a run recomputes the customers whose events or orders may have changed
    since the latest load it processed (macro changed_customers_ctes) over their whole history;
    tombstones and rows of another definition_hash (definitions or explicit as-of changed: every
    customer is then recomputed) are deleted by the post-hook. -#}
{%- set retentions = analytics_retentions() %}
{%- set current_hash = definition_hash({'retention': var('retention', []), 'timezone': analytics_timezone(), 'as_of': explicit_as_of()}) %}
{{
    config(
        materialized=scoped_materialization(),
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook="{{ delete_superseded_rows('" ~ current_hash ~ "') }}",
    )
}}
-- depends_on: {{ ref('fct_events') }}
-- depends_on: {{ ref('fct_orders') }}
-- depends_on: {{ ref('stg_segment__identifies') }}
-- depends_on: {{ source('shop', 'orders') }}
{%- set loaded_after = incremental_watermark(definition_hash=current_hash) %}
{%- set scope = 'scoped_customers' if is_incremental() else none %}

with

{%- if is_incremental() %}

{{ changed_customers_ctes(loaded_after, orders=true) }},

scoped_customers as (
    select customer_id from changed_customers
    {%- if not explicit_as_of() %}
    union
    -- orders placed after the previous as-of instant (the latest event then) and up to the current
    -- one: read for the first time now, although loaded before
    select customer_id
    from {{ ref('fct_orders') }}
    where customer_id is not null
      and ordered_at <= {{ analytics_as_of_sql() }}
      and ordered_at > (select max(event_at) from {{ ref('fct_events') }} where loaded_at <= {{ loaded_after }})
    {%- endif %}
),
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
    {%- for r in retentions %}
    select * from retention_{{ loop.index }}_final
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as retention_name,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as date) as cohort_period,
        cast(null as {{ dbt.type_timestamp() }}) as entry_at,
        cast(null as {{ dbt.type_int() }}) as period_number
    from {{ ref('fct_events') }}
    where 1 = 0
    {%- endfor %}
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
