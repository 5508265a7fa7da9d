{#- Members of every behavioural cohort of var `behavioural_cohorts` at a snapshot (see
    fct_behavioural_cohort_members.yml). Incremental: each run adds the snapshot of its as-of
    instant and replaces an earlier run's rows for the same snapshot date, so the table keeps one
    membership list per cohort and snapshot date. -#}
{{
    config(
        materialized='incremental',
        unique_key='snapshot_date',
        incremental_strategy=('delete+insert' if target.type in ('duckdb', 'postgres') else 'merge'),
        on_schema_change='append_new_columns',
    )
}}

{%- set cohorts = analytics_behavioural_cohorts() %}

with

as_of as (
    select {{ analytics_as_of_sql() }} as snapshot_at
),

events as (
    select fct_events.*
    from {{ ref('fct_events') }} as fct_events
    cross join as_of
    where fct_events.event_at <= as_of.snapshot_at
),

{%- for c in cohorts %}

{{ analytics_cohort_ctes(c, 'cohort_' ~ loop.index) }},
{%- endfor %}

members as (
    {{ analytics_union_or_empty('cohort', cohorts, [
        ['cohort_name', dbt.type_string()],
        ['customer_id', dbt.type_string()],
        ['qualifying_events', dbt.type_int()],
        ['last_qualifying_event_at', dbt.type_timestamp()],
    ], 'events') }}
)

select
    cast(as_of.snapshot_at as date) as snapshot_date,
    cast(as_of.snapshot_at as {{ dbt.type_timestamp() }}) as snapshot_at,
    cast(members.cohort_name as {{ dbt.type_string() }}) as cohort_name,
    cast(members.customer_id as {{ dbt.type_string() }}) as customer_id,
    cast(members.qualifying_events as {{ dbt.type_bigint() }}) as qualifying_events,
    cast(members.last_qualifying_event_at as {{ dbt.type_timestamp() }}) as last_qualifying_event_at
from members
cross join as_of
