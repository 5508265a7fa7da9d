{#-
    Retention declared in var `retention` and the repurchase comparison of var
    `repurchase_comparison` (docs/analytics.md).

    Activities (the start event of a cohort, the returning event) are
      first_seen / any_event          every event of fct_events
      first_purchase / purchase       every order of fct_orders with a status in `statuses`
                                      (default: completed; the core numbering counts only those)
      {source: events, event: ..., filters: [...], where: ...}   an event condition
      {source: orders, statuses: [completed, refunded]}
-#}

{% macro analytics_activity(spec, what) -%}
    {%- if spec in ['first_seen', 'any_event', 'event', 'events'] -%}
        {%- set spec = {'source': 'events'} -%}
    {%- elif spec in ['first_purchase', 'purchase', 'order', 'orders'] -%}
        {%- set spec = {'source': 'orders'} -%}
    {%- elif spec is string -%}
        {%- set spec = {'source': 'events', 'event': spec} -%}
    {%- endif -%}
    {%- if spec is not mapping -%}
        {{ exceptions.raise_compiler_error(what ~ ": expected first_seen, first_purchase, any_event, purchase or a mapping, got " ~ spec) }}
    {%- endif -%}
    {%- set source = (spec.get('source', 'events') | string | lower) -%}
    {%- if source == 'orders' -%}
        {{- analytics_check_keys(spec, ['source', 'statuses'], what) -}}
        {%- set statuses = spec.get('statuses', ['completed']) -%}
        {%- if statuses is string -%}{%- set statuses = [statuses] -%}{%- endif -%}
        {%- set quoted = [] -%}
        {%- for s in statuses -%}{%- do quoted.append(analytics_string_literal(s)) -%}{%- endfor -%}
        {{ return({'source': 'orders', 'label': 'orders (' ~ (statuses | join(', ')) ~ ')', 'statuses': quoted}) }}
    {%- elif source == 'events' -%}
        {%- set condition = analytics_condition_sql(spec, what, ['source']) -%}
        {{ return({'source': 'events', 'label': analytics_condition_label(spec), 'condition': condition}) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error(what ~ ": source must be events or orders, got " ~ source) }}
    {%- endif -%}
{%- endmacro %}


{#- select customer_id, activity_at (and loaded_at) for an activity returned by analytics_activity();
    `customers`: a relation with a customer_id column to restrict to (incremental runs). -#}
{% macro analytics_activity_sql(activity, customers=none) -%}
    {%- if activity.source == 'orders' -%}
    select customer_id, ordered_at as activity_at, loaded_at
    from {{ ref('fct_orders') }}
    where customer_id is not null
      and ordered_at <= {{ analytics_as_of_sql() }}
      and status in ({{ activity.statuses | join(', ') }})
    {%- else -%}
    select customer_id, event_at as activity_at, loaded_at
    from {{ ref('fct_events') }}
    where event_at <= {{ analytics_as_of_sql() }}
      and {{ activity.condition }}
    {%- endif %}
    {%- if customers is not none %}
      and customer_id in (select customer_id from {{ customers }})
    {%- endif -%}
{%- endmacro %}


{% macro analytics_retentions() -%}
    {%- set result = [] -%}
    {%- set seen = [] -%}
    {%- set default_periods = {'day': 30, 'week': 12, 'month': 6} -%}
    {%- set grain_seconds = {'day': 86400, 'week': 604800, 'month': 2592000} -%}
    {%- for r in var('retention', []) or [] -%}
        {%- set what = "retention #" ~ loop.index -%}
        {{- analytics_check_keys(r, ['name', 'description', 'start_event', 'returning_event', 'grain', 'periods',
                                     'cohort_type', 'retention_type', 'period_mode'], what) -}}
        {{- analytics_check_name(r.get('name'), what) -}}
        {%- set what = "retention '" ~ r['name'] ~ "'" -%}
        {%- if r['name'] in seen -%}{{ exceptions.raise_compiler_error(what ~ ": declared twice") }}{%- endif -%}
        {%- do seen.append(r['name']) -%}
        {%- set grain = (r.get('grain', 'week') | string | lower) -%}
        {%- if grain not in ['day', 'week', 'month'] -%}
            {{ exceptions.raise_compiler_error(what ~ ": grain must be day, week or month") }}
        {%- endif -%}
        {%- set periods = r.get('periods', default_periods[grain]) | int -%}
        {%- if periods < 1 or periods > 400 -%}
            {{ exceptions.raise_compiler_error(what ~ ": periods must be between 1 and 400") }}
        {%- endif -%}
        {%- set cohort_type = (r.get('cohort_type', 'first_time') | string | lower) -%}
        {%- if cohort_type not in ['first_time', 'recurring'] -%}
            {{ exceptions.raise_compiler_error(what ~ ": cohort_type must be first_time or recurring") }}
        {%- endif -%}
        {#- YAML 1.1 reads a bare `on` as true -#}
        {%- set retention_type = r.get('retention_type', 'on') -%}
        {%- set retention_type = 'on' if retention_type is sameas true else (retention_type | string | lower) -%}
        {%- if retention_type not in ['on', 'on_or_after'] -%}
            {{ exceptions.raise_compiler_error(what ~ ": retention_type must be 'on' or on_or_after") }}
        {%- endif -%}
        {%- set period_mode = (r.get('period_mode', 'calendar') | string | lower) -%}
        {%- if period_mode not in ['calendar', 'rolling'] -%}
            {{ exceptions.raise_compiler_error(what ~ ": period_mode must be calendar or rolling") }}
        {%- endif -%}
        {%- do result.append({
            'name': r['name'], 'description': r.get('description', ''),
            'start': analytics_activity(r.get('start_event', 'first_seen'), what ~ " start_event"),
            'returning': analytics_activity(r.get('returning_event', 'any_event'), what ~ " returning_event"),
            'grain': grain, 'periods': periods, 'cohort_type': cohort_type, 'retention_type': retention_type,
            'period_mode': period_mode, 'period_seconds': grain_seconds[grain]
        }) -%}
    {%- endfor -%}
    {{ return(result) }}
{%- endmacro %}


{#- The calendar period (a date) of a UTC timestamp, in the project time zone. -#}
{% macro analytics_calendar_period(grain, expression) -%}
    cast({{ dbt.date_trunc(grain, analytics_to_local(expression)) }} as date)
{%- endmacro %}


{#- Whole calendar periods from one period start (date) to another. -#}
{% macro analytics_periods_between(grain, first_period, second_period) -%}
    {%- if grain == 'month' -%}
    cast({{ dbt.datediff(first_period, second_period, 'month') }} as {{ dbt.type_int() }})
    {%- elif grain == 'week' -%}
    cast(floor({{ dbt.datediff(first_period, second_period, 'day') }} / 7.0) as {{ dbt.type_int() }})
    {%- else -%}
    cast({{ dbt.datediff(first_period, second_period, 'day') }} as {{ dbt.type_int() }})
    {%- endif -%}
{%- endmacro %}


{#- CTEs for one retention definition; <p>_final: one row per cohort entry and period number in
    which the customer returned (period 0 for every entry). -#}
{% macro analytics_retention_ctes(r, p, customers=none) -%}
{{ p }}_starts as (
    {{ analytics_activity_sql(r.start, customers) }}
),

{{ p }}_returns as (
    {{ analytics_activity_sql(r.returning, customers) }}
),

{{ p }}_entries as (
    {%- if r.cohort_type == 'first_time' %}
    select customer_id, min(activity_at) as entry_at
    from {{ p }}_starts
    group by customer_id
    {%- else %}
    select customer_id, min(activity_at) as entry_at
    from (
        select customer_id, activity_at, {{ analytics_calendar_period(r.grain, 'activity_at') }} as start_period
        from {{ p }}_starts
    ) as dated
    group by customer_id, start_period
    {%- endif %}
),

{{ p }}_cohort_entries as (
    select
        customer_id,
        entry_at,
        {{ analytics_calendar_period(r.grain, 'entry_at') }} as cohort_period
    from {{ p }}_entries
),

{{ p }}_return_periods as (
    select distinct
        customer_id,
        cohort_period,
        entry_at,
        {%- if r.retention_type == 'on_or_after' %}
        case when period_number > {{ r.periods }} then {{ r.periods }} else period_number end as period_number
        {%- else %}
        period_number
        {%- endif %}
    from (
        select
            entries.customer_id,
            entries.cohort_period,
            entries.entry_at,
            {%- if r.period_mode == 'calendar' %}
            {{ analytics_periods_between(r.grain, 'entries.cohort_period', analytics_calendar_period(r.grain, 'returns.activity_at')) }} as period_number
            {%- else %}
            cast(floor({{ dbt.datediff('entries.entry_at', 'returns.activity_at', 'second') }} / {{ r.period_seconds }}.0) as {{ dbt.type_int() }}) as period_number
            {%- endif %}
        from {{ p }}_cohort_entries as entries
        inner join {{ p }}_returns as returns
            on returns.customer_id = entries.customer_id
            and returns.activity_at >= entries.entry_at
    ) as returned
    where period_number >= 1
    {%- if r.retention_type == 'on' %}
      and period_number <= {{ r.periods }}
    {%- endif %}
),

{{ p }}_final as (
    select
        cast({{ analytics_string_literal(r.name) }} as {{ dbt.type_string() }}) as retention_name,
        customer_id,
        cohort_period,
        entry_at,
        cast(0 as {{ dbt.type_int() }}) as period_number
    from {{ p }}_cohort_entries

    union all

    select
        cast({{ analytics_string_literal(r.name) }} as {{ dbt.type_string() }}) as retention_name,
        customer_id,
        cohort_period,
        entry_at,
        cast(period_number as {{ dbt.type_int() }}) as period_number
    from {{ p }}_return_periods
)
{%- endmacro %}


{% macro analytics_repurchase_comparison() -%}
    {%- set c = var('repurchase_comparison', {}) or {} -%}
    {%- set what = 'repurchase_comparison' -%}
    {{- analytics_check_keys(c, ['repurchase_window', 'purchase_event', 'returning_event', 'grain', 'periods', 'retention_type'], what) -}}
    {%- set grain = (c.get('grain', 'week') | string | lower) -%}
    {%- set grain_seconds = {'day': 86400, 'week': 604800, 'month': 2592000} -%}
    {%- if grain not in grain_seconds -%}
        {{ exceptions.raise_compiler_error(what ~ ": grain must be day, week or month (rolling 1, 7 or 30 days)") }}
    {%- endif -%}
    {%- set retention_type = c.get('retention_type', 'on') -%}
    {%- set retention_type = 'on' if retention_type is sameas true else (retention_type | string | lower) -%}
    {%- if retention_type not in ['on', 'on_or_after'] -%}
        {{ exceptions.raise_compiler_error(what ~ ": retention_type must be 'on' or on_or_after") }}
    {%- endif -%}
    {{ return({
        'window': analytics_duration(c.get('repurchase_window'), what ~ " repurchase_window", {'value': 7, 'unit': 'day'}),
        'purchase': analytics_activity(c.get('purchase_event', 'purchase'), what ~ " purchase_event"),
        'returning': analytics_activity(c.get('returning_event', 'any_event'), what ~ " returning_event"),
        'grain': grain, 'period_seconds': grain_seconds[grain],
        'periods': c.get('periods', 8) | int, 'retention_type': retention_type
    }) }}
{%- endmacro %}
