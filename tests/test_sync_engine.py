"""Sync engine core: diffing, modes, batching, rate limiting, retries, bisection, dry run, crash/resume."""

from __future__ import annotations

import datetime as dt
import gc
import json
import random
import signal
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest

from activations.destinations import OutboxDestination, SnapshotFileDestination
from activations.sync import (
    BatchRejected, RowResult, SyncFailed, SyncRow, TransientError, idempotency_key, run_sync,
)
from activations.sync import engine
from activations.sync.ledger import frame_payload_hashes, payload_hash

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


# -- data frames: change capture by fingerprint, the canonical hash deciding ------------------------

def frame_of(n=1000):
    return pl.DataFrame({
        "customer_id": [f"c{i:05d}" for i in range(n)],
        "email": [f"c{i}@example.com" for i in range(n)],
        "tier": ["gold" if i % 3 else "silver" for i in range(n)],
        "score": [i / 7 for i in range(n)],
        "orders": list(range(n)),
        "last_seen": [dt.date(2026, 1, 1) + dt.timedelta(days=i % 90) for i in range(n)],
    })


FRAME_FIELDS = ["email", "tier", "score", "orders", "last_seen"]


@pytest.fixture
def hashed(monkeypatch):
    """Counts the rows that take the canonical (Python) path on each run."""
    counts: list[int] = []

    def counting(frame, fields):
        counts.append(frame.height)
        return frame_payload_hashes(frame, fields)

    monkeypatch.setattr(engine, "frame_payload_hashes", counting)
    return counts


def full_state(con, name="crm"):
    return {k: (h, fp, tag) for k, h, fp, tag in con.execute(
        "SELECT key, payload_hash, fingerprint, fingerprint_tag FROM activations.sync_state WHERE sync_name = ?",
        [name]).fetchall()}


def test_polars_rerun_after_3_of_1000_changed_sends_exactly_those_3(con, hashed):
    dest = Recorder(batch_size=250)
    frame = frame_of()
    first = sync(con, frame, dest, fields=FRAME_FIELDS)
    assert first.added == 1000 and hashed == [1000]
    assert all(fp is not None and tag for _, fp, tag in full_state(con).values())
    assert {k: h for k, (h, _, _) in full_state(con).items()} == {
        r.key: payload_hash({f: r.payload[f] for f in FRAME_FIELDS}) for r in dest.sent}

    changed = frame.with_columns(
        pl.when(pl.col("customer_id") == "c00007").then(pl.lit("new@example.com")).otherwise(pl.col("email"))
        .alias("email"),
        pl.when(pl.col("customer_id") == "c00500").then(pl.col("score") + 1).otherwise(pl.col("score")).alias("score"),
        pl.when(pl.col("customer_id") == "c00999").then(pl.lit(dt.date(2030, 1, 1))).otherwise(pl.col("last_seen"))
        .alias("last_seen"),
        unmapped=pl.lit("ignored"))
    dest.calls.clear()
    report = sync(con, changed, dest, fields=FRAME_FIELDS)
    assert (report.processed, report.added, report.changed, report.removed) == (3, 0, 3, 0)
    assert [(r.key, r.operation) for r in dest.sent] == [("c00007", "change"), ("c00500", "change"),
                                                        ("c00999", "change")]
    assert dest.sent[0].payload == {"customer_id": "c00007", "email": "new@example.com", "tier": "gold",
                                    "score": 1.0, "orders": 7, "last_seen": dt.date(2026, 1, 8)}
    assert dest.sent[0].payload_hash == payload_hash({f: dest.sent[0].payload[f] for f in FRAME_FIELDS})
    assert hashed == [1000, 3]  # only the changed rows took the canonical path
    assert sync(con, changed, dest, fields=FRAME_FIELDS).processed == 0 and hashed == [1000, 3]


def test_stale_fingerprint_tag_sends_nothing_and_refreshes_the_fingerprints(con, hashed):
    dest = Recorder(batch_size=500)
    frame = frame_of()
    sync(con, frame, dest, fields=FRAME_FIELDS)
    before = full_state(con)
    # Another polars version wrote half of them; a ledger from before fingerprints, the rest.
    con.execute("UPDATE activations.sync_state SET fingerprint_tag = 'polars-0.0.1:0123456789abcdef', "
                "fingerprint = fingerprint + 1 WHERE key < 'c00500'")
    con.execute("UPDATE activations.sync_state SET fingerprint = NULL, fingerprint_tag = NULL WHERE key >= 'c00500'")
    dest.calls.clear()
    report = sync(con, frame, dest, fields=FRAME_FIELDS)
    assert report.processed == 0 and dest.calls == []
    assert hashed == [1000, 1000]  # every row checked against its canonical hash ...
    assert full_state(con) == before  # ... and its fingerprint refreshed (same hash, same tag)
    assert sync(con, frame, dest, fields=FRAME_FIELDS).processed == 0
    assert hashed == [1000, 1000]  # next run: nothing needs the canonical path


