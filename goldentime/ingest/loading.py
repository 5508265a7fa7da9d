"""The load cycle every feed shares.

A load takes the files of one or more landing days and, in one pass: reads them into numbered
lines, lets the feed stage them (parse, validate: a `reason` for every rejected line), marks
duplicate copies, then in ONE transaction replaces those landing days in the feed's raw tables,
quarantine, duplicates and ingest log. It refuses to commit when any file's counts do not reconcile
(lines_read = loaded + duplicates + quarantined). Loading many days in one pass is what makes a
backfill run at the speed of DuckDB rather than at the speed of per-day overheads.
"""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Callable

import duckdb
import numpy as np
import pyarrow as pa

from goldentime.ingest.landing import LandingFile, has_expected_extension
from goldentime.ingest.reader import read_lines
from goldentime.ingest.schema import ensure_raw_schema

# Uncompressed bytes read into memory per pass; a pass never splits a landing day.
BATCH_BYTES = 400_000_000
GZIP_RATIO_ESTIMATE = 8


class ReconciliationError(Exception):
    """lines_read != loaded + duplicates + quarantined: a loader bug, never committed."""


@dataclass
class FileLoad:
    source_file: str
    file_bytes: int
    landing_date: date
    lines_read: int = 0
    loaded: int = 0
    duplicates: int = 0
    quarantined: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def reconciles(self) -> bool:
        return self.lines_read == self.loaded + self.duplicates + self.quarantined


@dataclass
class DayLoad:
    feed: str
    landing_date: date
    run_id: str
    files: list[FileLoad] = field(default_factory=list)
    loaded_by_table: dict[str, int] = field(default_factory=dict)
    quarantined_by_reason: Counter = field(default_factory=Counter)
    late_rows: int = 0  # rows whose own date is before the landing day
    seconds: float = 0.0  # this day's share of its pass, by lines

    def total(self, attribute: str) -> int:
        return sum(getattr(f, attribute) for f in self.files)

    @property
    def problems(self) -> list[str]:
        return [f"{f.source_file}: {p}" for f in self.files for p in f.problems]


@dataclass(frozen=True)
class Feed:
    """What differs between feeds. `stage` turns the registered table `landing_lines` into the temp
    table `staged_rows` (all its columns, plus `reason`, `detail` and the key column); `insert` copies
    the kept rows of `ranked_rows` into the feed's tables."""

    name: str
    tables: tuple[str, ...]
    key: str
    time_column: str  # in staged_rows, for late-row counts
    stage: Callable[[duckdb.DuckDBPyConnection, pa.Table, list[FileLoad], dict], None]
    insert: Callable[[duckdb.DuckDBPyConnection, dict], None]
    table_of_row_sql: str  # SQL over ranked_rows naming the raw table a kept row goes to
    kept_key_sql: str | None = None  # the key computed from the raw tables' columns, when not stored


def new_run_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def load_files(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    files: list[LandingFile],
    *,
    run_id: str | None = None,
    future_tolerance: timedelta = timedelta(days=1),
) -> list[DayLoad]:
    """Replace the landing days of `files` (only those) with their content; one DayLoad per day."""
    run_id = run_id or new_run_id()
    ensure_raw_schema(con)
    con.execute("set TimeZone = 'UTC'")
    days: list[DayLoad] = []
    for batch in _batches(files):
        days.extend(_load_batch(con, feed, batch, run_id, future_tolerance))
    return days


def load_day(con: duckdb.DuckDBPyConnection, feed: Feed, landing_date: date, files: list[LandingFile], **options) -> DayLoad:
    """Load one landing day of `feed`; with no files the day is left as it is."""
    loads = load_files(con, feed, [f for f in files if f.day == landing_date], **options)
    return loads[0] if loads else DayLoad(feed=feed.name, landing_date=landing_date, run_id=options.get("run_id") or "")


def _batches(files: list[LandingFile]) -> list[list[LandingFile]]:
    by_day: dict[date, list[LandingFile]] = {}
    for file in sorted(files, key=lambda f: (f.day, f.name)):
        by_day.setdefault(file.day, []).append(file)
    batches, current, size = [], [], 0
    for day_files in by_day.values():
        day_size = sum(f.size * (GZIP_RATIO_ESTIMATE if f.name.endswith(".gz") else 1) for f in day_files)
        if current and size + day_size > BATCH_BYTES:
            batches.append(current)
            current, size = [], 0
        current.extend(day_files)
        size += day_size
    if current:
        batches.append(current)
    return batches


