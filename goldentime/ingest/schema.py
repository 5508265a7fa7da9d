"""The raw schema: what ingestion writes and dbt's sources read.

Long JSON and text columns use ZSTD: measured here on generated events it writes 2.5x faster than
DuckDB's automatic choice (FSST) and takes a third of the space.

Every raw row carries its lineage (`source_file`, `line_no`, `loaded_at`, `run_id`) and the
`landing_date` partition it was loaded with; re-loading a landing day replaces exactly the rows of
that day in every table below, inside one transaction.
"""

from __future__ import annotations

RAW_SCHEMA = "raw"

DDL = [
    f"create schema if not exists {RAW_SCHEMA}",
    """
    create table if not exists raw.events (
        message_id varchar not null,
        type varchar not null,            -- track | page | screen | group
        event varchar,                    -- track: the event name; page: 'Page Viewed'
        page_name varchar,
        user_id varchar,
        anonymous_id varchar,
        event_at timestamp not null,      -- UTC, corrected for client clock skew
        original_timestamp timestamp,     -- UTC, as the client's clock said
        sent_at timestamp,
        received_at timestamp,
        properties json using compression zstd,
        context json using compression zstd,
        payload json using compression zstd not null,            -- the call exactly as received
        landing_date date not null,
        source_file varchar not null,
        line_no bigint not null,
        loaded_at timestamp not null,
        run_id varchar
    )
    """,
    """
    create table if not exists raw.identifies (
        message_id varchar not null,
        type varchar not null,            -- identify | alias
        user_id varchar,
        anonymous_id varchar,
        previous_id varchar,              -- alias: the id merged into user_id
        traits json using compression zstd,
        event_at timestamp not null,
        original_timestamp timestamp,
        sent_at timestamp,
        received_at timestamp,
        context json using compression zstd,
        payload json using compression zstd not null,
        landing_date date not null,
        source_file varchar not null,
        line_no bigint not null,
        loaded_at timestamp not null,
        run_id varchar
    )
    """,
    """
    -- One row per version of an order: a status change (completed -> refunded) is a new row.
    create table if not exists raw.orders (
        order_id varchar not null,
        user_id varchar,
        ordered_at timestamp not null,
        status varchar not null,
        currency varchar,
        revenue decimal(18, 2) not null,
        item_count integer,
        raw_line varchar using compression zstd not null,
        landing_date date not null,
        source_file varchar not null,
        line_no bigint not null,
        loaded_at timestamp not null,
        run_id varchar
    )
    """,
    """
    create table if not exists raw.quarantine (
        feed varchar not null,
        landing_date date not null,
        source_file varchar not null,
        line_no bigint,
        reason varchar not null,
        detail varchar,
        raw_text varchar using compression zstd,
        quarantined_at timestamp not null,
        run_id varchar
    )
    """,
    """
    create table if not exists raw.duplicates (
        feed varchar not null,
        landing_date date not null,
        source_file varchar not null,
        line_no bigint not null,
        duplicate_key varchar not null,   -- messageId for events, 'order_id:status' for orders
        kept_landing_date date not null,  -- where the copy that was kept lives
        kept_source_file varchar not null,
        kept_line_no bigint not null,
        raw_text varchar using compression zstd,
        detected_at timestamp not null,
        run_id varchar
    )
    """,
    """
    create table if not exists raw.ingest_log (
        run_id varchar,
        feed varchar not null,
        landing_date date not null,
        source_file varchar not null,
        file_bytes bigint,
        lines_read bigint not null,
        loaded bigint not null,
        duplicates bigint not null,
        quarantined bigint not null,
        problems varchar[],
        started_at timestamp not null,
        finished_at timestamp not null
    )
    """,
]


def ensure_raw_schema(con) -> None:
    for statement in DDL:
        con.execute(statement)
