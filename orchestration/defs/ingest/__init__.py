"""Ingest: landing-zone files → DuckDB raw tables, one daily partition per landing day."""

import dagster as dg

from orchestration.defs.ingest.assets import ingest_job, raw_orders, raw_segment_calls
from orchestration.defs.ingest.sensors import landing_zone_sensor

defs = dg.Definitions(
    assets=[raw_segment_calls, raw_orders],
    jobs=[ingest_job],
    sensors=[landing_zone_sensor],
)
