"""SqlTableDestination against the REAL PostgreSQL and MariaDB servers (tests/services.py).

Each test creates and drops its own uniquely named table.
"""

from __future__ import annotations

import time
import traceback
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy

from activations.destinations.sql import SqlTableDestination, bulk_copy_baseline
from activations.sync.destination import BatchRejected, Destination, SyncRow, TransientError
from tests.services import MARIADB_DSN, POSTGRES_DSN, require_server

COLUMNS = {
    "customer_id": "varchar(64)",
    "email": "varchar(120)",
    "score": "numeric(8,2)",
    "orders": "integer",
    "active": "boolean",
    "first_order": "date",
    "updated_at": "timestamp",
}


def _row(key, operation="add", **payload) -> SyncRow:
    return SyncRow(key=str(key), operation=operation, payload=payload, payload_hash="h", idempotency_key=f"i-{key}")


def _payload(i: int, **override):
    data = {
        "customer_id": f"c{i}",
        "email": f"user{i}@example.com",
        "score": Decimal(i) / 4,
        "orders": i,
        "active": i % 2 == 0,
        "first_order": date(2024, 1, 1 + i % 28),
        "updated_at": datetime(2024, 5, 1, 12, 0, i % 60),
    }
    data.update(override)
    return data


@pytest.fixture(params=["postgresql", "mariadb"])
def db(request, monkeypatch):
    dsn = POSTGRES_DSN if request.param == "postgresql" else MARIADB_DSN
    engine = require_server(dsn, "PostgreSQL" if request.param == "postgresql" else "MariaDB")
    table = f"gt_dest_{uuid.uuid4().hex[:10]}"
    env = f"GT_TEST_DEST_URL_{uuid.uuid4().hex[:6].upper()}"
    monkeypatch.setenv(env, dsn)
    made: list[SqlTableDestination] = []

    class Handle:
        kind = request.param

        def destination(self, **kwargs) -> SqlTableDestination:
            options = dict(url_env=env, table=table, key_column="customer_id", columns=COLUMNS)
            options.update(kwargs)
            destination = SqlTableDestination(**options)
            made.append(destination)
            return destination

        def contents(self) -> dict:
            with engine.connect() as connection:
                result = connection.execute(sqlalchemy.text(f"SELECT * FROM {table} ORDER BY customer_id"))
                return {row._mapping["customer_id"]: dict(row._mapping) for row in result}

        def count(self) -> int:
            with engine.connect() as connection:
                return connection.execute(sqlalchemy.text(f"SELECT count(*) FROM {table}")).scalar()

    Handle.table = table
    Handle.engine = engine
    Handle.dsn = dsn
    yield Handle()
    for destination in made:
        destination.close()
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


def _normalise(record: dict) -> dict:
    out = dict(record)
    if out.get("active") is not None:
        out["active"] = bool(out["active"])  # MariaDB boolean is tinyint(1)
    return out


def test_is_a_destination(db):
    destination = db.destination()
    assert isinstance(destination, Destination)
    assert destination.batch_size == 10_000 and destination.max_requests_per_second is None
    assert db.dsn not in repr(destination)


def test_add_change_remove_exact_contents(db):
    destination = db.destination()
    results = destination.send([_row(f"c{i}", **_payload(i)) for i in range(1, 5)])
    assert [(r.key, r.status) for r in results] == [(f"c{i}", "ok") for i in range(1, 5)]

    results = destination.send(
        [
            _row("c2", "change", **_payload(2, email="new2@example.com", score="7.125", orders="9", active="false")),
            _row("c3", "remove"),
            _row("c5", "add", email=None),  # missing columns become NULL
        ]
    )
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    contents = {k: _normalise(v) for k, v in db.contents().items()}
    assert set(contents) == {"c1", "c2", "c4", "c5"}
    assert contents["c2"] == {
        "customer_id": "c2",
        "email": "new2@example.com",
        "score": Decimal("7.13"),  # rounded half up to the column's scale
        "orders": 9,
        "active": False,
        "first_order": date(2024, 1, 3),
        "updated_at": datetime(2024, 5, 1, 12, 0, 2),
    }
    assert contents["c5"] == {
        "customer_id": "c5", "email": None, "score": None, "orders": None, "active": None,
        "first_order": None, "updated_at": None,
    }
    assert contents["c4"] == {
        "customer_id": "c4",
        "email": "user4@example.com",
        "score": Decimal("1.00"),
        "orders": 4,
        "active": True,
        "first_order": date(2024, 1, 5),
        "updated_at": datetime(2024, 5, 1, 12, 0, 4),
    }

    # the row key wins over a payload field of the same name
    destination.send([_row("c4", "remove"), _row("c1", "change", **_payload(1, customer_id="zzz", orders=100))])
    contents = db.contents()
    assert set(contents) == {"c1", "c2", "c5"}
    assert contents["c1"]["orders"] == 100


