"""Sync engine core: diffing, modes, batching, rate limiting, retries, bisection, dry run, crash/resume."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import polars as pl
import pytest

from activations.destinations import OutboxDestination, SnapshotFileDestination
from activations.sync import (
    BatchRejected, RowResult, SyncFailed, SyncRow, TransientError, idempotency_key, run_sync,
)
from activations.sync.ledger import payload_hash

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ["email", "tier"]


def customers(n=5):
    return [{"customer_id": f"c{i}", "email": f"c{i}@example.com", "tier": "gold" if i % 2 else "silver",
             "last_seen": f"2026-01-0{i}"} for i in range(1, n + 1)]


class Recorder:
    """In-memory destination: records every call; rejects keys in `bad`; scripted failures."""

    def __init__(self, batch_size=100, rps=None, bad=(), reject_whole_batch=False, transient=()):
        self.name = "recorder"
        self.batch_size = batch_size
        self.max_requests_per_second = rps
        self.bad = set(bad)
        self.reject_whole_batch = reject_whole_batch
        self.transient = list(transient)  # list of retry_after values (or None) to raise, one per call
        self.calls: list[list[SyncRow]] = []

    @property
    def sent(self):
        return [r for call in self.calls for r in call]

    def send(self, rows):
        self.calls.append(list(rows))
        if self.transient:
            raise TransientError("503", self.transient.pop(0))
        if self.reject_whole_batch and any(r.key in self.bad for r in rows):
            raise BatchRejected("batch contains an invalid row")
        return [RowResult(r.key, "rejected", "bad row") if r.key in self.bad else RowResult(r.key, "ok")
                for r in rows]


class FakeTime:
    def __init__(self):
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def sync(con, audience, dest, **kw):
    t = kw.pop("time", None) or FakeTime()
    return run_sync(con, kw.pop("sync_name", "crm"), audience, "customer_id", kw.pop("fields", FIELDS), dest,
                    sleep=t.sleep, clock=t.clock, **kw)


def state(con, name="crm"):
    return dict(con.execute("SELECT key, payload_hash FROM activations.sync_state WHERE sync_name = ?",
                            [name]).fetchall())


def test_first_run_adds_all_and_rerun_sends_nothing(con):
    dest = Recorder()
    report = sync(con, customers(), dest)
    assert (report.processed, report.added, report.changed, report.removed, report.rejected) == (5, 5, 0, 0, 0)
    assert report.status == "success" and report.requests == 1
    assert sorted(state(con)) == ["c1", "c2", "c3", "c4", "c5"]
    row = dest.sent[0]
    assert row.payload == {"customer_id": "c1", "email": "c1@example.com", "tier": "gold"}
    assert row.payload_hash == payload_hash({"email": "c1@example.com", "tier": "gold"})
    assert row.idempotency_key == idempotency_key("crm", "c1", row.payload_hash)

    again = sync(con, customers(), dest)
    assert (again.processed, again.added, again.changed, again.requests) == (0, 0, 0, 0)
    assert len(dest.calls) == 1
    runs = con.execute("SELECT status, processed, added FROM activations.sync_runs ORDER BY started_at").fetchall()
    assert runs == [("success", 5, 5), ("success", 0, 0)]


def test_only_mapped_fields_count_as_change(con):
    dest = Recorder()
    sync(con, customers(), dest)
    audience = customers()
    audience[1]["tier"] = "platinum"       # mapped  -> change
    audience[2]["last_seen"] = "2026-02-01"  # unmapped -> nothing
    report = sync(con, audience, dest)
    assert (report.processed, report.added, report.changed, report.removed) == (1, 0, 1, 0)
    assert [(r.key, r.operation, r.payload["tier"]) for r in dest.calls[-1]] == [("c2", "change", "platinum")]


def test_polars_input_and_dict_mapping(con):
    dest = Recorder()
    frame = pl.DataFrame(customers(3))
    report = sync(con, frame, dest, fields={"mail": "email"})
    assert report.added == 3
    assert dest.sent[0].payload == {"customer_id": "c1", "mail": "c1@example.com"}


def test_duplicate_primary_keys_are_rejected_rows_not_a_silent_pick(con):
    dest = Recorder()
    audience = customers() + [{"customer_id": "c3", "email": "other@example.com", "tier": "x", "last_seen": ""}]
    report = sync(con, audience, dest, max_rejected_share=0.5)
    assert (report.processed, report.added, report.rejected) == (6, 4, 2)
    assert "c3" not in {r.key for r in dest.sent}
    log = con.execute("SELECT key, status, message FROM activations.sync_log WHERE status = 'rejected'").fetchall()
    assert log == [("c3", "rejected", "duplicate primary key (2 rows)")] * 2


def test_insert_mode_sends_only_new_keys(con):
    dest = Recorder()
    sync(con, customers(3), dest, mode="insert")
    audience = customers(5)
    audience[0]["tier"] = "changed"
    report = sync(con, audience, dest, mode="insert")
    assert (report.added, report.changed) == (2, 0)
    assert [r.key for r in dest.calls[-1]] == ["c4", "c5"]


def test_mirror_sends_removals_and_upsert_does_not(con):
    dest = Recorder()
    sync(con, customers(), dest, mode="mirror")
    up = sync(con, customers(3), dest, mode="upsert")
    assert up.removed == 0 and up.processed == 0
    report = sync(con, customers(3), dest, mode="mirror")
    assert (report.processed, report.removed) == (2, 2)
    assert [(r.key, r.operation) for r in dest.calls[-1]] == [("c4", "remove"), ("c5", "remove")]
    assert sorted(state(con)) == ["c1", "c2", "c3"]
    assert sync(con, customers(3), dest, mode="mirror").processed == 0


def test_rows_that_failed_are_retried_next_run(con):
    dest = Recorder(bad={"c3"})
    first = sync(con, customers(), dest, max_rejected_share=0.5)
    assert (first.added, first.rejected, first.rejected_rows) == (4, 1, [("c3", "bad row")])
    assert "c3" not in state(con)
    dest.bad.clear()
    second = sync(con, customers(), dest)
    assert (second.processed, second.added) == (1, 1)
    assert [r.key for r in dest.calls[-1]] == ["c3"]


def test_batching_by_batch_size(con):
    dest = Recorder(batch_size=2)
    report = sync(con, customers(), dest)
    assert [[r.key for r in call] for call in dest.calls] == [["c1", "c2"], ["c3", "c4"], ["c5"]]
    assert report.requests == 3


def test_client_side_rate_limit(con):
    t = FakeTime()
    dest = Recorder(batch_size=1, rps=2.0)
    sync(con, customers(), dest, time=t)
    assert len(dest.calls) == 5
    assert t.sleeps == [0.5, 0.5, 0.5, 0.5]


def test_transient_errors_retry_with_retry_after_then_backoff(con):
    t = FakeTime()
    dest = Recorder(transient=[3.0, None, None])
    report = sync(con, customers(), dest, time=t, rng=random.Random(7))
    assert report.added == 5 and report.requests == 4
    assert t.sleeps[0] == 3.0                  # Retry-After honoured exactly
    assert 1.0 <= t.sleeps[1] <= 2.0           # after attempt 2: base 1s * 2, equal jitter
    assert 2.0 <= t.sleeps[2] <= 4.0           # after attempt 3: doubled
    attempts = con.execute("SELECT DISTINCT attempt FROM activations.sync_log").fetchall()
    assert attempts == [(4,)]


def test_transient_errors_exhausted_fail_rows_and_run(con):
    dest = Recorder(transient=[None] * 10)
    with pytest.raises(SyncFailed) as info:
        sync(con, customers(), dest, max_attempts=3)
    assert info.value.report.rejected == 5 and len(dest.calls) == 3
    assert con.execute("SELECT status FROM activations.sync_runs").fetchall() == [("failed",)]
    assert con.execute("SELECT count(*) FROM activations.sync_log WHERE status = 'failed'").fetchone() == (5,)
    assert state(con) == {}
    report = sync(con, customers(), Recorder())  # retried on the next run
    assert report.added == 5


def test_rejected_batch_is_bisected_to_isolate_bad_row(con):
    dest = Recorder(batch_size=4, bad={"c3"}, reject_whole_batch=True)
    report = sync(con, customers(4), dest, max_rejected_share=0.5)
    assert (report.added, report.rejected) == (3, 1)
    assert [[r.key for r in call] for call in dest.calls] == [
        ["c1", "c2", "c3", "c4"], ["c1", "c2"], ["c3", "c4"], ["c3"], ["c4"]]
    assert report.rejected_rows == [("c3", "batch contains an invalid row")]


def test_run_fails_only_past_max_rejected_share(con):
    ok = sync(con, customers(10), Recorder(bad={"c1"}), max_rejected_share=0.1, sync_name="a")
    assert ok.status == "success" and ok.rejected == 1
    with pytest.raises(SyncFailed):
        sync(con, customers(10), Recorder(bad={"c1", "c2"}), max_rejected_share=0.1, sync_name="b")
    assert con.execute("SELECT sync_name, status, rejected FROM activations.sync_runs ORDER BY sync_name"
                       ).fetchall() == [("a", "success", 1), ("b", "failed", 2)]
    assert len(state(con, "b")) == 8  # rows that went through are kept


def test_dry_run_writes_payloads_sends_nothing_same_counts(con, tmp_path):
    base = customers()
    sync(con, base, Recorder(), mode="mirror")
    audience = customers(4)
    audience[0]["email"] = "new@example.com"
    audience.append({"customer_id": "c9", "email": "c9@example.com", "tier": "gold", "last_seen": ""})
    dest = Recorder()
    path = tmp_path / "dry.jsonl"
    dry = sync(con, audience, dest, mode="mirror", dry_run=True, dry_run_path=path)
    assert dest.calls == [] and dry.dry_run_path == str(path)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [(x["key"], x["operation"]) for x in lines] == [("c1", "change"), ("c9", "add"), ("c5", "remove")]
    assert lines[0]["payload"] == {"customer_id": "c1", "email": "new@example.com", "tier": "gold"}
    real = sync(con, audience, dest, mode="mirror")
    assert dry.counts() == real.counts() == {"processed": 3, "added": 1, "changed": 1, "removed": 1, "rejected": 0}
    assert [(r.key, r.operation, r.payload) for r in dest.sent] == [
        (x["key"], x["operation"], x["payload"]) for x in lines]


def test_log_is_pending_before_send(con):
    seen = []

    class Peek(Recorder):
        def send(self, rows):
            seen.append(con.execute("SELECT key, status, idempotency_key FROM activations.sync_log "
                                    "ORDER BY key").fetchall())
            return super().send(rows)

    sync(con, customers(2), Peek())
    assert [(k, s) for k, s, _ in seen[0]] == [("c1", "pending"), ("c2", "pending")]
    assert con.execute("SELECT DISTINCT status FROM activations.sync_log").fetchall() == [("ok",)]


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_crash_mid_sync_then_resume_neither_double_sends_nor_skips(con, tmp_path, exc):
    outbox = OutboxDestination(str(tmp_path / "outbox.jsonl"), batch_size=2)

    class CrashOnThird:
        name, batch_size, max_requests_per_second = "outbox", 2, None
        calls = 0

        def send(self, rows):
            CrashOnThird.calls += 1
            outbox.send(rows)          # the destination received and stored the batch ...
            if CrashOnThird.calls == 3:
                raise exc()            # ... but the process dies before acknowledging it
            return [RowResult(r.key, "ok") for r in rows]

    audience = customers(7)
    with pytest.raises(exc):
        sync(con, audience, CrashOnThird())
    assert con.execute("SELECT status FROM activations.sync_runs").fetchall() == [("interrupted",)]
    assert sorted(con.execute("SELECT key FROM activations.sync_log WHERE status = 'pending'").fetchall()) == [
        ("c5",), ("c6",)]
    assert sorted(state(con)) == ["c1", "c2", "c3", "c4"]

    report = sync(con, audience, outbox)
    assert (report.added, report.processed) == (3, 3)
    received = outbox.received()
    delivered = outbox.delivered()
    assert sorted(x["key"] for x in delivered) == [f"c{i}" for i in range(1, 8)]  # nothing skipped
    assert len(delivered) == 7                                                     # nothing twice
    assert [x["key"] for x in received if x["duplicate"]] == ["c5", "c6"]  # re-sent with the same key
    assert [x["key"] for x in received].count("c1") == 1                    # acknowledged: never re-sent
    assert sync(con, audience, outbox).processed == 0


CHILD = textwrap.dedent("""
    import os, signal, sys
    import duckdb
    sys.path.insert(0, {root!r})
    from activations.destinations import OutboxDestination
    from activations.sync import run_sync

    class KillSelf(OutboxDestination):
        calls = 0
        def send(self, rows):
            result = super().send(rows)
            KillSelf.calls += 1
            if KillSelf.calls == {kill_at}:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

    con = duckdb.connect({db!r})
    audience = [{{"customer_id": f"c{{i}}", "email": f"c{{i}}@x.com"}} for i in range(1, 10)]
    run_sync(con, "outbox", audience, "customer_id", ["email"], KillSelf({outbox!r}, batch_size=2))
