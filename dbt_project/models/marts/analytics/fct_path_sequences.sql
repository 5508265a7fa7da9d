{#- The most common step sequences before an end point, after a start point, or between both, per
    path analysis of var `paths` (see fct_path_sequences.yml). -#}
{{ config(materialized='table') }}

{%- set config = analytics_paths_config() %}

with

windows as (
    -- one row per anchored session and window step (int_path_windows, incremental)
    select * from {{ ref('int_path_windows') }}
),

{%- for a in config.analyses %}
{%- set p = 'analysis_' ~ loop.index %}

{{ p }}_counted as (
    select
        path,
        path_length,
        count(*) as sessions,
        count(distinct customer_id) as customers,
        sum(count(*)) over () as anchored_sessions
    from windows
    where analysis_name = {{ analytics_string_literal(a.name) }}
      and step_number = 1
    group by path, path_length
),

{{ p }}_final as (
    select
        cast({{ analytics_string_literal(a.name) }} as {{ dbt.type_string() }}) as analysis_name,
        cast({{ analytics_string_literal(a.anchor) }} as {{ dbt.type_string() }}) as anchor_type,
        path,
        path_length,
        sessions,
        customers,
        anchored_sessions,
        row_number() over (order by sessions desc, path) as path_rank
    from {{ p }}_counted
),
{%- endfor %}

unioned as (
    {{ analytics_union_or_empty('analysis', config.analyses, [
        ['analysis_name', dbt.type_string()],
        ['anchor_type', dbt.type_string()],
        ['path', dbt.type_string()],
        ['path_length', dbt.type_int()],
        ['sessions', dbt.type_int()],
        ['customers', dbt.type_int()],
        ['anchored_sessions', dbt.type_int()],
        ['path_rank', dbt.type_int()],
    ], 'windows', rank_column='path_rank', top_key='top_paths') }}
)

select
    cast(analysis_name as {{ dbt.type_string() }}) as analysis_name,
    cast(anchor_type as {{ dbt.type_string() }}) as anchor_type,
    cast(path_rank as {{ dbt.type_int() }}) as path_rank,
    cast(path as {{ dbt.type_string() }}) as path,
    cast(path_length as {{ dbt.type_int() }}) as path_length,
    cast(sessions as {{ dbt.type_bigint() }}) as sessions,
    cast(customers as {{ dbt.type_bigint() }}) as customers,
    cast(sessions * 1.0 / anchored_sessions as {{ analytics_type_double() }}) as share_of_sessions
from unioned
