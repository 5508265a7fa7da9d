{#-
    Paths declared in var `paths` (docs/analytics.md):

      paths:
        steps: 5                 # steps kept before an end point / after a start point (anchor excluded)
        top_paths: 50            # sequences kept per analysis
        top_edges: 50            # transitions kept per analysis
        collapse_repeats: true   # A, A, B -> A, B (consecutive repeats of one step key)
        url_rules:               # applied in order to the page path (query string and fragment removed first)
          - {pattern: '^/product/[^/]+$', replacement: '/product/:id'}
        analyses:
          - {name: before_order_completed, end: Order Completed}
          - {name: after_search, start: Products Searched}
          - {name: promo_to_signup, start: /promo/signup, end: Signed Up}

    Step keys: a page event is its cleaned URL path (starts with '/'), any other event its name.
    Paths never cross sessions (fct_events.session_id; events without a session are left out).
-#}

{% macro analytics_paths_config() -%}
    {%- set c = var('paths', {}) or {} -%}
    {%- set what = 'paths' -%}
    {{- analytics_check_keys(c, ['steps', 'top_paths', 'top_edges', 'collapse_repeats', 'url_rules', 'analyses'], what) -}}
    {%- set steps = c.get('steps', 5) | int -%}
    {%- if steps < 1 or steps > 20 -%}
        {{ exceptions.raise_compiler_error(what ~ ": steps must be between 1 and 20") }}
    {%- endif -%}
    {%- set rules = c.get('url_rules', [{'pattern': '^/product/[^/]+$', 'replacement': '/product/:id'}]) or [] -%}
    {%- for rule in rules -%}
        {{- analytics_check_keys(rule, ['pattern', 'replacement'], what ~ " url rule " ~ loop.index) -}}
        {%- if not rule.get('pattern') or rule.get('replacement') is none -%}
            {{ exceptions.raise_compiler_error(what ~ " url rule " ~ loop.index ~ ": needs pattern and replacement") }}
        {%- endif -%}
    {%- endfor -%}
    {%- set analyses = [] -%}
    {%- set seen = [] -%}
    {%- for a in c.get('analyses', []) or [] -%}
        {%- set a_what = what ~ " analysis #" ~ loop.index -%}
        {{- analytics_check_keys(a, ['name', 'description', 'start', 'end', 'steps', 'top_paths', 'top_edges'], a_what) -}}
        {{- analytics_check_name(a.get('name'), a_what) -}}
        {%- if a['name'] in seen -%}{{ exceptions.raise_compiler_error(a_what ~ ": name declared twice") }}{%- endif -%}
        {%- do seen.append(a['name']) -%}
        {%- if not a.get('start') and not a.get('end') -%}
            {{ exceptions.raise_compiler_error(a_what ~ ": needs a start, an end or both (step keys)") }}
        {%- endif -%}
        {%- set anchor = 'between' if (a.get('start') and a.get('end')) else ('start' if a.get('start') else 'end') -%}
        {%- do analyses.append({
            'name': a['name'], 'start': a.get('start'), 'end': a.get('end'), 'anchor': anchor,
            'steps': a.get('steps', steps) | int,
            'top_paths': a.get('top_paths', c.get('top_paths', 50)) | int,
            'top_edges': a.get('top_edges', c.get('top_edges', 50)) | int
        }) -%}
    {%- endfor -%}
    {{ return({'steps': steps, 'collapse_repeats': c.get('collapse_repeats', true) | as_bool,
               'url_rules': rules, 'analyses': analyses}) }}
{%- endmacro %}


{#- The cleaned URL of a page event: the path (from page_path, else page_url without scheme and
    host), without query string and fragment, then every url rule in order. -#}
{% macro analytics_clean_url(page_path, page_url, rules) -%}
    {%- set expression = analytics_regexp_replace(
        'coalesce(' ~ page_path ~ ', ' ~ analytics_regexp_replace(page_url, '^[A-Za-z][A-Za-z0-9+.-]*://[^/]*', '') ~ ')',
        '[?#].*$', '') -%}
    {%- set cleaned = namespace(expression=expression) -%}
    {%- for rule in rules -%}
        {%- set cleaned.expression = analytics_regexp_replace(cleaned.expression, rule.pattern, rule.replacement) -%}
    {%- endfor -%}
    {{ return(cleaned.expression) }}
{%- endmacro %}


{#- CTEs <p>_anchors and <p>_window for one path analysis over the CTE `steps`
    (int_path_steps_sequenced): the steps kept for every anchored session, with their position
    relative to the anchor (0 = the start point, or the end point when there is no start). The
    first occurrence of the anchor in a session is used. -#}
{% macro analytics_path_window_ctes(a, p) -%}
{{ p }}_anchors as (
    {%- if a.anchor == 'end' %}
    select session_id, min(step_index) as anchor_index
    from steps
    where step_key = {{ analytics_string_literal(a.end) }}
    group by session_id
    {%- elif a.anchor == 'start' %}
    select session_id, min(step_index) as anchor_index
    from steps
    where step_key = {{ analytics_string_literal(a.start) }}
    group by session_id
    {%- else %}
    select starts.session_id, starts.anchor_index, min(ends.step_index) as end_index
    from (
        select session_id, min(step_index) as anchor_index
        from steps
        where step_key = {{ analytics_string_literal(a.start) }}
        group by session_id
    ) as starts
    inner join steps as ends
        on ends.session_id = starts.session_id
        and ends.step_key = {{ analytics_string_literal(a.end) }}
        and ends.step_index > starts.anchor_index
        and ends.step_index <= starts.anchor_index + {{ a.steps }}
    group by starts.session_id, starts.anchor_index
    {%- endif %}
),

{{ p }}_window as (
    select
        steps.session_id,
        steps.customer_id,
        steps.event_id,
        steps.step_index - anchors.anchor_index as position,
        steps.step_key
    from steps
    inner join {{ p }}_anchors as anchors
        on anchors.session_id = steps.session_id
    {%- if a.anchor == 'end' %}
    where steps.step_index between anchors.anchor_index - {{ a.steps }} and anchors.anchor_index
    {%- elif a.anchor == 'start' %}
    where steps.step_index between anchors.anchor_index and anchors.anchor_index + {{ a.steps }}
    {%- else %}
    where steps.step_index between anchors.anchor_index and anchors.end_index
    {%- endif %}
)
{%- endmacro %}