""")


def test_sigkill_mid_sync_then_resume(tmp_path):
    db, box = str(tmp_path / "w.duckdb"), str(tmp_path / "outbox.jsonl")
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(root=str(ROOT), db=db, outbox=box, kill_at=3))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()

    outbox = OutboxDestination(box, batch_size=2)
    assert len(outbox.received()) == 6  # three batches arrived before the kill
    con = duckdb.connect(db)
    assert con.execute("SELECT status FROM activations.sync_runs").fetchall() == [("running",)]
    audience = [{"customer_id": f"c{i}", "email": f"c{i}@x.com"} for i in range(1, 10)]
    report = run_sync(con, "outbox", audience, "customer_id", ["email"], outbox)
    assert report.added == 5  # c5..c9: the killed batch again, then the rest
    delivered = [x["key"] for x in outbox.delivered()]
    assert sorted(delivered) == sorted(f"c{i}" for i in range(1, 10)) and len(delivered) == 9
    assert [x["key"] for x in outbox.received() if x["duplicate"]] == ["c5", "c6"]
    assert con.execute("SELECT status FROM activations.sync_runs ORDER BY started_at").fetchall() == [
        ("interrupted",), ("success",)]
    con.close()


def test_outbox_on_fsspec_memory_url(con):
    outbox = OutboxDestination("memory://goldentime/outbox.jsonl")
    sync(con, customers(3), outbox)
    assert [x["key"] for x in outbox.delivered()] == ["c1", "c2", "c3"]


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_snapshot_file_destination_keeps_current_audience(con, tmp_path, ext):
    dest = SnapshotFileDestination(str(tmp_path / f"audience.{ext}"))
    first = sync(con, customers(), dest, mode="mirror")
    assert [r["_key"] for r in dest.snapshot()] == ["c1", "c2", "c3", "c4", "c5"]
    audience = customers(4)
    audience[1]["tier"] = "platinum"
    second = sync(con, audience, dest, mode="mirror")
    snap = dest.snapshot()
    assert [(r["_key"], r["tier"]) for r in snap] == [("c1", "gold"), ("c2", "platinum"), ("c3", "gold"),
                                                    ("c4", "silver")]
    per_run = tmp_path / f"audience.{second.run_id}.{ext}"
    assert per_run.exists() and (tmp_path / f"audience.{first.run_id}.{ext}").exists()
