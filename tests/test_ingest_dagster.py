"""Real Dagster materialisations of the ingest assets and real sensor evaluations."""

import os
from datetime import date

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from orchestration.defs.ingest.assets import raw_orders, raw_segment_calls
from orchestration.defs.ingest.sensors import landing_zone_sensor
from orchestration.resources import LandingZone
from tests.conftest import track

DAY = date(2026, 1, 2)


@pytest.fixture
def resources(tmp_path, landing):
    return {
        "warehouse": DuckDBResource(database=str(tmp_path / "warehouse.duckdb")),
        "landing": LandingZone(url=str(landing.root)),
    }


def test_materialising_a_landing_day_loads_checks_and_reports(resources, landing, tmp_path):
    landing.events(DAY, "a", [
        track("m1", userId="u1"), track("m1", userId="u1"), track("m2", "Order Completed", userId="u1"),
        {"type": "identify", "messageId": "i1", "userId": "u1", "timestamp": "2026-01-02T00:00:00Z",
         "traits": {"email": "lee@example.com"}},
        "{broken",
    ], gzip=True)
    landing.orders(DAY, "orders", "order_id,user_id,ordered_at,status,currency,revenue,item_count\n"
                   "o1,u1,2026-01-02T00:00:00Z,completed,KRW,39000,1\n")

    result = dg.materialize([raw_segment_calls, raw_orders], partition_key=DAY.isoformat(), resources=resources)

    assert result.success
    events_meta = _metadata(result, "raw/events")
    assert events_meta["lines_read"].value == 5
    assert (events_meta["loaded"].value, events_meta["duplicates"].value, events_meta["quarantined"].value) == (3, 1, 1)
    assert events_meta["quarantined_by_reason"].value == {"invalid_json": 1}
    assert events_meta["dagster/row_count"].value == 2
    assert "lee@example.com" not in str(_metadata(result, "raw/identifies")["preview"].value)
    assert _metadata(result, "raw/orders")["dagster/row_count"].value == 1
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 12 and all(e.passed for e in evaluations)


def test_a_failed_check_is_reported_as_an_error(resources, landing, tmp_path, monkeypatch):
    landing.events(DAY, "a", [track("m1", userId="u1")])
    # A row slipped in by another writer (not through the loader): same messageId, another day.
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    from goldentime.ingest.schema import ensure_raw_schema
    ensure_raw_schema(con)
    con.execute("""insert into raw.events (message_id, type, event, event_at, payload, landing_date, source_file, line_no, loaded_at, anonymous_id)
                   values ('m1', 'track', 'X', '2026-01-01', '{}', '2026-01-01', 'manual', 1, now(), 'a')""")
    con.close()
    # Reload with the loader's own dedupe turned off, to prove the check does its job.
    monkeypatch.setattr("goldentime.ingest.loading.rank_copies", _rank_without_history)

    result = dg.materialize([raw_segment_calls], partition_key=DAY.isoformat(), resources=resources, raise_on_error=False)

    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert "unique_message_id" in failed
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == "unique_message_id" and e.asset_key.path[-1] == "events"]
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR


def _rank_without_history(con, feed):
    con.execute("create or replace temp table batch_days as select distinct landing_date from staged_rows")
    con.execute("""create or replace temp table ranked_rows as
        select row_index, message_id, landing_date as kept_landing_date, source_file as kept_source_file,
               line_no as kept_line_no, true as is_kept
        from staged_rows where reason is null""")


def test_sensor_requests_each_new_or_changed_landing_day_once(landing):
    landing.events(DAY, "a", [track("m1")])
    landing.orders(date(2026, 1, 3), "o", "order_id,user_id,ordered_at,status,revenue\n")
    resources = {"landing": LandingZone(url=str(landing.root))}

    first = landing_zone_sensor(dg.build_sensor_context(resources=resources))
    requests = sorted((r.partition_key, tuple(sorted(k.to_user_string() for k in r.asset_selection))) for r in first.run_requests)
    assert requests == [("2026-01-02", ("raw/events", "raw/identifies")), ("2026-01-03", ("raw/orders",))]

    unchanged = landing_zone_sensor(dg.build_sensor_context(cursor=first.cursor, resources=resources))
    assert isinstance(unchanged, dg.SkipReason)

    path = landing.events(DAY, "a", [track("m1"), track("m2")])
    os.utime(path, (1_800_000_000, 1_800_000_000))
    changed = landing_zone_sensor(dg.build_sensor_context(cursor=first.cursor, resources=resources))
    assert [r.partition_key for r in changed.run_requests] == ["2026-01-02"]


def test_sensor_explains_a_missing_landing_zone(tmp_path):
    result = landing_zone_sensor(dg.build_sensor_context(resources={"landing": LandingZone(url=str(tmp_path / "nowhere"))}))
    assert isinstance(result, dg.SkipReason) and "does not exist" in result.skip_message


def _metadata(result, key):
    [materialization] = [m for m in result.asset_materializations_for_node(
        "raw_segment_calls" if key != "raw/orders" else "raw_orders") if m.asset_key.to_user_string() == key]
    return materialization.metadata
