{#- One row per buyer (var `repurchase_comparison.purchase_event`) and rolling period since their first
    purchase (grain: day = 24 h, week = 7 days, month = 30 days) in which they did the returning event;
    periods 1 … periods ('on'; on_or_after: a later return counts in the last period).
    fct_repurchase_retention_comparison joins it to the buyers' repurchase groups.

    Incremental (delete+insert on customer_id): a buyer's periods depend on their own purchases and
    events only, so a run recomputes the customers whose events or orders may have changed since the
    latest load it processed, plus those with an order placed after the previous as-of instant (read
    for the first time now): macro order_scoped_customers_ctes; tombstones and rows of another
    definition_hash are deleted by the post-hook. -#}
{%- set c = analytics_repurchase_comparison() %}
{%- set current_hash = definition_hash({'repurchase_comparison': var('repurchase_comparison', {}), 'as_of': explicit_as_of()}) %}
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

purchases as (
    {{ analytics_activity_sql(c.purchase, scope) }}
),

first_purchases as (
    select customer_id, min(activity_at) as first_purchase_at, max(loaded_at) as purchases_loaded_at
    from purchases
    group by customer_id
),

returns as (
    {{ analytics_activity_sql(c.returning, scope) }}
),

returned as (
    select
        first_purchases.customer_id,
        cast(floor({{ dbt.datediff('first_purchases.first_purchase_at', 'returns.activity_at', 'second') }} / {{ c.period_seconds }}.0)
            as {{ dbt.type_int() }}) as period_number,
        returns.loaded_at
    from first_purchases
    inner join returns
        on returns.customer_id = first_purchases.customer_id
        and returns.activity_at >= first_purchases.first_purchase_at
),

return_periods as (
    select
        customer_id,
        {%- if c.retention_type == 'on_or_after' %}
        case when period_number > {{ c.periods }} then {{ c.periods }} else period_number end as period_number,
        {%- else %}
        period_number,
        {%- endif %}
        max(loaded_at) as loaded_at
    from returned
    where period_number >= 1
    {%- if c.retention_type == 'on' %}
      and period_number <= {{ c.periods }}
    {%- endif %}
    group by
        customer_id,
        {%- if c.retention_type == 'on_or_after' %}
        case when period_number > {{ c.periods }} then {{ c.periods }} else period_number end
        {%- else %}
        period_number
        {%- endif %}
),

customer_loads as (
    select customer_id, max(loaded_at) as source_loaded_at
    from (
        select customer_id, purchases_loaded_at as loaded_at from first_purchases
        union all
        select customer_id, loaded_at from returns
    ) as loads
    group by customer_id
),

final as (
    select
        cast(return_periods.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(return_periods.period_number as {{ dbt.type_int() }}) as period_number,
        customer_loads.source_loaded_at,
        {{ run_started_at_sql() }} as processed_at,
        cast('{{ current_hash }}' as {{ dbt.type_string() }}) as definition_hash
    from return_periods
    left join customer_loads
        on customer_loads.customer_id = return_periods.customer_id
)

select * from final
{%- if is_incremental() %}

union all

{{ tombstone_rows('scoped_customers', 'final', ['customer_id', 'period_number', 'source_loaded_at', 'processed_at', 'definition_hash']) }}
{%- endif %}
