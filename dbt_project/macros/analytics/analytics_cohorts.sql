{#-
    Behavioural cohorts declared in var `behavioural_cohorts` (docs/analytics.md):

      - name: signup_promo_viewed_not_signed_up
        description: Viewed /promo/signup in the last 7 days but did not sign up
        match: all                      # all (default) | any of the conditions
        conditions:
          - event: Page Viewed
            filters: [{property: page_path, value: /promo/signup}]
            in_last: {value: 7, unit: day}      # omitted: all history up to the snapshot
          - event: Signed Up
            performed: false                    # did not (default true: did)
          - event: Product Viewed
            count: {op: '>=', value: 3}         # instead of performed (default >= 1 / = 0)

    Each condition counts the customer's matching events with as_of - in_last < event_at <= as_of
    (as_of = macros/analytics/analytics_common.sql analytics_as_of_sql()).
-#}

{% macro analytics_behavioural_cohorts() -%}
    {%- set result = [] -%}
    {%- set seen = [] -%}
    {%- for c in var('behavioural_cohorts', []) or [] -%}
        {%- set what = "behavioural cohort #" ~ loop.index -%}
        {{- analytics_check_keys(c, ['name', 'description', 'match', 'conditions'], what) -}}
        {{- analytics_check_name(c.get('name'), what) -}}
        {%- set what = "behavioural cohort '" ~ c['name'] ~ "'" -%}
        {%- if c['name'] in seen -%}{{ exceptions.raise_compiler_error(what ~ ": declared twice") }}{%- endif -%}
        {%- do seen.append(c['name']) -%}
        {%- set match = (c.get('match', 'all') | string | lower) -%}
        {%- if match not in ['all', 'any'] -%}
            {{ exceptions.raise_compiler_error(what ~ ": match must be all or any") }}
        {%- endif -%}
        {%- if not c.get('conditions') -%}
            {{ exceptions.raise_compiler_error(what ~ ": at least one condition is needed") }}
        {%- endif -%}
        {%- set conditions = [] -%}
        {%- for k in c['conditions'] -%}
            {%- set k_what = what ~ " condition " ~ loop.index -%}
            {%- set spec = {'event': k} if k is string else k -%}
            {%- set condition = analytics_condition_sql(spec, k_what, ['performed', 'count', 'in_last']) -%}
            {%- if spec.get('count') is not none -%}
                {%- set count = spec['count'] -%}
                {%- if count is number -%}{%- set count = {'op': '>=', 'value': count} -%}{%- endif -%}
                {{- analytics_check_keys(count, ['op', 'value'], k_what ~ " count") -}}
                {%- set op = (count.get('op', '>=') | string | trim) -%}
                {%- if op not in ['=', '>=', '>', '<=', '<', '!='] or count.get('value') is not number -%}
                    {{ exceptions.raise_compiler_error(k_what ~ ": count is {op: =|>=|>|<=|<|!=, value: <integer>}") }}
                {%- endif -%}
                {%- set test = op ~ ' ' ~ (count['value'] | int) -%}
            {%- elif spec.get('performed', true) -%}
                {%- set test = '>= 1' -%}
            {%- else -%}
                {%- set test = '= 0' -%}
            {%- endif -%}
            {%- set positive = not modules.re.match('^(= 0|< 1|<= 0)$', test) -%}
            {%- do conditions.append({
                'condition': condition,
                'test': test,
                'positive': positive,
                'in_last': analytics_duration(spec.get('in_last'), k_what ~ " in_last")
            }) -%}
        {%- endfor -%}
        {%- do result.append({'name': c['name'], 'description': c.get('description', ''), 'match': match,
                              'conditions': conditions}) -%}
    {%- endfor -%}
    {{ return(result) }}
{%- endmacro %}


{#- Can a customer with no matching event at all be a member (every count 0)? -#}
{% macro analytics_cohort_admits_zero_counts(c) -%}
    {%- set holds = [] -%}
    {%- for k in c.conditions -%}
        {%- set parts = k.test.split(' ') -%}
        {%- set op = parts[0] -%}
        {%- set value = parts[1] | int -%}
        {%- set ok = (op == '=' and value == 0) or (op == '>=' and value <= 0) or (op == '>' and value < 0)
                  or (op == '<=' and value >= 0) or (op == '<' and value > 0) or (op == '!=' and value != 0) -%}
        {%- do holds.append(ok) -%}
    {%- endfor -%}
    {{- return((holds | select | list | length == holds | length) if c.match == 'all' else (holds | select | list | length > 0)) -}}
{%- endmacro %}


{#- CTEs evaluating one cohort at as_of (CTE `as_of` with column snapshot_at, CTE `events` with the
    events up to it); <p>_final has one row per member.
    Unless a customer without any matching event could be a member (all conditions negative), only
    the events matching one of the conditions are read — and, when every condition has an in_last
    window, only those inside the longest one — so a snapshot does not scan the whole history. -#}
{% macro analytics_cohort_ctes(c, p) -%}
{%- set prefilter = not analytics_cohort_admits_zero_counts(c) %}
{%- set windows = [] %}
{%- for k in c.conditions %}{% if k.in_last %}{% do windows.append(k.in_last.seconds) %}{% endif %}{% endfor %}
{{ p }}_events as (
    select events.*
    from events
    {%- if prefilter %}
    cross join as_of
    where ({% for k in c.conditions %}{{ k.condition }}{% if not loop.last %} or {% endif %}{% endfor %})
    {%- if windows | length == c.conditions | length %}
      and events.event_at > {{ dbt.dateadd('second', -1 * (windows | max), 'as_of.snapshot_at') }}
    {%- endif %}
    {%- endif %}
),

{{ p }}_counts as (
    select
        events.customer_id,
        {%- for k in c.conditions %}
        {%- set in_window -%}
            {{ k.condition }}
            {%- if k.in_last %} and events.event_at > {{ dbt.dateadd(k.in_last.unit, -1 * k.in_last.value, 'as_of.snapshot_at') }}{% endif %}
        {%- endset %}
        sum(case when {{ in_window }} then 1 else 0 end) as condition_{{ loop.index }}_count,
        max(case when {{ in_window }} then events.event_at end) as condition_{{ loop.index }}_last_at{% if not loop.last %},{% endif %}
        {%- endfor %}
    from {{ p }}_events as events
    cross join as_of
    group by events.customer_id
),

{{ p }}_final as (
    select
        cast({{ analytics_string_literal(c.name) }} as {{ dbt.type_string() }}) as cohort_name,
        customer_id,
        {#- the events behind the membership: of the conditions that require doing something -#}
        {%- set positives = [] %}
        {%- for k in c.conditions %}{% if k.positive %}{% do positives.append(loop.index) %}{% endif %}{% endfor %}
        {%- if positives %}
        {% for i in positives %}coalesce(condition_{{ i }}_count, 0){% if not loop.last %} + {% endif %}{% endfor %} as qualifying_events,
        {%- if positives | length == 1 %}
        condition_{{ positives[0] }}_last_at as last_qualifying_event_at
        {%- else %}
        case
            {%- for i in positives %}
            when {% for j in positives %}{% if j != i %}coalesce(condition_{{ i }}_last_at >= condition_{{ j }}_last_at, condition_{{ j }}_last_at is null){% if not loop.last %} and {% endif %}{% endif %}{% endfor %}
                then condition_{{ i }}_last_at
            {%- endfor %}
        end as last_qualifying_event_at
        {%- endif %}
        {%- else %}
        0 as qualifying_events,
        cast(null as {{ dbt.type_timestamp() }}) as last_qualifying_event_at
        {%- endif %}
    from {{ p }}_counts
    where
        {%- for k in c.conditions %}
        {% if not loop.first %}{{ 'and' if c.match == 'all' else 'or' }} {% endif %}condition_{{ loop.index }}_count {{ k.test }}
        {%- endfor %}
)
{%- endmacro %}
