{#-
    Custom schemas are used as written (staging, intermediate, marts) instead of dbt's default
    `<target schema>_<custom schema>`: the warehouse has one well-known schema per layer, which is
    what Dagster asset keys (<schema>/<model>), the ML code and the activation code read.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
