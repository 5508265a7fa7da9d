"""A SQL table as a sync destination: PostgreSQL (COPY + ON CONFLICT) and MariaDB/MySQL
(executemany + ON DUPLICATE KEY UPDATE).

``SqlTableDestination`` implements ``activations.sync.destination.Destination``. One ``send()``
call writes each chunk of at most ``batch_size`` rows in ONE transaction:

* every row is first validated and converted in Python against the configured column types; a row
  that cannot be converted is answered ``rejected`` (with the column and the reason, never the
  value) and the rest of the batch still goes through;
* adds / changes are upserted on ``key_column`` (PostgreSQL: COPY into a temporary staging table
  created from the target's own column types, then ``INSERT ... SELECT ... ON CONFLICT (key) DO
  UPDATE ... WHERE ... IS DISTINCT FROM ...`` so a re-sent batch rewrites nothing; MariaDB: one
  multi-row ``INSERT ... ON DUPLICATE KEY UPDATE`` through pymysql's executemany);
* removes follow ``on_remove``: ``delete`` the row, ``clear`` (set every non-key column to NULL,
  only on rows that exist) or ``ignore``;
* several rows for the same key in one batch: the last valid one wins (all are answered ``ok``).

Errors: a lost / refused connection, a deadlock, a serialization failure or a lock time-out raise
``TransientError`` (the engine retries the batch); any other database error raises
``BatchRejected`` (the engine splits the batch). The URL is read from the environment variable
named ``url_env`` and never appears in a message, a repr or an exception chain.
"""

from __future__ import annotations

import json
import math
import os
import re
import time as time_module
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import quote, quote_plus

from activations.sync.destination import BatchRejected, RowResult, SyncRow, TransientError

__all__ = ["SqlTableDestination", "bulk_copy_baseline", "ON_REMOVE"]

ON_REMOVE = ("delete", "clear", "ignore")

# --------------------------------------------------------------------------------------------
# Python-side conversion of payload values to the column types
# --------------------------------------------------------------------------------------------


class _Invalid(ValueError):
    """A value that cannot be converted to its column type (message never contains the value)."""


