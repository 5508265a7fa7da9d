{#- One row per buyer: first and second purchase and the repurchase group of var
    `repurchase_comparison` (macros/analytics/analytics_retention.sql). -#}
{{ config(materialized='table') }}

-- depends_on: {{ ref('fct_events') }}

{%- set c = analytics_repurchase_comparison() %}

with

purchases as (
    {{ analytics_activity_sql(c.purchase) }}
),

as_of as (
    select {{ analytics_as_of_sql() }} as as_of_at
),

numbered as (
    select
        customer_id,
        activity_at,
        row_number() over (partition by customer_id order by activity_at) as purchase_number
    from purchases
    cross join as_of
    where purchases.activity_at <= as_of.as_of_at
),

buyers as (
    select
        customer_id,
        min(case when purchase_number = 1 then activity_at end) as first_purchase_at,
        min(case when purchase_number = 2 then activity_at end) as second_purchase_at,
        count(*) as purchase_count
    from numbered
    group by customer_id
),

classified as (
    select
        buyers.*,
        {{ dbt.dateadd(c.window.unit, c.window.value, 'buyers.first_purchase_at') }} as repurchase_window_ends_at,
        as_of.as_of_at
    from buyers
    cross join as_of
)

select
    cast(customer_id as {{ dbt.type_string() }}) as customer_id,
    cast(first_purchase_at as {{ dbt.type_timestamp() }}) as first_purchase_at,
    cast(second_purchase_at as {{ dbt.type_timestamp() }}) as second_purchase_at,
    cast(purchase_count as {{ dbt.type_bigint() }}) as purchase_count,
    cast({{ dbt.datediff('first_purchase_at', 'second_purchase_at', 'second') }} as {{ dbt.type_bigint() }})
        as seconds_to_second_purchase,
    cast(repurchase_window_ends_at as {{ dbt.type_timestamp() }}) as repurchase_window_ends_at,
    cast(case
        when second_purchase_at <= repurchase_window_ends_at then 'repurchased_within_window'
        when repurchase_window_ends_at > as_of_at then 'window_open'
        when second_purchase_at is not null then 'repurchased_later'
        else 'one_time_buyer'
    end as {{ dbt.type_string() }}) as repurchase_group
from classified
