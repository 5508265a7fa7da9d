"""The sync engine: diff the audience against the last synced state, send in batches, keep the ledger.

Semantics follow Hightouch/Census (see /work/shared/CONTRACTS.md): modes upsert / insert / mirror,
change capture on mapped fields only, duplicate keys rejected, failed rows retried on later runs,
exponential backoff with jitter honouring Retry-After, bisection of rejected batches, dry runs.
"""

from __future__ import annotations

import gc
import hashlib
import json
import platform
import random
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import polars as pl

if TYPE_CHECKING:
    from datetime import datetime

from .destination import BatchRejected, Destination, RowResult, SyncRow, TransientError
from .ledger import Ledger, frame_payload_hashes, idempotency_key, payload_hash

MODES = ("upsert", "insert", "mirror")


class SyncFailed(RuntimeError):
    def __init__(self, message: str, report: "SyncReport"):
        super().__init__(message)
        self.report = report


@dataclass
class SyncReport:
    run_id: str
    sync_name: str
    mode: str
    dry_run: bool
    processed: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    rejected: int = 0
    suppressed: int = 0  # held back by the sending law (consent, opt-out, caps): not sent
    deferred: int = 0  # lawful later (night time): left for a run after ``send_at``
    status: str = "running"
    requests: int = 0
    dry_run_path: str | None = None
    rejected_rows: list[tuple[str, str]] = field(default_factory=list)  # (key, message)
    held_reasons: dict[str, int] = field(default_factory=dict)  # sending-law reason -> rows

    def counts(self) -> dict:
        return {k: getattr(self, k) for k in ("processed", "added", "changed", "removed", "rejected")}


def _normalise_fields(primary_key: str, mapped_fields) -> dict[str, str]:
    """mapped_fields: list of column names, or {destination_field: audience_column}."""
    if isinstance(mapped_fields, dict):
        return dict(mapped_fields)
    return {f: f for f in mapped_fields}


def _keyed_records(records, primary_key: str, sources: list[str]):
    """(key or None, primary-key value, mapped source values or the list of missing fields) per record."""
    for record in records:
        raw = record.get(primary_key)
        missing = [src for src in sources if src not in record]
        value = missing if missing else tuple(record[src] for src in sources)
        yield (None if raw is None or str(raw) == "" else str(raw)), raw, value


@dataclass
class _Plan:
    rows: list[SyncRow]
    rejected: list[tuple]
    fingerprints: dict[str, int] | None = None  # key -> fingerprint of the rows to send (data frames)
    fingerprint_tag: str | None = None
    refresh: tuple[list, list, list] | None = None  # (keys, hashes, fingerprints) found unchanged


def plan_sync(sync_name, audience, primary_key, mapped_fields, state, mode: str):
    """Pure diff. Returns (rows to send, rejected entries for the log).

    ``state`` is key -> payload_hash (a dict), or the ledger's lazy view (``Ledger.state_view``)."""
    plan = _plan(sync_name, audience, primary_key, mapped_fields, state, mode)
    return plan.rows, plan.rejected


@contextmanager
def _gc_paused():
    """No cyclic garbage collection while millions of acyclic rows are built (measured at 1M rows: the
    collector re-walking the growing list of rows took half of the planning). Reference counting
    still frees everything; the collector is back on (if it was) when planning ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _gc_frozen():
    """During the batches, leave the objects that exist before them (the planned rows) out of the
    collector's walks; objects made while sending are collected as usual. freeze() is process-wide,
    so only when nothing else has frozen objects (unfreeze() would thaw theirs too)."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _plan(sync_name, audience, primary_key, mapped_fields, state, mode: str) -> _Plan:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    with _gc_paused():
        return _plan_unpaused(sync_name, audience, primary_key, mapped_fields, state, mode)