_INT_BOUNDS = {
    "tinyint": (-(2**7), 2**7 - 1),
    "smallint": (-(2**15), 2**15 - 1),
    "int2": (-(2**15), 2**15 - 1),
    "mediumint": (-(2**23), 2**23 - 1),
    "int": (-(2**31), 2**31 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "int4": (-(2**31), 2**31 - 1),
    "serial": (1, 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
    "int8": (-(2**63), 2**63 - 1),
    "bigserial": (1, 2**63 - 1),
}
_FLOAT = {"real", "float", "float4", "float8", "double", "double precision"}
_DECIMAL = {"numeric", "decimal", "dec", "fixed"}
_BOOL = {"bool", "boolean"}
_TEXT = {
    "text", "varchar", "character varying", "char", "character", "nchar", "nvarchar",
    "national character varying", "tinytext", "mediumtext", "longtext", "citext", "string", "bpchar",
}
_DATE = {"date"}
_TIMESTAMP_NAIVE = {"timestamp", "timestamp without time zone", "datetime"}
_TIMESTAMP_AWARE = {"timestamptz", "timestamp with time zone"}
_TIME = {"time", "time without time zone"}
_JSON = {"json", "jsonb"}
_BYTES = {"bytea", "blob", "tinyblob", "mediumblob", "longblob", "binary", "varbinary"}
_UUID = {"uuid"}
# PostgreSQL types without an equality operator: the no-op-update guard cannot compare them.
_NO_EQUALITY = {"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"}

_TYPE_RE = re.compile(r"^\s*([a-z_][a-z0-9_]*(?:\s+[a-z_][a-z0-9_]*)*)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*(.*)$")
_INT_TEXT = re.compile(r"^[+-]?\d+$")
_TRUE = {"t", "true", "1", "yes", "y", "on"}
_FALSE = {"f", "false", "0", "no", "n", "off"}


def _parse_type(sql_type: str) -> tuple[str, int | None, int | None, str]:
    """'numeric(12, 2) not null' -> ('numeric', 12, 2, 'not null'); 'timestamp(3) with time zone' too."""
    lowered = " ".join(sql_type.lower().split())
    match = _TYPE_RE.match(lowered)
    if not match:
        return lowered, None, None, ""
    words, first, second, rest = match.groups()
    words = words.split()
    known = set(_INT_BOUNDS) | _FLOAT | _DECIMAL | _BOOL | _TEXT | _DATE | _TIMESTAMP_NAIVE
    known |= _TIMESTAMP_AWARE | _TIME | _JSON | _BYTES | _UUID | _NO_EQUALITY
    base = words[0]
    for size in range(len(words), 0, -1):  # the longest known type name ("double precision")
        if " ".join(words[:size]) in known:
            base = " ".join(words[:size])
            if size < len(words):  # "varchar not null": no modifier, the rest is constraints
                rest = " ".join(words[size:]) + (" " + rest if rest else "")
            break
    # "timestamp(3) with time zone": the modifier sits between the words.
    if rest.startswith("with time zone") or rest.startswith("without time zone"):
        base = base + " " + ("with time zone" if rest.startswith("with ") else "without time zone")
    if base.endswith(" unsigned"):
        base = base[: -len(" unsigned")]
    return base, (int(first) if first else None), (int(second) if second else None), rest


def _describe(value: Any) -> str:
    return type(value).__name__


def _converter(sql_type: str, dialect: str) -> Callable[[Any], Any]:
    """A function converting one non-NULL payload value to what the driver should send."""
    base, first, second, rest = _parse_type(sql_type)
    unsigned = "unsigned" in sql_type.lower()
    mysql = dialect in ("mysql", "mariadb")

    if base in _INT_BOUNDS:
        low, high = _INT_BOUNDS[base]
        if unsigned:
            low, high = 0, high * 2 + 1

        def to_int(value: Any) -> int:
            if isinstance(value, bool):
                if base == "tinyint":
                    return int(value)
                raise _Invalid(f"expected {sql_type}, got bool")
            if isinstance(value, int):
                number = value
            elif isinstance(value, float):
                if not value.is_integer():
                    raise _Invalid(f"expected {sql_type}, got a non-integral float")
                number = int(value)
            elif isinstance(value, Decimal):
                if not value.is_finite() or value != value.to_integral_value():
                    raise _Invalid(f"expected {sql_type}, got a non-integral decimal")
                number = int(value)
            elif isinstance(value, str) and _INT_TEXT.match(value.strip()):
                number = int(value.strip())
            else:
                raise _Invalid(f"expected {sql_type}, got {_describe(value)} that is not an integer")
            if not low <= number <= high:
                raise _Invalid(f"expected {sql_type}, got an integer out of range")
            return number

        return to_int

    if base in _FLOAT:

        def to_float(value: Any) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
                raise _Invalid(f"expected {sql_type}, got {_describe(value)}")
            try:
                number = float(value)
            except (ValueError, OverflowError):
                raise _Invalid(f"expected {sql_type}, got {_describe(value)} that is not a number") from None
            if mysql and not math.isfinite(number):
                raise _Invalid(f"expected {sql_type}, got a non-finite number (unsupported by MariaDB)")
            return number

        return to_float

    if base in _DECIMAL:
        precision, scale = first, (second or 0)
        quantum = Decimal(1).scaleb(-scale) if precision is not None else None

        def to_decimal(value: Any) -> Decimal:
            if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
                raise _Invalid(f"expected {sql_type}, got {_describe(value)}")
            try:
                number = Decimal(value.strip() if isinstance(value, str) else str(value))
            except InvalidOperation:
                raise _Invalid(f"expected {sql_type}, got {_describe(value)} that is not a number") from None
            if not number.is_finite():
                raise _Invalid(f"expected {sql_type}, got a non-finite number")
            if quantum is not None:
                number = number.quantize(quantum, rounding=ROUND_HALF_UP)
                digits = len(number.as_tuple().digits) - max(0, -number.as_tuple().exponent)
                if number != 0 and digits > precision - scale:
                    raise _Invalid(f"expected {sql_type}, got a number too large for it")
            return number

        return to_decimal

    if base in _BOOL or (base == "tinyint" and first == 1):

        def to_bool(value: Any) -> bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
            raise _Invalid(f"expected {sql_type}, got {_describe(value)} that is not a boolean")

        return to_bool

    if base in _TEXT:
        limit = first if base not in ("text", "citext", "tinytext", "mediumtext", "longtext", "string") else None

        def to_text(value: Any) -> str:
            if isinstance(value, str):
                text = value
            elif isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
                text = str(value)
            else:
                raise _Invalid(f"expected {sql_type}, got {_describe(value)}")
            if "\x00" in text:
                raise _Invalid(f"expected {sql_type}, got text containing a NUL character")
            if limit is not None and len(text) > limit:
                raise _Invalid(f"expected {sql_type}, got {len(text)} characters")
            return text

        return to_text

    if base in _UUID:

        def to_uuid(value: Any) -> str:
            if isinstance(value, uuid.UUID):
                return str(value)
            try:
                return str(uuid.UUID(str(value)))
            except ValueError:
                raise _Invalid(f"expected {sql_type}, got {_describe(value)} that is not a UUID") from None

        return to_uuid

    if base in _DATE:

        def to_date(value: Any) -> date:
            if isinstance(value, datetime):
                if value.time() != time(0) or value.tzinfo is not None:
                    raise _Invalid(f"expected {sql_type}, got a datetime with a time of day")
                return value.date()
            if isinstance(value, date):
                return value
            if isinstance(value, str):
                try:
                    return date.fromisoformat(value.strip())
                except ValueError:
                    pass
            raise _Invalid(f"expected {sql_type}, got {_describe(value)} that is not an ISO date")

        return to_date

    if base in _TIMESTAMP_NAIVE or base in _TIMESTAMP_AWARE:
        aware = base in _TIMESTAMP_AWARE

        def to_timestamp(value: Any) -> datetime:
            if isinstance(value, datetime):
                moment = value
            elif isinstance(value, date):
                moment = datetime(value.year, value.month, value.day)
            elif isinstance(value, str):
                try:
                    moment = datetime.fromisoformat(value.strip())
                except ValueError:
                    raise _Invalid(f"expected {sql_type}, got str that is not an ISO timestamp") from None
            else:
                raise _Invalid(f"expected {sql_type}, got {_describe(value)}")
            if aware:  # naive means UTC, never the session's time zone
                return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
            # a column without a time zone stores UTC wall-clock time
            if moment.tzinfo is not None:
                moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
            return moment

        return to_timestamp

    if base in _TIME:

        def to_time(value: Any) -> time:
            if isinstance(value, time):
                return value
            if isinstance(value, str):
                try:
                    return time.fromisoformat(value.strip())
                except ValueError:
                    pass
            raise _Invalid(f"expected {sql_type}, got {_describe(value)} that is not an ISO time")

        return to_time

    if base in _JSON:

        def to_json(value: Any) -> str:
            try:
                text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
            except (TypeError, ValueError):
                raise _Invalid(f"expected {sql_type}, got a value that is not JSON-serialisable") from None
            if "\\u0000" in text and not mysql:
                raise _Invalid(f"expected {sql_type}, got JSON containing a NUL character")
            return text

        return to_json

    if base in _BYTES:

        def to_bytes(value: Any) -> bytes:
            if isinstance(value, (bytes, bytearray, memoryview)):
                data = bytes(value)
                if first is not None and base in ("binary", "varbinary") and len(data) > first:
                    raise _Invalid(f"expected {sql_type}, got {len(data)} bytes")
                return data
            raise _Invalid(f"expected {sql_type}, got {_describe(value)}")

        return to_bytes

    # Unknown type: sent as is; a value the database refuses makes the batch rejected (and split).
    def passthrough(value: Any) -> Any:
        if isinstance(value, (dict, list)):
            raise _Invalid(f"expected {sql_type}, got {_describe(value)}")
        return value

    return passthrough


# --------------------------------------------------------------------------------------------
# Error classification and redaction
# --------------------------------------------------------------------------------------------

# PostgreSQL SQLSTATE classes / codes worth retrying.
_PG_TRANSIENT_PREFIXES = ("08", "40", "53", "57P")  # connection, rollback (deadlock/serialization),
_PG_TRANSIENT_CODES = {"55P03", "57014"}  # insufficient resources, shutdown; lock not available, cancel
# MySQL / MariaDB error numbers worth retrying.
_MYSQL_TRANSIENT = {
    1040,  # too many connections
    1053,  # server shutdown
    1205,  # lock wait timeout
    1213,  # deadlock
    1927,  # connection killed
    2002, 2003, 2004, 2005, 2006, 2011, 2013, 2055,  # cannot connect / gone away / lost connection
    4031,  # disconnected for inactivity
}


def _driver_error(exc: BaseException) -> BaseException:
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the DBAPI error
    return orig if isinstance(orig, BaseException) else exc


def _is_transient(exc: BaseException) -> bool:
    if getattr(exc, "connection_invalidated", False):
        return True
    error = _driver_error(exc)
    sqlstate = getattr(error, "sqlstate", None)  # psycopg 3
    if sqlstate:
        return sqlstate.startswith(_PG_TRANSIENT_PREFIXES) or sqlstate in _PG_TRANSIENT_CODES
    module = type(error).__module__ or ""
    if module.startswith("psycopg"):
        # No SQLSTATE: the failure happened client-side (connection refused / closed / timed out).
        import psycopg

        return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))
    if module.startswith("pymysql"):
        import pymysql

        if isinstance(error, pymysql.err.InterfaceError):
            return True
        errno = error.args[0] if error.args and isinstance(error.args[0], int) else None
        return errno in _MYSQL_TRANSIENT
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    try:
        import sqlalchemy.exc

        return isinstance(exc, (sqlalchemy.exc.DisconnectionError, sqlalchemy.exc.TimeoutError))
    except ImportError:  # pragma: no cover
        return False