def test_on_remove_clear_and_ignore(db):
    clear = db.destination(on_remove="clear")
    clear.send([_row(f"c{i}", **_payload(i)) for i in range(3)])
    assert [r.status for r in clear.send([_row("c1", "remove"), _row("never-seen", "remove")])] == ["ok", "ok"]
    contents = db.contents()
    assert set(contents) == {"c0", "c1", "c2"}  # clear does not insert unknown keys
    assert contents["c1"] == {
        "customer_id": "c1", "email": None, "score": None, "orders": None, "active": None,
        "first_order": None, "updated_at": None,
    }
    assert contents["c2"]["email"] == "user2@example.com"

    ignore = db.destination(on_remove="ignore")
    assert [r.status for r in ignore.send([_row("c2", "remove")])] == ["ok"]
    assert db.contents()["c2"]["email"] == "user2@example.com"


def test_idempotent_resend_and_last_write_wins(db):
    destination = db.destination()
    batch = [_row(f"c{i}", "add", **_payload(i)) for i in range(50)]
    destination.send(batch)
    before = db.contents()
    for _ in range(2):
        assert all(r.status == "ok" for r in destination.send(batch))
    assert db.count() == 50
    assert db.contents() == before

    # the same key twice in one batch: the last one wins, no "row affected twice" error
    results = destination.send([_row("c7", "change", **_payload(7, orders=1)), _row("c7", "change", **_payload(7, orders=2))])
    assert [r.status for r in results] == ["ok", "ok"]
    assert db.contents()["c7"]["orders"] == 2 and db.count() == 50


def test_bad_rows_rejected_rest_lands(db):
    destination = db.destination()
    rows = [
        _row("c1", **_payload(1)),
        _row("c2", **_payload(2, orders="many")),  # not an integer
        _row("c3", **_payload(3, email="x" * 121)),  # too long for varchar(120)
        _row("c4", **_payload(4, score=Decimal("1000000"))),  # too large for numeric(8,2)
        _row("c5", **_payload(5, first_order="2024-02-30")),  # not a date
        _row("c6", **_payload(6, email="nul\x00byte")),  # PostgreSQL text cannot hold NUL
        _row("c7", **_payload(7, orders=2**40)),  # out of integer range
        _row("c8", "upsert", **_payload(8)),  # unknown operation
        _row("c9", **_payload(9, active={"yes": 1})),
        _row("c10", **_payload(10)),
    ]
    results = destination.send(rows)
    assert [r.key for r in results] == [r.key for r in rows]
    statuses = {r.key: r.status for r in results}
    assert statuses == {
        "c1": "ok", "c2": "rejected", "c3": "rejected", "c4": "rejected", "c5": "rejected",
        "c6": "rejected", "c7": "rejected", "c8": "rejected", "c9": "rejected", "c10": "ok",
    }
    by_key = {r.key: r.message for r in results}
    assert "'orders'" in by_key["c2"] and "many" not in by_key["c2"]  # column named, value not echoed
    assert "'email'" in by_key["c3"]
    assert set(db.contents()) == {"c1", "c10"}


def test_rejected_batch_on_database_error(db):
    """A table without a unique key: the upsert cannot work -> BatchRejected (engine splits)."""
    with db.engine.begin() as connection:
        connection.execute(sqlalchemy.text(f"CREATE TABLE {db.table} (customer_id varchar(64), email varchar(120))"))
    destination = db.destination(columns={"customer_id": "varchar(64)", "email": "varchar(120)"})
    if db.kind == "mariadb":  # without a unique key MariaDB just appends: nothing to reject
        destination.send([_row("c1", email="a")])
        assert db.count() == 1
        return
    with pytest.raises(BatchRejected) as info:
        destination.send([_row("c1", email="a")])
    assert "ON CONFLICT" in str(info.value) or "constraint" in str(info.value)


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "mysql+pymysql"])
def test_password_never_in_error_message(scheme, monkeypatch):
    password = "S3cr3t-Hunter2-pw"
    # port 1 on localhost is closed: the connection is refused
    monkeypatch.setenv("GT_TEST_BAD_DEST_URL", f"{scheme}://someone:{password}@127.0.0.1:1/nowhere")
    destination = SqlTableDestination("GT_TEST_BAD_DEST_URL", "t", "id", {"id": "bigint", "v": "text"})
    assert password not in repr(destination)
    with pytest.raises(TransientError) as info:
        destination.send([_row(1, v="x")])
    rendered = "".join(traceback.format_exception(info.value))
    assert password not in str(info.value) and password not in repr(info.value) and password not in rendered
    assert info.value.__cause__ is None and info.value.__suppress_context__
    destination.close()

    with pytest.raises(RuntimeError) as baseline_info:
        bulk_copy_baseline(f"{scheme}://someone:{password}@127.0.0.1:1/nowhere", "t", [{"id": 1}])
    assert password not in "".join(traceback.format_exception(baseline_info.value))


