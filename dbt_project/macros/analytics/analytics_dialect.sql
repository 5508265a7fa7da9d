{#-
    The few dialect-specific expressions of the analytics models, each behind adapter.dispatch so
    that another adapter (Postgres, Spark, ...) only needs one small override here.
    Everything else in macros/analytics uses dbt's cross-database macros (dbt.dateadd,
    dbt.datediff, dbt.date_trunc, dbt.listagg, dbt.safe_cast, ...).
-#}

{#- Median of a numeric expression, as a double. -#}
{% macro analytics_median(expression) -%}
    {{ return(adapter.dispatch('analytics_median')(expression)) }}
{%- endmacro %}

{% macro default__analytics_median(expression) -%}
    cast(percentile_cont(0.5) within group (order by {{ expression }}) as {{ analytics_type_double() }})
{%- endmacro %}

{% macro duckdb__analytics_median(expression) -%}
    cast(median({{ expression }}) as double)
{%- endmacro %}

{% macro spark__analytics_median(expression) -%}
    cast(percentile({{ expression }}, 0.5) as double)
{%- endmacro %}


{#- Replace the first match of a regular expression (rules are usually anchored). -#}
{% macro analytics_regexp_replace(expression, pattern, replacement) -%}
    {{ return(adapter.dispatch('analytics_regexp_replace')(expression, pattern, replacement)) }}
{%- endmacro %}

{% macro default__analytics_regexp_replace(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, {{ analytics_string_literal(pattern) }}, {{ analytics_string_literal(replacement) }})
{%- endmacro %}


{#- True when the expression matches a regular expression (partial match). -#}
{% macro analytics_regexp_matches(expression, pattern) -%}
    {{ return(adapter.dispatch('analytics_regexp_matches')(expression, pattern)) }}
{%- endmacro %}

{% macro default__analytics_regexp_matches(expression, pattern) -%}
    ({{ expression }} ~ {{ analytics_string_literal(pattern) }})
{%- endmacro %}

{% macro duckdb__analytics_regexp_matches(expression, pattern) -%}
    regexp_matches({{ expression }}, {{ analytics_string_literal(pattern) }})
{%- endmacro %}

{% macro spark__analytics_regexp_matches(expression, pattern) -%}
    ({{ expression }} rlike {{ analytics_string_literal(pattern) }})
{%- endmacro %}


{#- A top-level key of a JSON text column, as text (null when missing). -#}
{% macro analytics_json_text(expression, key) -%}
    {{ return(adapter.dispatch('analytics_json_text')(expression, key)) }}
{%- endmacro %}

{% macro default__analytics_json_text(expression, key) -%}
    (cast({{ expression }} as json) ->> {{ analytics_string_literal(key) }})
{%- endmacro %}

{% macro duckdb__analytics_json_text(expression, key) -%}
    json_extract_string({{ expression }}, {{ analytics_string_literal('$."' ~ key ~ '"') }})
{%- endmacro %}

{% macro spark__analytics_json_text(expression, key) -%}
    get_json_object({{ expression }}, {{ analytics_string_literal('$.' ~ key) }})
{%- endmacro %}


{#- A UTC timestamp (without time zone) as wall-clock time in the project time zone. -#}
{% macro analytics_to_local(expression) -%}
    {{ return(adapter.dispatch('analytics_to_local')(expression)) }}
{%- endmacro %}

{% macro default__analytics_to_local(expression) -%}
    {%- set tz = analytics_timezone() -%}
    {%- if tz | upper == 'UTC' -%}
    {{ expression }}
    {%- else -%}
    cast(({{ expression }} at time zone 'UTC') at time zone {{ analytics_string_literal(tz) }} as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}

{% macro spark__analytics_to_local(expression) -%}
    from_utc_timestamp({{ expression }}, {{ analytics_string_literal(analytics_timezone()) }})
{%- endmacro %}


{#- A double-precision float (dbt.type_float() is a 4-byte float on DuckDB). -#}
{% macro analytics_type_double() -%}
    {{ return(adapter.dispatch('analytics_type_double')()) }}
{%- endmacro %}

{% macro default__analytics_type_double() -%}
    double precision
{%- endmacro %}

{% macro duckdb__analytics_type_double() -%}
    double
{%- endmacro %}

{% macro spark__analytics_type_double() -%}
    double
{%- endmacro %}