def test_stale_fingerprint_with_a_real_change_is_sent(con):
    dest = Recorder()
    sync(con, frame_of(10), dest, fields=FRAME_FIELDS)
    con.execute("UPDATE activations.sync_state SET fingerprint_tag = 'polars-0.0.1:x'")
    changed = frame_of(10).with_columns(orders=pl.when(pl.col("orders") == 4).then(99).otherwise(pl.col("orders")))
    dest.calls.clear()
    report = sync(con, changed, dest, fields=FRAME_FIELDS)
    assert [(r.key, r.payload["orders"]) for r in dest.sent] == [("c00004", 99)] and report.changed == 1
    assert len({tag for _, _, tag in full_state(con).values()}) == 1  # all on the current tag again


def test_dtype_change_follows_the_canonical_hash(con, hashed):
    frame = pl.DataFrame({"customer_id": ["a", "b", "c"], "n": [1, 2, 3], "m": [5, 6, 7]})
    dest = Recorder()
    sync(con, frame, dest, fields=["n", "m"])
    # int -> float with the same values: 1 -> 1.0 is another canonical JSON, so every row changes
    as_float = frame.with_columns(pl.col("n").cast(pl.Float64))
    dest.calls.clear()
    report = sync(con, as_float, dest, fields=["n", "m"])
    assert report.changed == 3 and [r.payload["n"] for r in dest.sent] == [1.0, 2.0, 3.0]
    assert [r.payload_hash for r in dest.sent] == [payload_hash({"n": float(v), "m": m}) for v, m in
                                                    [(1, 5), (2, 6), (3, 7)]]
    # Int64 -> Int32: another dtype (another tag), the same canonical JSON: nothing is sent
    narrower = as_float.with_columns(pl.col("m").cast(pl.Int32))
    dest.calls.clear()
    assert sync(con, narrower, dest, fields=["n", "m"]).processed == 0 and dest.calls == []
    assert hashed == [3, 3, 3]
    assert sync(con, narrower, dest, fields=["n", "m"]).processed == 0 and hashed == [3, 3, 3]


def test_records_run_between_frame_runs_never_leaves_a_stale_fingerprint(con):
    dest = Recorder()
    frame = frame_of(5)
    sync(con, frame, dest, fields=FRAME_FIELDS)
    records = frame.to_dicts()
    records[2]["tier"] = "platinum"
    assert sync(con, records, dest, fields=FRAME_FIELDS).changed == 1
    assert full_state(con)["c00002"][1:] == (None, None)
    dest.calls.clear()
    report = sync(con, frame, dest, fields=FRAME_FIELDS)  # back to the original values: a change
    assert [(r.key, r.payload["tier"]) for r in dest.sent] == [("c00002", "gold")] and report.changed == 1


def test_negative_zero_and_category_codes_are_changes(con):
    frame = pl.DataFrame({"customer_id": ["a", "b"], "x": [0.0, 1.0],
                          "tier": pl.Series(["gold", "silver"], dtype=pl.Categorical)})
    dest = Recorder()
    sync(con, frame, dest, fields=["x", "tier"])
    flipped = pl.DataFrame({"customer_id": ["a", "b"], "x": [-0.0, 1.0],  # polars hashes -0.0 like 0.0
                            "tier": pl.Series(["silver", "gold"], dtype=pl.Categorical)})
    dest.calls.clear()
    report = sync(con, flipped, dest, fields=["x", "tier"])
    assert report.changed == 2
    assert [(r.key, str(r.payload["x"]), r.payload["tier"]) for r in dest.sent] == [("a", "-0.0", "silver"),
                                                                                    ("b", "1.0", "gold")]


