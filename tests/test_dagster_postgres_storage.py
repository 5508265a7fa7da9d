"""Dagster's production storage: deploy/dagster.postgres.yaml against a real PostgreSQL."""

import uuid
from datetime import date
from pathlib import Path

import dagster as dg
import sqlalchemy
from dagster_duckdb import DuckDBResource

from orchestration.defs.ingest.assets import raw_segment_calls
from orchestration.resources import LandingZone
from tests.conftest import track
from tests.services import POSTGRES_DSN, require_server

REPO = Path(__file__).resolve().parent.parent


def test_runs_and_asset_history_are_stored_in_postgres(tmp_path, landing, monkeypatch):
    admin = require_server(POSTGRES_DSN, "PostgreSQL")
    database = f"goldentime_dagster_{uuid.uuid4().hex[:8]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sqlalchemy.text(f'create database "{database}"'))
    try:
        url = sqlalchemy.engine.make_url(POSTGRES_DSN).set(database=database)
        monkeypatch.setenv("DAGSTER_PG_URL", url.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False))
        home = tmp_path / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text((REPO / "deploy" / "dagster.postgres.yaml").read_text())
        landing.events(date(2026, 1, 2), "a", [track("m1", userId="u1"), track("m2", userId="u1")])

        instance = dg.DagsterInstance.from_config(str(home))
        try:
            result = dg.materialize(
                [raw_segment_calls],
                partition_key="2026-01-02",
                instance=instance,
                resources={
                    "warehouse": DuckDBResource(database=str(tmp_path / "warehouse.duckdb")),
                    "landing": LandingZone(url=str(landing.root)),
                },
            )
            assert result.success
            materialization = instance.get_latest_materialization_event(dg.AssetKey(["raw", "events"]))
            assert materialization.asset_materialization.partition == "2026-01-02"
        finally:
            instance.dispose()
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as connection:
            runs = connection.execute(sqlalchemy.text("select count(*) from runs")).scalar()
            events = connection.execute(sqlalchemy.text(
                "select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'")).scalar()
        engine.dispose()
        assert runs == 1 and events == 2  # raw/events and raw/identifies
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sqlalchemy.text(f'drop database if exists "{database}" with (force)'))
        admin.dispose()
