{#- The most common transitions (edges) of every path analysis of var `paths`, with their positions
    relative to the anchor (see fct_path_edges.yml). -#}
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
        position as from_position,
        step_key as from_step_key,
        next_position as to_position,
        next_step_key as to_step_key,
        count(*) as sessions,
        (select count(*) from windows
         where analysis_name = {{ analytics_string_literal(a.name) }} and step_number = 1) as anchored_sessions
    from windows
    where analysis_name = {{ analytics_string_literal(a.name) }}
      and next_step_key is not null
    group by position, step_key, next_position, next_step_key
),

{{ p }}_final as (
    select
        cast({{ analytics_string_literal(a.name) }} as {{ dbt.type_string() }}) as analysis_name,
        cast({{ analytics_string_literal(a.anchor) }} as {{ dbt.type_string() }}) as anchor_type,
        from_position,
        from_step_key,
        to_position,
        to_step_key,
        sessions,
        anchored_sessions,
        row_number() over (order by sessions desc, from_position, from_step_key, to_step_key) as edge_rank
    from {{ p }}_counted
),
{%- endfor %}

unioned as (
    {{ analytics_union_or_empty('analysis', config.analyses, [
        ['analysis_name', dbt.type_string()],
        ['anchor_type', dbt.type_string()],
        ['from_position', dbt.type_int()],
        ['from_step_key', dbt.type_string()],
        ['to_position', dbt.type_int()],
        ['to_step_key', dbt.type_string()],
        ['sessions', dbt.type_int()],
        ['anchored_sessions', dbt.type_int()],
        ['edge_rank', dbt.type_int()],
    ], 'windows', rank_column='edge_rank', top_key='top_edges') }}
)

select
    cast(analysis_name as {{ dbt.type_string() }}) as analysis_name,
    cast(anchor_type as {{ dbt.type_string() }}) as anchor_type,
    cast(edge_rank as {{ dbt.type_int() }}) as edge_rank,
    cast(from_position as {{ dbt.type_int() }}) as from_position,
    cast(from_step_key as {{ dbt.type_string() }}) as from_step_key,
    cast(to_position as {{ dbt.type_int() }}) as to_position,
    cast(to_step_key as {{ dbt.type_string() }}) as to_step_key,
    cast(sessions as {{ dbt.type_bigint() }}) as sessions,
    cast(sessions * 1.0 / anchored_sessions as {{ analytics_type_double() }}) as share_of_sessions
from unioned
