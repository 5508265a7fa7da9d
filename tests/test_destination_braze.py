"""Braze destination through the real sync engine against a loopback Braze (tests/contract_servers.py)."""

from __future__ import annotations

import random

import duckdb
import pytest

from activations.destinations.braze import BrazeDestination
from activations.destinations.http import HttpError, MissingCredential, post_json
from activations.sync import SyncRow, TransientError, run_sync
from contract_servers import BrazeServer, FakeTime, duckdb_con, env_fixture, sync_log, ticking_clock

KEY = "braze-rest-key-for-tests-0123456789"
ENV = "GOLDENTIME_TEST_BRAZE_API_KEY"
FIELDS = {"external_id": "external_id", "attributes": "attributes", "event": "event"}


key = env_fixture(**{ENV: KEY})
con = duckdb_con


def audience(n, tier="gold", event=None):
    return [{"customer_id": f"c{i}", "external_id": f"c{i}", "attributes": {"tier": tier, "ltv": i},
             "event": event} for i in range(1, n + 1)]


def sync(con, rows, dest, fake=None, **kw):
    fake = fake or FakeTime()
    return run_sync(con, "braze_gold", rows, "customer_id", FIELDS, dest, sleep=fake.sleep,
                    clock=ticking_clock(), **kw)


def track_sizes(server):
    return [(c.status, len((c.body or {}).get("attributes", []))) for c in server.calls if c.path == "/users/track"]


def test_160_rows_go_in_75_75_10_and_a_rerun_sends_nothing(con, key):
    with BrazeServer(KEY) as braze:
        report = sync(con, audience(160), BrazeDestination(braze.base_url, ENV))
        assert (report.added, report.rejected, report.requests) == (160, 0, 3)
        assert track_sizes(braze) == [(201, 75), (201, 75), (201, 10)]
        assert braze.users["c7"] == {"tier": "gold", "ltv": 7}
        assert braze.calls[0].body["attributes"][0] == {"external_id": "c1", "tier": "gold", "ltv": 1}
        assert braze.calls[0].headers["Authorization"] == f"Bearer {KEY}"
        again = sync(con, audience(160), BrazeDestination(braze.base_url, ENV))
        assert (again.processed, again.requests) == (0, 0)
        assert len(braze.calls) == 3


def test_batch_size_above_75_is_still_split_per_request(con, key):
    with BrazeServer(KEY) as braze:
        report = sync(con, audience(100), BrazeDestination(braze.base_url, ENV, batch_size=100))
    assert report.added == 100 and track_sizes(braze) == [(201, 75), (201, 25)]


def test_429_waits_until_x_ratelimit_reset(con, key):
    fake = FakeTime()
    with BrazeServer(KEY, rate_limit=2, window=3.0, clock=fake.time) as braze:
        report = sync(con, audience(160), BrazeDestination(braze.base_url, ENV, now=fake.time), fake)
    assert report.added == 160 and report.requests == 4
    assert [s for s, _ in track_sizes(braze)] == [201, 201, 429, 201]
    assert fake.sleeps == [3.0]  # X-RateLimit-Reset (epoch) minus now, exactly


def test_rate_limit_headers_on_every_answer_and_reset_parsing(key):
    fake = FakeTime()
    auth = {"Authorization": f"Bearer {KEY}"}
    with BrazeServer(KEY, rate_limit=1, window=3.0, clock=fake.time) as braze:
        ok = post_json(braze.base_url + "/users/track", {"attributes": [{"external_id": "a"}]}, auth)
        assert ok.status == 201 and ok.json == {"message": "success", "attributes_processed": 1}
        assert (ok.headers["X-RateLimit-Limit"], ok.headers["x-ratelimit-remaining"]) == ("1", "0")
        assert ok.headers["X-RateLimit-Reset"] == str(int(fake.now + 3))
        fake.now += 1.0
        with pytest.raises(TransientError) as info:
            post_json(braze.base_url + "/users/track", {"attributes": []}, auth, now=fake.time)
        assert info.value.retry_after == 2.0 and "HTTP 429" in str(info.value)


