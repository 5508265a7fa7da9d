"""Sync bookkeeping in the warehouse: schema ``activations`` (state, runs, per-row log)."""

from __future__ import annotations

import hashlib
import json
import operator
import re
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Mapping, Sequence

import polars as pl

SCHEMA = "activations"

DDL = [
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.sync_state (
        sync_name VARCHAR NOT NULL, key VARCHAR NOT NULL, payload_hash VARCHAR NOT NULL,
        synced_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (sync_name, key))""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.sync_runs (
        run_id VARCHAR PRIMARY KEY, sync_name VARCHAR NOT NULL, started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ, mode VARCHAR NOT NULL, dry_run BOOLEAN NOT NULL,
        processed INTEGER DEFAULT 0, added INTEGER DEFAULT 0, changed INTEGER DEFAULT 0,
        removed INTEGER DEFAULT 0, rejected INTEGER DEFAULT 0, status VARCHAR NOT NULL)""",
    # Which tool a run talked to (added after the first ledgers were written).
    f"ALTER TABLE {SCHEMA}.sync_runs ADD COLUMN IF NOT EXISTS destination VARCHAR",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.sync_log (
        run_id VARCHAR NOT NULL, sync_name VARCHAR NOT NULL, key VARCHAR NOT NULL,
        operation VARCHAR NOT NULL, status VARCHAR NOT NULL, message VARCHAR, payload_hash VARCHAR,
        idempotency_key VARCHAR, attempt INTEGER NOT NULL DEFAULT 0, logged_at TIMESTAMPTZ NOT NULL,
        channel VARCHAR, advertising BOOLEAN)""",
    # Change capture for data frames (engine._plan_frame): a cheap vectorised fingerprint of the mapped
    # values, stored next to the canonical payload_hash it was computed with and valid only under its
    # tag (polars version, mapping, dtypes). payload_hash stays the truth; NULL means "no fingerprint".
    f"ALTER TABLE {SCHEMA}.sync_state ADD COLUMN IF NOT EXISTS fingerprint UBIGINT",
    f"ALTER TABLE {SCHEMA}.sync_state ADD COLUMN IF NOT EXISTS fingerprint_tag VARCHAR",
    # Ledgers created before frequency caps existed lack the two columns caps count on.
    f"ALTER TABLE {SCHEMA}.sync_log ADD COLUMN IF NOT EXISTS channel VARCHAR",
    f"ALTER TABLE {SCHEMA}.sync_log ADD COLUMN IF NOT EXISTS advertising BOOLEAN",
    # Experiments: the arm of every customer, written before anything is sent (sticky: the first
    # assignment of a customer to a campaign is kept for the whole campaign).
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.assignments (
        campaign VARCHAR NOT NULL, customer_id VARCHAR NOT NULL, arm VARCHAR NOT NULL,
        round INTEGER NOT NULL, assigned_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (campaign, customer_id))""",
    # One row per allocation round: the weights the variants had when its customers were assigned.
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.allocation_rounds (
        campaign VARCHAR NOT NULL, round INTEGER NOT NULL, decided_at TIMESTAMPTZ NOT NULL,
        mode VARCHAR NOT NULL, holdout_share DOUBLE NOT NULL, weights VARCHAR NOT NULL,
        PRIMARY KEY (campaign, round))""",
    # Global suppression list: unsubscribes, bounces, complaints. Always wins over any audience.
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.suppressions (
        customer_id VARCHAR NOT NULL, channel VARCHAR NOT NULL, reason VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (customer_id, channel))""",
]


_BULK_CHECKPOINT_BYTES = 256 * 1024 * 1024
_UNITS = {"": 1, "b": 1, "byte": 1, "bytes": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2,
          "gb": 1000**3, "gib": 1024**3, "tb": 1000**4, "tib": 1024**4}


def _setting_bytes(text: str) -> float:
    """'16.0 MiB' -> 16777216.0 (unknown text: infinite, so that nothing is changed)."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", str(text))
    if not match or match.group(2).lower() not in _UNITS:
        return float("inf")
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def _strings(values) -> pl.Series:
    return pl.Series(values, dtype=pl.String)


def now() -> datetime:
    return datetime.now(timezone.utc)


# One encoder for every hash: json.dumps would build a new one per call (a third of the cost).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def payload_hash(payload: dict) -> str:
    return hashlib.sha256(_CANONICAL.encode(payload).encode()).hexdigest()


