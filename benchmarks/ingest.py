"""Ingestion throughput against DuckDB's own read_json on the same files, measured in the same run.

    python benchmarks/ingest.py [--events 1000000] [--gzip] [--keep DIR]

Prints lines/s for the full ingest (parse, validate, quarantine, dedupe, raw payload kept,
reconcile, one transaction per pass of landing days, as a backfill runs) next to two baselines on the same files:
`read_json` into a table (auto-detected columns, nothing else) and `read_json(records=false)`
(the raw JSON kept as one column). The ratio ingest / read_json is the figure that matters.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from goldentime.ingest.events import load_events
from goldentime.ingest.landing import landing_files
from goldentime.sample_data import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--gzip", action="store_true", help="benchmark .jsonl.gz files (default: plain .jsonl)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="goldentime-bench-"))
    landing = work / "landing"
    try:
        if not landing.exists():
            started = time.perf_counter()
            summary = generate(landing, events=args.events, gzip=args.gzip)
            seconds = time.perf_counter() - started
            print(f"generated {summary.lines_written:,} lines in {seconds:.1f}s ({summary.lines_written / seconds:,.0f} lines/s)")
        files = landing_files(str(landing), "events")
        lines = sum(_count_lines(f.path) for f in files)
        size_mb = sum(f.size for f in files) / 1e6
        pattern = str(landing / "events" / "*" / ("*.jsonl.gz" if args.gzip else "*.jsonl"))
        print(f"{len(files)} files, {size_mb:,.0f} MB on disk, {lines:,} lines")

        baseline = _timed(work / "baseline.duckdb", f"create table t as select * from read_json('{pattern}', ignore_errors=true)")
        raw_json = _timed(work / "baseline_raw.duckdb", f"create table t as select json from read_json('{pattern}', records=false, ignore_errors=true)")

        con = duckdb.connect(str(work / "warehouse.duckdb"))
        started = time.perf_counter()
        loaded = duplicates = quarantined = 0
        for result in load_events(con, landing_files(str(landing), "events")):
            loaded += result.total("loaded")
            duplicates += result.total("duplicates")
            quarantined += result.total("quarantined")
        con.close()  # includes the final checkpoint, as the baselines do
        ingest = time.perf_counter() - started

        print()
        print(f"{'step':<44}{'seconds':>9}{'lines/s':>14}{'vs read_json':>14}")
        for name, seconds in (
            ("baseline: DuckDB read_json into a table", baseline),
            ("baseline: read_json(records=false) raw JSON", raw_json),
            ("goldentime ingest (validate, dedupe, keep raw)", ingest),
        ):
            print(f"{name:<44}{seconds:>9.2f}{lines / seconds:>14,.0f}{seconds / baseline:>13.2f}x")
        print(f"\nloaded {loaded:,} + duplicates {duplicates:,} + quarantined {quarantined:,} = {loaded + duplicates + quarantined:,} (lines read {lines:,})")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _timed(path: Path, sql: str) -> float:
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    started = time.perf_counter()
    con.execute(sql)
    con.close()  # the table is only durable once checkpointed
    return time.perf_counter() - started


def _count_lines(path: str) -> int:
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as handle:
        data = handle.read()
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


if __name__ == "__main__":
    main()