def test_5xx_is_retried_with_backoff(con, key):
    fake = FakeTime()
    with BrazeServer(KEY) as braze:
        braze.fail_next(2, status=503)
        report = sync(con, audience(3), BrazeDestination(braze.base_url, ENV), fake, rng=random.Random(1))
    assert report.added == 3 and [s for s, _ in track_sizes(braze)] == [503, 503, 201]
    assert len(fake.sleeps) == 2 and 0.5 <= fake.sleeps[0] <= 1.0 and 1.0 <= fake.sleeps[1] <= 2.0


def test_wrong_key_is_a_clear_401_without_the_secret(con, monkeypatch):
    monkeypatch.setenv(ENV, "wrong-key-" + "x" * 20)
    with BrazeServer(KEY) as braze:
        with pytest.raises(HttpError) as info:
            sync(con, audience(3), BrazeDestination(braze.base_url, ENV))
    assert info.value.status == 401
    assert "HTTP 401" in str(info.value) and "Invalid API key" in str(info.value)
    assert "wrong-key" not in str(info.value) and KEY not in str(info.value)
    assert braze.users == {}
    status = con.execute("SELECT status FROM activations.sync_runs").fetchone()[0]
    assert status == "interrupted"
    monkeypatch.delenv(ENV)
    with pytest.raises(MissingCredential, match=ENV):
        BrazeDestination("http://127.0.0.1:9", ENV).send([SyncRow("c1", "add", {"external_id": "c1"}, "h", "k")])


def test_partial_errors_reject_only_their_rows_mapped_by_index(con, key):
    rows = audience(4)
    rows[0]["event"] = {"name": "viewed", "time": "2024-05-01T00:00:00Z"}
    rows[1]["external_id"] = None            # attributes[1] fails
    rows[2]["external_id"] = None            # attributes[2] and events[1] fail
    rows[2]["event"] = {"name": "viewed", "properties": {"sku": "A"}}
    with BrazeServer(KEY) as braze:
        report = sync(con, rows, BrazeDestination(braze.base_url, ENV), max_rejected_share=0.6)
    assert (report.added, report.rejected, report.requests) == (2, 2, 1)
    log = sync_log(con, "braze_gold")
    assert log["c1"] == ("ok", "") and log["c4"][0] == "ok"
    assert log["c2"][0] == "rejected" and log["c2"][1].startswith("attributes[1]:")
    assert log["c3"][0] == "rejected" and "attributes[2]" in log["c3"][1] and "events[1]" in log["c3"][1]
    assert sorted(braze.users) == ["c1", "c4"]
    assert [e["name"] for e in braze.events] == ["viewed"] and braze.events[0]["external_id"] == "c1"


def test_event_name_marks_added_rows_only(con, key):
    fake = FakeTime()
    with BrazeServer(KEY) as braze:
        sync(con, audience(2), BrazeDestination(braze.base_url, ENV, event_name="entered_gold", now=fake.time), fake)
        sync(con, audience(2, tier="platinum"), BrazeDestination(braze.base_url, ENV, event_name="entered_gold"),
             fake)
    assert [(e["external_id"], e["name"]) for e in braze.events] == [("c1", "entered_gold"), ("c2", "entered_gold")]
    assert braze.events[0]["time"] == "2023-11-14T22:13:20Z"
    assert braze.users["c1"]["tier"] == "platinum"


def test_mirror_removal_clears_attributes_or_deletes(con, key):
    with BrazeServer(KEY) as braze:
        dest = BrazeDestination(braze.base_url, ENV, clear_attributes=["tier", "ltv"])
        sync(con, audience(3), dest, mode="mirror")
        report = sync(con, audience(2), dest, mode="mirror")
        assert report.removed == 1
        assert braze.calls[-1].body == {"attributes": [{"external_id": "c3", "tier": None, "ltv": None}]}
        assert braze.users["c3"] == {} and braze.users["c1"]["tier"] == "gold"

    con2 = duckdb.connect()
    with BrazeServer(KEY) as braze:
        dest = BrazeDestination(braze.base_url, ENV, on_remove="delete")
        sync(con2, audience(3), dest, mode="mirror")
        report = sync(con2, audience(1), dest, mode="mirror")
        assert report.removed == 2 and braze.deleted == ["c2", "c3"]
        assert braze.calls[-1].path == "/users/delete"
        assert braze.calls[-1].body == {"external_ids": ["c2", "c3"]}
    con2.close()
