"""What every feed loader shares: the per-day result, the transaction that replaces a landing day,
and the reconciliation that refuses to commit a day whose counts do not add up."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import duckdb
import pyarrow as pa

from goldentime.ingest.landing import LandingFile, has_expected_extension
from goldentime.ingest.reader import FileLines, read_lines


class ReconciliationError(Exception):
    """lines_read != loaded + duplicates + quarantined: a loader bug, never committed."""


@dataclass
class FileLoad:
    source_file: str
    file_bytes: int
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
    seconds: float = 0.0

    def total(self, attribute: str) -> int:
        return sum(getattr(f, attribute) for f in self.files)

    @property
    def problems(self) -> list[str]:
        return [f"{f.source_file}: {p}" for f in self.files for p in f.problems]


def new_run_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def read_day(files: list[LandingFile]) -> tuple[pa.Table | None, list[FileLoad]]:
    """Read every file of one landing day into one table of numbered lines tagged with their file."""
    tables, loads = [], []
    for order, file in enumerate(files):
        load = FileLoad(source_file=file.path, file_bytes=file.size)
        loads.append(load)
        if not has_expected_extension(file):
            load.problems.append(f"unexpected file name {file.name!r} for the {file.feed} feed; read as text lines")
        try:
            lines: FileLines = read_lines(file)
        except OSError as exc:
            load.problems.append(f"cannot read the file: {exc}")
            continue
        load.problems.extend(lines.problems)
        load.lines_read = lines.count
        n = lines.count
        tables.append(
            lines.table.append_column("source_file", pa.array([file.path] * n, pa.large_string()))
            .append_column("file_order", pa.array([order] * n, pa.int32()))
        )
    if not tables:
        return None, loads
    return pa.concat_tables(tables).combine_chunks(), loads


def rank_copies(
    con: duckdb.DuckDBPyConnection,
    *,
    staged: str,
    ranked: str,
    key: str,
    kept_in: list[str],
    landing_date: date,
    kept_key_sql: str | None = None,
) -> None:
    """Create table `ranked` from the valid rows of `staged` (reason is null), marking which copy of
    each `key` is kept: a copy already loaded from another landing day wins, else the first line of
    the day (file order, line order). Every other copy points at the one that was kept.

    `kept_key_sql` computes the key from the columns of the `kept_in` tables when they do not store it.
    """
    kept_key = kept_key_sql or key
    elsewhere = " union all ".join(
        f"select {kept_key} as {key}, landing_date, source_file, line_no from {table} "
        f"where landing_date <> $day and {kept_key} in (select {key} from valid)"
        for table in kept_in
    )
    con.execute(
        f"""
        create or replace temp table {ranked} as
        with valid as (
            select *, row_number() over (partition by {key} order by file_order, line_no) as copy_no
            from {staged}
            where reason is null
        ), elsewhere as (
            select {key}, arg_min(landing_date, landing_date) as landing_date,
                   arg_min(source_file, landing_date) as source_file, arg_min(line_no, landing_date) as line_no
            from ({elsewhere})
            group by {key}
        ), first_today as (
            select {key}, source_file, line_no from valid where copy_no = 1
        )
        select
            valid.*,
            coalesce(elsewhere.landing_date, $day) as kept_landing_date,
            coalesce(elsewhere.source_file, first_today.source_file) as kept_source_file,
            coalesce(elsewhere.line_no, first_today.line_no) as kept_line_no,
            valid.copy_no = 1 and elsewhere.{key} is null as is_kept
        from valid
        join first_today using ({key})
        left join elsewhere using ({key})
        """,
        {"day": landing_date},
    )


def fill_counts(con: duckdb.DuckDBPyConnection, loads: list[FileLoad], *, staged: str, ranked: str) -> None:
    """Count, per file, the lines loaded, skipped as duplicates and quarantined."""
    rows = con.execute(
        f"""
        select s.source_file,
               count(*) filter (where s.reason is null and r.is_kept) as loaded,
               count(*) filter (where s.reason is null and not r.is_kept) as duplicates,
               count(*) filter (where s.reason is not null) as quarantined
        from {staged} s
        left join {ranked} r on r.source_file = s.source_file and r.line_no = s.line_no
        group by s.source_file
        """
    ).fetchall()
    by_file = {row[0]: row[1:] for row in rows}
    for load in loads:
        load.loaded, load.duplicates, load.quarantined = (int(v or 0) for v in by_file.get(load.source_file, (0, 0, 0)))
    top_reasons = dict(
        con.execute(
            f"select source_file, mode(reason) from {staged} where reason is not null group by source_file"
        ).fetchall()
    )
    for load in loads:
        if load.lines_read and load.quarantined == load.lines_read:
            load.problems.append(
                f"none of the {load.lines_read} lines could be loaded (most common reason: "
                f"{top_reasons.get(load.source_file)}): is this the right file, with the expected schema?"
            )


def reconcile_and_log(con: duckdb.DuckDBPyConnection, day: DayLoad, started_at: datetime) -> None:
    """Write the per-file ingest log, or raise (the caller rolls back) if any file does not reconcile."""
    broken = [f for f in day.files if not f.reconciles]
    if broken:
        details = "; ".join(
            f"{f.source_file}: read {f.lines_read} != loaded {f.loaded} + duplicates {f.duplicates} "
            f"+ quarantined {f.quarantined}"
            for f in broken
        )
        raise ReconciliationError(f"{day.feed} {day.landing_date}: counts do not reconcile, nothing committed: {details}")
    finished_at = utc_now()
    con.executemany(
        "insert into raw.ingest_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [day.run_id, day.feed, day.landing_date, f.source_file, f.file_bytes, f.lines_read, f.loaded,
             f.duplicates, f.quarantined, f.problems, started_at, finished_at]
            for f in day.files
        ],
    )


def delete_landing_day(con: duckdb.DuckDBPyConnection, feed: str, tables: list[str], landing_date: date) -> None:
    for table in tables:
        con.execute(f"delete from {table} where landing_date = ?", [landing_date])
    for table in ("raw.quarantine", "raw.duplicates", "raw.ingest_log"):
        con.execute(f"delete from {table} where feed = ? and landing_date = ?", [feed, landing_date])
