{#- One row per campaign and allocation round (activations.allocation_rounds): the split in force when
    that round's customers were assigned. When the table does not exist yet the model returns no rows,
    same columns (macro ledger_source_or_empty). -#}
{{ ledger_source_or_empty(source('activations', 'allocation_rounds'), [
    {'name': 'campaign', 'type': dbt.type_string()},
    {'name': 'allocation_round', 'type': dbt.type_int(), 'expr': adapter.quote('round')},
    {'name': 'decided_at', 'type': dbt.type_timestamp()},
    {'name': 'allocation_mode', 'type': dbt.type_string(), 'expr': 'mode'},
    {'name': 'holdout_share', 'type': analytics_type_double()},
    {'name': 'variant_weights', 'type': dbt.type_string(), 'expr': 'weights'},
]) }}