def _load_batch(con, feed: Feed, files: list[LandingFile], run_id: str, future_tolerance: timedelta) -> list[DayLoad]:
    started = time.perf_counter()
    started_at = utc_now()
    lines, loads = read_files(files)
    days = {f.landing_date: DayLoad(feed=feed.name, landing_date=f.landing_date, run_id=run_id) for f in loads}
    for load in loads:
        days[load.landing_date].files.append(load)
    params = {"run_id": run_id, "loaded_at": started_at, "tolerance": future_tolerance}
    con.register("landing_lines", lines)
    try:
        feed.stage(con, lines, loads, params)
        rank_copies(con, feed)
        fill_counts(con, loads)
        con.execute("begin transaction")
        try:
            for table in feed.tables:
                con.execute(f"delete from {table} where landing_date in (select landing_date from batch_days)")
            for table in ("raw.quarantine", "raw.duplicates", "raw.ingest_log"):
                con.execute(
                    f"delete from {table} where feed = ? and landing_date in (select landing_date from batch_days)",
                    [feed.name],
                )
            feed.insert(con, params)
            _insert_rejects(con, feed, params)
            reconcile_and_log(con, feed.name, loads, run_id, started_at)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        _summarise(con, feed, days)
    finally:
        con.unregister("landing_lines")
        for table in ("staged_rows", "ranked_rows", "batch_days"):
            con.execute(f"drop table if exists {table}")
    seconds = time.perf_counter() - started
    total_lines = max(1, sum(l.lines_read for l in loads))
    for day in days.values():
        day.seconds = seconds * day.total("lines_read") / total_lines
    return sorted(days.values(), key=lambda d: d.landing_date)


def read_files(files: list[LandingFile]) -> tuple[pa.Table, list[FileLoad]]:
    """Read files into one table of numbered lines tagged with file, landing day and read order.

    Files are read on a thread per core: decompression, splitting and UTF-8 validation release the GIL.
    """
    def read(file: LandingFile):
        try:
            return read_lines(file), None
        except OSError as exc:
            return None, f"cannot read the file: {exc}"

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(pool.map(read, files))
    tables, loads = [], []
    for order, (file, (lines, error)) in enumerate(zip(files, results)):
        load = FileLoad(source_file=file.path, file_bytes=file.size, landing_date=file.day)
        loads.append(load)
        if not has_expected_extension(file):
            load.problems.append(f"unexpected file name {file.name!r} for the {file.feed} feed; read as text lines")
        if lines is None:
            load.problems.append(error)
            continue
        load.problems.extend(lines.problems)
        load.lines_read = n = lines.count
        tables.append(
            lines.table.append_column("source_file", pa.repeat(pa.scalar(file.path, pa.large_string()), n))
            .append_column("file_order", pa.repeat(pa.scalar(order, pa.int32()), n))
            .append_column("landing_date", pa.repeat(pa.scalar(file.day, pa.date32()), n))
        )
    if not tables:
        empty = {"line_no": pa.int64(), "line": pa.large_string(), "utf8_ok": pa.bool_(),
                 "source_file": pa.large_string(), "file_order": pa.int32(), "landing_date": pa.date32(),
                 "row_index": pa.int64()}
        return pa.table({k: pa.array([], t) for k, t in empty.items()}), loads
    lines = pa.concat_tables(tables)
    return lines.append_column("row_index", pa.array(np.arange(lines.num_rows, dtype=np.int64))), loads


def rank_copies(con: duckdb.DuckDBPyConnection, feed: Feed) -> None:
    """Create `ranked_rows` (row_index, key, is_kept, kept_*) for the valid rows of `staged_rows`,
    marking which copy of each key is kept: a copy already loaded from a landing day outside this pass
    wins; else the first one received (landing day, file order, line order). Every other copy points
    at the one that was kept. Only narrow columns are ranked: sorting whole lines would cost more
    than everything else in the load."""
    key, kept_key = feed.key, feed.kept_key_sql or feed.key
    con.execute("create or replace temp table batch_days as select distinct landing_date from staged_rows")
    elsewhere = " union all ".join(
        f"select {kept_key} as {key}, landing_date, source_file, line_no from {table} "
        f"where landing_date not in (select landing_date from batch_days) "
        f"and {kept_key} in (select {key} from valid)"
        for table in feed.tables  # the key space: events and identifies share messageIds
    )
    con.execute(
        f"""
        create or replace temp table ranked_rows as
        with valid as (
            select row_index, {key}, landing_date, source_file, line_no,
                   row_number() over (partition by {key} order by landing_date, file_order, line_no) as copy_no
            from staged_rows
            where reason is null
        ), elsewhere as (
            select {key}, arg_min(landing_date, landing_date) as landing_date,
                   arg_min(source_file, landing_date) as source_file, arg_min(line_no, landing_date) as line_no
            from ({elsewhere})
            group by {key}
        ), first_received as (
            select {key}, landing_date, source_file, line_no from valid where copy_no = 1
        )
        select
            valid.row_index,
            valid.{key},
            coalesce(elsewhere.landing_date, first_received.landing_date) as kept_landing_date,
            coalesce(elsewhere.source_file, first_received.source_file) as kept_source_file,
            coalesce(elsewhere.line_no, first_received.line_no) as kept_line_no,
            valid.copy_no = 1 and elsewhere.{key} is null as is_kept
        from valid
        join first_received using ({key})
        left join elsewhere using ({key})
        """
    )