def _secrets_of(url: Any) -> list[str]:
    password = getattr(url, "password", None)
    if not password:
        return []
    password = str(password)
    return sorted({password, quote(password, safe=""), quote_plus(password)}, key=len, reverse=True)


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _error_text(exc: BaseException, secrets: Iterable[str]) -> str:
    error = _driver_error(exc)
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = " ".join(lines[:3])[:500] or type(error).__name__
    return _redact(f"{type(error).__name__}: {detail}", secrets)


# --------------------------------------------------------------------------------------------
# The destination
# --------------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """A validated batch: the last valid operation per key, in first-seen order."""

    upserts: list[tuple]  # full rows, in column order (key first)
    removes: list[Any]  # converted keys


class SqlTableDestination:
    """Upsert sync rows into one SQL table (PostgreSQL or MariaDB/MySQL), keyed on ``key_column``."""

    max_requests_per_second: float | None = None

    def __init__(
        self,
        url_env: str,
        table: str,
        key_column: str,
        columns: Mapping[str, str],
        batch_size: int = 10_000,
        create_table: bool = True,
        on_remove: str = "delete",
    ):
        if on_remove not in ON_REMOVE:
            raise ValueError(f"on_remove must be one of {ON_REMOVE}, not {on_remove!r}")
        if key_column not in columns:
            raise ValueError(f"key_column {key_column!r} must be one of the columns (with its SQL type)")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.url_env = url_env
        self.table = table
        self.key_column = key_column
        # key first, then the others in the given order
        self.columns: dict[str, str] = {key_column: columns[key_column]}
        self.columns.update((name, sql_type) for name, sql_type in columns.items() if name != key_column)
        self.batch_size = batch_size
        self.create_table = create_table
        self.on_remove = on_remove
        self.name = f"sql:{table}"
        self._engine = None
        self._secrets: list[str] = []
        self._dialect: str | None = None
        self._converters: dict[str, Callable[[Any], Any]] = {}
        self._table_ready = False

    def __repr__(self) -> str:
        return f"SqlTableDestination(url_env={self.url_env!r}, table={self.table!r}, key_column={self.key_column!r})"

    # ---- connection ---------------------------------------------------------------------------

    def _get_engine(self):
        if self._engine is not None:
            return self._engine
        import sqlalchemy
        from sqlalchemy.engine import make_url

        raw = os.environ.get(self.url_env)
        if not raw:
            raise RuntimeError(f"{self.name}: environment variable {self.url_env} is not set")
        try:
            url = make_url(raw)
        except Exception:
            raise RuntimeError(f"{self.name}: {self.url_env} does not hold a valid database URL") from None
        self._secrets = _secrets_of(url)
        backend = url.get_backend_name()
        if backend not in ("postgresql", "mysql", "mariadb"):
            raise RuntimeError(f"{self.name}: unsupported database {backend!r} (PostgreSQL or MariaDB/MySQL)")
        if backend == "postgresql" and url.get_driver_name() != "psycopg":
            url = url.set(drivername="postgresql+psycopg")
        connect_args = {"connect_timeout": 10}
        self._engine = sqlalchemy.create_engine(
            url, hide_parameters=True, pool_pre_ping=True, pool_size=2, connect_args=connect_args
        )
        self._dialect = backend
        self._converters = {name: _converter(t, backend) for name, t in self.columns.items()}
        return self._engine

    def close(self) -> None:
        """Close the pooled connections."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _q(self, name: str) -> str:
        return self._engine.dialect.identifier_preparer.quote(name)

    def _qtable(self) -> str:
        return ".".join(self._q(part) for part in self.table.split("."))

    # ---- validation ---------------------------------------------------------------------------

    def _validate(self, rows: Sequence[SyncRow]) -> tuple[list[RowResult], _Plan]:
        results: list[RowResult] = []
        latest: dict[Any, tuple[str, tuple | None]] = {}
        names = list(self.columns)
        key_convert = self._converters[self.key_column]
        for row in rows:
            try:
                if row.operation not in ("add", "change", "remove"):
                    raise _Invalid(f"unknown operation {row.operation!r}")
                if row.key is None:
                    raise _Invalid("the key is missing")
                try:
                    key = key_convert(row.key)
                except _Invalid as exc:
                    raise _Invalid(f"key column {self.key_column!r}: {exc}") from None
                if row.operation == "remove":
                    values = None
                else:
                    payload = row.payload or {}
                    values_list = [key]
                    for name in names[1:]:
                        value = payload.get(name)
                        if value is None:
                            values_list.append(None)
                            continue
                        try:
                            values_list.append(self._converters[name](value))
                        except _Invalid as exc:
                            raise _Invalid(f"column {name!r}: {exc}") from None
                    values = tuple(values_list)
            except _Invalid as exc:
                results.append(RowResult(row.key, "rejected", str(exc)))
                continue
            latest.pop(key, None)  # re-insert so the order follows the last occurrence
            latest[key] = (row.operation, values)
            results.append(RowResult(row.key, "ok"))
        upserts = [values for op, values in latest.values() if op != "remove"]
        removes = [key for key, (op, _) in latest.items() if op == "remove"]
        if self.on_remove == "ignore":
            removes = []
        return results, _Plan(upserts, removes)

    # ---- sending ------------------------------------------------------------------------------

    def send(self, rows: list[SyncRow]) -> list[RowResult]:
        """Write ``rows`` (chunks of ``batch_size``, one transaction each); one result per row."""
        self._get_engine()
        results: list[RowResult] = []
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            chunk_results, plan = self._validate(chunk)
            if plan.upserts or plan.removes:
                self._run(lambda cursor, plan=plan: self._write(cursor, plan))
            results.extend(chunk_results)
        return results

    def _run(self, work: Callable[[Any], None]) -> None:
        """Run ``work(cursor)`` in one transaction; map database errors to the sync exceptions."""
        engine = self._get_engine()
        connection = None
        try:
            connection = engine.raw_connection()
            if not self._table_ready:
                self._ensure_table(connection)
            cursor = connection.cursor()
            try:
                work(cursor)
            finally:
                cursor.close()
            connection.commit()
        except Exception as exc:
            transient = _is_transient(exc)
            if connection is not None:
                try:
                    connection.rollback()
                except Exception:
                    transient = True
                if transient:
                    connection.invalidate()
            message = f"{self.name}: {_error_text(exc, self._secrets)}"
            if transient:
                raise TransientError(message) from None
            raise BatchRejected(message) from None
        finally:
            if connection is not None:
                connection.close()

    def _ensure_table(self, connection) -> None:
        if self.create_table:
            cols = []
            for name, sql_type in self.columns.items():
                suffix = " PRIMARY KEY" if name == self.key_column else ""
                cols.append(f"{self._q(name)} {sql_type}{suffix}")
            cursor = connection.cursor()
            try:
                cursor.execute(f"CREATE TABLE IF NOT EXISTS {self._qtable()} ({', '.join(cols)})")
            finally:
                cursor.close()
            connection.commit()
        self._table_ready = True

    def _write(self, cursor, plan: _Plan) -> None:
        if self._dialect == "postgresql":
            self._write_postgres(cursor, plan)
        else:
            self._write_mysql(cursor, plan)

    def _write_postgres(self, cursor, plan: _Plan) -> None:
        names = list(self.columns)
        table, key = self._qtable(), self._q(self.key_column)
        column_list = ", ".join(self._q(n) for n in names)
        suffix = uuid.uuid4().hex[:12]
        if plan.removes:
            removes = self._q(f"_gt_remove_{suffix}")
            cursor.execute(
                f"CREATE TEMP TABLE {removes} ON COMMIT DROP AS SELECT {key} FROM {table} WITH NO DATA"
            )
            with cursor.copy(f"COPY {removes} ({key}) FROM STDIN") as copy:
                for value in plan.removes:
                    copy.write_row((value,))
            if self.on_remove == "delete":
                cursor.execute(f"DELETE FROM {table} AS t USING {removes} AS r WHERE t.{key} = r.{key}")
            else:  # clear
                others = [self._q(n) for n in names[1:]]
                if others:
                    assignments = ", ".join(f"{c} = NULL" for c in others)
                    cursor.execute(
                        f"UPDATE {table} AS t SET {assignments} FROM {removes} AS r WHERE t.{key} = r.{key}"
                    )
        if plan.upserts:
            stage = self._q(f"_gt_stage_{suffix}")
            cursor.execute(
                f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {column_list} FROM {table} WITH NO DATA"
            )
            with cursor.copy(f"COPY {stage} ({column_list}) FROM STDIN") as copy:
                for values in plan.upserts:
                    copy.write_row(values)
            others = [self._q(n) for n in names[1:]]
            if others:
                assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in others)
                comparable = [
                    self._q(n) for n in names[1:] if _parse_type(self.columns[n])[0] not in _NO_EQUALITY
                ]
                guard = ""
                if comparable:
                    left = ", ".join(f"{table}.{c}" for c in comparable)
                    right = ", ".join(f"EXCLUDED.{c}" for c in comparable)
                    if len(comparable) == 1:
                        guard = f" WHERE {left} IS DISTINCT FROM {right}"
                    else:
                        guard = f" WHERE ROW({left}) IS DISTINCT FROM ROW({right})"
                action = f"DO UPDATE SET {assignments}{guard}"
            else:
                action = "DO NOTHING"
            cursor.execute(
                f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {stage} "
                f"ON CONFLICT ({key}) {action}"
            )

    def _write_mysql(self, cursor, plan: _Plan) -> None:
        names = list(self.columns)
        table, key = self._qtable(), self._q(self.key_column)
        if plan.removes:
            for start in range(0, len(plan.removes), 1000):
                keys = plan.removes[start : start + 1000]
                marks = ", ".join(["%s"] * len(keys))
                if self.on_remove == "delete":
                    cursor.execute(f"DELETE FROM {table} WHERE {key} IN ({marks})", keys)
                elif len(names) > 1:
                    assignments = ", ".join(f"{self._q(n)} = NULL" for n in names[1:])
                    cursor.execute(f"UPDATE {table} SET {assignments} WHERE {key} IN ({marks})", keys)
        if plan.upserts:
            column_list = ", ".join(self._q(n) for n in names)
            marks = ", ".join(["%s"] * len(names))
            if len(names) > 1:
                update = ", ".join(f"{self._q(n)} = VALUES({self._q(n)})" for n in names[1:])
            else:
                update = f"{key} = {key}"
            # pymysql turns this executemany into multi-row INSERTs of up to max_allowed_packet.
            cursor.executemany(
                f"INSERT INTO {table} ({column_list}) VALUES ({marks}) ON DUPLICATE KEY UPDATE {update}",
                plan.upserts,
            )


# --------------------------------------------------------------------------------------------
# Benchmark baseline: the database's own bulk load, nothing else
# --------------------------------------------------------------------------------------------


def bulk_copy_baseline(
    url: str, table: str, rows: Sequence[Sequence[Any]] | Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None
) -> float:
    """Load ``rows`` into the existing ``table`` with a plain COPY (PostgreSQL) or executemany
    INSERT (MariaDB/MySQL), in one transaction, and return the seconds it took (connection
    excluded). ``rows`` are dicts (``columns`` defaults to the first row's keys) or tuples (then
    ``columns`` is required). No validation, no upsert: the floor a sync is compared against.
    Errors are re-raised with the password redacted."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    secrets = _secrets_of(parsed)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    rows = list(rows)
    if rows and isinstance(rows[0], Mapping):
        columns = list(columns or rows[0].keys())
        tuples = [tuple(row.get(c) for c in columns) for row in rows]
    else:
        if columns is None:
            raise ValueError("columns is required when rows are tuples")
        columns = list(columns)
        tuples = [tuple(row) for row in rows]
    engine = sqlalchemy.create_engine(parsed, hide_parameters=True, poolclass=sqlalchemy.pool.NullPool)
    try:
        preparer = engine.dialect.identifier_preparer
        qtable = ".".join(preparer.quote(part) for part in table.split("."))
        column_list = ", ".join(preparer.quote(c) for c in columns)
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            started = time_module.perf_counter()
            if engine.dialect.name == "postgresql":
                with cursor.copy(f"COPY {qtable} ({column_list}) FROM STDIN") as copy:
                    for values in tuples:
                        copy.write_row(values)
            else:
                marks = ", ".join(["%s"] * len(columns))
                cursor.executemany(f"INSERT INTO {qtable} ({column_list}) VALUES ({marks})", tuples)
            connection.commit()
            return time_module.perf_counter() - started
        finally:
            connection.close()
    except Exception as exc:
        raise RuntimeError(f"bulk_copy_baseline: {_error_text(exc, secrets)}") from None
    finally:
        engine.dispose()
