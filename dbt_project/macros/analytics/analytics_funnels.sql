{#-
    Funnels declared in var `funnels` (see docs/analytics.md), evaluated in set-based SQL.

    Semantics (docs/analytics.md and /work/shared/SEMANTICS.md):
    - ordered (default): steps in order, other events may happen in between;
      strict: no other event of the customer between two consecutive steps;
      unordered: the steps in any order.
    - Inclusive window from the step-1 time t1 of the same attempt: t1 <= t2 <= ... <= tk <= t1 + window.
    - Every step-1 occurrence starts an attempt; the customer counts once at the furthest step any
      attempt reaches (best_attempt, default); `attempts: first_entry` keeps only the first step-1.
      Among attempts reaching the same depth the earliest one is kept: its times give the
      time-to-convert and its events the breakdown attribution.
    - One event never advances two steps: a customer's events are put in one total order
      (event_at, lowest step the event matches, event_id) and each step must use a later event than
      the previous step.

    Ordered mode: for every event, a window function gives the position of the next event matching
    each step k (min(seq) over the following rows). From each step-1 occurrence, step k is the next
    step-k event after the step-(k-1) event -- an equi-join on (customer_id, seq) -- kept when it is
    inside the window. Taking the earliest qualifying event at every step is optimal (any valid
    chain can be rewritten to use it), so one join per step gives each attempt's depth exactly; the
    cost is one sort of the matching events plus (steps - 1) hash joins, whatever the number of
    attempts per customer. Step-1 events with the same next step-2 event share the chain, so only the
    latest of each such group is joined (see <p>_reach_1 and <p>_chosen_starts).
-#}

{% macro analytics_funnels() -%}
    {%- set funnels = [] -%}
    {%- set seen = [] -%}
    {%- for f in var('funnels', []) or [] -%}
        {%- set what = "funnel #" ~ loop.index -%}
        {{- analytics_check_keys(f, ['name', 'description', 'steps', 'conversion_window', 'mode', 'attempts',
                                     'exclusions', 'breakdowns', 'breakdown_attribution', 'breakdown_step'], what) -}}
        {{- analytics_check_name(f.get('name'), what) -}}
        {%- set what = "funnel '" ~ f['name'] ~ "'" -%}
        {%- if f['name'] in seen -%}{{ exceptions.raise_compiler_error(what ~ ": declared twice") }}{%- endif -%}
        {%- do seen.append(f['name']) -%}
        {%- set mode = (f.get('mode', 'ordered') | string | lower) -%}
        {%- if mode not in ['ordered', 'strict', 'unordered'] -%}
            {{ exceptions.raise_compiler_error(what ~ ": mode must be ordered, strict or unordered, got " ~ mode) }}
        {%- endif -%}
        {%- set attempts = (f.get('attempts', 'best_attempt') | string | lower) -%}
        {%- if attempts not in ['best_attempt', 'first_entry'] -%}
            {{ exceptions.raise_compiler_error(what ~ ": attempts must be best_attempt or first_entry, got " ~ attempts) }}
        {%- endif -%}
        {%- set raw_steps = f.get('steps') or [] -%}
        {%- if raw_steps | length < 2 -%}
            {{ exceptions.raise_compiler_error(what ~ ": a funnel needs at least 2 steps") }}
        {%- endif -%}
        {%- set steps = [] -%}
        {%- for s in raw_steps -%}
            {%- set step_what = what ~ " step " ~ loop.index -%}
            {%- set spec = {'event': s} if s is string else s -%}
            {%- do steps.append({
                'number': loop.index,
                'name': (spec.get('name') or analytics_condition_label(spec)) | string,
                'condition': analytics_condition_sql(spec, step_what, ['name'])
            }) -%}
        {%- endfor -%}
        {%- set n = steps | length -%}
        {%- set window = analytics_duration(f.get('conversion_window'), what ~ " conversion_window", {'value': 14, 'unit': 'day'}) -%}
        {%- set exclusions = [] -%}
        {%- for x in f.get('exclusions') or [] -%}
            {%- set x_what = what ~ " exclusion " ~ loop.index -%}
            {%- set spec = {'event': x} if x is string else x -%}
            {%- set from_step = spec.get('from_step', 1) | int -%}
            {%- set to_step = spec.get('to_step', n) | int -%}
            {%- if from_step < 1 or to_step > n or from_step >= to_step -%}
                {{ exceptions.raise_compiler_error(x_what ~ ": need 1 <= from_step < to_step <= " ~ n) }}
            {%- endif -%}
            {%- do exclusions.append({
                'condition': analytics_condition_sql(spec, x_what, ['name', 'from_step', 'to_step']),
                'from_step': from_step, 'to_step': to_step
            }) -%}
        {%- endfor -%}
        {%- set attribution = (f.get('breakdown_attribution', 'first_touch') | string | lower) -%}
        {%- if attribution not in ['first_touch', 'last_touch', 'step'] -%}
            {{ exceptions.raise_compiler_error(what ~ ": breakdown_attribution must be first_touch, last_touch or step") }}
        {%- endif -%}
        {%- set breakdowns = [] -%}
        {%- for b in (f.get('breakdowns') if f.get('breakdowns') is not none else var('funnel_default_breakdowns', ['acquisition_channel', 'first_seen_week'])) -%}
            {%- set b_what = what ~ " breakdown " ~ loop.index -%}
            {%- if b == 'acquisition_channel' -%}
                {%- do breakdowns.append({'name': 'acquisition_channel', 'kind': 'customer', 'column': 'first_touch_channel'}) -%}
            {%- elif b == 'first_seen_week' -%}
                {%- do breakdowns.append({'name': 'first_seen_week', 'kind': 'first_seen_week'}) -%}
            {%- elif b is mapping -%}
                {{- analytics_check_keys(b, ['name', 'property', 'customer_column', 'attribution', 'step'], b_what) -}}
                {{- analytics_check_name(b.get('name'), b_what) -}}
                {%- if b.get('customer_column') -%}
                    {%- do breakdowns.append({'name': b['name'], 'kind': 'customer', 'column': b['customer_column']}) -%}
                {%- elif b.get('property') -%}
                    {%- set b_attr = (b.get('attribution', attribution) | string | lower) -%}
                    {%- set b_step = (b.get('step', f.get('breakdown_step', 1)) | int) -%}
                    {%- if b_attr not in ['first_touch', 'last_touch', 'step'] or b_step < 1 or b_step > n -%}
                        {{ exceptions.raise_compiler_error(b_what ~ ": attribution must be first_touch, last_touch or step (with 1 <= step <= " ~ n ~ ")") }}
                    {%- endif -%}
                    {%- set prop = b['property'] -%}
                    {%- if prop in analytics_event_columns() -%}
                        {%- set expr = 'e.' ~ prop -%}
                    {%- else -%}
                        {%- set expr = analytics_json_text('e.properties', prop[11:] if prop.startswith('properties.') else prop) -%}
                    {%- endif -%}
                    {%- do breakdowns.append({'name': b['name'], 'kind': 'property', 'expression': expr,
                                              'attribution': b_attr, 'step': b_step}) -%}
                {%- else -%}
                    {{ exceptions.raise_compiler_error(b_what ~ ": needs property or customer_column") }}
                {%- endif -%}
            {%- else -%}
                {{ exceptions.raise_compiler_error(b_what ~ ": acquisition_channel, first_seen_week or a mapping, got " ~ b) }}
            {%- endif -%}
        {%- endfor -%}
        {%- do funnels.append({
            'name': f['name'], 'description': f.get('description', ''), 'mode': mode, 'attempts': attempts,
            'steps': steps, 'window': window, 'exclusions': exclusions, 'breakdowns': breakdowns
        }) -%}
    {%- endfor -%}
    {{ return(funnels) }}
{%- endmacro %}


{#- The funnel steps as a small table: funnel_name, step_number, step_name, total_steps, mode. -#}
{% macro analytics_funnel_steps_values(funnels) -%}
    {%- set rows = [] -%}
    {%- for f in funnels -%}
        {%- for s in f.steps -%}
            {%- set label = s.name if f.mode != 'unordered' else ('any ' ~ s.number ~ ' of ' ~ (f.steps | length) ~ ' steps') -%}
            {%- do rows.append([f.name, s.number, label, f.steps | length, f.mode]) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set types = [dbt.type_string(), dbt.type_int(), dbt.type_string(), dbt.type_int(), dbt.type_string()] -%}
    {%- if rows -%}
        {{ return(analytics_values_sql(['funnel_name', 'step_number', 'step_name', 'total_steps', 'funnel_mode'], types, rows)) }}
    {%- else -%}
        {{ return(analytics_values_sql(['funnel_name', 'step_number', 'step_name', 'total_steps', 'funnel_mode'], types, [['', 0, '', 0, '']]) ~ ' where 1 = 0') }}
    {%- endif -%}
{%- endmacro %}


{#- CTEs evaluating one funnel over `events` (a relation with fct_events' columns); the last CTE,
    <p>_final, has one row per customer and step reached by the customer's best attempt. -#}
{% macro analytics_funnel_ctes(f, events, p) -%}
{%- set n = f.steps | length -%}
{%- set w = f.window -%}
{%- set any_step -%}({% for s in f.steps %}{{ s.condition }}{% if not loop.last %} or {% endif %}{% endfor %}){%- endset -%}
{{ p }}_events as (
    select
        customer_id,
        event_id,
        event_at,
        {%- for s in f.steps %}
        case when {{ s.condition }} then 1 else 0 end as is_step_{{ s.number }},
        {%- endfor %}
        case {% for s in f.steps %}when {{ s.condition }} then {{ s.number }} {% endfor %}else {{ n + 1 }} end as first_step_matched
    from {{ events }}
    where event_at is not null
      and event_at <= {{ analytics_as_of_sql() }}
    {%- if f.mode != 'strict' %}
      and {{ any_step }}
    {%- endif %}
),

{{ p }}_sequenced as (
    select
        *,
        row_number() over (partition by customer_id order by event_at, first_step_matched, event_id) as event_seq
    from {{ p }}_events
),

{%- if f.mode in ['ordered', 'strict'] %}

{{ p }}_lookahead as (
    select
        customer_id,
        event_id,
        event_at,
        event_seq,
        {%- for s in f.steps %}
        is_step_{{ s.number }}{% if f.mode == 'ordered' or not loop.last %},{% endif %}
        {%- endfor %}
        {%- if f.mode == 'ordered' %}
        {%- for k in range(2, n + 1) %}
        min(case when is_step_{{ k }} = 1 then event_seq end) over (
            partition by customer_id order by event_seq rows between 1 following and unbounded following
        ) as next_step_{{ k }}_seq{% if not loop.last %},{% endif %}
        {%- endfor %}
        {%- endif %}
    from {{ p }}_sequenced
),

{{ p }}_entries as (
    select
        *
        {%- if f.attempts == 'first_entry' %},
        row_number() over (partition by customer_id order by event_seq) as entry_number
        {%- endif %}
    from {{ p }}_lookahead
    where is_step_1 = 1
),

{{ p }}_starts as (
    select
        customer_id,
        event_seq as step_1_seq,
        event_id as step_1_event_id,
        event_at as step_1_at
        {%- if f.mode == 'ordered' %},
        next_step_2_seq as step_1_next_seq
        {%- endif %}
    from {{ p }}_entries
    {%- if f.attempts == 'first_entry' %}
    where entry_number = 1
    {%- endif %}
),

{{ p }}_reach_1 as (
    {%- if f.mode == 'ordered' %}
    {#- Starts sharing the same next step-2 event share the whole chain of later steps; only their
        windows differ, so the latest start of each group goes at least as deep as the others and is
        the only one evaluated (the earliest start reaching the best depth is found afterwards). -#}
    select
        customer_id,
        step_1_seq,
        step_1_event_id,
        step_1_at,
        window_ends_at,
        step_1_next_seq
    from (
        select
            *,
            {{ dbt.dateadd(w.unit, w.value, 'step_1_at') }} as window_ends_at,
            row_number() over (partition by customer_id, step_1_next_seq order by step_1_seq desc) as group_rank
        from {{ p }}_starts
    ) as grouped
    where group_rank = 1
    {%- else %}
    select
        *,
        {{ dbt.dateadd(w.unit, w.value, 'step_1_at') }} as window_ends_at
    from {{ p }}_starts
    {%- endif %}
),
{%- for k in range(2, n + 1) %}

{{ p }}_reach_{{ k }} as (
    select
        previous.*,
        step.event_seq as step_{{ k }}_seq,
        step.event_id as step_{{ k }}_event_id,
        step.event_at as step_{{ k }}_at
        {%- if f.mode == 'ordered' and k < n %},
        step.next_step_{{ k + 1 }}_seq as step_{{ k }}_next_seq
        {%- endif %}
    from {{ p }}_reach_{{ k - 1 }} as previous
    left join {{ p }}_lookahead as step
        on step.customer_id = previous.customer_id
        {%- if f.mode == 'ordered' %}
        and step.event_seq = previous.step_{{ k - 1 }}_next_seq
        {%- else %}
        and step.event_seq = previous.step_{{ k - 1 }}_seq + 1
        and step.is_step_{{ k }} = 1
        {%- endif %}
        and step.event_at <= previous.window_ends_at
),
{%- endfor %}

{{ p }}_attempts as (
    select
        *,
        case
            {%- for k in range(n, 1, -1) %}
            when step_{{ k }}_seq is not null then {{ k }}
            {%- endfor %}
            else 1
        end as furthest_step
    from {{ p }}_reach_{{ n }}
),

{{ p }}_best as (
    select *
    from (
        select
            *,
            row_number() over (partition by customer_id order by furthest_step desc, step_1_seq) as attempt_rank
        from {{ p }}_attempts
    ) as ranked
    where attempt_rank = 1
),

{%- if f.mode == 'ordered' %}

{{ p }}_chosen_starts as (
    {#- the earliest start reaching the best depth: the customer's first start when the depth is 1,
        else the earliest start of the best group whose window still covers the furthest step -#}
    select best.customer_id, min(starts.step_1_seq) as step_1_seq
    from {{ p }}_best as best
    inner join {{ p }}_starts as starts
        on starts.customer_id = best.customer_id
    where best.furthest_step = 1
    group by best.customer_id

    union all

    select best.customer_id, min(starts.step_1_seq) as step_1_seq
    from {{ p }}_best as best
    inner join {{ p }}_starts as starts
        on starts.customer_id = best.customer_id
        and starts.step_1_next_seq = best.step_1_next_seq
    where best.furthest_step > 1
      and case best.furthest_step
            {%- for k in range(2, n + 1) %}
            when {{ k }} then best.step_{{ k }}_at
            {%- endfor %}
          end <= {{ dbt.dateadd(w.unit, w.value, 'starts.step_1_at') }}
    group by best.customer_id
),

{{ p }}_chosen as (
    select
        best.customer_id,
        starts.step_1_event_id,
        starts.step_1_at,
        {{ dbt.dateadd(w.unit, w.value, 'starts.step_1_at') }} as window_ends_at,
        {%- for k in range(2, n + 1) %}
        best.step_{{ k }}_event_id,
        best.step_{{ k }}_at,
        {%- endfor %}
        best.furthest_step
    from {{ p }}_best as best
    inner join {{ p }}_chosen_starts as chosen_starts
        on chosen_starts.customer_id = best.customer_id
    inner join {{ p }}_starts as starts
        on starts.customer_id = chosen_starts.customer_id
        and starts.step_1_seq = chosen_starts.step_1_seq
),
{%- endif %}

{{ p }}_steps as (
    {%- for k in range(1, n + 1) %}
    select
        customer_id,
        {{ k }} as step_number,
        step_{{ k }}_at as reached_at,
        step_{{ k }}_event_id as event_id,
        step_1_at as attempt_started_at,
        window_ends_at,
        furthest_step
    from {{ p }}_{{ 'chosen' if f.mode == 'ordered' else 'best' }}
    where furthest_step >= {{ k }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

{%- else %}{#- unordered -#}

{{ p }}_timed as (
    select
        *,
        {{ dbt.datediff("cast('1970-01-01' as " ~ dbt.type_timestamp() ~ ")", 'event_at', 'second') }} as event_epoch
    from {{ p }}_sequenced
),

{{ p }}_lookahead as (
    select
        customer_id,
        event_id,
        event_at,
        event_seq,
        {%- for s in f.steps %}
        min(case when is_step_{{ s.number }} = 1 then event_seq end) over (
            partition by customer_id order by event_seq rows between current row and unbounded following
        ) as next_step_{{ s.number }}_seq,
        min(case when is_step_{{ s.number }} = 1 then event_at end) over (
            partition by customer_id order by event_seq rows between current row and unbounded following
        ) as next_step_{{ s.number }}_at,
        {%- endfor %}
        {#- an upper bound on how many distinct events can fill steps: the events inside the window -#}
        count(*) over (
            partition by customer_id order by event_epoch range between current row and {{ w.seconds }} following
        ) as events_in_window
    from {{ p }}_timed
),

{{ p }}_attempts as (
    select
        *,
        least(
            events_in_window,
            {%- for s in f.steps %}
            case when next_step_{{ s.number }}_at <= window_ends_at then 1 else 0 end{% if not loop.last %} +{% endif %}
            {%- endfor %}
        ) as furthest_step
    from (
        select
            *,
            {{ dbt.dateadd(w.unit, w.value, 'event_at') }} as window_ends_at
        from {{ p }}_lookahead
        {%- if f.attempts == 'first_entry' %}
        where event_seq = 1
        {%- endif %}
    ) as anchored
),

{{ p }}_best as (
    select *
    from (
        select
            *,
            row_number() over (partition by customer_id order by furthest_step desc, event_seq) as attempt_rank
        from {{ p }}_attempts
    ) as ranked
    where attempt_rank = 1
),

{{ p }}_best_events as (
    select distinct
        best.customer_id,
        best.event_at as attempt_started_at,
        best.window_ends_at,
        best.furthest_step,
        candidate.step_seq
    from {{ p }}_best as best
    inner join (
        {%- for s in f.steps %}
        select customer_id, next_step_{{ s.number }}_seq as step_seq, next_step_{{ s.number }}_at as step_at
        from {{ p }}_best
        {%- if not loop.last %}
        union all
        {%- endif %}
        {%- endfor %}
    ) as candidate
        on candidate.customer_id = best.customer_id
        and candidate.step_at <= best.window_ends_at
),

{{ p }}_steps as (
    select
        customer_id,
        step_number,
        reached_at,
        event_id,
        attempt_started_at,
        window_ends_at,
        furthest_step
    from (
        select
            best_events.customer_id,
            row_number() over (partition by best_events.customer_id order by event.event_seq) as step_number,
            event.event_at as reached_at,
            event.event_id,
            best_events.attempt_started_at,
            best_events.window_ends_at,
            best_events.furthest_step
        from {{ p }}_best_events as best_events
        inner join {{ p }}_sequenced as event
            on event.customer_id = best_events.customer_id
            and event.event_seq = best_events.step_seq
    ) as numbered
    where step_number <= furthest_step
),

{%- endif %}

{%- for x in f.exclusions %}

{{ p }}_exclusion_events_{{ loop.index }} as (
    select customer_id, event_id, event_at
    from {{ events }}
    where {{ x.condition }}
      and event_at <= {{ analytics_as_of_sql() }}
),

{{ p }}_excluded_{{ loop.index }} as (
    select distinct bounds.customer_id
    from (
        select
            customer_id,
            max(case when step_number = {{ x.from_step }} then reached_at end) as from_at,
            coalesce(max(case when step_number = {{ x.to_step }} then reached_at end), max(window_ends_at)) as to_at
        from {{ p }}_steps
        group by customer_id
        having max(case when step_number = {{ x.from_step }} then 1 else 0 end) = 1
    ) as bounds
    inner join {{ p }}_exclusion_events_{{ loop.index }} as excluded_event
        on excluded_event.customer_id = bounds.customer_id
        and excluded_event.event_at >= bounds.from_at
        and excluded_event.event_at <= bounds.to_at
    left join {{ p }}_steps as own_step
        on own_step.customer_id = excluded_event.customer_id
        and own_step.event_id = excluded_event.event_id
    where own_step.event_id is null
),
{%- endfor %}

{{ p }}_final as (
    select
        cast({{ analytics_string_literal(f.name) }} as {{ dbt.type_string() }}) as funnel_name,
        steps.customer_id,
        steps.step_number,
        steps.furthest_step,
        steps.reached_at,
        steps.event_id,
        steps.attempt_started_at,
        steps.window_ends_at,
        {{ dbt.datediff(
            'lag(steps.reached_at) over (partition by steps.customer_id order by steps.step_number)',
            'steps.reached_at', 'second') }} as seconds_from_previous_step,
        {{ dbt.datediff('steps.attempt_started_at', 'steps.reached_at', 'second') }} as seconds_from_first_step
    from {{ p }}_steps as steps
    {%- for x in f.exclusions %}
    left join {{ p }}_excluded_{{ loop.index }} as excluded_{{ loop.index }}
        on excluded_{{ loop.index }}.customer_id = steps.customer_id
    {%- endfor %}
    {%- if f.exclusions %}
    where {% for x in f.exclusions %}excluded_{{ loop.index }}.customer_id is null{% if not loop.last %} and {% endif %}{% endfor %}
    {%- endif %}
)
{%- endmacro %}
