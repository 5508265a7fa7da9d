"""The checks on the raw tables, over the landing days a run has just loaded.

Uniqueness is a property of the whole table, so the frame for a run also includes every row of
other landing days that shares a key with the loaded rows: a key loaded twice shows up as a
duplicate in GX even though only part of the table is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb
import pandas as pd

from goldentime.ingest.events import EARLIEST_VALID, EVENT_TYPES, IDENTITY_TYPES
from goldentime.ingest.orders import ORDER_STATUSES, ORDER_VERSION_SQL
from goldentime.quality.expectations import Check, CheckOutcome, validate


@dataclass(frozen=True)
class RawTable:
    table: str
    key: str  # SQL computing the unique key of a row ("unique_key" in the frame)
    time_column: str
    columns: str  # the columns the checks read
    checks: tuple[Check, ...]


def _time_range(column: str, last_day: date):
    latest = datetime.combine(last_day + timedelta(days=2), datetime.min.time())
    return lambda E: [
        E.ExpectColumnValuesToBeBetween(
            column=column, min_value=datetime.fromisoformat(EARLIEST_VALID), max_value=latest
        )
    ]


def raw_tables(last_day: date) -> dict[str, RawTable]:
    """The checked raw tables; `last_day` bounds event times (no event after its landing day + 1)."""
    return {
        "events": RawTable(
            "raw.events", "message_id", "event_at",
            "message_id, type, event, event_at, coalesce(user_id, anonymous_id) as identity, message_id as unique_key",
            (
                Check("keys_not_null", "messageId, type, event time and an identity on every row",
                      lambda E: [E.ExpectColumnValuesToNotBeNull(column=c) for c in ("message_id", "type", "event_at", "identity")]),
                Check("accepted_types", f"type is one of {', '.join(EVENT_TYPES)}",
                      lambda E: [E.ExpectColumnValuesToBeInSet(column="type", value_set=list(EVENT_TYPES))]),
                Check("timestamps_in_range", f"event times between {EARLIEST_VALID} and the landing day + 1",
                      _time_range("event_at", last_day)),
                Check("unique_message_id", "no messageId twice across raw.events and raw.identifies",
                      lambda E: [E.ExpectColumnValuesToBeUnique(column="unique_key")]),
            ),
        ),
        "identifies": RawTable(
            "raw.identifies", "message_id", "event_at",
            "message_id, type, event_at, coalesce(user_id, anonymous_id) as identity, previous_id, message_id as unique_key",
            (
                Check("keys_not_null", "messageId, type, time and an identity on every row; previousId on aliases",
                      lambda E: [E.ExpectColumnValuesToNotBeNull(column=c) for c in ("message_id", "type", "event_at", "identity")]
                      + [E.ExpectColumnValuesToNotBeNull(column="previous_id", row_condition='type=="alias"', condition_parser="pandas")]),
                Check("accepted_types", f"type is one of {', '.join(IDENTITY_TYPES)}",
                      lambda E: [E.ExpectColumnValuesToBeInSet(column="type", value_set=list(IDENTITY_TYPES))]),
                Check("timestamps_in_range", f"call times between {EARLIEST_VALID} and the landing day + 1",
                      _time_range("event_at", last_day)),
                Check("unique_message_id", "no messageId twice across raw.events and raw.identifies",
                      lambda E: [E.ExpectColumnValuesToBeUnique(column="unique_key")]),
            ),
        ),
        "orders": RawTable(
            "raw.orders", ORDER_VERSION_SQL, "ordered_at",
            f"order_id, user_id, ordered_at, status, revenue::double as revenue, {ORDER_VERSION_SQL} as unique_key",
            (
                Check("keys_not_null", "order_id, user_id and order time on every row",
                      lambda E: [E.ExpectColumnValuesToNotBeNull(column=c) for c in ("order_id", "user_id", "ordered_at")]),
                Check("accepted_statuses", f"status is one of {', '.join(ORDER_STATUSES)}; revenue >= 0",
                      lambda E: [E.ExpectColumnValuesToBeInSet(column="status", value_set=list(ORDER_STATUSES)),
                                 E.ExpectColumnValuesToBeBetween(column="revenue", min_value=0)]),
                Check("timestamps_in_range", f"order times between {EARLIEST_VALID} and the landing day + 1",
                      _time_range("ordered_at", last_day)),
                Check("unique_order_version", "no (order_id, status) twice in raw.orders",
                      lambda E: [E.ExpectColumnValuesToBeUnique(column="unique_key")]),
            ),
        ),
    }


def _frame(con: duckdb.DuckDBPyConnection, spec: RawTable, first_day: date, last_day: date) -> pd.DataFrame:
    # Rows sharing a key with the loaded days, from any table holding the same key space.
    key_tables = ["raw.events", "raw.identifies"] if spec.key == "message_id" else [spec.table]
    others = " union all ".join(
        f"select {spec.key} as unique_key from {t} where "
        + ("landing_date not between $first and $last and " if t == spec.table else "")
        + f"{spec.key} in (select unique_key from loaded)"
        for t in key_tables
    )
    sql = f"""
        with loaded as (
            select {spec.columns} from {spec.table} where landing_date between $first and $last
        )
        select * from loaded
        union all by name
        select * from ({others})
    """
    return con.execute(sql, {"first": first_day, "last": last_day}).df()


def check_raw_table(
    con: duckdb.DuckDBPyConnection, feed_table: str, first_day: date, last_day: date
) -> list[CheckOutcome]:
    spec = raw_tables(last_day)[feed_table]
    frame = _frame(con, spec, first_day, last_day)
    return validate(frame, list(spec.checks), suite_name=f"raw_{feed_table}")