def idempotency_key(sync_name: str, key: str, payload_hash: str) -> str:
    return hashlib.sha256(f"{sync_name}|{key}|{payload_hash}".encode()).hexdigest()


# -- payload_hash of every row of a polars frame, column by column ----------------------------------
# Same bytes as payload_hash({destination: value}) with the values polars' to_list() gives: the
# canonical JSON of a dict is '{' + '"k":v' joined by ',' in sorted key order + '}', and each value is
# encoded on its own exactly as _CANONICAL would inside the dict. The common dtypes are encoded by
# polars (strings that need no escaping, integers, booleans, dates, naive datetimes); everything else
# (floats: Python's repr; escapes; decimals, lists, structs, ...) by _CANONICAL, value by value.

_encode_str = json.encoder.encode_basestring_ascii  # what _CANONICAL uses for str (ensure_ascii)
_NEEDS_ESCAPE = r"[^ !#-\[\]-~]"  # anything but printable ASCII without '"' and '\\'
_HASH_CHUNK = 100_000  # rows per step: bounds the memory of the JSON texts
_INF = float("inf")


def _json_value(value) -> str:
    return _CANONICAL.encode(value)


def _json_float(value) -> str:
    if value is None or value != value or value in (_INF, -_INF):
        return _CANONICAL.encode(value)  # null, NaN, Infinity, -Infinity
    return float.__repr__(value)


def _quoted(text: pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.lit('"'), text, pl.lit('"')])


def _json_fragments(series: pl.Series) -> pl.Series:
    """The JSON text of every value of ``series`` (never null: a null is 'null')."""
    dtype = series.dtype
    if isinstance(dtype, (pl.Categorical, pl.Enum)):
        series, dtype = series.cast(pl.String), pl.String
    frame = series.rename("v").to_frame()
    v = pl.col("v")
    null = pl.lit("null")
    if dtype == pl.String:
        out = frame.select(pl.when(v.is_null()).then(null).otherwise(_quoted(v))).to_series()
        escape = series.str.contains(_NEEDS_ESCAPE).fill_null(False)
        if escape.any():
            at = escape.arg_true()
            out = out.scatter(at, [_encode_str(text) for text in series.gather(at).to_list()])
        return out
    if dtype.is_integer():
        return series.cast(pl.String).fill_null("null")
    if dtype == pl.Boolean:
        return frame.select(pl.when(v.is_null()).then(null).when(v).then(pl.lit("true")).otherwise(pl.lit("false"))
                            ).to_series()
    naive = isinstance(dtype, pl.Datetime) and dtype.time_zone is None and dtype.time_unit in ("us", "ms")
    if dtype == pl.Date or naive:
        year = series.dt.year()
        if not ((year < 1) | (year > 9999)).any():  # outside: to_list() decides, as for the records
            if dtype == pl.Date:
                text = v.cast(pl.String)  # str(date)
            else:  # str(datetime): the microseconds only when not zero
                micro = v.dt.microsecond()
                fraction = pl.when(micro == 0).then(pl.lit("")).otherwise(
                    pl.concat_str([pl.lit("."), micro.cast(pl.String).str.zfill(6)]))
                text = pl.concat_str([v.dt.strftime("%Y-%m-%d %H:%M:%S"), fraction])
            return frame.select(pl.when(v.is_null()).then(null).otherwise(_quoted(text))).to_series()
    values = series.to_list()
    if dtype.is_float():
        if series.null_count() == 0 and series.is_finite().all():
            return pl.Series("v", list(map(float.__repr__, values)), dtype=pl.String)
        return pl.Series("v", [_json_float(value) for value in values], dtype=pl.String)
    return pl.Series("v", [_json_value(value) for value in values], dtype=pl.String)


def frame_payload_hashes(frame: pl.DataFrame, fields: Mapping[str, str]) -> list[str]:
    """payload_hash({destination: row[source]}) for every row of ``frame`` (fields: destination -> source).

    Same bytes as payload_hash() of the dicts built from ``to_list()`` values; tested per dtype."""
    if not fields:
        return [payload_hash({})] * frame.height
    names = sorted(fields)
    sha256 = hashlib.sha256
    hashes: list[str] = []
    for start in range(0, frame.height, _HASH_CHUNK):
        part = frame.slice(start, _HASH_CHUNK)
        pieces = []
        for i, name in enumerate(names):
            pieces.append(pl.lit(("{" if i == 0 else ",") + _encode_str(name) + ":"))
            pieces.append(_json_fragments(part.get_column(fields[name])).rename(f"f{i}"))
        pieces.append(pl.lit("}"))
        texts = pl.select(pl.concat_str(pieces)).to_series().to_list()
        hashes.extend([sha256(text.encode()).hexdigest() for text in texts])
    return hashes