def test_polars_mirror_removes_sorted_and_then_settles(con, hashed):
    dest = Recorder()
    frame = frame_of(10)
    sync(con, frame, dest, mode="mirror", fields=FRAME_FIELDS)
    kept = frame.filter(~pl.col("customer_id").is_in(["c00008", "c00002", "c00005"]))
    dest.calls.clear()
    report = sync(con, kept, dest, mode="mirror", fields=FRAME_FIELDS)
    assert (report.processed, report.removed, report.changed, report.added) == (3, 3, 0, 0)
    assert [(r.key, r.operation, r.payload) for r in dest.sent] == [
        (k, "remove", {"customer_id": k}) for k in ("c00002", "c00005", "c00008")]
    assert dest.sent[0].payload_hash == payload_hash({"__remove__": payload_hash(
        {f: frame.row(2, named=True)[f] for f in FRAME_FIELDS})})
    assert sorted(state(con)) == sorted(kept["customer_id"].to_list())
    assert hashed == [10]  # removals need no canonical hash of the audience
    up = sync(con, frame_of(10).head(2), dest, mode="upsert", fields=FRAME_FIELDS)
    assert up.processed == 0
    assert sync(con, kept, dest, mode="mirror", fields=FRAME_FIELDS).processed == 0


def test_polars_insert_mode_sends_only_new_keys(con, hashed):
    dest = Recorder()
    sync(con, frame_of(3), dest, mode="insert", fields=FRAME_FIELDS)
    grown = frame_of(5).with_columns(pl.lit("changed").alias("tier"))
    dest.calls.clear()
    report = sync(con, grown, dest, mode="insert", fields=FRAME_FIELDS)
    assert (report.added, report.changed) == (2, 0)
    assert [(r.key, r.operation) for r in dest.sent] == [("c00003", "add"), ("c00004", "add")]
    assert hashed == [3, 2]  # keys already sent are never looked at again


def test_polars_duplicate_and_missing_keys_match_the_records_path(con):
    rows = customers(6)
    rows[4]["customer_id"] = "c2"      # duplicate of a key already synced -> 'change'
    rows.append({"customer_id": "c9", "email": "x", "tier": "y", "last_seen": ""})
    rows.append({"customer_id": "c9", "email": "z", "tier": "y", "last_seen": ""})
    rows.append({"customer_id": None, "email": "x", "tier": "y", "last_seen": ""})
    rows.append({"customer_id": "", "email": "x", "tier": "y", "last_seen": ""})
    reports, logs, sent = [], [], []
    for name, audience in (("frame", pl.DataFrame(rows)), ("records", rows)):
        dest = Recorder()
        sync(con, customers(3), dest, sync_name=name)
        dest.calls.clear()
        report = sync(con, audience, dest, sync_name=name, max_rejected_share=1.0)
        reports.append((report.counts(), report.rejected_rows))
        logs.append(con.execute("SELECT key, operation, status, message FROM activations.sync_log WHERE run_id = ? "
                                "ORDER BY rowid", [report.run_id]).fetchall())
        sent.append([(r.key, r.operation, r.payload, r.payload_hash) for r in dest.sent])
    assert reports[0] == reports[1] and logs[0] == logs[1] and sent[0] == sent[1]
    assert reports[0][0] == {"processed": 8, "added": 2, "changed": 0, "removed": 0, "rejected": 6}
    assert [e for e in logs[0] if e[2] == "rejected"] == [
        ("", "add", "rejected", "missing primary key 'customer_id'"),
        ("", "add", "rejected", "missing primary key 'customer_id'"),
        ("c2", "change", "rejected", "duplicate primary key (2 rows)"),
        ("c2", "change", "rejected", "duplicate primary key (2 rows)"),
        ("c9", "add", "rejected", "duplicate primary key (2 rows)"),
        ("c9", "add", "rejected", "duplicate primary key (2 rows)")]


def test_polars_missing_mapped_field_rejects_every_row(con):
    dest = Recorder()
    report = sync(con, pl.DataFrame(customers(3)), dest, fields=["email", "nope"], max_rejected_share=1.0)
    assert (report.processed, report.rejected, dest.calls) == (3, 3, [])
    assert report.rejected_rows == [(f"c{i}", "missing mapped fields ['nope']") for i in (1, 2, 3)]


def test_arrow_table_and_int_keys_and_key_as_mapped_field(con):
    table = pa.table({"id": [3, 1, 2], "email": ["a@x", "b@x", "c@x"]})
    dest = Recorder()
    report = run_sync(con, "arrow", table, "id", {"id": "email", "email": "email"}, dest)
    assert report.added == 3
    # {primary_key: raw, **mapped}: the mapped field named like the key wins, in the key's place
    assert [(r.key, r.payload) for r in dest.sent] == [
        ("3", {"id": "a@x", "email": "a@x"}), ("1", {"id": "b@x", "email": "b@x"}),
        ("2", {"id": "c@x", "email": "c@x"})]
    assert run_sync(con, "arrow", table, "id", {"id": "email", "email": "email"}, dest).processed == 0


