"""Audience sync into PostgreSQL against PostgreSQL's own COPY of the same rows, measured in one run.

    python benchmarks/sync.py [--rows 1000000] [--changed 0.01] [--dsn postgresql+psycopg://...]

1. baseline: ``COPY … FROM STDIN`` of the audience into an empty table (no validation, no upsert);
2. first sync: ``run_sync`` upserting the whole audience through ``SqlTableDestination`` (diff against
   an empty state, ledger rows written, per-row validation, COPY into staging + INSERT … ON CONFLICT);
3. re-sync after ``--changed`` of the rows changed: only those should travel, so its time should be
   proportional to the change, not to the audience (a polars audience is diffed by per-row
   fingerprints stored in the ledger; only rows whose fingerprint moved get their canonical hash);
4. re-sync with nothing changed: the cost of diffing alone.

The ledger is a DuckDB file (as in production: the warehouse). The DSN comes from
GOLDENTIME_BENCH_PG (default: the local server). Prints rows/s and the ratios.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import sqlalchemy

from activations.destinations.sql import SqlTableDestination, bulk_copy_baseline
from activations.sync import run_sync

COLUMNS = {"customer_id": "varchar(32)", "email": "varchar(64)", "predicted_ltv": "numeric(14,2)",
           "orders_count": "integer", "is_vip": "boolean", "first_order_on": "date", "scored_at": "timestamp"}


def audience(rows: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.arange(rows)
    return pl.DataFrame({
        "customer_id": [f"c{i:08d}" for i in ids],
        "email": [f"user{i}@example.com" for i in ids],
        "predicted_ltv": np.round(rng.gamma(2.0, 50_000.0, rows), 2),
        "orders_count": rng.integers(0, 30, rows),
        "is_vip": rng.random(rows) < 0.2,
        "first_order_on": [date(2025, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 365, rows)],
        "scored_at": [datetime(2026, 3, 1, 4, 0)] * rows,
    })


def change(frame: pl.DataFrame, share: float, seed: int = 11) -> tuple[pl.DataFrame, int]:
    rng = np.random.default_rng(seed)
    mask = rng.random(frame.height) < share
    changed = frame.with_columns(
        pl.when(pl.Series(mask)).then(pl.col("predicted_ltv") + 1.0).otherwise(pl.col("predicted_ltv")).alias("predicted_ltv"))
    return changed, int(mask.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--dsn", default=os.environ.get("GOLDENTIME_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()

    os.environ["GOLDENTIME_BENCH_SYNC_URL"] = args.dsn
    frame = audience(args.rows)
    fields = [c for c in COLUMNS if c != "customer_id"]
    suffix = uuid.uuid4().hex[:8]
    baseline_table, target_table = f"bench_copy_{suffix}", f"bench_sync_{suffix}"
    engine = sqlalchemy.create_engine(args.dsn, poolclass=sqlalchemy.pool.NullPool)
    ddl = ", ".join(f'"{c}" {t}' for c, t in COLUMNS.items())
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE TABLE {baseline_table} ({ddl}, PRIMARY KEY (customer_id))")
    workdir = Path(tempfile.mkdtemp(prefix="goldentime-bench-sync-"))
    ledger = duckdb.connect(str(workdir / "ledger.duckdb"))
    try:
        rows = frame.rows()
        copy_seconds = bulk_copy_baseline(args.dsn, baseline_table, rows, list(COLUMNS))
        print(f"rows: {args.rows:,}; PostgreSQL at {engine.url.host}:{engine.url.port}; ledger in DuckDB")
        print(f"baseline  COPY FROM STDIN            {copy_seconds:8.2f} s  {args.rows / copy_seconds:>10,.0f} rows/s")

        destination = SqlTableDestination("GOLDENTIME_BENCH_SYNC_URL", target_table, "customer_id", COLUMNS)
        started = time.perf_counter()
        report = run_sync(ledger, "bench", frame, "customer_id", fields, destination, mode="upsert")
        first = time.perf_counter() - started
        assert report.added == args.rows and report.rejected == 0, report
        print(f"first sync (upsert, all rows added)  {first:8.2f} s  {args.rows / first:>10,.0f} rows/s"
              f"   = {first / copy_seconds:.2f}x COPY")

        changed_frame, n_changed = change(frame, args.changed)
        started = time.perf_counter()
        report = run_sync(ledger, "bench", changed_frame, "customer_id", fields, destination, mode="upsert")
        resync = time.perf_counter() - started
        assert report.changed == n_changed and report.added == 0, report
        print(f"re-sync, {n_changed:,} rows changed ({args.changed:.0%})  {resync:8.2f} s"
              f"   = {resync / first:.1%} of the first sync")

        started = time.perf_counter()
        report = run_sync(ledger, "bench", changed_frame, "customer_id", fields, destination, mode="upsert")
        noop = time.perf_counter() - started
        assert report.changed == report.added == 0
        print(f"re-sync, nothing changed             {noop:8.2f} s   = {noop / first:.1%} of the first sync"
              f" (diff only: {args.rows / noop:,.0f} rows/s)")
        with engine.connect() as connection:
            stored = connection.exec_driver_sql(f"SELECT count(*), sum(predicted_ltv) FROM {target_table}").fetchall()[0]
        expected = float(changed_frame["predicted_ltv"].sum())
        print(f"check: {stored[0]:,} rows in {target_table}, sum(predicted_ltv) {float(stored[1]):,.2f} "
              f"(audience {expected:,.2f})")
    finally:
        ledger.close()
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {baseline_table}")
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {target_table}")


if __name__ == "__main__":
    main()
