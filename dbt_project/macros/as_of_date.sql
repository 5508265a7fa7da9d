{#-
    as_of_date(): the SQL expression of the date dim_customers describes.
    var as_of_date ('YYYY-MM-DD') when set; otherwise the latest event or order date in the data
    (fct_events / fct_orders), never the wall clock, so a rebuild on historical data gives the same
    answer.
-#}
{% macro as_of_date() -%}
    {%- set value = var('as_of_date', none) -%}
    {%- if value is none or (value | string | trim) in ('', 'none', 'null', 'None') -%}
        (select max(d) from (
            select max(event_date) as d from {{ ref('fct_events') }}
            union all
            select max(ordered_date) as d from {{ ref('fct_orders') }}
        ) as latest_dates)
    {%- else -%}
        {%- if not modules.re.match('^\d{4}-\d{2}-\d{2}$', value | string | trim) -%}
            {{ exceptions.raise_compiler_error("var as_of_date must be 'YYYY-MM-DD', got '" ~ value ~ "'") }}
        {%- endif -%}
        cast('{{ value | string | trim }}' as date)
    {%- endif -%}
{%- endmacro %}
