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
AUDIENCES_ENV = "GOLDENTIME_AUDIENCES"
AS_OF_ENV = "GOLDENTIME_AS_OF"

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


def audiences_dir() -> Path:
    """The marketers' audience specs (one YAML file each, plus _config.yml)."""
    return Path(os.environ.get(AUDIENCES_ENV, REPO_ROOT / "audiences")).resolve()


def activation_as_of():
    """The instant audiences are evaluated at: GOLDENTIME_AS_OF (ISO, UTC unless it says otherwise)
    for replays and the demo's simulated shop, else now."""
    from datetime import datetime, timezone

    value = os.environ.get(AS_OF_ENV)
    if not value:
        return datetime.now(timezone.utc)
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def partitions_start() -> str:
    return os.environ.get(PARTITIONS_START_ENV, DEFAULT_PARTITIONS_START)


def dagster_home() -> Path:
    """DAGSTER_HOME, created with the instance settings of orchestration/dagster.yaml if missing."""
    home = Path(os.environ.get("DAGSTER_HOME", data_dir() / "dagster")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text((REPO_ROOT / "orchestration" / "dagster.yaml").read_text())
    return home


def dagster_env() -> dict[str, str]:
    """The environment a Dagster process of this project runs with: one warehouse, one landing zone."""
    env = dict(os.environ)
    env.update(
        {
            "DAGSTER_HOME": str(dagster_home()),
            DUCKDB_ENV: warehouse_path(),
            LANDING_ENV: landing_url(),
        }
    )
    return env
