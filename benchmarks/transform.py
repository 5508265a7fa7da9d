"""dbt build time at a given scale, and the cost of an incremental run after one more landing day.

    python benchmarks/transform.py [--events 1000000] [--events 10000000] [--repeat 2] [--profile]

For each size: generate the events, ingest every landing day before the last full one (the generator
ends with a few small days of late arrivals: those come with it), run a full `dbt build` (the named
baseline), ingest that last day, run `dbt build` again — incremental models only process what the new
day touches (dbt_project/README.md, "Incremental strategy") — then `dbt build` with nothing new (the
floor every run pays: dbt start-up, every node, the tables that depend on the as-of instant), and
finally `dbt build --full-refresh` over all days. The full and the incremental builds run `--repeat`
times each from a copy of the same warehouse file (the machine is shared and noisy): best and median
are printed, and the ratio uses the medians. The incremental run should cost a small fraction of the
full build. `--profile` prints the slowest nodes of the median incremental run (run_results.json).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
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


def dbt_build(warehouse: Path, work: Path, *extra: str) -> tuple[float, str, list]:
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
    nodes = json.loads((work / "target" / "run_results.json").read_text())["results"]
    slowest = sorted(((n["execution_time"], n["unique_id"]) for n in nodes), reverse=True)
    return seconds, summary.split("Done.")[-1].strip(), slowest


def ingest(warehouse: Path, files_by_feed: dict) -> float:
    started = time.perf_counter()
    con = duckdb.connect(str(warehouse))
    load_events(con, files_by_feed["events"])
    load_orders(con, files_by_feed["orders"])
    con.close()
    return time.perf_counter() - started


def last_full_day(event_files) -> object:
    """The latest landing day holding at least half a median day of events (by file size)."""
    sizes: dict = {}
    for f in event_files:
        sizes[f.day] = sizes.get(f.day, 0) + f.size
    median = statistics.median(sizes.values())
    return max(day for day, size in sizes.items() if size >= median / 2)


def timed_runs(repeat: int, source: Path, warehouse: Path, work: Path, *extra: str) -> list:
    """Run `dbt build` `repeat` times, each on a fresh copy of `source`; the warehouse of the last run stays."""
    runs = []
    for _ in range(repeat):
        shutil.copyfile(source, warehouse)
        runs.append(dbt_build(warehouse, work, *extra))
    return runs


def describe(runs: list) -> tuple[float, str]:
    seconds = sorted(r[0] for r in runs)
    median = statistics.median(seconds)
    return median, f"best {seconds[0]:7.1f} s  median {median:7.1f} s" + (f"  (n={len(seconds)})" if len(seconds) > 1 else "")


def run(events: int, root: Path, repeat: int, profile: bool) -> None:
    landing = root / "landing"
    summary = generate(landing, events=events)
    files = {feed: landing_files(str(landing), feed) for feed in ("events", "orders")}
    day = last_full_day(files["events"])
    before = {feed: [f for f in fs if f.day < day] for feed, fs in files.items()}
    after = {feed: [f for f in fs if f.day >= day] for feed, fs in files.items()}

    raw = root / "before.duckdb"  # every day before the last full one: the input of each full build (not "raw.duckdb": the catalog would shadow schema raw)
    ingest_seconds = ingest(raw, before)
    warehouse = root / "warehouse.duckdb"
    full_runs = timed_runs(repeat, raw, warehouse, root / "work")
    ingest(warehouse, after)
    con = duckdb.connect(str(warehouse), read_only=True)
    new_events = con.execute("select count(*) from raw.events where landing_date >= ?", [day]).fetchall()[0][0]
    con.close()
    base = root / "base.duckdb"  # full build + the new day's raw rows: the input of each incremental run
    shutil.move(warehouse, base)
    incremental_runs = timed_runs(repeat, base, warehouse, root / "work")
    floor_runs = [dbt_build(warehouse, root / "work") for _ in range(repeat)]
    refresh_runs = timed_runs(1, base, root / "refresh.duckdb", root / "work_refresh", "--full-refresh")

    con = duckdb.connect(str(warehouse), read_only=True)
    rows = con.execute("select count(*) from marts.fct_events").fetchall()[0][0]
    customers = con.execute("select count(*) from marts.dim_customers").fetchall()[0][0]
    con.close()

    full, full_text = describe(full_runs)
    incremental, incremental_text = describe(incremental_runs)
    floor, floor_text = describe(floor_runs)
    _, refresh_text = describe(refresh_runs)
    print(f"\n{summary.events:,} events ({summary.lines_written:,} lines), {summary.days} days; "
          f"fct_events {rows:,} rows, dim_customers {customers:,} rows")
    print(f"  ingest of the days before {day}       {ingest_seconds:8.1f} s")
    print(f"  dbt build, full (baseline)            {full_text}   {full_runs[-1][1]}")
    print(f"  dbt build after one more day          {incremental_text}   {incremental / full:6.1%} of the full build "
          f"(median / median; {new_events:,} new events: {day} and the late arrivals after it)")
    print(f"  dbt build with nothing new (floor)    {floor_text}   {floor / full:6.1%} of the full build")
    print(f"  dbt build --full-refresh (all days)   {refresh_text}")
    if profile:
        median_run = sorted(incremental_runs, key=lambda r: r[0])[len(incremental_runs) // 2]
        print("  slowest nodes of the incremental run:")
        for seconds, node in median_run[2][:12]:
            print(f"    {seconds:6.2f} s  {node}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, action="append", help="repeatable; default 1,000,000")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of the full and the incremental build (default 2)")
    parser.add_argument("--profile", action="store_true", help="print the slowest nodes of the incremental run")
    args = parser.parse_args()
    for events in args.events or [1_000_000]:
        root = Path(tempfile.mkdtemp(prefix="goldentime-transform-", dir=os.environ.get("GOLDENTIME_BENCH_DIR")))
        try:
            run(events, root, max(1, args.repeat), args.profile)
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
