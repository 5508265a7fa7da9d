"""Build the dbt project on a small hand-made warehouse — helpers shared by the dbt tests.

Typical use (a module-scoped fixture builds once, the tests read the result)::

    from tests.dbt_helpers import alias, build_warehouse, identify, order, page, track

    @pytest.fixture(scope="module")
    def wh(tmp_path_factory):
        events = [page("p1", at="2026-01-05 10:00", anonymous_id="dev-1", path="/"),
                  track("t1", "Product Viewed", at="2026-01-05 10:01", user_id="u1", anonymous_id="dev-1",
                        properties={"product_id": "P1", "category": "fashion"})]
        con = build_warehouse(tmp_path_factory.mktemp("wh") / "warehouse.duckdb", events=events,
                              identifies=[identify("i1", at="2026-01-05 10:00:30", user_id="u1",
                                                   anonymous_id="dev-1", traits={"email": "a@b.c"})],
                              orders=[order("o1", "u1", at="2026-01-05 10:02", revenue=1000)])
        yield con
        con.close()

    def test_x(wh):
        assert wh.execute("select count(*) from marts.fct_events").fetchone() == (2,)

API
- Row builders `track`, `page`, `identify`, `alias`, `order` return one raw row (a dict with the raw
  table's column names). Times are 'YYYY-MM-DD HH:MM[:SS]' in UTC, or ISO-8601 with an offset
  (converted to UTC). `landing_date` defaults to the event's UTC date.
- `load_raw(path, events=, identifies=, orders=)` appends rows to the raw tables (created if missing).
- `run_dbt(path, *args, vars=None)` runs the dbt CLI of this environment on the project with
  GOLDENTIME_DUCKDB=path (artifacts and logs in a temporary folder, never in dbt_project/target);
  returns the CompletedProcess, raises DbtFailed (with the end of dbt's output) when dbt fails.
- `build_warehouse(path, events=, identifies=, orders=, vars=None, select=None, args=())`:
  load_raw + `dbt build` (optionally `--select select`), then a read-only DuckDB connection.
- `INCREMENTAL_TABLES` / `DERIVED_TABLES`: the incremental models, and the tables built from them.
  `table_differences(a, b, tables)` compares those tables of two warehouse files row for row (as
  multisets, every column but the `processed_at` bookkeeping) and returns the ones that differ;
  `full_refresh_copy(path, dst)` copies a warehouse and rebuilds the copy with `--full-refresh` — the
  reference an incremental build must equal.
Raw rows bypass the ingest code on purpose (no landing files needed); what ingestion guarantees
— one row per messageId, UTC times — is up to the test data.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import date, datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"

_line_numbers = itertools.count(1)


class DbtFailed(AssertionError):
    pass


def utc(value: str | datetime) -> datetime:
    """'2026-01-05 10:00' (UTC) or '2026-01-05T19:00:00+09:00' → naive UTC datetime."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def _context(context, *, path, url, referrer, title, utm, device_type, tz) -> dict | None:
    context = dict(context or {})
    page = dict(context.get("page") or {})
    for key, value in (("path", path), ("url", url), ("referrer", referrer), ("title", title)):
        if value is not None:
            page[key] = value
    if page:
        context["page"] = page
    if utm:
        context["campaign"] = dict(utm)
    if device_type:
        context["device"] = {"type": device_type}
    if tz:
        context["timezone"] = tz
    return context or None


def _event(call_type: str, message_id: str, *, at, event=None, page_name=None, user_id=None,
           anonymous_id=None, properties=None, context=None, landing_date=None, **page_fields) -> dict:
    event_at = utc(at)
    ctx = _context(context, **page_fields)
    payload = {"type": call_type, "messageId": message_id, "timestamp": event_at.isoformat() + "Z"}
    payload.update({k: v for k, v in (("event", event), ("name", page_name), ("userId", user_id),
                                      ("anonymousId", anonymous_id), ("properties", properties),
                                      ("context", ctx)) if v is not None})
    return {
        "message_id": message_id, "type": call_type, "event": event, "page_name": page_name,
        "user_id": user_id, "anonymous_id": anonymous_id, "event_at": event_at,
        "original_timestamp": event_at, "sent_at": None, "received_at": event_at,
        "properties": json.dumps(properties) if properties is not None else None,
        "context": json.dumps(ctx) if ctx is not None else None,
        "payload": json.dumps(payload),
        "landing_date": date.fromisoformat(landing_date) if landing_date else event_at.date(),
    }


