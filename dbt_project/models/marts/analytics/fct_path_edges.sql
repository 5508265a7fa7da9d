{#- The most common transitions (edges) of every path analysis of var `paths`, with their positions
    relative to the anchor (see fct_path_edges.yml). -#}
{{ config(materialized='table') }}

{%- set config = analytics_paths_config() %}

with

steps as (
    select * from {{ ref('int_path_steps_sequenced') }}
),

{%- for a in config.analyses %}
{%- set p = 'analysis_' ~ loop.index %}

{{ analytics_path_window_ctes(a, p) }},

{{ p }}_edges as (
    select
        session_id,
        position as from_position,
        step_key as from_step_key,
        lead(position) over (partition by session_id order by position) as to_position,
        lead(step_key) over (partition by session_id order by position) as to_step_key
    from {{ p }}_window
),

{{ p }}_counted as (
    select
        from_position,
        from_step_key,
        to_position,
        to_step_key,
        count(*) as sessions,
        (select count(*) from {{ p }}_anchors) as anchored_sessions
    from {{ p }}_edges
    where to_step_key is not null
    group by from_position, from_step_key, to_position, to_step_key
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
    {%- for a in config.analyses %}
    select * from analysis_{{ loop.index }}_final
    where edge_rank <= {{ a.top_edges }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as analysis_name,
        cast(null as {{ dbt.type_string() }}) as anchor_type,
        0 as from_position,
        cast(null as {{ dbt.type_string() }}) as from_step_key,
        0 as to_position,
        cast(null as {{ dbt.type_string() }}) as to_step_key,
        0 as sessions,
        0 as anchored_sessions,
        0 as edge_rank
    from steps
    where 1 = 0
    {%- endfor %}
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
