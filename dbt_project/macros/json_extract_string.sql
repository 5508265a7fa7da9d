{#-
    json_extract_string(column, path): the text value at `path` inside a JSON column, NULL when
    absent (JSON null, objects and arrays come back as their JSON text, as in DuckDB).

    `path` is a dotted path of object keys: 'page.referrer' (a leading '$.' is accepted). The
    dialect-specific bit lives here only:
      duckdb    json_extract_string(col, '$.page.referrer')
      postgres  (col)::jsonb #>> '{page,referrer}'
      spark     get_json_object(col, '$.page.referrer')
      default   json_value(col, '$.page.referrer')          (SQL:2016)
-#}
{% macro json_extract_string(column, path) -%}
    {{ return(adapter.dispatch('json_extract_string', 'goldentime')(column, _json_path_keys(path))) }}
{%- endmacro %}

{% macro _json_path_keys(path) -%}
    {%- set text = path | trim -%}
    {%- if text.startswith('$.') -%}{%- set text = text[2:] -%}{%- endif -%}
    {%- for key in text.split('.') -%}
        {%- if not modules.re.match('^[A-Za-z_][A-Za-z0-9_]*$', key) -%}
            {{ exceptions.raise_compiler_error("json_extract_string: path keys must be identifiers, got '" ~ path ~ "'") }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(text.split('.')) }}
{%- endmacro %}

{% macro default__json_extract_string(column, keys) -%}
    json_value({{ column }}, '$.{{ keys | join(".") }}')
{%- endmacro %}

{% macro duckdb__json_extract_string(column, keys) -%}
    json_extract_string({{ column }}, '$.{{ keys | join(".") }}')
{%- endmacro %}

{% macro postgres__json_extract_string(column, keys) -%}
    (({{ column }})::jsonb #>> '{ {{- keys | join(",") -}} }')
{%- endmacro %}

{% macro spark__json_extract_string(column, keys) -%}
    get_json_object({{ column }}, '$.{{ keys | join(".") }}')
{%- endmacro %}


{#- json_to_text(column): a JSON column as text (fct_events.properties). -#}
{% macro json_to_text(column) -%}
    {{ return(adapter.dispatch('json_to_text', 'goldentime')(column)) }}
{%- endmacro %}

{% macro default__json_to_text(column) -%}
    cast({{ column }} as {{ dbt.type_string() }})
{%- endmacro %}