def test_missing_env_variable_is_reported_by_name(monkeypatch):
    monkeypatch.delenv("GT_TEST_UNSET_DEST_URL", raising=False)
    destination = SqlTableDestination("GT_TEST_UNSET_DEST_URL", "t", "id", {"id": "bigint"})
    with pytest.raises(RuntimeError, match="GT_TEST_UNSET_DEST_URL"):
        destination.send([_row(1)])


def test_type_conversions(db):
    columns = {"id": "bigint", "at": "timestamp", "flag": "boolean", "ratio": "double precision"}
    destination = db.destination(key_column="id", columns=columns)
    aware = datetime(2024, 6, 1, 9, 0, tzinfo=timezone.utc).astimezone(timezone.utc)
    results = destination.send(
        [
            SyncRow("42", "add", {"at": "2024-06-01T18:00:00+09:00", "flag": 1, "ratio": "0.5"}, "h", "i"),
            SyncRow("43", "add", {"at": aware, "flag": "no", "ratio": 2}, "h", "i"),
            SyncRow("x44", "add", {}, "h", "i"),  # key not a bigint
        ]
    )
    assert [r.status for r in results] == ["ok", "ok", "rejected"]
    with db.engine.connect() as connection:
        got = connection.execute(sqlalchemy.text(f"SELECT id, at, flag, ratio FROM {db.table} ORDER BY id")).all()
    assert [(r[0], r[1], bool(r[2]), r[3]) for r in got] == [
        (42, datetime(2024, 6, 1, 9, 0), True, 0.5),  # aware timestamps stored as UTC wall clock
        (43, datetime(2024, 6, 1, 9, 0), False, 2.0),
    ]


def test_100k_upsert_timing(db, capsys):
    n = 100_000
    destination = db.destination()
    rows = [_row(f"c{i:06d}", "add", **_payload(i, customer_id=f"c{i:06d}")) for i in range(n)]
    started = time.perf_counter()
    results = destination.send(rows)
    insert_seconds = time.perf_counter() - started
    assert len(results) == n and all(r.status == "ok" for r in results)
    assert db.count() == n

    changed = [_row(r.key, "change", **{**r.payload, "orders": r.payload["orders"] + 1}) for r in rows]
    started = time.perf_counter()
    destination.send(changed)
    update_seconds = time.perf_counter() - started

    started = time.perf_counter()
    destination.send(changed)
    noop_seconds = time.perf_counter() - started
    assert db.count() == n
    assert db.contents()["c000010"]["orders"] == 11

    baseline_table = f"{db.table}_copy"
    with db.engine.begin() as connection:
        columns_sql = ", ".join(f"{name} {sql_type}" for name, sql_type in COLUMNS.items())
        connection.execute(sqlalchemy.text(f"CREATE TABLE {baseline_table} ({columns_sql})"))
    try:
        copy_seconds = bulk_copy_baseline(db.dsn, baseline_table, [r.payload for r in rows])
        with db.engine.connect() as connection:
            assert connection.execute(sqlalchemy.text(f"SELECT count(*) FROM {baseline_table}")).scalar() == n
    finally:
        with db.engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {baseline_table}"))

    with capsys.disabled():
        print(
            f"\n[{db.kind}] {n} rows, batch {destination.batch_size}: insert {insert_seconds:.2f}s "
            f"({n / insert_seconds:,.0f} rows/s), update {update_seconds:.2f}s, "
            f"no-op re-send {noop_seconds:.2f}s; plain bulk load baseline {copy_seconds:.2f}s "
            f"({n / copy_seconds:,.0f} rows/s)"
        )
