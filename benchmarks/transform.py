"""dbt build time at a given scale, and the cost of an incremental run after one more landing day.

    python benchmarks/transform.py [--events 1000000] [--events 10000000]

For each size: generate the events, ingest every landing day but the last, run a full `dbt build`
(the named baseline), ingest the last landing day, run `dbt build` again (incremental models only
process the new day plus their lookback), and print both times and their ratio. The incremental run
should cost a small fraction of the full build.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from goldentime.ingest.events import load_events  # noqa: E402
from goldentime.ingest.landing import landing_files  # noqa: E402
from goldentime.ingest.orders import load_orders  # noqa: E402
from goldentime.sample_data import generate  # noqa: E402


def dbt_build(warehouse: Path, work: Path, *extra: str) -> tuple[float, str]:
    env = dict(os.environ, GOLDENTIME_DUCKDB=str(warehouse))
    dbt = str(Path(sys.executable).parent / "dbt")
    # As the Dagster asset runs it: unit tests (fixed rows, no data) run in the test suite, not here.
    command = [dbt, "build", "--exclude-resource-type", "unit_test", "--project-dir", str(REPO / "dbt_project"),
               "--profiles-dir", str(REPO / "dbt_project"), "--target-path", str(work / "target"),
               "--log-path", str(work / "logs"), *extra]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"dbt build failed:\n{result.stdout[-3000:]}")
    summary = next((l for l in reversed(result.stdout.splitlines()) if "PASS=" in l), "")
    return seconds, summary.split("Done.")[-1].strip()


def ingest(warehouse: Path, files_by_feed: dict) -> float:
    started = time.perf_counter()
    con = duckdb.connect(str(warehouse))
    load_events(con, files_by_feed["events"])
    load_orders(con, files_by_feed["orders"])
    con.close()
    return time.perf_counter() - started


def run(events: int, root: Path) -> None:
    landing = root / "landing"
    warehouse = root / "warehouse.duckdb"
    summary = generate(landing, events=events)
    files = {feed: landing_files(str(landing), feed) for feed in ("events", "orders")}
    last_day = max(f.day for f in files["events"])
    before = {feed: [f for f in fs if f.day < last_day] for feed, fs in files.items()}
    last = {feed: [f for f in fs if f.day == last_day] for feed, fs in files.items()}

    ingest_seconds = ingest(warehouse, before)
    full, full_summary = dbt_build(warehouse, root)
    ingest(warehouse, last)
    incremental, incremental_summary = dbt_build(warehouse, root)
    refresh, _ = dbt_build(warehouse, root, "--full-refresh")
    con = duckdb.connect(str(warehouse), read_only=True)
    rows = con.execute("select count(*) from marts.fct_events").fetchall()[0][0]
    customers = con.execute("select count(*) from marts.dim_customers").fetchall()[0][0]
    con.close()

    print(f"\n{summary.events:,} events ({summary.lines_written:,} lines), {summary.days} days; "
          f"fct_events {rows:,} rows, dim_customers {customers:,} rows")
    print(f"  ingest of all days but the last      {ingest_seconds:8.1f} s")
    print(f"  dbt build, full (baseline)           {full:8.1f} s   {full_summary}")
    print(f"  dbt build after one more day         {incremental:8.1f} s   {incremental / full:6.1%} of the full build")
    print(f"  dbt build --full-refresh (all days)  {refresh:8.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, action="append", help="repeatable; default 1,000,000")
    args = parser.parse_args()
    for events in args.events or [1_000_000]:
        root = Path(tempfile.mkdtemp(prefix="goldentime-transform-"))
        try:
            run(events, root)
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
