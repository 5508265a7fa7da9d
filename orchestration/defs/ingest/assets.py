"""Ingest assets: a thin layer over goldentime.ingest.

Each asset loads one or more landing days in a single run (BackfillPolicy.single_run), every day
in its own transaction, then runs its Great Expectations checks on exactly the days it loaded.
The checks are blocking: an error-level failure stops the assets downstream.
"""


from collections import Counter
from datetime import date

import dagster as dg
from dagster_duckdb import DuckDBResource

from goldentime.ingest.events import load_events
from goldentime.ingest.landing import landing_files
from goldentime.ingest.loading import DayLoad
from goldentime.ingest.orders import load_orders
from orchestration.defs.ingest.partitions import landing_days
from orchestration.defs.quality.raw_checks import check_specs_for, run_raw_checks
from orchestration.metadata import markdown_table
from orchestration.resources import LandingZone

EVENTS_KEY = dg.AssetKey(["raw", "events"])
IDENTIFIES_KEY = dg.AssetKey(["raw", "identifies"])
ORDERS_KEY = dg.AssetKey(["raw", "orders"])

_COMMON = dict(
    partitions_def=landing_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb",  # DuckDB has one writer: every warehouse writer shares this pool (limit 1)
    group_name="ingest",
)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            EVENTS_KEY,
            description="Segment track/page/screen/group calls, deduplicated on messageId, times in UTC "
            "corrected for client clock skew, raw payload kept. Partitioned by landing day.",
            kinds={"duckdb"},
            tags={"layer": "raw"},
        ),
        dg.AssetSpec(
            IDENTIFIES_KEY,
            description="Segment identify and alias calls (traits, previousId), deduplicated with raw.events "
            "on messageId. Partitioned by landing day.",
            kinds={"duckdb"},
            tags={"layer": "raw", "pii": "traits"},
        ),
    ],
    check_specs=check_specs_for("events", EVENTS_KEY) + check_specs_for("identifies", IDENTIFIES_KEY),
    **_COMMON,
)
def raw_segment_calls(context: dg.AssetExecutionContext, warehouse: DuckDBResource, landing: LandingZone):
    """Load the events feed of the landing days in this run."""
    days = _days(context)
    loads = _load(context, warehouse, landing, "events", days, load_events)
    yield dg.MaterializeResult(asset_key=EVENTS_KEY, metadata=_metadata(warehouse, loads, "raw.events", "events"))
    yield dg.MaterializeResult(
        asset_key=IDENTIFIES_KEY, metadata=_metadata(warehouse, loads, "raw.identifies", None)
    )
    yield from run_raw_checks(warehouse, "events", EVENTS_KEY, days)
    yield from run_raw_checks(warehouse, "identifies", IDENTIFIES_KEY, days)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ORDERS_KEY,
            description="The shop's orders export, typed and deduplicated on order_id. Partitioned by landing day.",
            kinds={"duckdb"},
            tags={"layer": "raw"},
        )
    ],
    check_specs=check_specs_for("orders", ORDERS_KEY),
    **_COMMON,
)
def raw_orders(context: dg.AssetExecutionContext, warehouse: DuckDBResource, landing: LandingZone):
    """Load the orders feed of the landing days in this run."""
    days = _days(context)
    loads = _load(context, warehouse, landing, "orders", days, load_orders)
    yield dg.MaterializeResult(asset_key=ORDERS_KEY, metadata=_metadata(warehouse, loads, "raw.orders", "orders"))
    yield from run_raw_checks(warehouse, "orders", ORDERS_KEY, days)


ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets(raw_segment_calls, raw_orders),
    partitions_def=landing_days,
    description="Load landing days into the raw tables (used by the landing-zone sensor).",
)


def _days(context: dg.AssetExecutionContext) -> list[date]:
    return [date.fromisoformat(key) for key in context.partition_keys]


def _load(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, landing: LandingZone, feed: str, days: list[date], loader
) -> list[DayLoad]:
    files = [f for day in days for f in landing_files(landing.url, feed, day)]
    empty_days = sorted(set(days) - {f.day for f in files})
    if empty_days:
        context.log.warning(
            f"{feed}: no files for {len(empty_days)} landing day(s) ({empty_days[0]} … {empty_days[-1]}); "
            "rows already loaded for those days are kept as they are"
        )
    with warehouse.get_connection() as con:
        loads = loader(con, files, run_id=context.run.run_id)
    for load in loads:
        for problem in load.problems:
            context.log.warning(f"{feed} {load.landing_date}: {problem}")
    context.log.info(
        f"{feed}: read {sum(l.total('lines_read') for l in loads):,} lines from {len(files)} file(s) in "
        f"{sum(l.seconds for l in loads):.2f}s: loaded {sum(l.total('loaded') for l in loads):,}, "
        f"duplicates {sum(l.total('duplicates') for l in loads):,}, quarantined {sum(l.total('quarantined') for l in loads):,}"
    )
    return loads or [DayLoad(feed=feed, landing_date=day, run_id=context.run.run_id) for day in days]


def _metadata(warehouse: DuckDBResource, loads: list[DayLoad], table: str, feed: "str | None") -> dict:
    """Row counts and a preview for `table`; the run's reconciliation and quarantine only once per feed."""
    first, last = min(l.landing_date for l in loads), max(l.landing_date for l in loads)
    loaded = sum(l.loaded_by_table.get(table, 0) for l in loads)
    preview_columns = {
        "raw.events": "message_id, type, coalesce(event, page_name) as event, event_at, landing_date",
        "raw.identifies": "message_id, type, event_at, landing_date",  # traits are PII: not previewed
        "raw.orders": "order_id, ordered_at, status, revenue, landing_date",
    }[table]
    with warehouse.get_connection() as con:
        preview = con.execute(
            f"select {preview_columns} from {table} where landing_date between ? and ? "
            "order by landing_date, line_no limit 5",
            [first, last],
        ).df()
        total_rows = con.execute(f"select count(*) from {table}").fetchall()[0][0]
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(total_rows),
        "rows_loaded_this_run": dg.MetadataValue.int(loaded),
        "landing_days": dg.MetadataValue.text(f"{first} … {last} ({len(loads)} day(s))"),
        "preview": dg.MetadataValue.md(markdown_table(preview)),
    }
    if feed is not None:
        reasons = Counter()
        for load in loads:
            reasons.update(load.quarantined_by_reason)
        lines = sum(l.total("lines_read") for l in loads)
        seconds = sum(l.seconds for l in loads)
        problems = [p for l in loads for p in l.problems]
        metadata |= {
            "lines_read": dg.MetadataValue.int(lines),
            "loaded": dg.MetadataValue.int(sum(l.total("loaded") for l in loads)),
            "duplicates": dg.MetadataValue.int(sum(l.total("duplicates") for l in loads)),
            "quarantined": dg.MetadataValue.int(sum(l.total("quarantined") for l in loads)),
            "late_arriving_rows": dg.MetadataValue.int(sum(l.late_rows for l in loads)),
            "quarantined_by_reason": dg.MetadataValue.json(dict(reasons.most_common())),
            "files": dg.MetadataValue.int(sum(len(l.files) for l in loads)),
            "file_problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "_none_"),
            "seconds": dg.MetadataValue.float(round(seconds, 3)),
            "lines_per_second": dg.MetadataValue.float(float(round(lines / seconds)) if seconds else 0.0),
        }
    return metadata