class Ledger:
    """All reads and writes of the bookkeeping tables; each batch is committed on its own.

    ``clock`` stamps every row (UTC); a simulation or a backfill passes its own so that frequency
    caps and campaign measurement see the same time as the data.
    """

    def __init__(self, con, clock=None, channel: str | None = None, advertising: bool | None = None):
        self.con = con
        self.clock = clock or now
        self.channel = channel
        self.advertising = advertising
        self._columns_cache: tuple[list, dict] | None = None
        for statement in DDL:
            con.execute(statement)

    # -- transactions -------------------------------------------------------------------
    def _tx(self, fn):
        self.con.execute("BEGIN TRANSACTION")
        try:
            fn()
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    # -- state --------------------------------------------------------------------------
    def state(self, sync_name: str) -> dict[str, str]:
        rows = self.con.execute(
            f"SELECT key, payload_hash FROM {SCHEMA}.sync_state WHERE sync_name = ?", [sync_name]
        ).fetchall()
        return dict(rows)

    def state_view(self, sync_name: str) -> "LedgerState":
        """The state read lazily, as the data-frame diff needs it (keys and fingerprints first)."""
        return LedgerState(self.con, sync_name)

    def refresh_fingerprints(self, sync_name: str, keys: Sequence[str], hashes: Sequence[str],
                             fingerprints: Sequence[int], tag: str) -> None:
        """Store fresh fingerprints for rows found unchanged, in one set-based UPDATE; a row whose
        payload_hash moved meanwhile keeps what it has (a fingerprint only ever sits next to the
        canonical hash it was computed with)."""
        if not keys:
            return
        self._with_rows(
            {"key": _strings(keys), "payload_hash": _strings(hashes),
             "fingerprint": pl.Series(fingerprints, dtype=pl.UInt64)},
            [(f"UPDATE {SCHEMA}.sync_state AS s SET fingerprint = r.fingerprint, fingerprint_tag = ? "
              "FROM __ROWS__ AS r WHERE s.sync_name = ? AND s.key = r.key AND s.payload_hash = r.payload_hash",
              [tag, sync_name])])

    def reset_state(self, sync_name: str) -> None:
        self.con.execute(f"DELETE FROM {SCHEMA}.sync_state WHERE sync_name = ?", [sync_name])

    # -- runs ---------------------------------------------------------------------------
    def start_run(self, run_id: str, sync_name: str, mode: str, dry_run: bool, destination: str | None = None) -> None:
        def fn():
            # A run left 'running' was killed; say so (its pending log rows stay visible).
            self.con.execute(
                f"UPDATE {SCHEMA}.sync_runs SET status = 'interrupted' "
                "WHERE sync_name = ? AND status = 'running'",
                [sync_name],
            )
            self.con.execute(
                f"INSERT INTO {SCHEMA}.sync_runs (run_id, sync_name, started_at, mode, dry_run, status, destination) "
                "VALUES (?, ?, ?, ?, ?, 'running', ?)",
                [run_id, sync_name, self.clock(), mode, dry_run, destination],
            )

        self._tx(fn)

    def finish_run(self, run_id: str, counts: dict, status: str) -> None:
        self.con.execute(
            f"UPDATE {SCHEMA}.sync_runs SET finished_at = ?, processed = ?, added = ?, changed = ?, "
            "removed = ?, rejected = ?, status = ? WHERE run_id = ?",
            [self.clock(), counts["processed"], counts["added"], counts["changed"], counts["removed"],
             counts["rejected"], status, run_id],
        )

    # -- per-row log --------------------------------------------------------------------
    # Rows travel as Arrow tables (registered, then INSERT/UPDATE ... SELECT): DuckDB runs set-based
    # statements fast and row-by-row ones very slowly (measured: 300 rows/s). The columns are built
    # by polars: pyarrow's first conversion of Python objects imports pandas (~0.9 s, in a run).
    def _with_rows(self, columns: dict, statements: list[tuple[str, list]], more: dict | None = None) -> None:
        """Run ``statements`` in one transaction; __ROWS__ (and __NEXT__) name the registered tables."""
        names = {"__ROWS__": (f"_ledger_rows_{id(self)}", columns)}
        if more is not None:
            names["__NEXT__"] = (f"_ledger_next_{id(self)}", more)
        for name, table in names.values():
            self.con.register(name, pl.DataFrame(table).to_arrow())
        try:
            def run():
                for sql, params in statements:
                    for placeholder, (name, _) in names.items():
                        sql = sql.replace(placeholder, name)
                    self.con.execute(sql, params)
            self._tx(run)
        finally:
            for name, _ in names.values():
                self.con.unregister(name)

    def _row_columns(self, rows) -> dict:
        """key / operation / payload_hash / idempotency_key of SyncRows as columns. Those of the batch
        last logged pending are kept for its results (same rows in the same order: built once)."""
        cached = self._columns_cache
        if cached is not None and len(cached[0]) == len(rows) and all(map(operator.is_, cached[0], rows)):
            return cached[1]
        columns = {name: _strings(list(map(operator.attrgetter(name), rows)))
                   for name in ("key", "operation", "payload_hash", "idempotency_key")}
        self._columns_cache = (list(rows), columns)
        return columns

    @contextmanager
    def bulk(self):
        """Around a run's batches: DuckDB checkpoints whenever the WAL passes ``checkpoint_threshold``
        (16 MiB by default), and every checkpoint re-compresses the open row groups of sync_log and
        sync_state: at a million rows (~400 MB of WAL) that was half of the ledger's time. Raised to
        256 MiB for the run and restored after (the setting is database-wide; the next commit then
        checkpoints once). Durability is unchanged: every commit still goes to the WAL."""
        current = self.con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]
        if _setting_bytes(current) >= _BULK_CHECKPOINT_BYTES:
            yield
            return
        self.con.execute(f"SET checkpoint_threshold = '{_BULK_CHECKPOINT_BYTES} bytes'")
        try:
            yield
        finally:
            self.con.execute(f"SET checkpoint_threshold = '{current}'")

    def log_rejected(self, run_id: str, sync_name: str, entries: list[tuple], status: str = "rejected") -> None:
        """entries: (key, operation, message, payload_hash, idempotency_key) not sent: rejected before
        sending, or held back by the sending law ('suppressed', 'deferred')."""
        if not entries:
            return
        keys, operations, messages, hashes, idempotency = (list(column) for column in zip(*entries))
        self._with_rows(
            {"key": _strings(keys), "operation": _strings(operations), "message": _strings(messages),
             "payload_hash": _strings(hashes), "idempotency_key": _strings(idempotency)},
            [(f"INSERT INTO {SCHEMA}.sync_log SELECT ?, ?, key, operation, ?, message, payload_hash, "
              "idempotency_key, 0, ?, ?, ? FROM __ROWS__",
              [run_id, sync_name, status, self.clock(), self.channel, self.advertising])])

    def _pending_statement(self, run_id: str, sync_name: str, table: str) -> tuple[str, list]:
        return (f"INSERT INTO {SCHEMA}.sync_log SELECT ?, ?, key, operation, 'pending', '', payload_hash, "
                f"idempotency_key, 0, ?, ?, ? FROM {table}",
                [run_id, sync_name, self.clock(), self.channel, self.advertising])

    def log_pending(self, run_id: str, sync_name: str, rows) -> None:
        """Written BEFORE a batch is sent, so a crash between send and acknowledgement shows."""
        self._with_rows(self._row_columns(rows), [self._pending_statement(run_id, sync_name, "__ROWS__")])

    def record_results(self, run_id: str, sync_name: str, outcomes, fingerprints: Mapping[str, int] | None = None,
                       fingerprint_tag: str | None = None, next_pending=None) -> None:
        """outcomes: (SyncRow, status, message, attempts). ok rows move sync_state, in one commit.

        ``fingerprints`` (key -> fingerprint under ``fingerprint_tag``) are stored with the rows they
        belong to; every other state row written gets NULL (a stale fingerprint must never outlive
        the hash it was computed with). ``next_pending``: the next batch, logged 'pending' in the same
        commit (what ``log_pending`` would write next, one commit fewer per batch)."""
        if not outcomes:
            if next_pending:
                self.log_pending(run_id, sync_name, next_pending)
            return
        ts = self.clock()
        rows, statuses, messages, attempts = (list(column) for column in zip(*outcomes))
        columns = dict(self._row_columns(rows))
        columns["status"] = _strings(statuses)
        columns["message"] = _strings([message or "" for message in messages])
        columns["attempt"] = pl.Series(attempts, dtype=pl.Int32)
        keys = columns["key"]
        prints = list(map(fingerprints.get, keys.to_list())) if fingerprints else [None] * len(rows)
        columns["fingerprint"] = pl.Series(prints, dtype=pl.UInt64)
        ok, removes = columns["status"] == "ok", columns["operation"] == "remove"
        ok_removes, ok_writes = bool((ok & removes).any()), bool((ok & ~removes).any())
        statements = [
            (f"UPDATE {SCHEMA}.sync_log AS l SET status = r.status, message = r.message, attempt = r.attempt, "
             "logged_at = ? FROM __ROWS__ AS r WHERE l.run_id = ? AND l.status = 'pending' "
             "AND l.key = r.key AND l.idempotency_key = r.idempotency_key", [ts, run_id])]
        if ok_removes:
            statements.append(
                (f"DELETE FROM {SCHEMA}.sync_state WHERE sync_name = ? AND key IN "
                 "(SELECT key FROM __ROWS__ WHERE status = 'ok' AND operation = 'remove')", [sync_name]))
        if ok_writes:
            statements.append(
                (f"INSERT OR REPLACE INTO {SCHEMA}.sync_state "
                 "(sync_name, key, payload_hash, synced_at, fingerprint, fingerprint_tag) "
                 "SELECT ?, key, payload_hash, ?, fingerprint, CASE WHEN fingerprint IS NOT NULL THEN ? END "
                 "FROM __ROWS__ WHERE status = 'ok' AND operation <> 'remove'", [sync_name, ts, fingerprint_tag]))
        more = None
        if next_pending:
            more = self._row_columns(next_pending)
            statements.append(self._pending_statement(run_id, sync_name, "__NEXT__"))
        self._with_rows(columns, statements, more)

    def pending(self, sync_name: str) -> list[tuple]:
        return self.con.execute(
            f"SELECT run_id, key, operation, idempotency_key FROM {SCHEMA}.sync_log "
            "WHERE sync_name = ? AND status = 'pending' ORDER BY logged_at, key",
            [sync_name],
        ).fetchall()

    def recent_sends(self, channel: str, since: datetime, advertising_only: bool = True) -> dict[str, list[datetime]]:
        """customer key -> times of the messages delivered on ``channel`` after ``since`` (caps count these)."""
        rows = self.con.execute(
            f"SELECT key, logged_at FROM {SCHEMA}.sync_log WHERE channel = ? AND status = 'ok' "
            "AND operation <> 'remove' AND logged_at > ?" + (" AND advertising" if advertising_only else ""),
            [channel, since],
        ).fetchall()
        out: dict[str, list[datetime]] = {}
        for key, at in rows:
            out.setdefault(key, []).append(at)
        return out

    def suppressed(self, channel: str) -> set[str]:
        """Customers on the global suppression list for ``channel`` (or for every channel)."""
        rows = self.con.execute(
            f"SELECT DISTINCT customer_id FROM {SCHEMA}.suppressions WHERE channel IN (?, 'all')", [channel]
        ).fetchall()
        return {r[0] for r in rows}