def _plan_unpaused(sync_name, audience, primary_key, mapped_fields, state, mode: str) -> _Plan:
    fields = _normalise_fields(primary_key, mapped_fields)
    frame = _as_frame(audience)
    if frame is not None:
        return _plan_frame(sync_name, frame, primary_key, fields, state if hasattr(state, "fingerprints")
                           else _DictState(state), mode)
    if hasattr(state, "fingerprints"):  # a lazy ledger view: records need the whole mapping
        state = state.hashes(state.fingerprints(None).get_column("key").to_list())
    return _plan_records(sync_name, audience, primary_key, fields, state, mode)


def _plan_records(sync_name, audience, primary_key, fields: dict[str, str], state: dict[str, str], mode: str) -> _Plan:
    """Lists of dicts (and other iterables of mappings): row by row."""
    destinations, sources = list(fields), list(fields.values())
    by_key: dict[str, list[tuple]] = {}
    rejected: list[tuple] = []
    for key, raw, value in _keyed_records(audience, primary_key, sources):
        if key is None:
            rejected.append(("", "add", f"missing primary key {primary_key!r}", None, None))
            continue
        by_key.setdefault(key, []).append((raw, value))

    rows: list[SyncRow] = []
    for key, records in by_key.items():
        operation = "change" if key in state else "add"
        if len(records) > 1:
            for _ in records:
                rejected.append((key, operation, f"duplicate primary key ({len(records)} rows)", None, None))
            continue
        raw, value = records[0]
        if isinstance(value, list):
            rejected.append((key, operation, f"missing mapped fields {value}", None, None))
            continue
        if mode == "insert" and key in state:
            continue  # insert sends a key once, whatever changed since
        mapped = dict(zip(destinations, value))
        ph = payload_hash(mapped)
        if state.get(key) == ph:
            continue
        payload = {primary_key: raw, **mapped}
        rows.append(SyncRow(key, operation, payload, ph, idempotency_key(sync_name, key, ph)))

    if mode == "mirror":
        rows.extend(_removals(sync_name, primary_key, sorted(set(state) - set(by_key)), state))
    return _Plan(rows, rejected)


def _removals(sync_name, primary_key, keys, hashes) -> list[SyncRow]:
    out = []
    for key in keys:
        # A removal has its own hash, so its idempotency key differs from the add/change before it.
        ph = payload_hash({"__remove__": hashes[key]})
        out.append(SyncRow(key, "remove", {primary_key: key}, ph, idempotency_key(sync_name, key, ph)))
    return out


# -- data frames (polars, Arrow): vectorised diff -------------------------------------------------
# Only the rows that may have changed go through Python. Each state row keeps a fingerprint
# (polars hash_rows of the mapped columns) next to its canonical payload_hash; a row whose
# fingerprint equals the stored one under the same tag is unchanged. Every other row (new key,
# no/different fingerprint, another tag) gets its canonical hash computed and compared: the
# canonical hash decides; the fingerprints of rows found unchanged are refreshed afterwards.

class _DictState:
    """A plain key -> payload_hash mapping seen as the ledger's lazy view (no fingerprints)."""

    def __init__(self, mapping):
        self.mapping = mapping

    def fingerprints(self, tag):
        keys = pl.Series("key", list(self.mapping), dtype=pl.String)
        return keys.to_frame().with_columns(fingerprint=pl.lit(None, pl.UInt64))

    def hashes(self, keys):
        mapping = self.mapping
        return {key: mapping[key] for key in keys if key in mapping}


def _as_frame(audience):
    """A polars DataFrame for polars / Arrow input, None for anything else (records)."""
    if hasattr(audience, "get_column") and hasattr(audience, "hash_rows"):
        return audience
    if type(audience).__module__.split(".")[0] == "pyarrow" and hasattr(audience, "schema"):  # Table, RecordBatch
        return pl.from_arrow(audience)
    return None


def _frame_keys(frame, primary_key: str):
    """str(primary key) per row (None when missing or empty), as a String series."""
    column = frame.get_column(primary_key)
    dtype = column.dtype
    if isinstance(dtype, (pl.Categorical, pl.Enum)) or dtype == pl.String or dtype.is_integer():
        # str() of a Python str / int is what polars' cast gives; other dtypes go through str()
        key = pl.col("key")
        return column.cast(pl.String).rename("key").to_frame().select(
            pl.when(key == "").then(None).otherwise(key).alias("key")).to_series()
    texts = [None if raw is None else str(raw) for raw in column.to_list()]
    return pl.Series("key", [None if text == "" else text for text in texts], dtype=pl.String)