def test_dry_run_on_the_fast_path_writes_nothing(con, tmp_path):
    dest = Recorder()
    sync(con, frame_of(10), dest, fields=FRAME_FIELDS)
    con.execute("UPDATE activations.sync_state SET fingerprint = NULL")
    before = full_state(con)
    changed = frame_of(10).with_columns(orders=pl.when(pl.col("orders") == 1).then(50).otherwise(pl.col("orders")))
    dry = sync(con, changed, dest, fields=FRAME_FIELDS, dry_run=True, dry_run_path=tmp_path / "d.jsonl")
    assert dry.counts()["changed"] == 1 and full_state(con) == before  # no refresh in a dry run
    real = sync(con, changed, dest, fields=FRAME_FIELDS)
    assert real.counts() == dry.counts()


@pytest.mark.parametrize("seed", range(25))
def test_frame_path_matches_the_records_path(seed):
    """Random audiences (duplicates, missing keys, -0.0, NaN, nulls, dtype changes), every mode, gate,
    dry run, full resync and failing rows: polars and lists of dicts log, send and keep the same."""
    rng = random.Random(seed)

    def make(n):
        keys = [rng.choice([f"k{rng.randrange(n + 5)}", None, ""]) if rng.random() < 0.1 else f"k{i}"
                for i in range(n)]
        return pl.DataFrame({
            "id": pl.Series(keys, dtype=pl.String),
            "email": pl.Series([rng.choice(["a@x", "é@x", None, 'q"']) for _ in range(n)], dtype=pl.String),
            "score": pl.Series([rng.choice([1.0, -0.0, 0.0, None, float("nan")]) for _ in range(n)], dtype=pl.Float64),
            "n": pl.Series([rng.choice([1, 2, None]) for _ in range(n)], dtype=pl.Int64),
            "d": pl.Series([rng.choice([dt.date(2025, 1, 1), None]) for _ in range(n)], dtype=pl.Date),
        })

    class Gate:
        def __call__(self, keys):
            from types import SimpleNamespace
            return [SimpleNamespace(action="drop", reasons=["opt-out"], send_at=None) if k.endswith("3")
                    else SimpleNamespace(action="send", reasons=[], send_at=None) for k in keys]

    def outcome(con, audience, mode, fields, bad, **kw):
        dest = Recorder(batch_size=7, bad=bad)
        try:
            report = run_sync(con, "s", audience, "id", fields, dest, mode=mode, max_rejected_share=1.0,
                              sleep=lambda s: None, **kw)
        except SyncFailed as exc:  # pragma: no cover - max_rejected_share=1.0
            report = exc.report
        log = con.execute("SELECT key, operation, status, message, payload_hash, idempotency_key "
                          "FROM activations.sync_log WHERE run_id = ? ORDER BY rowid", [report.run_id]).fetchall()
        return repr((report.counts(), report.rejected_rows, report.suppressed, log, sorted(state(con, "s").items()),
                     [(r.key, r.operation, r.payload, r.payload_hash, r.idempotency_key) for r in dest.sent]))

    frame = make(rng.randrange(0, 40))
    fields = rng.choice([["email", "score"], ["email", "score", "n", "d"], {"mail": "email", "id": "n"}, []])
    with duckdb.connect() as fast, duckdb.connect() as slow:
        for step in range(5):
            mode = rng.choice(["upsert", "insert", "mirror"])
            kw = {"full_resync": rng.random() < 0.15, "dry_run": rng.random() < 0.15}
            if rng.random() < 0.2:
                kw["gate"] = Gate()
            bad = {f"k{rng.randrange(40)}" for _ in range(2)} if rng.random() < 0.3 else set()
            if step and rng.random() < 0.2:
                fast.execute("UPDATE activations.sync_state SET fingerprint_tag = 'other'")
            records = frame.to_dicts()
            assert outcome(fast, frame, mode, fields, bad, **kw) == outcome(slow, records, mode, fields, bad, **kw)
            rows = frame.to_dicts()
            for row in rows:
                if rng.random() < 0.2:
                    row["score"] = rng.choice([1.0, -0.0, 0.0, None])
            rng.shuffle(rows)
            rows = rows[: int(len(rows) * rng.uniform(0.7, 1.0))] + [
                {"id": f"new{rng.randrange(50)}", "email": "z", "score": 1.0, "n": 1, "d": None}]
            frame = pl.DataFrame(rows, schema=frame.schema)
            if rng.random() < 0.2:
                frame = frame.with_columns(pl.col("n").cast(pl.Float64))


