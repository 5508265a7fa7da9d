"""Loading landing days of Segment calls into raw.events / raw.identifies (the events feed).

Per line, in order: parse (DuckDB `from_json`, one pass), validate (the first failing rule names the
quarantine reason), correct the clock (Segment's rule: receivedAt - (sentAt - timestamp)); then the
shared cycle in loading.py deduplicates on messageId: the first copy received wins (landing day, file
name, line), and a copy already loaded from another landing day wins over a new one, so raw.events
and raw.identifies never hold a messageId twice, whatever order days are (re)loaded in.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb

from goldentime.ingest.landing import LandingFile
from goldentime.ingest.loading import DayLoad, Feed, load_day, load_files

EVENT_TYPES = ("track", "page", "screen", "group")
IDENTITY_TYPES = ("identify", "alias")
EARLIEST_VALID = "2000-01-01"

# Every quarantine reason, in the order the rules are applied.
QUARANTINE_REASONS = (
    "empty_line",
    "invalid_utf8",
    "invalid_json",
    "not_an_object",
    "missing_type",
    "unknown_type",
    "missing_message_id",
    "missing_event_name",
    "missing_timestamp",
    "invalid_timestamp",
    "alias_missing_ids",
    "no_identity",
    "timestamp_in_future",
    "timestamp_out_of_range",
)

# Staging parses only the scalar fields; the nested objects are extracted once, for kept rows only,
# when they are inserted (staging them would copy most of every line a second time).
_CALL_STRUCTURE = (
    '{"type":"VARCHAR","messageId":"VARCHAR","event":"VARCHAR","name":"VARCHAR","userId":"VARCHAR",'
    '"anonymousId":"VARCHAR","previousId":"VARCHAR","timestamp":"VARCHAR","originalTimestamp":"VARCHAR",'
    '"sentAt":"VARCHAR","receivedAt":"VARCHAR"}'
)
_NESTED_STRUCTURE = '{"properties":"JSON","context":"JSON","traits":"JSON"}'

_STAGE_SQL = f"""
create or replace temp table staged_rows as
with parsed as (
    select
        row_index, line_no, source_file, file_order, landing_date, utf8_ok, line,
        case when utf8_ok and json_valid(line) then from_json(line, '{_CALL_STRUCTURE}') end as call
    from landing_lines
), typed as (
    select
        *,
        nullif(trim(call.type), '') as call_type,
        nullif(call.event, '') as event_name,
        call.name as page_name,
        nullif(call.messageId, '') as message_id,
        nullif(call.userId, '') as user_id,
        nullif(call.anonymousId, '') as anonymous_id,
        nullif(call.previousId, '') as previous_id,
        coalesce(call.timestamp, call.originalTimestamp) as timestamp_text,
        try_cast(coalesce(call.timestamp, call.originalTimestamp) as timestamptz) at time zone 'UTC' as original_timestamp,
        try_cast(call.sentAt as timestamptz) at time zone 'UTC' as sent_at,
        try_cast(call.receivedAt as timestamptz) at time zone 'UTC' as received_at
    from parsed
), timed as (
    select
        *,
        case
            when sent_at is not null and received_at is not null
                then received_at - (sent_at - original_timestamp)
            else original_timestamp
        end as event_at
    from typed
)
select
    * exclude (line, call, utf8_ok, timestamp_text),
    case
        -- cheap tests first: whole-line string functions only run on the few lines that need them
        when call is null and trim(line, ' \t\r') = '' then 'empty_line'
        when not utf8_ok then 'invalid_utf8'
        when call is null then 'invalid_json'
        when ascii(line) <> 123 and left(ltrim(line, ' \t'), 1) <> '{{' then 'not_an_object'
        when call_type is null then 'missing_type'
        when call_type not in {EVENT_TYPES + IDENTITY_TYPES} then 'unknown_type'
        when message_id is null then 'missing_message_id'
        when call_type = 'track' and event_name is null then 'missing_event_name'
        when timestamp_text is null then 'missing_timestamp'
        when original_timestamp is null then 'invalid_timestamp'
        when call_type = 'alias' and (user_id is null or previous_id is null) then 'alias_missing_ids'
        when user_id is null and anonymous_id is null then 'no_identity'
        when event_at > landing_date + interval 1 day + $tolerance then 'timestamp_in_future'
        when event_at < timestamp '{EARLIEST_VALID}' then 'timestamp_out_of_range'
    end as reason,
    case
        when call_type is not null and call_type not in {EVENT_TYPES + IDENTITY_TYPES} then 'type ' || call_type
        when original_timestamp is null and timestamp_text is not null then 'timestamp ' || timestamp_text
        when event_at > landing_date + interval 1 day + $tolerance or event_at < timestamp '{EARLIEST_VALID}' then 'event time ' || event_at::varchar || ' UTC'
    end as detail
from timed
"""


def _stage(con: duckdb.DuckDBPyConnection, lines, loads, params: dict) -> None:
    con.execute(_STAGE_SQL, {"tolerance": params["tolerance"]})


def _insert(con: duckdb.DuckDBPyConnection, params: dict) -> None:
    params = {"loaded_at": params["loaded_at"], "run_id": params["run_id"]}
    for table, types in (("raw.events", EVENT_TYPES), ("raw.identifies", IDENTITY_TYPES)):
        columns = (
            "message_id, call_type, event_name, page_name, user_id, anonymous_id, event_at, "
            "original_timestamp, sent_at, received_at, nested.properties, nested.context"
            if table == "raw.events"
            else "message_id, call_type, user_id, anonymous_id, previous_id, nested.traits, event_at, "
            "original_timestamp, sent_at, received_at, nested.context"
        )
        con.execute(
            f"""
            insert into {table}
            select {columns}, line, landing_date, source_file, line_no, $loaded_at, $run_id
            from (
                select s.*, l.line, from_json(l.line, '{_NESTED_STRUCTURE}') as nested
                from ranked_rows r
                join staged_rows s using (row_index)
                join landing_lines l using (row_index)
                where r.is_kept and s.call_type in {types}
            )
            """,
            params,
        )


EVENTS_FEED = Feed(
    name="events",
    tables=("raw.events", "raw.identifies"),
    key="message_id",
    time_column="event_at",
    stage=_stage,
    insert=_insert,
    table_of_row_sql=f"case when call_type in {IDENTITY_TYPES} then 'raw.identifies' else 'raw.events' end",
)


def load_events(
    con: duckdb.DuckDBPyConnection,
    files: list[LandingFile],
    *,
    run_id: str | None = None,
    future_tolerance: timedelta = timedelta(days=1),
) -> list[DayLoad]:
    """Replace the landing days of `files` in raw.events / raw.identifies (atomic per pass)."""
    return load_files(con, EVENTS_FEED, files, run_id=run_id, future_tolerance=future_tolerance)


def load_events_day(con: duckdb.DuckDBPyConnection, landing_date: date, files: list[LandingFile], **options) -> DayLoad:
    """Load one landing day; with no files the day is left as it is."""
    return load_day(con, EVENTS_FEED, landing_date, files, **options)