_FINGERPRINT_PROBE: list[int] = []


def _fingerprint_tag(frame, fields: dict[str, str]) -> str:
    """What a fingerprint is valid under: the polars build (version, machine, and the hash of a fixed
    probe row, so that any change of polars' hashing shows), the mapping and the dtypes."""
    if not _FINGERPRINT_PROBE:
        probe = pl.DataFrame({"s": ["golden"], "i": [7], "f": [0.5], "b": [True], "d": [date(2026, 1, 1)]})
        _FINGERPRINT_PROBE.append(probe.hash_rows().item())
    schema = frame.schema
    described = [[dest, fields[dest], str(schema[fields[dest]])] for dest in sorted(fields)]
    digest = hashlib.sha256(json.dumps([pl.__version__, platform.machine(), _FINGERPRINT_PROBE[0], described]
                                       ).encode()).hexdigest()[:16]
    return f"polars-{pl.__version__}:{digest}"


def _fingerprints(frame, fields: dict[str, str]):
    """UInt64 per row from the mapped values (same order as the canonical JSON), or None when a mapped
    dtype cannot be fingerprinted faithfully (then every row takes the canonical path)."""
    if not fields:
        return pl.repeat(0, frame.height, dtype=pl.UInt64, eager=True)
    exprs = []
    for i, dest in enumerate(sorted(fields)):
        source = fields[dest]
        dtype = frame.schema[source]
        column = pl.col(source)
        if isinstance(dtype, (pl.Categorical, pl.Enum)):
            column = column.cast(pl.String)  # hash the text, never the category codes
        elif dtype.is_float():
            # polars hashes -0.0 like 0.0, the canonical JSON does not: add the sign bit.
            exprs.append(((1.0 / column) < 0).alias(f"sign{i}"))
        elif not (dtype.is_integer() or dtype.is_temporal() or dtype.is_decimal()
                  or dtype in (pl.String, pl.Boolean, pl.Binary, pl.Null)):
            return None  # nested or object values
        exprs.append(column.alias(f"v{i}"))
    try:
        return frame.select(exprs).hash_rows()
    except pl.exceptions.PolarsError:  # a dtype this polars cannot hash: the canonical path for all
        return None


