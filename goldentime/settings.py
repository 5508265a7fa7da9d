"""Where things live. Every path comes from one environment variable with a repo-relative default.

dbt's profiles.yml and Dagster's resources read the same absolute DuckDB path
(GOLDENTIME_DUCKDB): dagster-dbt copies the dbt project elsewhere, so a relative path
would silently create a second warehouse inside that copy.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

DUCKDB_ENV = "GOLDENTIME_DUCKDB"
LANDING_ENV = "GOLDENTIME_LANDING"
PARTITIONS_START_ENV = "GOLDENTIME_PARTITIONS_START"

DEFAULT_PARTITIONS_START = "2026-01-01"


def data_dir() -> Path:
    return Path(os.environ.get("GOLDENTIME_DATA", REPO_ROOT / "data")).resolve()


def warehouse_path() -> str:
    return str(Path(os.environ.get(DUCKDB_ENV, data_dir() / "warehouse.duckdb")).resolve())


def landing_url() -> str:
    """A local folder or any fsspec URL (s3://, gs://, memory://, ...)."""
    value = os.environ.get(LANDING_ENV)
    if value and "://" in value:
        return value
    return str(Path(value or data_dir() / "landing").resolve())


def partitions_start() -> str:
    return os.environ.get(PARTITIONS_START_ENV, DEFAULT_PARTITIONS_START)
