"""Loading one landing day of Segment calls into raw.events / raw.identifies.

Per line, in order: parse (DuckDB `from_json`, one pass), validate (the first failing rule names the
quarantine reason), correct the clock (Segment's rule: receivedAt - (sentAt - timestamp)), then
deduplicate on messageId: within the day the first line received wins (file name order, then line
order); across days the copy already loaded in another landing day wins, so raw.events and
raw.identifies never hold a messageId twice, whatever order days are (re)loaded in.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

import duckdb

from goldentime.ingest.landing import LandingFile
from goldentime.ingest.loading import (
    DayLoad,
    delete_landing_day,
    fill_counts,
    rank_copies,
    new_run_id,
    read_day,
    reconcile_and_log,
    utc_now,
)
from goldentime.ingest.schema import ensure_raw_schema

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

_CALL_STRUCTURE = (
    '{"type":"VARCHAR","messageId":"VARCHAR","event":"VARCHAR","name":"VARCHAR","userId":"VARCHAR",'
    '"anonymousId":"VARCHAR","previousId":"VARCHAR","timestamp":"VARCHAR","originalTimestamp":"VARCHAR",'
    '"sentAt":"VARCHAR","receivedAt":"VARCHAR","properties":"JSON","context":"JSON","traits":"JSON"}'
)

_PARSE_SQL = f"""
create or replace temp table staged_calls as
with parsed as (
    select
        line_no, source_file, file_order, utf8_ok, line,
        case when utf8_ok then try(from_json(line, '{_CALL_STRUCTURE}')) end as call
    from landing_lines
), typed as (
    select
        *,
        nullif(trim(call.type), '') as call_type,
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
    *,
    case
        when trim(line, ' \t\r') = '' then 'empty_line'
        when not utf8_ok then 'invalid_utf8'
        when call is null then 'invalid_json'
        when left(ltrim(line, ' \t'), 1) <> '{{' then 'not_an_object'
        when call_type is null then 'missing_type'
        when call_type not in {EVENT_TYPES + IDENTITY_TYPES} then 'unknown_type'
        when message_id is null then 'missing_message_id'
        when call_type = 'track' and nullif(call.event, '') is null then 'missing_event_name'
        when timestamp_text is null then 'missing_timestamp'
        when original_timestamp is null then 'invalid_timestamp'
        when call_type = 'alias' and (user_id is null or previous_id is null) then 'alias_missing_ids'
        when user_id is null and anonymous_id is null then 'no_identity'
        when event_at > $future_limit then 'timestamp_in_future'
        when event_at < timestamp '{EARLIEST_VALID}' then 'timestamp_out_of_range'
    end as reason,
    case
        when call_type is not null and call_type not in {EVENT_TYPES + IDENTITY_TYPES} then 'type ' || call_type
        when original_timestamp is null and timestamp_text is not null then 'timestamp ' || timestamp_text
        when event_at > $future_limit or event_at < timestamp '{EARLIEST_VALID}' then 'event time ' || event_at::varchar || ' UTC'
    end as detail
from timed
"""

def load_events_day(
    con: duckdb.DuckDBPyConnection,
    landing_date: date,
    files: list[LandingFile],
    *,
    run_id: str | None = None,
    future_tolerance: timedelta = timedelta(days=1),
) -> DayLoad:
    """Replace landing day `landing_date` of the events feed with the content of `files`.

    Atomic: either the whole day is replaced and reconciles, or nothing changes.
    """
    started = time.perf_counter()
    started_at = utc_now()
    day = DayLoad(feed="events", landing_date=landing_date, run_id=run_id or new_run_id())
    ensure_raw_schema(con)
    con.execute("set TimeZone = 'UTC'")
    lines, day.files = read_day(files)
    if lines is None:
        day.seconds = time.perf_counter() - started
        return day
    future_limit = landing_date + timedelta(days=1) + future_tolerance
    con.register("landing_lines", lines)
    try:
        con.execute(_PARSE_SQL, {"future_limit": future_limit})
        rank_copies(con, staged="staged_calls", ranked="ranked_calls", key="message_id",
                    kept_in=["raw.events", "raw.identifies"], landing_date=landing_date)
        fill_counts(con, day.files, staged="staged_calls", ranked="ranked_calls")
        con.execute("begin transaction")
        try:
            delete_landing_day(con, "events", ["raw.events", "raw.identifies"], landing_date)
            _insert(con, landing_date, day.run_id, started_at)
            reconcile_and_log(con, day, started_at)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        _summarise(con, day, landing_date)
    finally:
        con.unregister("landing_lines")
        con.execute("drop table if exists staged_calls")
        con.execute("drop table if exists ranked_calls")
    day.seconds = time.perf_counter() - started
    return day


def _insert(con: duckdb.DuckDBPyConnection, landing_date: date, run_id: str, loaded_at) -> None:
    params = {"day": landing_date, "run_id": run_id, "loaded_at": loaded_at}
    con.execute(
        f"""
        insert into raw.events
        select message_id, call_type, nullif(call.event, ''), call.name, user_id, anonymous_id,
               event_at, original_timestamp, sent_at, received_at, call.properties, call.context,
               line, $day, source_file, line_no, $loaded_at, $run_id
        from ranked_calls
        where is_kept and call_type in {EVENT_TYPES}
        order by event_at
        """,
        params,
    )
    con.execute(
        f"""
        insert into raw.identifies
        select message_id, call_type, user_id, anonymous_id, previous_id, call.traits,
               event_at, original_timestamp, sent_at, received_at, call.context,
               line, $day, source_file, line_no, $loaded_at, $run_id
        from ranked_calls
        where is_kept and call_type in {IDENTITY_TYPES}
        order by event_at
        """,
        params,
    )
    con.execute(
        """
        insert into raw.quarantine
        select 'events', $day, source_file, line_no, reason, detail, line, $loaded_at, $run_id
        from staged_calls where reason is not null
        """,
        params,
    )
    con.execute(
        """
        insert into raw.duplicates
        select 'events', $day, source_file, line_no, message_id, kept_landing_date, kept_source_file,
               kept_line_no, line, $loaded_at, $run_id
        from ranked_calls where not is_kept
        """,
        params,
    )


def _summarise(con: duckdb.DuckDBPyConnection, day: DayLoad, landing_date: date) -> None:
    for reason, count in con.execute(
        "select reason, count(*) from staged_calls where reason is not null group by reason"
    ).fetchall():
        day.quarantined_by_reason[reason] = count
    events, identities, late = con.execute(
        f"""
        select count(*) filter (where call_type in {EVENT_TYPES}),
               count(*) filter (where call_type in {IDENTITY_TYPES}),
               count(*) filter (where cast(event_at as date) < $day)
        from ranked_calls where is_kept
        """,
        {"day": landing_date},
    ).fetchall()[0]
    day.loaded_by_table = {"raw.events": events, "raw.identifies": identities}
    day.late_rows = late
