{#- Size-weighted average retention per definition and period, over the cohorts whose period has
    fully elapsed (see fct_retention_averages.yml). -#}
{{ config(materialized='table') }}

with

cohorts as (
    select * from {{ ref('fct_retention_cohorts') }}
),

complete as (
    select *
    from cohorts
    where is_period_complete
      and retained_customers is not null
)

select
    cast(retention_name as {{ dbt.type_string() }}) as retention_name,
    cast(period_number as {{ dbt.type_int() }}) as period_number,
    cast(count(*) as {{ dbt.type_bigint() }}) as cohorts_included,
    cast(sum(cohort_size) as {{ dbt.type_bigint() }}) as customers_in_cohorts,
    cast(sum(retained_customers) as {{ dbt.type_bigint() }}) as retained_customers,
    cast(case
        when sum(cohort_size) > 0 then sum(retained_customers) * 1.0 / sum(cohort_size)
    end as {{ analytics_type_double() }}) as retention_rate
from complete
group by retention_name, period_number
