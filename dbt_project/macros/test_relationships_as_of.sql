{#-
    Generic test: like `relationships`, but only for the child rows dated on or before the parent's
    as-of date (dim_customers describes customers as of a date; rows after it are legitimately absent).
        - relationships_as_of:
            arguments:
              to: ref('dim_customers')
              field: customer_id
              date_column: event_date
              as_of_column: as_of_date
-#}
{% test relationships_as_of(model, column_name, to, field, date_column, as_of_column='as_of_date') %}
with parent as (
    select {{ field }} as parent_key, {{ as_of_column }} as as_of_date from {{ to }}
),
as_of as (
    select max(as_of_date) as as_of_date from parent
)
select child.{{ column_name }}
from (select * from {{ model }}) as child
cross join as_of
where child.{{ column_name }} is not null
    and child.{{ date_column }} <= as_of.as_of_date
    and not exists (select 1 from parent where parent.parent_key = child.{{ column_name }})
{% endtest %}
