"""The shipped audiences on real dbt marts built from generated sample data: every spec compiles
against the real columns, priorities and the law hold, holdouts never receive anything, the payloads
are lawful, and a second run sends nothing."""

from __future__ import annotations

from datetime import date, timezone
from pathlib import Path

import duckdb
import pytest

from activations.audiences.evaluate import evaluate
from activations.audiences.run import activate
from activations.audiences.spec import load_config, load_specs
from activations.destinations import OutboxDestination, SnapshotFileDestination
from activations.sync.ledger import SCHEMA
from goldentime.ingest.events import load_events
from goldentime.ingest.landing import landing_files
from goldentime.ingest.orders import load_orders
from goldentime.sample_data import generate
from tests.dbt_helpers import run_dbt

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("shop")
    landing = root / "landing"
    generate(landing, customers=1500, start=date(2026, 1, 1), days=30, seed=5, gzip=False)
    path = root / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    load_events(con, landing_files(str(landing), "events"))
    load_orders(con, landing_files(str(landing), "orders"))
    con.close()
    run_dbt(path, "build", "--exclude-resource-type", "unit_test")
    con = duckdb.connect(str(path))
    # Stand-in scores with the real columns (the ML assets have their own end-to-end tests).
    con.execute("CREATE SCHEMA IF NOT EXISTS ml")
    con.execute("""CREATE TABLE ml.customer_scores AS
        SELECT customer_id, DATE '2026-01-30' AS scoring_date, revenue * 1.5 AS predicted_ltv,
               revenue * 1.5 * 0.4 AS save_priority,
               CASE WHEN percent_rank() OVER (ORDER BY revenue DESC) < 0.2 AND revenue > 0 THEN 'high'
                    WHEN revenue > 0 THEN 'middle' ELSE 'low' END AS value_tier,
               ['P1']::VARCHAR[] AS recommended_products
        FROM marts.dim_customers""")
    as_of = con.execute("SELECT max(event_at) FROM marts.fct_events").fetchall()[0][0].replace(tzinfo=timezone.utc)
    yield con, root, as_of
    con.close()


def test_every_shipped_audience_runs_on_the_real_marts(shop):
    con, root, as_of = shop
    specs = load_specs(ROOT / "audiences")
    config = load_config(ROOT / "audiences")
    evaluations = evaluate(con, specs, as_of)
    assert sum(len(ev.members) for ev in evaluations.values()) > 0
    env = {"GOLDENTIME_UNSUBSCRIBE_SECRET": "test"}
    boxes = {}
    for name, spec in specs.items():
        path = root / "out" / f"{name}.{'parquet' if spec.mode == 'mirror' else 'jsonl'}"
        destination = SnapshotFileDestination(str(path)) if spec.mode == "mirror" else OutboxDestination(str(path))
        boxes[name] = destination
        run = activate(con, spec, specs, config, root, as_of, destination=destination, environ=env)
        ev = evaluations[name]
        assert run.qualified == len(ev.qualified) and run.after_priorities == len(ev.members)
        eligible = sum(run.arms.values())
        assert eligible + sum(run.ineligible.values()) == run.after_priorities
        sync = run.sync
        sent = eligible - run.arms.get("holdout", 0) - run.waiting
        assert sync.added + sync.suppressed + sync.deferred + sync.rejected == sent, name
        if spec.mode != "mirror":
            payloads = [line["payload"] for line in destination.delivered()]
            holdout = {r[0] for r in con.execute(
                f"SELECT customer_id FROM {SCHEMA}.assignments WHERE campaign = ? AND arm = 'holdout'", [name]).fetchall()}
            assert not holdout & {line["key"] for line in destination.delivered()}, name
            if spec.advertising:
                text_field = {"email": "subject", "sms": "text"}[spec.channel]
                assert all(p[text_field].startswith("(광고)") for p in payloads), name
            else:
                assert all("(광고)" not in str(p) for p in payloads), name
    # Nothing changed: a second pass sends nothing anywhere.
    for name, spec in specs.items():
        again = activate(con, spec, specs, config, root, as_of, destination=boxes[name], environ=env)
        assert again.sync.added == again.sync.changed == again.sync.removed == 0, name
