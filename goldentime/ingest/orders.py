"""Loading one landing day of the shop's orders export (CSV with a header) into raw.orders.

The header of each file must name the required columns (any order, extra columns ignored); a file
whose header does not is quarantined whole with reason `wrong_schema`, naming what is missing.
The header line is not a data line: `lines_read` counts the lines after it.

An export row is a version of an order: the same order_id with another status (completed, then
refunded a week later) is a new version and is loaded; the same order_id with the same status again
is a duplicate, resolved like messageIds (a copy from another landing day wins, else the first line
received). Models take the latest version of each order.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta

import duckdb
import pyarrow as pa

from goldentime.ingest.landing import LandingFile
from goldentime.ingest.loading import DayLoad, Feed, load_day, load_files

REQUIRED_COLUMNS = ("order_id", "user_id", "ordered_at", "status", "revenue")
OPTIONAL_COLUMNS = ("currency", "item_count")
ORDER_STATUSES = ("completed", "cancelled", "refunded")

QUARANTINE_REASONS = (
    "empty_line",
    "invalid_utf8",
    "wrong_schema",
    "wrong_column_count",
    "missing_order_id",
    "missing_user_id",
    "missing_ordered_at",
    "invalid_ordered_at",
    "unknown_status",
    "invalid_revenue",
    "invalid_item_count",
    "timestamp_in_future",
    "timestamp_out_of_range",
)

_FIELDS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

# The identity of one version of an order, as computed from raw.orders.
ORDER_VERSION_SQL = "order_id || ':' || status"


def _split_csv(lines: pa.Table, loads) -> pa.Table:
    """Parse each file's lines with its own header into one row per data line (all text)."""
    columns: dict[str, list] = {
        name: [] for name in ("row_index", "line_no", "source_file", "file_order", "landing_date", "line", "utf8_ok", "fault", *_FIELDS)
    }
    by_file = {load.source_file: load for load in loads}
    for source_file, rows in _group_by_file(lines):
        header_line = rows[0]
        header = [h.strip().lower() for h in next(csv.reader([header_line["line"].lstrip("\ufeff")]), [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        load = by_file[source_file]
        load.lines_read -= 1  # the header is not a data line
        if missing:
            load.problems.append(
                f"wrong schema: header {header_line['line'][:200]!r} lacks required column(s) {', '.join(missing)}; "
                f"expected {', '.join(REQUIRED_COLUMNS)}"
            )
        positions = {name: header.index(name) for name in _FIELDS if name in header}
        for row in rows[1:]:
            values = next(csv.reader([row["line"]]), []) if row["utf8_ok"] else []
            fault = None
            if missing:
                fault = "wrong_schema"
            elif row["utf8_ok"] and row["line"].strip() and len(values) != len(header):
                fault = "wrong_column_count"
            for key in ("row_index", "line_no", "source_file", "file_order", "landing_date", "line", "utf8_ok"):
                columns[key].append(row[key])
            columns["fault"].append(fault)
            for name in _FIELDS:
                position = positions.get(name)
                value = values[position].strip() if position is not None and position < len(values) else None
                columns[name].append(value or None)
    types = {"row_index": pa.int64(), "line_no": pa.int64(), "file_order": pa.int32(), "landing_date": pa.date32(), "utf8_ok": pa.bool_()}
    return pa.table({name: pa.array(values, types.get(name, pa.large_string())) for name, values in columns.items()})


def _group_by_file(lines: pa.Table):
    rows = lines.to_pylist()
    current, group = None, []
    for row in rows:
        if row["source_file"] != current and group:
            yield current, group
            group = []
        current = row["source_file"]
        group.append(row)
    if group:
        yield current, group


_STAGE_SQL = f"""
create or replace temp table staged_rows as
with typed as (
    select *,
        try_cast(ordered_at as timestamptz) at time zone 'UTC' as ordered_at_utc,
        try_cast(revenue as decimal(18, 2)) as revenue_amount,
        try_cast(item_count as integer) as item_count_int,
        order_id || ':' || lower(status) as order_version
    from order_lines
)
select *,
    case
        when trim(line, ' \t\r') = '' then 'empty_line'
        when not utf8_ok then 'invalid_utf8'
        when fault is not null then fault
        when order_id is null then 'missing_order_id'
        when user_id is null then 'missing_user_id'
        when ordered_at is null then 'missing_ordered_at'
        when ordered_at_utc is null then 'invalid_ordered_at'
        when lower(status) not in {ORDER_STATUSES} or status is null then 'unknown_status'
        when revenue_amount is null or revenue_amount < 0 then 'invalid_revenue'
        when item_count is not null and (item_count_int is null or item_count_int < 0) then 'invalid_item_count'
        when ordered_at_utc > landing_date + interval 1 day + $tolerance then 'timestamp_in_future'
        when ordered_at_utc < timestamp '2000-01-01' then 'timestamp_out_of_range'
    end as reason,
    case
        when fault = 'wrong_column_count' then 'expected the header''s column count'
        when ordered_at is not null and ordered_at_utc is null then 'ordered_at ' || ordered_at
        when status is not null and lower(status) not in {ORDER_STATUSES} then 'status ' || status
        when revenue is not null and (revenue_amount is null or revenue_amount < 0) then 'revenue ' || revenue
        when item_count is not null and (item_count_int is null or item_count_int < 0) then 'item_count ' || item_count
    end as detail
from typed
"""



def _stage(con: duckdb.DuckDBPyConnection, lines: pa.Table, loads, params: dict) -> None:
    con.register("order_lines", _split_csv(lines, loads))
    try:
        con.execute(_STAGE_SQL, {"tolerance": params["tolerance"]})
    finally:
        con.unregister("order_lines")


def _insert(con: duckdb.DuckDBPyConnection, params: dict) -> None:
    con.execute(
        """
        insert into raw.orders
        select s.order_id, s.user_id, s.ordered_at_utc, lower(s.status), upper(s.currency), s.revenue_amount,
               s.item_count_int, s.line, s.landing_date, s.source_file, s.line_no, $loaded_at, $run_id
        from ranked_rows r join staged_rows s using (row_index) where r.is_kept
        """,
        {"loaded_at": params["loaded_at"], "run_id": params["run_id"]},
    )


ORDERS_FEED = Feed(
    name="orders",
    tables=("raw.orders",),
    key="order_version",
    kept_key_sql=ORDER_VERSION_SQL,
    time_column="ordered_at_utc",
    stage=_stage,
    insert=_insert,
    table_of_row_sql="'raw.orders'",
)


def load_orders(
    con: duckdb.DuckDBPyConnection,
    files: list[LandingFile],
    *,
    run_id: str | None = None,
    future_tolerance: timedelta = timedelta(days=1),
) -> list[DayLoad]:
    """Replace the landing days of `files` in raw.orders (atomic per pass)."""
    return load_files(con, ORDERS_FEED, files, run_id=run_id, future_tolerance=future_tolerance)


def load_orders_day(con: duckdb.DuckDBPyConnection, landing_date: date, files: list[LandingFile], **options) -> DayLoad:
    """Load one landing day; with no files the day is left as it is."""
    return load_day(con, ORDERS_FEED, landing_date, files, **options)