def track(message_id: str, event: str, *, at, user_id=None, anonymous_id=None, properties=None,
          path=None, url=None, referrer=None, title=None, utm=None, device_type=None, tz=None,
          context=None, landing_date=None) -> dict:
    """A raw.events track row. utm: {'source':…, 'medium':…, 'name':…} (context.campaign)."""
    return _event("track", message_id, at=at, event=event, user_id=user_id, anonymous_id=anonymous_id,
                  properties=properties, context=context, landing_date=landing_date, path=path, url=url,
                  referrer=referrer, title=title, utm=utm, device_type=device_type, tz=tz)


def page(message_id: str, *, at, path="/", name=None, user_id=None, anonymous_id=None, url=None,
         referrer=None, title=None, utm=None, device_type=None, tz=None, properties=None, context=None,
         landing_date=None) -> dict:
    """A raw.events page row (url defaults to https://www.goldentime.shop<path>)."""
    return _event("page", message_id, at=at, page_name=name, user_id=user_id, anonymous_id=anonymous_id,
                  properties=properties, context=context, landing_date=landing_date, path=path,
                  url=url or f"https://www.goldentime.shop{path}", referrer=referrer, title=title, utm=utm,
                  device_type=device_type, tz=tz)


def identify(message_id: str, *, at, user_id, anonymous_id=None, traits=None, landing_date=None) -> dict:
    """A raw.identifies identify row."""
    moment = utc(at)
    payload = {"type": "identify", "messageId": message_id, "userId": user_id, "anonymousId": anonymous_id,
               "traits": traits or {}, "timestamp": moment.isoformat() + "Z"}
    return {
        "message_id": message_id, "type": "identify", "user_id": user_id, "anonymous_id": anonymous_id,
        "previous_id": None, "traits": json.dumps(traits or {}), "event_at": moment,
        "original_timestamp": moment, "sent_at": None, "received_at": moment, "context": None,
        "payload": json.dumps(payload),
        "landing_date": date.fromisoformat(landing_date) if landing_date else moment.date(),
    }


def alias(message_id: str, *, at, user_id, previous_id, landing_date=None) -> dict:
    """A raw.identifies alias row (previous_id merged into user_id)."""
    moment = utc(at)
    payload = {"type": "alias", "messageId": message_id, "userId": user_id, "previousId": previous_id,
               "timestamp": moment.isoformat() + "Z"}
    return {
        "message_id": message_id, "type": "alias", "user_id": user_id, "anonymous_id": None,
        "previous_id": previous_id, "traits": None, "event_at": moment, "original_timestamp": moment,
        "sent_at": None, "received_at": moment, "context": None, "payload": json.dumps(payload),
        "landing_date": date.fromisoformat(landing_date) if landing_date else moment.date(),
    }


def order(order_id: str, user_id: str, *, at, revenue, status="completed", currency="KRW", item_count=1,
          landing_date=None) -> dict:
    """A raw.orders row (one version of an order; a later status is another row)."""
    moment = utc(at)
    return {
        "order_id": order_id, "user_id": user_id, "ordered_at": moment, "status": status,
        "currency": currency, "revenue": revenue, "item_count": item_count,
        "raw_line": f"{order_id},{user_id},{moment.isoformat()}Z,{status},{currency},{revenue},{item_count}",
        "landing_date": date.fromisoformat(landing_date) if landing_date else moment.date(),
    }


def load_raw(path: str | Path, *, events=(), identifies=(), orders=()) -> None:
    """Append rows to raw.events / raw.identifies / raw.orders of the DuckDB file at `path`."""
    import duckdb

    from goldentime.ingest.schema import ensure_raw_schema

    con = duckdb.connect(str(path))
    try:
        ensure_raw_schema(con)
        loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
        for table, rows in (("events", events), ("identifies", identifies), ("orders", orders)):
            for row in rows:
                row = dict(row, source_file=f"test/{table}", line_no=next(_line_numbers),
                           loaded_at=loaded_at, run_id="test")
                columns = ", ".join(row)
                marks = ", ".join("?" for _ in row)
                con.execute(f"insert into raw.{table} ({columns}) values ({marks})", list(row.values()))
    finally:
        con.close()


