{#- One row per retention definition, cohort entry and period in which the customer returned
    (period 0 for every entry). Definitions come from var `retention`
    (macros/analytics/analytics_retention.sql). -#}
{{ config(materialized='table') }}

{%- set retentions = analytics_retentions() %}

with

{%- for r in retentions %}

{{ analytics_retention_ctes(r, 'retention_' ~ loop.index) }},
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
)

select
    retention_name,
    customer_id,
    cohort_period,
    entry_at,
    period_number
from unioned