def test_frame_payload_hashes_equal_payload_hash_for_every_dtype():
    frame = pl.DataFrame({
        "s": ["plain", 'quo"te', "back\\slash", "é 日本", "\x00\n", "\x7f", "", None, "🎉", "a]b["],
        "i": [0, -1, 2**62, None, 5, 6, 7, 8, 9, 10],
        "u": pl.Series([0, 2**64 - 1, None, 3, 4, 5, 6, 7, 8, 9], dtype=pl.UInt64),
        "f": [0.0, -0.0, 1e16, 1e-5, float("nan"), float("inf"), float("-inf"), None, 0.1, 123456789.125],
        "f32": pl.Series([0.1, 1.5, None, -0.0, 3.0, 1e30, 2.5, 1.0, 0.0, 7.0], dtype=pl.Float32),
        "b": [True, False, None, True, True, False, False, True, None, True],
        "d": [dt.date(1, 1, 1), dt.date(999, 12, 31), dt.date(2025, 1, 1), None, dt.date(9999, 12, 31)] * 2,
        "ts": [dt.datetime(2026, 3, 1, 4), dt.datetime(2026, 3, 1, 4, 0, 0, 5), None, dt.datetime(1, 1, 1),
               dt.datetime(1969, 12, 31, 23, 59, 59, 999999)] * 2,
        "ms": pl.Series([dt.datetime(2026, 3, 1, 4, 0, 0, 123000)] * 10, dtype=pl.Datetime("ms")),
        "ns": pl.Series([dt.datetime(2026, 3, 1, 4, 0, 0, 123456)] * 10, dtype=pl.Datetime("ns")),
        "tz": pl.Series([dt.datetime(2026, 3, 1, 4)] * 10).dt.replace_time_zone("Europe/Paris"),
        "dec": pl.Series([Decimal("1.50"), None] * 5, dtype=pl.Decimal(10, 2)),
        "cat": pl.Series(["gold", "silver", None, "é"] * 2 + ["x", "y"], dtype=pl.Categorical),
        "enum": pl.Series(["a", "b"] * 5, dtype=pl.Enum(["a", "b"])),
        "lst": [[1, 2], None, [], [3], [4], [5], [6], [7], [8], [9]],
        "st": [{"x": 1, "y": "é"}] * 10,
        "t": [dt.time(1, 2, 3), dt.time(4, 5, 6, 7)] * 5,
        "dur": [dt.timedelta(days=1, seconds=3)] * 10,
        "bin": [b"ab\x00"] * 10,
        "nul": pl.Series([None] * 10, dtype=pl.Null),
    })
    fields = {c: c for c in frame.columns} | {"zz é": "s"}
    assert frame_payload_hashes(frame, fields) == [payload_hash({d: row[s] for d, s in fields.items()})
                                                   for row in frame.to_dicts()]
    for column in frame.columns:
        expected = [payload_hash({column: value}) for value in frame[column].to_list()]
        assert frame_payload_hashes(frame, {column: column}) == expected
    assert engine._fingerprints(frame.drop("lst", "st"), {c: c for c in frame.columns if c not in ("lst", "st")}) \
        is not None
    assert engine._fingerprints(frame, fields) is None  # nested values: every row takes the canonical path


def test_run_leaves_gc_and_checkpoint_threshold_as_it_found_them(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as db:
        threshold = db.execute("SELECT current_setting('checkpoint_threshold')").fetchone()
        sync(db, frame_of(50), Recorder(batch_size=10), fields=FRAME_FIELDS)
        assert db.execute("SELECT current_setting('checkpoint_threshold')").fetchone() == threshold
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_existing_ledger_gains_the_fingerprint_columns(tmp_path):
    path = str(tmp_path / "old.duckdb")
    with duckdb.connect(path) as old:
        old.execute("CREATE SCHEMA activations")
        old.execute("CREATE TABLE activations.sync_state (sync_name VARCHAR NOT NULL, key VARCHAR NOT NULL, "
                    "payload_hash VARCHAR NOT NULL, synced_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (sync_name, key))")
        old.execute("INSERT INTO activations.sync_state VALUES ('crm', 'c1', ?, now())",
                    [payload_hash({"email": "c1@example.com", "tier": "gold"})])
    with duckdb.connect(path) as db:
        dest = Recorder()
        report = sync(db, pl.DataFrame(customers(2)), dest)
        assert (report.added, report.changed) == (1, 0) and [r.key for r in dest.sent] == ["c2"]
        assert all(fp is not None for _, fp, _ in full_state(db).values())
