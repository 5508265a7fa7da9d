{#- One row per campaign and customer: the arm given before anything was sent (activations.assignments).
    When the table does not exist yet (no campaign ever ran) the model returns no rows, same columns
    (macro ledger_source_or_empty). -#}
{{ ledger_source_or_empty(source('activations', 'assignments'), [
    {'name': 'campaign', 'type': dbt.type_string()},
    {'name': 'customer_id', 'type': dbt.type_string()},
    {'name': 'arm', 'type': dbt.type_string()},
    {'name': 'allocation_round', 'type': dbt.type_int(), 'expr': adapter.quote('round')},
    {'name': 'assigned_at', 'type': dbt.type_timestamp()},
]) }}