def _plan_frame(sync_name, frame, primary_key, fields: dict[str, str], state, mode: str) -> _Plan:
    destinations, sources = list(fields), list(fields.values())
    present = set(frame.columns)
    if primary_key in present:
        keys = _frame_keys(frame, primary_key)
    else:
        keys = pl.Series("key", [None] * frame.height, dtype=pl.String)
    table = keys.to_frame().with_row_index("idx")
    missing_keys = keys.null_count()
    rejected: list[tuple] = [("", "add", f"missing primary key {primary_key!r}", None, None)
                             for _ in range(missing_keys)]
    valid = table.filter(pl.col("key").is_not_null()) if missing_keys else table
    valid_keys = valid.get_column("key")
    has_duplicates = valid_keys.n_unique() < valid.height  # (n_unique is 5x faster than is_duplicated)
    missing = [src for src in sources if src not in present]
    tag = None if missing else _fingerprint_tag(frame, fields)
    known = state.fingerprints(tag)

    if missing or has_duplicates:
        duplicated = valid_keys.is_duplicated()
        bad = valid if missing else valid.filter(duplicated)
        groups = bad.group_by("key", maintain_order=True).agg(pl.len().alias("rows"))
        stored = set(groups.join(known, on="key", how="semi").get_column("key").to_list())
        for key, count in groups.iter_rows():
            operation = "change" if key in stored else "add"
            if count > 1:
                rejected.extend((key, operation, f"duplicate primary key ({count} rows)", None, None)
                                for _ in range(count))
            else:
                rejected.append((key, operation, f"missing mapped fields {missing}", None, None))
        unique = valid.clear() if missing else valid.filter(~duplicated)
    else:
        unique = valid

    removed: list[str] = []
    if mode == "mirror":
        removed = sorted(known.join(valid, on="key", how="anti").get_column("key").to_list())

    fingerprints = None if missing else _fingerprints(frame, fields)
    candidates = unique.join(known.with_columns(stored=pl.lit(True)), on="key", how="left")
    candidates = candidates.with_columns(pl.col("stored").fill_null(False))
    if fingerprints is not None:
        candidates = candidates.with_columns(current=fingerprints.gather(candidates.get_column("idx")))
    if mode == "insert":
        candidates = candidates.filter(~pl.col("stored"))  # insert sends a key once, whatever changed since
    elif fingerprints is not None:
        same = pl.col("stored") & (pl.col("fingerprint") == pl.col("current")).fill_null(False)
        candidates = candidates.filter(~same)
    candidates = candidates.sort("idx")

    cand_keys = candidates.get_column("key").to_list()
    cand_stored = candidates.get_column("stored").to_list()
    hashes = state.hashes([key for key, stored in zip(cand_keys, cand_stored) if stored] + removed)
    cand_prints = candidates.get_column("current").to_list() if fingerprints is not None else None
    current: list[str] = []
    if cand_keys:  # only the candidate rows, only the columns that matter
        needed = list(dict.fromkeys([primary_key, *sources]))
        index = candidates.get_column("idx")
        subset = frame.select(needed) if index.len() == frame.height else frame.select(
            pl.col(column).gather(index) for column in needed)
        current = frame_payload_hashes(subset, fields)

    send: list[int] = []
    refresh: tuple[list, list, list] = ([], [], [])
    for position, (key, stored, ph) in enumerate(zip(cand_keys, cand_stored, current)):
        if stored and hashes.get(key) == ph:
            if cand_prints is not None:  # unchanged: keep the fresh fingerprint for next time
                refresh[0].append(key)
                refresh[1].append(ph)
                refresh[2].append(cand_prints[position])
            continue
        send.append(position)

    rows: list[SyncRow] = []
    sent_prints: dict[str, int] = {}
    if send:
        every = len(send) == len(cand_keys)
        part = subset if every else subset[send]
        keys = cand_keys if every else [cand_keys[p] for p in send]
        hashes_sent = current if every else [current[p] for p in send]
        operations = ["change" if cand_stored[p] else "add" for p in send]
        columns = {c: part.get_column(c).to_list() for c in dict.fromkeys(sources)}
        values = zip(part.get_column(primary_key).to_list(), *(columns[src] for src in sources))
        # dict(zip(names, ...)) == {primary_key: raw, **mapped}, a mapped field named like the key included
        payloads = list(map(dict, map(zip, repeat([primary_key, *destinations]), values)))
        sha256, prefix = hashlib.sha256, f"{sync_name}|"
        idempotency = [sha256(f"{prefix}{key}|{ph}".encode()).hexdigest() for key, ph in zip(keys, hashes_sent)]
        rows = list(map(SyncRow, keys, operations, payloads, hashes_sent, idempotency))
        if cand_prints is not None:
            sent_prints = dict(zip(keys, cand_prints if every else [cand_prints[p] for p in send]))
    if removed:
        rows.extend(_removals(sync_name, primary_key, removed, hashes))
    return _Plan(rows, rejected, sent_prints or None, tag, refresh if refresh[0] else None)


