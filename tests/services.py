"""Real database servers for tests: DSNs from the environment, defaulting to the local servers.

Where a server does not answer, the test is skipped with the reason, except under CI (CI=true),
where a missing server is a failure: CI must prove the real thing.
"""

from __future__ import annotations

import os

import pytest

POSTGRES_DSN = os.environ.get("GOLDENTIME_TEST_POSTGRES_DSN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MARIADB_DSN = os.environ.get("GOLDENTIME_TEST_MARIADB_DSN", "mysql+pymysql://root@127.0.0.1:3306/test")


def require_server(dsn: str, name: str):
    """Connect with SQLAlchemy or skip (fail under CI) saying why."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(dsn, pool_pre_ping=True)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("select 1"))
    except Exception as exc:  # any driver error means: no usable server
        engine.dispose()
        message = f"{name} not reachable at {dsn.split('@')[-1]} ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " — CI requires it")
        pytest.skip(message)
    return engine
