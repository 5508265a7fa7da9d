{#-
    Generic test: none of `columns` is NULL — one model-level test instead of one `not_null` test per
    column. Each dbt test node costs ~25 ms of dbt overhead and, on a view, one more evaluation of the
    view: one test per column (117 tests) cost ~3.5 s of a 31 s incremental run at 10M events
    (README.md, "Tests"). The contracted marts (marts/core) enforce NOT NULL as constraints instead.

    It fails with one row per column holding NULLs (column_name, null_rows); the failure count is the
    number of NULL cells, as if each column had its own not_null test. Usage in YAML:
        data_tests:
          - not_null_columns:
              arguments:
                columns: [customer_id, first_seen_at]
              config: {where: __latest_batch__}
-#}
{% test not_null_columns(model, columns) %}
{{ config(fail_calc='coalesce(sum(null_rows), 0)') }}
with null_counts as (
    select
        {%- for column in columns %}
        sum(case when {{ column }} is null then 1 else 0 end) as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ model }}
)
{%- for column in columns %}
select cast('{{ column }}' as {{ dbt.type_string() }}) as column_name, {{ column }} as null_rows
from null_counts
where {{ column }} > 0
{%- if not loop.last %}
union all
{%- endif %}
{%- endfor %}
{% endtest %}