class _Sender:
    """Rate limiting, retries with backoff and bisection around destination.send."""

    def __init__(self, destination, max_attempts, sleep, clock, rng, base_delay, max_delay):
        self.destination = destination
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.clock = clock
        self.rng = rng
        self.base_delay = base_delay
        self.max_delay = max_delay
        rps = destination.max_requests_per_second
        self.interval = 1.0 / rps if rps else 0.0
        self.next_allowed: float | None = None
        self.requests = 0

    def _throttle(self):
        if not self.interval:
            return
        current = self.clock()
        if self.next_allowed is not None and current < self.next_allowed:
            self.sleep(self.next_allowed - current)
            current = self.next_allowed
        self.next_allowed = current + self.interval

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return float(retry_after)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)  # "equal jitter"

    def send(self, rows: list[SyncRow]) -> list[tuple[SyncRow, str, str, int]]:
        """Returns (row, status, message, attempts) for every row; status 'ok'|'rejected'|'failed'."""
        attempt = 0
        while True:
            attempt += 1
            self._throttle()
            self.requests += 1
            try:
                results = self.destination.send(rows)
            except TransientError as exc:
                if attempt >= self.max_attempts:
                    msg = f"transient error after {attempt} attempts: {exc}"
                    return [(r, "failed", msg, attempt) for r in rows]
                self.sleep(self.backoff(attempt, exc.retry_after))
                continue
            except BatchRejected as exc:
                if len(rows) == 1:
                    return [(rows[0], "rejected", str(exc) or "rejected", attempt)]
                middle = len(rows) // 2
                return self.send(rows[:middle]) + self.send(rows[middle:])
            return self._check(rows, results, attempt)

    @staticmethod
    def _check(rows, results: list[RowResult], attempt):
        if len(results) != len(rows) or any(res.key != row.key for row, res in zip(rows, results)):
            raise RuntimeError("destination must return one RowResult per row, in the same order")
        out = []
        for row, res in zip(rows, results):
            status = res.status if res.status in ("ok", "rejected") else "rejected"
            out.append((row, status, res.message, attempt))
        return out


def run_sync(
    con,
    sync_name: str,
    audience,
    primary_key: str,
    mapped_fields,
    destination: Destination,
    mode: str = "upsert",
    dry_run: bool = False,
    max_rejected_share: float = 0.1,
    max_attempts: int = 5,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    *,
    dry_run_path: str | Path | None = None,
    full_resync: bool = False,
    rng: random.Random | None = None,
    base_delay: float = 1.0,
    max_delay: float = 60.0,
    gate: Callable[[list[str]], list] | None = None,
    channel: str | None = None,
    advertising: bool | None = None,
    now: Callable[[], "datetime"] | None = None,
) -> SyncReport:
    """Diff ``audience`` against the last synced state and send the difference to ``destination``.

    ``gate`` is the sending law (see ``activations.audiences.law.SendingLaw``): called with the keys
    of the rows about to be added or changed, it answers one decision per key (``action`` send |
    defer | drop, ``reasons``, ``send_at``). Dropped rows are logged 'suppressed', deferred ones
    'deferred'; neither moves the synced state, so both are reconsidered by the next run.
    ``channel`` / ``advertising`` tag the log rows that frequency caps count; ``now`` stamps them.
    """
    ledger = Ledger(con, clock=now, channel=channel, advertising=advertising)
    run_id = uuid.uuid4().hex
    report = SyncReport(run_id=run_id, sync_name=sync_name, mode=mode, dry_run=dry_run)
    if full_resync and not dry_run:
        # On purpose: everything is sent again (may duplicate on non-idempotent tools).
        ledger.reset_state(sync_name)
    frame = _as_frame(audience)
    if frame is not None:
        audience = frame
        state = _DictState({}) if full_resync else ledger.state_view(sync_name)  # hashes only where needed
    else:
        state = {} if full_resync else ledger.state(sync_name)
    plan = _plan(sync_name, audience, primary_key, mapped_fields, state, mode)
    rows, pre_rejected = plan.rows, plan.rejected
    report.processed = len(rows) + len(pre_rejected)
    report.rejected = len(pre_rejected)
    report.rejected_rows = [(e[0], e[2]) for e in pre_rejected]
    rows, held = _apply_gate(gate, rows, report)
    ledger.start_run(run_id, sync_name, mode, dry_run, getattr(destination, "name", None))

    if dry_run:
        path = Path(dry_run_path) if dry_run_path else Path(
            tempfile.mkdtemp(prefix="goldentime-dryrun-")) / f"{sync_name}-{run_id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps({"key": row.key, "operation": row.operation, "payload": row.payload,
                                     "payload_hash": row.payload_hash,
                                     "idempotency_key": row.idempotency_key}, default=str, ensure_ascii=False) + "\n")
        for row in rows:
            setattr(report, _COUNTER[row.operation], getattr(report, _COUNTER[row.operation]) + 1)
        report.dry_run_path = str(path)
        return _finish(ledger, report, max_rejected_share)

    if plan.refresh:
        ledger.refresh_fingerprints(sync_name, *plan.refresh, plan.fingerprint_tag)
    ledger.log_rejected(run_id, sync_name, pre_rejected)
    for status, entries in held.items():
        ledger.log_rejected(run_id, sync_name, entries, status=status)
    sender = _Sender(destination, max_attempts, sleep, clock, rng or random.Random(), base_delay, max_delay)
    hooks_open = getattr(destination, "open_run", None)
    if hooks_open:
        hooks_open(run_id)
    try:
        with _gc_frozen(), ledger.bulk():  # the planned rows stay alive all run: no need to re-walk them
            size = max(1, int(destination.batch_size))
            batch = rows[:size]
            if batch:
                ledger.log_pending(run_id, sync_name, batch)
            for start in range(0, len(rows), size):
                outcomes = sender.send(batch)
                following = rows[start + size:start + 2 * size]
                # The results of this batch and the pending rows of the next one: one commit.
                ledger.record_results(run_id, sync_name, outcomes, plan.fingerprints, plan.fingerprint_tag,
                                      next_pending=following)
                batch = following
                for row, status, message, _ in outcomes:
                    if status == "ok":
                        counter = _COUNTER[row.operation]
                        setattr(report, counter, getattr(report, counter) + 1)
                    else:
                        report.rejected += 1
                        report.rejected_rows.append((row.key, message))
    except BaseException:
        report.requests = sender.requests
        ledger.finish_run(run_id, report.counts(), "interrupted")
        raise
    report.requests = sender.requests
    hooks_close = getattr(destination, "close_run", None)
    if hooks_close:
        hooks_close(run_id)
    return _finish(ledger, report, max_rejected_share)


