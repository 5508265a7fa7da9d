{#-
    Incremental helpers shared by the incremental models (README.md, "Incremental strategy").

    Every incremental model keeps
      - a watermark column: the raw `loaded_at` (fct_events) or `source_loaded_at`, the latest ingest
        time of the raw rows a row was computed from. Rows are data, so a full refresh gives the same
        values. A run treats every raw row loaded after max(watermark) of its own table as new;
      - `processed_at`: when the dbt invocation that wrote the row started (bookkeeping: data tests of
        incremental models check the latest batch, see get_where_subquery below);
      - customer-scoped analytics models also keep `definition_hash`: a hash of the vars the rows were
        computed with (funnel/retention/path definitions, explicit as-of). Rows of another hash are
        stale: the watermark only counts current rows (so a definition change recomputes every
        customer) and a post-hook deletes the others, including the tombstones ('deleted') a run
        writes for customers that have nothing left (a visitor whose history moved to a member).
    Replacement is `delete+insert` on the scope key (event, device, customer, user, anonymous id),
    available on DuckDB and PostgreSQL; elsewhere the scoped models are plain tables.
-#}

{#- The start of this dbt invocation (UTC) as a SQL timestamp: processed_at of the rows it writes. -#}
{% macro run_started_at_sql() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}


{#- Materialization of the models replaced scope by scope (delete+insert). -#}
{% macro scoped_materialization() -%}
    {{- return('incremental' if target.type in ('duckdb', 'postgres') else 'table') -}}
{%- endmacro %}

{#- The config of a model replaced scope by scope (customers, sessions): scoped_materialization(),
    delete+insert on `unique_key`, and — with `current_hash` — the post-hook delete_superseded_rows.
    Returns the dict a model passes to config(**…). -#}
{% macro scoped_config(unique_key, current_hash=none, on_schema_change='append_new_columns') -%}
    {%- set model_config = {
        'materialized': scoped_materialization(),
        'unique_key': unique_key,
        'incremental_strategy': 'delete+insert',
        'on_schema_change': on_schema_change,
    } -%}
    {%- if current_hash is not none -%}
        {%- do model_config.update({'post_hook': "{{ delete_superseded_rows('" ~ current_hash ~ "') }}"}) -%}
    {%- endif -%}
    {{- return(model_config) -}}
{%- endmacro %}


{#- The raw rows an incremental run (re)reads: loaded after the latest load this model has
    already processed, minus var incremental_lookback_days (0 by default: ingestion stamps every
    (re)load with a new loaded_at). Only rows of the current definition_hash count, when given;
    an empty table gives 1900-01-01 (everything is new). -#}
{% macro incremental_watermark(column='source_loaded_at', definition_hash=none) -%}
    {%- set lookback = var('incremental_lookback_days', 0) | int -%}
    {%- set latest = 'max(' ~ column ~ ')' -%}
    (select coalesce(
        {{ dbt.dateadd('day', -1 * lookback, latest) if lookback > 0 else latest }},
        cast('1900-01-01 00:00:00' as {{ dbt.type_timestamp() }}))
     from {{ this }}
     {%- if definition_hash is not none %}
     where definition_hash = '{{ definition_hash }}'
     {%- endif %})
{%- endmacro %}


{#- A stable hash of a structure (the vars a model's rows depend on). -#}
{% macro definition_hash(parts) -%}
    {{- return(local_md5(tojson(parts, sort_keys=true))) -}}
{%- endmacro %}


{#- The explicit as-of settings (empty when the default, "the latest data", applies). -#}
{% macro explicit_as_of() -%}
    {%- set found = {} -%}
    {%- for name in ['as_of_date', 'analytics_as_of'] -%}
        {%- set value = var(name, none) -%}
        {%- if value is not none and (value | string | trim) not in ('', 'none', 'null', 'None') -%}
            {%- do found.update({name: value | string | trim}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(found) -}}
{%- endmacro %}


{#- Post-hook of the customer-scoped models: drop rows of another definition_hash (stale rows after a
    definition change, and this run's tombstones). -#}
{% macro delete_superseded_rows(current_hash) -%}
    {%- if is_incremental() -%}
    delete from {{ this }} where definition_hash <> '{{ current_hash }}'
    {%- else -%}
    select 1 as nothing_to_delete
    {%- endif -%}
{%- endmacro %}


{#- The rows of `relation` on some devices: anonymous_id in (`anonymous_ids`, a one-column query) and,
    for rows without a device, `customer_column` in (`deviceless_customers`); `where`, when given, is
    added to both. Two semi-joins in a union all rather than one filter with OR: an OR of IN-subqueries
    makes DuckDB read every projected column of every row before filtering (fct_events' incremental
    select at 10M rows: 3.4-3.8 s with the OR, 2.8-2.9 s with this). -#}
{% macro rows_on_devices(relation, columns, anonymous_ids, deviceless_customers, customer_column='customer_id', where=none) -%}
    select {{ columns }}
    from {{ relation }}
    where anonymous_id in ({{ anonymous_ids }}){% if where %} and ({{ where }}){% endif %}

    union all

    select {{ columns }}
    from {{ relation }}
    where anonymous_id is null and {{ customer_column }} in ({{ deviceless_customers }}){% if where %} and ({{ where }}){% endif %}
{%- endmacro %}


{#- CTEs `<prefix>_relinked` and `<prefix>_customers`: the customers whose facts may have changed since
    `watermark` (a SQL timestamp expression):
      - customers of the events loaded since (fct_events.loaded_at; the events fct_events re-sessionised
        belong to the same customers);
      - for every device linked to a member since (identify/alias calls, events carrying both ids):
        every customer with events on it now, its visitor key 'anon:<anonymous_id>' and every member an
        identify/alias call links it to — a superset of whoever owned its anonymous history before
        (the identity graph only ever maps a device to one of these);
      - with orders=true, the users of the order versions loaded since.
    `event_condition` (SQL over fct_events columns) limits the first kind to the new events that can
    matter to the model (e.g. the funnel steps: other events never change a customer's funnels).
    Models calling it need `-- depends_on:` comments for fct_events and stg_segment__identifies (and
    the shop source): refs inside `is_incremental()` branches are not seen at parse time. -#}
{% macro changed_customers_ctes(watermark, prefix='changed', orders=false, event_condition=none) -%}
{{ prefix }}_relinked as (
    select anonymous_id
    from {{ ref('stg_segment__identifies') }}
    where loaded_at > {{ watermark }} and user_id is not null and anonymous_id is not null
    union
    select previous_id
    from {{ ref('stg_segment__identifies') }}
    where loaded_at > {{ watermark }} and user_id is not null and previous_id is not null
    union
    select anonymous_id
    from {{ ref('fct_events') }}
    where loaded_at > {{ watermark }} and user_id is not null and anonymous_id is not null
),

{{ prefix }}_customers as (
    select customer_id
    from {{ ref('fct_events') }}
    where loaded_at > {{ watermark }}
    {%- if event_condition %}
      and {{ event_condition }}
    {%- endif %}

    union

    select customer_id
    from {{ ref('fct_events') }}
    where anonymous_id in (select anonymous_id from {{ prefix }}_relinked)

    union

    select {{ anonymous_customer_id('anonymous_id') }}
    from {{ prefix }}_relinked

    union

    select user_id
    from {{ ref('stg_segment__identifies') }}
    where user_id is not null
      and (anonymous_id in (select anonymous_id from {{ prefix }}_relinked)
           or previous_id in (select anonymous_id from {{ prefix }}_relinked))
    {%- if orders %}

    union

    select {{ nullif_blank('user_id') }}
    from {{ source('shop', 'orders') }}
    where loaded_at > {{ watermark }} and {{ nullif_blank('user_id') }} is not null
    {%- endif %}
)
{%- endmacro %}


{#- CTEs changed_relinked, changed_customers (changed_customers_ctes with orders=true) and
    `scoped_customers`: those customers, plus (without an explicit as-of) the customers with an order
    placed after the previous as-of instant (the latest event then) and up to the current one — read
    for the first time now, although loaded before. The scope of the customer-scoped models whose
    rows depend on a customer's events and orders up to the as-of instant. Same `-- depends_on:`
    comments as changed_customers_ctes (and fct_orders). -#}
{% macro order_scoped_customers_ctes(watermark) -%}
{{ changed_customers_ctes(watermark, orders=true) }},

scoped_customers as (
    select customer_id from changed_customers
    {%- if not explicit_as_of() %}
    union
    select customer_id
    from {{ ref('fct_orders') }}
    where customer_id is not null
      and ordered_at <= {{ analytics_as_of_sql() }}
      and ordered_at > (select max(event_at) from {{ ref('fct_events') }} where loaded_at <= {{ watermark }})
    {%- endif %}
)
{%- endmacro %}


{#- Data tests of incremental models check the latest batch (README.md, "Tests of incremental models").
    A test's `where` may use the placeholders
      __latest_batch__                   rows written by the latest run that wrote any:
                                         processed_at >= max(processed_at) of the tested table
      __latest_load(<source>.<table>)__  rows of the latest raw load: loaded_at >= max(loaded_at) of
                                         that source table (views over raw: cheap to evaluate)
    expanded at run time; any other `where` is applied as is. -#}
{% macro expand_batch_placeholders(where, relation) -%}
    {%- set where = where | replace('__latest_batch__', 'processed_at >= (select max(processed_at) from ' ~ relation ~ ')') -%}
    {%- if not execute -%}{{ return(where) }}{%- endif -%}
    {%- set expanded = namespace(where=where) -%}
    {%- for part in where.split('__latest_load(')[1:] -%}
        {%- set name = part.split(')__')[0] -%}
        {%- set found = [] -%}
        {%- for node in graph.sources.values() -%}
            {%- if node.source_name ~ '.' ~ node.name == name -%}{%- do found.append(node.relation_name) -%}{%- endif -%}
        {%- endfor -%}
        {%- if not found -%}
            {{ exceptions.raise_compiler_error("unknown source in __latest_load(" ~ name ~ ")__") }}
        {%- endif -%}
        {%- set expanded.where = expanded.where | replace('__latest_load(' ~ name ~ ')__', 'loaded_at >= (select max(loaded_at) from ' ~ found[0] ~ ')') -%}
    {%- endfor -%}
    {{- return(expanded.where) -}}
{%- endmacro %}


{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ expand_batch_placeholders(where, relation) }}) dbt_subquery
        {%- endset -%}
        {{- return(filtered) -}}
    {%- else -%}
        {{- return(relation) -}}
    {%- endif -%}
{%- endmacro %}


{#- Generic test: `column_name` is unique over the whole table, checked for the keys of the latest batch
    (`latest`, a filter or placeholder as above) only: rows outside the batch were not touched by the
    run and were unique before it, so this is equivalent — at the cost of a semi-join instead of a full
    group by. When the batch is the whole table (a full build) it is a plain unique test. -#}
{% test unique_incremental(model, column_name, latest='__latest_batch__') %}
{%- set latest = expand_batch_placeholders(latest, model) %}
{%- set whole_table = false %}
{%- if execute %}
    {%- set older = run_query('select 1 from ' ~ model ~ ' where not (' ~ latest ~ ') limit 1') %}
    {%- set whole_table = (older.rows | length == 0) %}
{%- endif %}
select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
{%- if not whole_table %}
where {{ column_name }} in (
    select {{ column_name }}
    from {{ model }}
    where {{ latest }}
)
{%- endif %}
group by {{ column_name }}
having count(*) > 1
{% endtest %}


{#- Tombstone rows of a customer-scoped model: one per changed key with no row left in `present`
    (a CTE of this run's rows): the key, NULL everywhere else, definition_hash 'deleted'. `columns`
    is the model's column list in order. delete+insert removes the key's old rows; the post-hook
    (delete_superseded_rows) removes the tombstone. -#}
{% macro tombstone_rows(changed, present, columns, key='customer_id') -%}
    select
        {%- for column in columns %}
        {% if column == key -%}
        {{ changed }}.{{ key }}
        {%- elif column == 'definition_hash' -%}
        cast('deleted' as {{ dbt.type_string() }})
        {%- else -%}
        null
        {%- endif %} as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ changed }}
    where {{ changed }}.{{ key }} not in (select {{ key }} from {{ present }} where {{ key }} is not null)
{%- endmacro %}