def dbt_executable() -> str:
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def run_dbt(path: str | Path, *args: str, vars: dict | None = None) -> subprocess.CompletedProcess:
    """Run `dbt <args>` on dbt_project/ against the DuckDB file at `path` (absolute)."""
    scratch = Path(tempfile.mkdtemp(prefix="dbt-run-"))
    command = [dbt_executable(), *args, "--profiles-dir", str(DBT_PROJECT_DIR),
               "--project-dir", str(DBT_PROJECT_DIR), "--target-path", str(scratch / "target"),
               "--log-path", str(scratch / "logs")]
    if vars:
        command += ["--vars", json.dumps(vars, default=str)]
    env = dict(os.environ, GOLDENTIME_DUCKDB=str(Path(path).resolve()), DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    result = subprocess.run(command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise DbtFailed(f"dbt {' '.join(args)} failed (exit {result.returncode}):\n" + result.stdout[-6000:] + result.stderr[-2000:])
    return result


def build_warehouse(path: str | Path, *, events=(), identifies=(), orders=(), vars: dict | None = None,
                    select: str | None = None, args=()):
    """Load the rows, `dbt build` (the whole project, or `--select select`), return a read-only connection."""
    import duckdb

    load_raw(path, events=events, identifies=identifies, orders=orders)
    command = ["build", *args]
    if select:
        command += ["--select", select]
    run_dbt(path, *command, vars=vars)
    return duckdb.connect(str(path), read_only=True)


# Incremental models (README.md, "Incremental strategy") and the tables built from them: what the
# "incremental equals full refresh" tests compare. (fct_behavioural_cohort_members keeps one snapshot
# per run by design: a full refresh only has the latest.)
INCREMENTAL_TABLES = (
    "intermediate.int_identity_graph", "marts.fct_events", "marts.fct_sessions", "intermediate.int_customer_facts",
    "intermediate.int_funnel_steps_reached", "intermediate.int_retention_periods_returned",
    "intermediate.int_path_steps_sequenced", "intermediate.int_path_windows", "intermediate.int_repurchase_return_periods",
)
DERIVED_TABLES = (
    "marts.fct_orders", "marts.dim_customers", "intermediate.int_repurchase_cohorts_assigned",
    "marts.fct_funnel_conversion", "marts.fct_funnel_dropoff_cohorts", "marts.fct_retention_cohorts",
    "marts.fct_retention_averages", "marts.fct_repurchase_retention_comparison", "marts.fct_path_sequences",
    "marts.fct_path_edges",
)


def full_refresh_copy(path: str | Path, dst: str | Path, *args: str, vars: dict | None = None) -> Path:
    """Copy the warehouse at `path` (same raw rows, same loaded_at) and rebuild the copy from scratch."""
    shutil.copyfile(path, dst)
    run_dbt(dst, "run", "--full-refresh", *args, vars=vars)
    return Path(dst)


def table_differences(a: str | Path, b: str | Path, tables=INCREMENTAL_TABLES + DERIVED_TABLES,
                      ignore=("processed_at",)) -> dict:
    """{table: (rows only in a, rows only in b)} for the tables whose rows differ (multisets; every
    column but `ignore`). An empty dict: the two warehouses hold the same tables."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"attach '{a}' as a (read_only)")
        con.execute(f"attach '{b}' as b (read_only)")
        differences = {}
        for table in tables:
            schema, name = table.split(".")
            columns = [c for (c,) in con.execute(
                "select column_name from duckdb_columns() where database_name = 'a' and schema_name = ? "
                "and table_name = ? order by column_index", [schema, name]).fetchall() if c not in ignore]
            assert columns, f"{table} not found in {a}"
            listed = ", ".join(f'"{c}"' for c in columns)
            counts = [con.execute(f"select count(*) from (select {listed} from {x}.{table} except all "
                                  f"select {listed} from {y}.{table})").fetchone()[0] for x, y in (("a", "b"), ("b", "a"))]
            if any(counts):
                differences[table] = tuple(counts)
        return differences
    finally:
        con.close()
