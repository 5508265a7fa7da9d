{#- One row per record a sync run sent or attempted (activations.sync_log). For campaign sends
    sync_name = the campaign (or <campaign>@<channel> for a variant on another channel) and
    sync_key = customer_id. When the table does not exist yet the model
    returns no rows, same columns (macro ledger_source_or_empty). -#}
{%- set source_relation = source('activations', 'sync_log') -%}
{%- set existing = ledger_relation(source_relation) -%}
{%- set source_columns = adapter.get_columns_in_relation(existing) | map(attribute='name') | map('lower') | list
        if existing is not none else [] -%}
{#- campaign: a campaign variant on another channel syncs as <campaign>@<channel>; channel: ledgers
    created before frequency caps have no channel column (NULL). -#}
{{ ledger_source_or_empty(source_relation, [
    {'name': 'run_id', 'type': dbt.type_string()},
    {'name': 'sync_name', 'type': dbt.type_string()},
    {'name': 'campaign', 'type': dbt.type_string(), 'expr': dbt.split_part('sync_name', "'@'", 1)},
    {'name': 'sync_key', 'type': dbt.type_string(), 'expr': adapter.quote('key')},
    {'name': 'operation', 'type': dbt.type_string()},
    {'name': 'status', 'type': dbt.type_string()},
    {'name': 'status_message', 'type': dbt.type_string(), 'expr': nullif_blank('message')},
    {'name': 'attempt', 'type': dbt.type_int()},
    {'name': 'channel', 'type': dbt.type_string(),
     'expr': nullif_blank('channel') if 'channel' in source_columns else 'null'},
    {'name': 'logged_at', 'type': dbt.type_timestamp()},
    {'name': 'is_delivered_to_destination', 'type': dbt.type_boolean(),
     'expr': "(status = 'ok' and operation <> 'remove')"},
]) }}
