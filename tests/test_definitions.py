"""The code location loads and its asset graph is the one the docs describe."""

import dagster as dg

from orchestration.definitions import defs


def test_definitions_load_with_the_expected_assets_and_checks():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert {"raw/events", "raw/identifies", "raw/orders"} <= keys
    checks = {key.to_user_string() for key in graph.asset_check_keys}
    for table in ("events", "identifies"):
        for check in ("keys_not_null", "accepted_types", "timestamps_in_range", "unique_message_id"):
            assert f"raw/{table}:{check}" in checks
    assert {"raw/orders:keys_not_null", "raw/orders:unique_order_version"} <= checks


def test_every_raw_check_blocks_downstream_assets():
    graph = defs.resolve_asset_graph()
    raw_checks = [k for k in graph.asset_check_keys if k.asset_key.path[0] == "raw"]
    assert raw_checks and all(graph.get_check_spec(k).blocking for k in raw_checks)


def test_ingest_assets_are_daily_partitioned_writers_in_the_duckdb_pool():
    graph = defs.resolve_asset_graph()
    for key in ("raw/events", "raw/identifies", "raw/orders"):
        node = graph.get(dg.AssetKey.from_user_string(key))
        assert isinstance(node.partitions_def, dg.DailyPartitionsDefinition)
        assert node.pools == {"duckdb"}


def test_the_landing_zone_sensor_targets_the_ingest_job():
    sensor = defs.resolve_sensor_def("landing_zone_sensor")
    assert sensor.job_name == "ingest_job"