_COUNTER = {"add": "added", "change": "changed", "remove": "removed"}


def _apply_gate(gate, rows: list[SyncRow], report: SyncReport):
    """Split rows into those the sending law lets through now and those it holds (by log status)."""
    held: dict[str, list[tuple]] = {"suppressed": [], "deferred": []}
    if gate is None:
        return rows, held
    candidates = [row for row in rows if row.operation != "remove"]
    decisions = dict(zip([row.key for row in candidates], gate([row.key for row in candidates])))
    allowed = []
    for row in rows:
        decision = decisions.get(row.key) if row.operation != "remove" else None
        if decision is None or decision.action == "send":
            allowed.append(row)
            continue
        reason = "; ".join(decision.reasons) or decision.action
        if decision.action == "defer":
            reason = f"held until {decision.send_at.isoformat()}: {reason}"
            report.deferred += 1
            held["deferred"].append((row.key, row.operation, reason, row.payload_hash, row.idempotency_key))
        else:
            report.suppressed += 1
            held["suppressed"].append((row.key, row.operation, reason, row.payload_hash, row.idempotency_key))
        first = decision.reasons[0] if decision.reasons else decision.action
        report.held_reasons[first] = report.held_reasons.get(first, 0) + 1
    return allowed, held


def _finish(ledger: Ledger, report: SyncReport, max_rejected_share: float) -> SyncReport:
    share = report.rejected / report.processed if report.processed else 0.0
    report.status = "failed" if share > max_rejected_share else "success"
    ledger.finish_run(report.run_id, report.counts(), report.status)
    if report.status == "failed":
        raise SyncFailed(
            f"sync {report.sync_name!r}: {report.rejected}/{report.processed} rows rejected "
            f"({share:.0%} > {max_rejected_share:.0%})", report)
    return report
