{#-
    Time zone helpers. Every timestamp in the warehouse is UTC without a zone (TIMESTAMP);
    local wall-clock times are derived explicitly.
-#}

{#- convert_timezone_from_utc(column, timezone): the local wall-clock time in `timezone` (an SQL
    expression: a column or a quoted literal) of a UTC timestamp. Pass zone names through
    valid_timezone() first: an unknown name is an error on every engine. -#}
{% macro convert_timezone_from_utc(column, timezone) -%}
    {{ return(adapter.dispatch('convert_timezone_from_utc', 'goldentime')(column, timezone)) }}
{%- endmacro %}

{% macro default__convert_timezone_from_utc(column, timezone) -%}
    (({{ column }} at time zone 'UTC') at time zone {{ timezone }})
{%- endmacro %}

{% macro duckdb__convert_timezone_from_utc(column, timezone) -%}
    timezone({{ timezone }}, ({{ column }}) at time zone 'UTC')
{%- endmacro %}

{% macro spark__convert_timezone_from_utc(column, timezone) -%}
    from_utc_timestamp({{ column }}, {{ timezone }})
{%- endmacro %}


{#- parse_timestamp_utc(text): an ISO-8601 text with an offset ('2026-01-01T10:29:32+09:00') as a
    UTC timestamp; NULL when unparseable (DuckDB). Texts without offset are read as UTC. -#}
{% macro parse_timestamp_utc(text) -%}
    {{ return(adapter.dispatch('parse_timestamp_utc', 'goldentime')(text)) }}
{%- endmacro %}

{% macro default__parse_timestamp_utc(text) -%}
    (cast({{ text }} as timestamp with time zone) at time zone 'UTC')
{%- endmacro %}

{% macro duckdb__parse_timestamp_utc(text) -%}
    (try_cast({{ text }} as timestamptz) at time zone 'UTC')
{%- endmacro %}

{% macro spark__parse_timestamp_utc(text) -%}
    {#- Spark keeps instants; with spark.sql.session.timeZone=UTC (recommended) this is UTC. -#}
    to_timestamp({{ text }})
{%- endmacro %}


{#- valid_timezone(expression, fallback): the zone name when the engine knows it, else `fallback`
    (an SQL expression). Device time zones come from clients: one bad value must not fail a build. -#}
{% macro valid_timezone(expression, fallback) -%}
    {{ return(adapter.dispatch('valid_timezone', 'goldentime')(expression, fallback)) }}
{%- endmacro %}

{% macro default__valid_timezone(expression, fallback) -%}
    coalesce({{ expression }}, {{ fallback }})
{%- endmacro %}

{% macro duckdb__valid_timezone(expression, fallback) -%}
    case
        when {{ expression }} in (select name from pg_timezone_names()) then {{ expression }}
        else {{ fallback }}
    end
{%- endmacro %}

{% macro postgres__valid_timezone(expression, fallback) -%}
    case
        when {{ expression }} in (select name from pg_timezone_names) then {{ expression }}
        else {{ fallback }}
    end
{%- endmacro %}
