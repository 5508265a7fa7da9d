{#-
    Generic tests of the analytics models (no dbt_utils here).

    analytics_unique_combination: no two rows share the values of `columns` (the grain).
        data_tests:
          - analytics_unique_combination:
              arguments:
                columns: [funnel_name, breakdown_name, breakdown_value, step_number]

    analytics_between: every non-null value of the column lies in [min_value, max_value].
-#}
{% test analytics_unique_combination(model, columns) %}
select
    {{ columns | join(', ') }},
    count(*) as duplicate_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}


{% test analytics_between(model, column_name, min_value=none, max_value=none) %}
select *
from {{ model }}
where {{ column_name }} is not null
  and (
    {%- if min_value is not none %} {{ column_name }} < {{ min_value }}{% endif %}
    {%- if min_value is not none and max_value is not none %} or{% endif %}
    {%- if max_value is not none %} {{ column_name }} > {{ max_value }}{% endif %}
  )
{% endtest %}
