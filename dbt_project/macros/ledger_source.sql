{#- ledger_relation(source_relation): the relation of a ledger table the app creates on first use
    (activations.*) as it exists in the warehouse, or none when it does not exist yet (or at parse
    time). -#}
{% macro ledger_relation(source_relation) -%}
    {{- return(adapter.get_relation(
            database=source_relation.database, schema=source_relation.schema,
            identifier=source_relation.identifier) if execute else none) -}}
{%- endmacro %}


{#- ledger_source_or_empty(source_relation, columns): a staging select over a ledger table that may
    not exist yet. `columns` is the model's column list in order, each a dict with `name`, `type` (a
    SQL type) and optionally `expr` (SQL over the source's columns; default: the column `name`).
    When the table exists: select cast(expr as type) as name … from the table; otherwise the same
    columns as typed NULLs and no rows. Source TIMESTAMPTZ cast to dbt.type_timestamp() gives the
    UTC wall-clock TIMESTAMP (the session time zone is UTC: profiles.yml). -#}
{% macro ledger_source_or_empty(source_relation, columns) -%}
{%- set existing = ledger_relation(source_relation) -%}
select
    {%- for column in columns %}
    cast({{ (column.get('expr') or column.name) if existing is not none else 'null' }} as {{ column.type }}) as {{ column.name }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- if existing is not none %}
from {{ source_relation }}
{%- else %}
where 1 = 0
{%- endif %}
{%- endmacro %}
