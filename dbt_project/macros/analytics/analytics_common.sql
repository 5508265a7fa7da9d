{#-
    Shared helpers of the analytics models: literals, the project time zone, the as-of instant,
    durations, and the "event condition" mini-language used by funnels, cohorts and retention.

    An event condition (a funnel step, an exclusion, a cohort condition, a retention event) is a
    mapping over the columns of fct_events:
        event:   'Product Viewed'               (or a list of names; omitted = any event)
        filters: [{property: page_path, op: '=', value: '/search'}, ...]   (all must hold)
        where:   "raw SQL over fct_events columns"   (escape hatch, dialect-specific at your risk)
    A bare string is shorthand for {event: <string>}.
    `property` is a column of fct_events when it names one (page_path, utm_source, category, ...),
    otherwise a top-level key of the `properties` JSON (text; compared as a number when the value is
    a number). `op`: = (default), !=, in, not in, like, not like, regex, >, >=, <, <=, is_set, is_not_set.
-#}

{% macro analytics_string_literal(value) -%}
    {{- return("'" ~ (value | string | replace("'", "''")) ~ "'") -}}
{%- endmacro %}


{% macro analytics_timezone() -%}
    {{- return(var('analytics_timezone', var('timezone', 'Asia/Seoul'))) -}}
{%- endmacro %}


{#- The instant "now" of cohort snapshots, funnel windows and complete-period checks, as a UTC
    timestamp; events with event_at <= it are known. In order:
      var analytics_as_of: 'now' (the wall clock) or a UTC timestamp text ('2026-03-31 23:59:59');
      var as_of_date (the core point in time, 'YYYY-MM-DD'): the last instant of that (UTC) date;
      otherwise the latest event time in fct_events, so a rebuild on the same data gives the same answer. -#}
{% macro analytics_as_of_sql() -%}
    {%- set as_of = var('analytics_as_of', none) -%}
    {%- set as_of_date = var('as_of_date', none) -%}
    {%- if as_of is not none and (as_of | string | trim) not in ('', 'none', 'null', 'None') -%}
        {%- if as_of | string | lower == 'now' -%}
            {{- return('cast(' ~ dbt.current_timestamp() ~ ' as ' ~ dbt.type_timestamp() ~ ')') -}}
        {%- else -%}
            {{- return('cast(' ~ analytics_string_literal(as_of | string | trim) ~ ' as ' ~ dbt.type_timestamp() ~ ')') -}}
        {%- endif -%}
    {%- elif as_of_date is not none and (as_of_date | string | trim) not in ('', 'none', 'null', 'None') -%}
        {%- set day_end = dbt.dateadd('day', 1, 'cast(' ~ analytics_string_literal(as_of_date | string | trim) ~ ' as ' ~ dbt.type_timestamp() ~ ')') -%}
        {{- return(dbt.dateadd('microsecond', -1, day_end)) -}}
    {%- else -%}
        {{- return('(select max(event_at) from ' ~ ref('fct_events') ~ ')') -}}
    {%- endif -%}
{%- endmacro %}


{#- Durations: {value: 7, unit: day}. Units second/minute/hour/day/week (month only where noted). -#}
{% macro analytics_duration(spec, what, default=none, allow_month=false) -%}
    {%- set units = {'second': 1, 'minute': 60, 'hour': 3600, 'day': 86400, 'week': 604800} -%}
    {%- if spec is none -%}{%- set spec = default -%}{%- endif -%}
    {%- if spec is none -%}{{ return(none) }}{%- endif -%}
    {%- if spec is mapping -%}
        {%- set value = spec.get('value') -%}
        {%- set unit = (spec.get('unit', 'day') | string | lower) -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error(what ~ ": a duration is a mapping {value: <integer>, unit: second|minute|hour|day|week}, got " ~ spec) }}
    {%- endif -%}
    {%- if unit.endswith('s') -%}{%- set unit = unit[:-1] -%}{%- endif -%}
    {%- if value is none or value is not number or value != (value | int) or value < 0 -%}
        {{ exceptions.raise_compiler_error(what ~ ": duration value must be a non-negative integer, got " ~ value) }}
    {%- endif -%}
    {%- if unit == 'month' and allow_month -%}
        {{ return({'value': value | int, 'unit': 'month', 'seconds': (value | int) * 30 * 86400}) }}
    {%- endif -%}
    {%- if unit not in units -%}
        {{ exceptions.raise_compiler_error(what ~ ": unknown duration unit '" ~ unit ~ "' (second, minute, hour, day, week)") }}
    {%- endif -%}
    {{ return({'value': value | int, 'unit': unit, 'seconds': (value | int) * units[unit]}) }}
{%- endmacro %}


{% macro analytics_check_keys(spec, allowed, what) -%}
    {%- if spec is not mapping -%}
        {{ exceptions.raise_compiler_error(what ~ ": expected a mapping, got " ~ spec) }}
    {%- endif -%}
    {%- for key in spec -%}
        {%- if key not in allowed -%}
            {{ exceptions.raise_compiler_error(what ~ ": unknown key '" ~ key ~ "' (allowed: " ~ (allowed | join(', ')) ~ ")") }}
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}


{% macro analytics_check_name(name, what) -%}
    {%- if name is none or not modules.re.match('^[A-Za-z][A-Za-z0-9_]*$', name | string) -%}
        {{ exceptions.raise_compiler_error(what ~ ": name must start with a letter and contain only letters, digits and _, got '" ~ name ~ "'") }}
    {%- endif -%}
{%- endmacro %}


{#- Columns of fct_events a filter may name directly. -#}
{% macro analytics_event_columns() -%}
    {{ return(['event_id', 'customer_id', 'user_id', 'anonymous_id', 'event_type', 'event_name', 'page_name',
               'event_at', 'event_date', 'session_id', 'session_event_number', 'page_path', 'page_url',
               'page_title', 'referrer', 'utm_source', 'utm_medium', 'utm_campaign', 'utm_term', 'utm_content',
               'device_type', 'timezone', 'product_id', 'category', 'revenue', 'order_id', 'message_campaign_id',
               'landing_date']) }}
{%- endmacro %}


{% macro analytics_value_literal(value) -%}
    {%- if value is none -%}{{ return('null') }}
    {%- elif value is sameas true -%}{{ return('true') }}
    {%- elif value is sameas false -%}{{ return('false') }}
    {%- elif value is number -%}{{ return(value | string) }}
    {%- else -%}{{ return(analytics_string_literal(value)) }}
    {%- endif -%}
{%- endmacro %}


{% macro analytics_filter_sql(filter, what) -%}
    {{- analytics_check_keys(filter, ['property', 'op', 'value'], what) -}}
    {%- set prop = filter.get('property') -%}
    {%- if not prop -%}{{ exceptions.raise_compiler_error(what ~ ": a filter needs a property") }}{%- endif -%}
    {%- set op = (filter.get('op', '=') | string | lower | trim) -%}
    {%- set value = filter.get('value') -%}
    {%- set sample = (value[0] if (value is iterable and value is not string and value is not mapping and value | length > 0) else value) -%}
    {%- if prop in analytics_event_columns() -%}
        {%- set expr = prop -%}
    {%- else -%}
        {%- set key = prop[11:] if prop.startswith('properties.') else prop -%}
        {%- set expr = analytics_json_text('properties', key) -%}
        {%- if sample is number and sample is not sameas true and sample is not sameas false -%}
            {%- set expr = dbt.safe_cast(expr, analytics_type_double()) -%}
        {%- endif -%}
    {%- endif -%}
    {%- if op in ['=', '==', 'eq'] -%}
        {%- set sql = expr ~ ' = ' ~ analytics_value_literal(value) -%}
    {%- elif op in ['!=', '<>', 'ne'] -%}
        {%- set sql = '(' ~ expr ~ ' is null or ' ~ expr ~ ' <> ' ~ analytics_value_literal(value) ~ ')' -%}
    {%- elif op in ['in', 'not in'] -%}
        {%- if value is string or value is not iterable -%}{%- set value = [value] -%}{%- endif -%}
        {%- set items = [] -%}
        {%- for v in value -%}{%- do items.append(analytics_value_literal(v)) -%}{%- endfor -%}
        {%- if op == 'in' -%}
            {%- set sql = expr ~ ' in (' ~ (items | join(', ')) ~ ')' -%}
        {%- else -%}
            {%- set sql = '(' ~ expr ~ ' is null or ' ~ expr ~ ' not in (' ~ (items | join(', ')) ~ '))' -%}
        {%- endif -%}
    {%- elif op in ['like', 'not like'] -%}
        {%- set sql = expr ~ ' ' ~ op ~ ' ' ~ analytics_string_literal(value) -%}
    {%- elif op in ['regex', 'matches'] -%}
        {%- set sql = analytics_regexp_matches(expr, value) -%}
    {%- elif op in ['>', '>=', '<', '<='] -%}
        {%- set sql = expr ~ ' ' ~ op ~ ' ' ~ analytics_value_literal(value) -%}
    {%- elif op in ['is_set', 'is set', 'is not null'] -%}
        {%- set sql = expr ~ ' is not null' -%}
    {%- elif op in ['is_not_set', 'is not set', 'is null'] -%}
        {%- set sql = expr ~ ' is null' -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error(what ~ ": unknown filter op '" ~ op ~ "'") }}
    {%- endif -%}
    {{ return('(' ~ sql ~ ')') }}
{%- endmacro %}


{#- SQL boolean over fct_events columns for an event condition (see the header). `extra_keys` are
    keys the caller handles itself (e.g. name, performed, in_last). -#}
{% macro analytics_condition_sql(spec, what, extra_keys=[]) -%}
    {%- if spec is string -%}{%- set spec = {'event': spec} -%}{%- endif -%}
    {{- analytics_check_keys(spec, ['event', 'filters', 'where'] + extra_keys, what) -}}
    {%- set parts = [] -%}
    {%- set event = spec.get('event') -%}
    {%- if event is not none -%}
        {%- if event is string -%}
            {%- do parts.append('event_name = ' ~ analytics_string_literal(event)) -%}
        {%- else -%}
            {%- set names = [] -%}
            {%- for e in event -%}{%- do names.append(analytics_string_literal(e)) -%}{%- endfor -%}
            {%- do parts.append('event_name in (' ~ (names | join(', ')) ~ ')') -%}
        {%- endif -%}
    {%- endif -%}
    {%- set filters = spec.get('filters') or [] -%}
    {%- if filters is mapping -%}{%- set filters = [filters] -%}{%- endif -%}
    {%- for f in filters -%}
        {%- do parts.append(analytics_filter_sql(f, what)) -%}
    {%- endfor -%}
    {%- if spec.get('where') -%}
        {%- do parts.append('(' ~ spec.get('where') ~ ')') -%}
    {%- endif -%}
    {{ return('(' ~ (parts | join(' and ') if parts else '1 = 1') ~ ')') }}
{%- endmacro %}


{#- A human-readable label of a condition (used when a step has no name). -#}
{% macro analytics_condition_label(spec) -%}
    {%- if spec is string -%}{{ return(spec) }}{%- endif -%}
    {%- set event = spec.get('event') -%}
    {%- if event is none -%}{{ return('any event') }}
    {%- elif event is string -%}{{ return(event) }}
    {%- else -%}{{ return(event | join(' | ')) }}
    {%- endif -%}
{%- endmacro %}


{#- "select <lit> as a, ... union all select ..." from a list of rows (list of lists) with column
    names and SQL types; used for small generated lookup tables (funnel steps, periods, ...). -#}
{% macro analytics_values_sql(columns, types, rows) -%}
    {%- set selects = [] -%}
    {%- for row in rows -%}
        {%- set cells = [] -%}
        {%- for value in row -%}
            {%- do cells.append('cast(' ~ analytics_value_literal(value) ~ ' as ' ~ types[loop.index0] ~ ') as ' ~ columns[loop.index0]) -%}
        {%- endfor -%}
        {%- do selects.append('select ' ~ (cells | join(', '))) -%}
    {%- endfor -%}
    {{ return(selects | join('\n    union all\n    ')) }}
{%- endmacro %}


{#- analytics_union_or_empty(prefix, items, empty_columns, empty_from, rank_column=none, top_key=none):
    the rows of the CTEs <prefix>_1_final … <prefix>_<n>_final (one per definition in `items`, same
    columns) joined by union all — with rank_column, only the rows where rank_column <= the item's
    top_key (e.g. edge_rank <= top_edges). With no items: `empty_columns` ([name, SQL type] pairs, in
    order) as typed NULLs from `empty_from`, no rows. -#}
{% macro analytics_union_or_empty(prefix, items, empty_columns, empty_from, rank_column=none, top_key=none) -%}
    {%- for item in items %}
    select * from {{ prefix }}_{{ loop.index }}_final
    {%- if rank_column %}
    where {{ rank_column }} <= {{ item[top_key] }}
    {%- endif %}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    select
        {%- for column in empty_columns %}
        cast(null as {{ column[1] }}) as {{ column[0] }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ empty_from }}
    where 1 = 0
    {%- endfor %}
{%- endmacro %}