def fill_counts(con: duckdb.DuckDBPyConnection, loads: list[FileLoad]) -> None:
    """Count, per file, the lines loaded, skipped as duplicates and quarantined."""
    rows = con.execute(
        """
        select s.source_file,
               count(*) filter (where s.reason is null and r.is_kept) as loaded,
               count(*) filter (where s.reason is null and not r.is_kept) as duplicates,
               count(*) filter (where s.reason is not null) as quarantined,
               mode(s.reason) filter (where s.reason is not null) as top_reason
        from staged_rows s
        left join ranked_rows r using (row_index)
        group by s.source_file
        """
    ).fetchall()
    by_file = {row[0]: row[1:] for row in rows}
    for load in loads:
        loaded, duplicates, quarantined, top_reason = by_file.get(load.source_file, (0, 0, 0, None))
        load.loaded, load.duplicates, load.quarantined = int(loaded), int(duplicates), int(quarantined)
        if load.lines_read and load.quarantined == load.lines_read:
            load.problems.append(
                f"none of the {load.lines_read} lines could be loaded (most common reason: {top_reason}): "
                "is this the right file, with the expected schema?"
            )


def _insert_rejects(con: duckdb.DuckDBPyConnection, feed: Feed, params: dict) -> None:
    params = {"feed": feed.name, "loaded_at": params["loaded_at"], "run_id": params["run_id"]}
    con.execute(
        """
        insert into raw.quarantine
        select $feed, s.landing_date, s.source_file, s.line_no, s.reason, s.detail, l.line, $loaded_at, $run_id
        from staged_rows s join landing_lines l using (row_index)
        where s.reason is not null
        """,
        params,
    )
    con.execute(
        f"""
        insert into raw.duplicates
        select $feed, s.landing_date, s.source_file, s.line_no, r.{feed.key}, r.kept_landing_date,
               r.kept_source_file, r.kept_line_no, l.line, $loaded_at, $run_id
        from ranked_rows r join staged_rows s using (row_index) join landing_lines l using (row_index)
        where not r.is_kept
        """,
        params,
    )


def reconcile_and_log(con, feed: str, loads: list[FileLoad], run_id: str, started_at: datetime) -> None:
    """Write the per-file ingest log, or raise (the caller rolls back) if any file does not reconcile."""
    broken = [f for f in loads if not f.reconciles]
    if broken:
        details = "; ".join(
            f"{f.source_file}: read {f.lines_read} != loaded {f.loaded} + duplicates {f.duplicates} "
            f"+ quarantined {f.quarantined}"
            for f in broken
        )
        raise ReconciliationError(f"{feed}: counts do not reconcile, nothing committed: {details}")
    finished_at = utc_now()
    con.executemany(
        "insert into raw.ingest_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [run_id, feed, f.landing_date, f.source_file, f.file_bytes, f.lines_read, f.loaded,
             f.duplicates, f.quarantined, f.problems, started_at, finished_at]
            for f in loads
        ],
    )


def _summarise(con: duckdb.DuckDBPyConnection, feed: Feed, days: dict[date, DayLoad]) -> None:
    for day, reason, count in con.execute(
        "select landing_date, reason, count(*) from staged_rows where reason is not null group by all"
    ).fetchall():
        days[day].quarantined_by_reason[reason] = count
    for day, table, count, late in con.execute(
        f"""
        select landing_date, {feed.table_of_row_sql} as raw_table, count(*),
               count(*) filter (where cast({feed.time_column} as date) < landing_date)
        from ranked_rows join staged_rows using (row_index) where is_kept group by all
        """
    ).fetchall():
        days[day].loaded_by_table[table] = count
        days[day].late_rows += late
    for day in days.values():
        for table in feed.tables:
            day.loaded_by_table.setdefault(table, 0)
