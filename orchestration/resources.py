"""Resources shared by every domain: the DuckDB warehouse and the landing zone."""

from __future__ import annotations

import dagster as dg
from dagster_duckdb import DuckDBResource

from goldentime import settings


class LandingZone(dg.ConfigurableResource):
    """Where raw files arrive: a local folder or any fsspec URL (GOLDENTIME_LANDING)."""

    url: str


def shared_resources() -> dict:
    return {
        "warehouse": DuckDBResource(database=settings.warehouse_path()),
        "landing": LandingZone(url=settings.landing_url()),
    }
