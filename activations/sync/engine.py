"""The sync engine: diff the audience against the last synced state, send in batches, keep the ledger.

Semantics follow Hightouch/Census (see /work/shared/CONTRACTS.md): modes upsert / insert / mirror,
change capture on mapped fields only, duplicate keys rejected, failed rows retried on later runs,
exponential backoff with jitter honouring Retry-After, bisection of rejected batches, dry runs.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from datetime import datetime

from .destination import BatchRejected, Destination, RowResult, SyncRow, TransientError
from .ledger import Ledger, idempotency_key, payload_hash

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


def _keyed_records(audience, primary_key: str, sources: list[str]):
    """(key or None, primary-key value, mapped source values or the list of missing fields) per record.

    Polars frames are read column by column (no per-row dicts): plan_sync's cost at a million rows is
    mostly here and in hashing."""
    if hasattr(audience, "get_column"):  # polars
        height = audience.height
        present = set(audience.columns)
        raw_keys = audience.get_column(primary_key).to_list() if primary_key in present else [None] * height
        missing = [src for src in sources if src not in present]
        if missing:
            values = [missing] * height
        else:
            values = zip(*(audience.get_column(src).to_list() for src in sources)) if sources else [()] * height
        for raw, value in zip(raw_keys, values):
            yield (None if raw is None or str(raw) == "" else str(raw)), raw, value
        return
    for record in audience:
        raw = record.get(primary_key)
        missing = [src for src in sources if src not in record]
        value = missing if missing else tuple(record[src] for src in sources)
        yield (None if raw is None or str(raw) == "" else str(raw)), raw, value


def plan_sync(sync_name, audience, primary_key, mapped_fields, state: dict[str, str], mode: str):
    """Pure diff. Returns (rows to send, rejected entries for the log)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    fields = _normalise_fields(primary_key, mapped_fields)
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
        for key in sorted(set(state) - set(by_key)):
            # A removal has its own hash, so its idempotency key differs from the add/change before it.
            ph = payload_hash({"__remove__": state[key]})
            rows.append(SyncRow(key, "remove", {primary_key: key}, ph, idempotency_key(sync_name, key, ph)))
    return rows, rejected


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
    state = {} if full_resync else ledger.state(sync_name)
    rows, pre_rejected = plan_sync(sync_name, audience, primary_key, mapped_fields, state, mode)
    report.processed = len(rows) + len(pre_rejected)
    report.rejected = len(pre_rejected)
    report.rejected_rows = [(e[0], e[2]) for e in pre_rejected]
    rows, held = _apply_gate(gate, rows, report)
    ledger.start_run(run_id, sync_name, mode, dry_run)

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

    ledger.log_rejected(run_id, sync_name, pre_rejected)
    for status, entries in held.items():
        ledger.log_rejected(run_id, sync_name, entries, status=status)
    sender = _Sender(destination, max_attempts, sleep, clock, rng or random.Random(), base_delay, max_delay)
    hooks_open = getattr(destination, "open_run", None)
    if hooks_open:
        hooks_open(run_id)
    try:
        size = max(1, int(destination.batch_size))
        for start in range(0, len(rows), size):
            batch = rows[start:start + size]
            ledger.log_pending(run_id, sync_name, batch)
            outcomes = sender.send(batch)
            ledger.record_results(run_id, sync_name, outcomes)
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
