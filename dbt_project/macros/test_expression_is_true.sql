{#-
    Generic test (no dbt_utils here): every row satisfies `expression` (rows where it is false or
    NULL fail). Usage in YAML:
        data_tests:
          - expression_is_true:
              arguments:
                expression: "ended_at >= started_at"
-#}
{% test expression_is_true(model, expression, column_name=none) %}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}
