{#- One row per path analysis of var `paths`, anchored session and step of its window (the steps kept
    before an end point, after a start point, or between both — macros/analytics/analytics_paths.sql),
    with the next step of the window and the session's whole path: fct_path_sequences and
    fct_path_edges only count these rows.

    Incremental (delete+insert on session_id), like int_path_steps_sequenced: a run rebuilds the windows
    of the sessions int_path_steps_sequenced (re)wrote since this table's latest batch, and drops the
    stored sessions whose events fct_events moved to another session since (tombstones); tombstones and
    rows of another definition_hash (var paths or explicit as-of changed: everything is then rebuilt)
    are deleted by the post-hook. -#}
{%- set paths_config = analytics_paths_config() %}
{%- set current_hash = definition_hash({'paths': var('paths', {}), 'as_of': explicit_as_of()}) %}
{{ config(**scoped_config('session_id', current_hash)) }}
-- depends_on: {{ ref('fct_events') }}
{%- set processed_after = incremental_watermark('processed_at', definition_hash=current_hash) %}

with

{%- if is_incremental() %}

changed_sessions as (
    -- sessions whose steps were (re)written since this table's latest batch
    select session_id
    from {{ ref('int_path_steps_sequenced') }}
    where processed_at > {{ processed_after }}
    union
    -- stored sessions whose events fct_events moved to another session (or to none) since
    select stored.session_id
    from {{ this }} as stored
    inner join {{ ref('fct_events') }} as rewritten
        on rewritten.event_id = stored.event_id
    where rewritten.processed_at > {{ processed_after }}
        and (rewritten.session_id is null or rewritten.session_id <> stored.session_id)
),
{%- endif %}

steps as (
    select *
    from {{ ref('int_path_steps_sequenced') }}
    {%- if is_incremental() %}
    where session_id in (select session_id from changed_sessions)
    {%- endif %}
),

{%- for a in paths_config.analyses %}
{%- set p = 'analysis_' ~ loop.index %}

{{ analytics_path_window_ctes(a, p) }},

{{ p }}_paths as (
    select
        session_id,
        count(*) as path_length,
        {{ dbt.listagg('step_key', "' → '", 'order by position') }} as path
    from {{ p }}_window
    group by session_id
),

{{ p }}_final as (
    select
        cast({{ analytics_string_literal(a.name) }} as {{ dbt.type_string() }}) as analysis_name,
        cast({{ analytics_string_literal(a.anchor) }} as {{ dbt.type_string() }}) as anchor_type,
        w.session_id,
        w.customer_id,
        w.event_id,
        w.position,
        w.step_key,
        lead(w.position) over (partition by w.session_id order by w.position) as next_position,
        lead(w.step_key) over (partition by w.session_id order by w.position) as next_step_key,
        row_number() over (partition by w.session_id order by w.position) as step_number,
        paths.path_length,
        paths.path
    from {{ p }}_window as w
    inner join {{ p }}_paths as paths
        on paths.session_id = w.session_id
),
{%- endfor %}

unioned as (
    {{ analytics_union_or_empty('analysis', paths_config.analyses, [
        ['analysis_name', dbt.type_string()],
        ['anchor_type', dbt.type_string()],
        ['session_id', dbt.type_string()],
        ['customer_id', dbt.type_string()],
        ['event_id', dbt.type_string()],
        ['position', dbt.type_int()],
        ['step_key', dbt.type_string()],
        ['next_position', dbt.type_int()],
        ['next_step_key', dbt.type_string()],
        ['step_number', dbt.type_int()],
        ['path_length', dbt.type_int()],
        ['path', dbt.type_string()],
    ], 'steps') }}
),

final as (
    select
        unioned.analysis_name,
        unioned.anchor_type,
        unioned.session_id,
        unioned.customer_id,
        unioned.event_id,
        cast(unioned.position as {{ dbt.type_int() }}) as position,
        unioned.step_key,
        cast(unioned.next_position as {{ dbt.type_int() }}) as next_position,
        unioned.next_step_key,
        cast(unioned.step_number as {{ dbt.type_int() }}) as step_number,
        cast(unioned.path_length as {{ dbt.type_int() }}) as path_length,
        cast(unioned.path as {{ dbt.type_string() }}) as path,
        session_loads.source_loaded_at,
        {{ run_started_at_sql() }} as processed_at,
        cast('{{ current_hash }}' as {{ dbt.type_string() }}) as definition_hash
    from unioned
    left join (
        select session_id, max(source_loaded_at) as source_loaded_at
        from steps
        group by session_id
    ) as session_loads
        on session_loads.session_id = unioned.session_id
)

select * from final
{%- if is_incremental() %}

union all

{{ tombstone_rows('changed_sessions', 'final', [
    'analysis_name', 'anchor_type', 'session_id', 'customer_id', 'event_id', 'position', 'step_key',
    'next_position', 'next_step_key', 'step_number', 'path_length', 'path', 'source_loaded_at',
    'processed_at', 'definition_hash'], key='session_id') }}
{%- endif %}