class LedgerState:
    """The synced state of one sync (key -> payload_hash), read lazily by the data-frame diff: every key
    with its fingerprint first (cheap), the canonical hashes only of the keys that need them."""

    def __init__(self, con, sync_name: str):
        self.con = con
        self.sync_name = sync_name

    def fingerprints(self, tag: str | None) -> pl.DataFrame:
        """key (String), fingerprint (UInt64; NULL when absent or computed under another tag)."""
        frame = self.con.sql(
            f"SELECT key, CASE WHEN fingerprint_tag = $tag THEN fingerprint END AS fingerprint "
            f"FROM {SCHEMA}.sync_state WHERE sync_name = $sync", params={"tag": tag, "sync": self.sync_name}).pl()
        return frame.cast({"key": pl.String, "fingerprint": pl.UInt64})

    def hashes(self, keys: Sequence[str]) -> dict[str, str]:
        """key -> payload_hash for those of ``keys`` in the state."""
        if not keys:
            return {}
        name = f"_ledger_keys_{id(self)}"
        self.con.register(name, pl.DataFrame({"key": _strings(keys)}).to_arrow())
        try:
            return dict(self.con.execute(
                f"SELECT s.key, s.payload_hash FROM {SCHEMA}.sync_state AS s JOIN {name} AS k ON s.key = k.key "
                "WHERE s.sync_name = ?", [self.sync_name]).fetchall())
        finally:
            self.con.unregister(name)
