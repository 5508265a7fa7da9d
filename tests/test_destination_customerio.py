"""Customer.io destination through the real sync engine against a loopback Track API v2."""

from __future__ import annotations

import base64
import random

import pytest

from activations.destinations.customerio import CustomerIoDestination
from activations.destinations.http import HttpError, post_json
from activations.sync import run_sync
from contract_servers import CustomerIoServer, FakeTime, duckdb_con, env_fixture, sync_log, ticking_clock

SITE, API_KEY = "site-0042", "cio-track-key-for-tests-abcdef"
SITE_ENV, KEY_ENV = "GOLDENTIME_TEST_CIO_SITE_ID", "GOLDENTIME_TEST_CIO_API_KEY"
FIELDS = {"id": "id", "attributes": "attributes", "event": "event"}


creds = env_fixture(**{SITE_ENV: SITE, KEY_ENV: API_KEY})
con = duckdb_con


def people(n, plan="pro", event=None, bio=""):
    return [{"customer_id": f"c{i}", "id": f"c{i}", "attributes": {"plan": plan, "bio": bio}, "event": event}
            for i in range(1, n + 1)]


def dest(server, **kw):
    return CustomerIoDestination(server.base_url, SITE_ENV, KEY_ENV, **kw)


def sync(con, rows, destination, fake=None, **kw):
    fake = fake or FakeTime()
    return run_sync(con, "cio_pro", rows, "customer_id", FIELDS, destination, sleep=fake.sleep,
                    clock=ticking_clock(), **kw)


def test_identify_and_event_with_basic_auth_and_a_quiet_rerun(con, creds):
    event = {"name": "plan_changed", "time": "2024-05-01T00:00:00Z", "properties": {"to": "pro"}}
    with CustomerIoServer(SITE, API_KEY) as cio:
        report = sync(con, people(3, event=event), dest(cio))
        assert (report.added, report.rejected, report.requests) == (3, 0, 1)
        call = cio.calls[0]
        assert call.path == "/api/v2/batch"
        assert call.headers["Authorization"] == "Basic " + base64.b64encode(f"{SITE}:{API_KEY}".encode()).decode()
        assert call.body["batch"][:2] == [
            {"type": "person", "identifiers": {"id": "c1"}, "action": "identify",
             "attributes": {"plan": "pro", "bio": ""}},
            {"type": "person", "identifiers": {"id": "c1"}, "action": "event", "name": "plan_changed",
             "timestamp": 1714521600, "attributes": {"to": "pro"}}]
        assert cio.people["c3"] == {"plan": "pro", "bio": ""} and len(cio.events) == 3
        assert sync(con, people(3, event=event), dest(cio)).requests == 0
        assert len(cio.calls) == 1


def test_requests_are_split_under_500_kb_and_an_oversized_row_is_rejected(con, creds):
    rows = people(20, bio="가" * 20_000)  # ~60 KB of UTF-8 per person: 1.2 MB in all
    rows.append({"customer_id": "huge", "id": "huge", "attributes": {"bio": "x" * 600_000}, "event": None})
    with CustomerIoServer(SITE, API_KEY) as cio:
        report = sync(con, rows, dest(cio), max_rejected_share=0.1)
    assert (report.added, report.rejected, report.requests) == (20, 1, 1)
    assert len(cio.request_sizes) == 3 and all(size < 500_000 for size in cio.request_sizes)
    assert sorted(cio.people) == sorted(f"c{i}" for i in range(1, 21))
    status, message = sync_log(con, "cio_pro")["huge"]
    assert status == "rejected" and "under 500000 bytes" in message


def test_server_refuses_500_kb_with_413_and_the_engine_bisects(con, creds):
    with CustomerIoServer(SITE, API_KEY) as cio:
        report = sync(con, people(12, bio="x" * 60_000), dest(cio, max_request_bytes=5_000_000))
    assert report.added == 12
    assert cio.statuses() == [413, 200, 200]  # 12 x 60 KB = 720 KB refused, then 6 + 6


def test_bearer_or_a_wrong_key_is_401_without_the_secret(con, creds, monkeypatch):
    with CustomerIoServer(SITE, API_KEY) as cio:
        with pytest.raises(HttpError) as bearer:
            post_json(cio.base_url + "/api/v2/batch", {"batch": []}, {"Authorization": f"Bearer {API_KEY}"})
        assert bearer.value.status == 401 and API_KEY not in str(bearer.value)
        monkeypatch.setenv(KEY_ENV, "not-the-key-123456")
        with pytest.raises(HttpError) as info:
            sync(con, people(2), dest(cio))
    assert info.value.status == 401 and "Unauthorized request" in str(info.value)
    assert "not-the-key" not in str(info.value) and SITE not in str(info.value)
    assert cio.people == {}


def test_per_entry_errors_207_reject_only_their_rows(con, creds):
    rows = people(3)
    rows[1]["id"] = None                                 # Customer.io: identifiers required (207)
    rows[2]["event"] = {"properties": {"a": 1}}          # no event name: rejected before sending
    with CustomerIoServer(SITE, API_KEY) as cio:
        report = sync(con, rows, dest(cio), max_rejected_share=0.7)
    assert (report.added, report.rejected) == (1, 2)
    assert cio.statuses() == [207]
    log = sync_log(con, "cio_pro")
    assert log["c1"][0] == "ok"
    assert log["c2"] == ("rejected", "identify: identifiers must contain id, email or cio_id (identifiers)")
    assert log["c3"] == ("rejected", "payload 'event' must be a dict with a 'name'")
    assert list(cio.people) == ["c1"]


def test_429_over_the_rate_then_success(con, creds):
    fake = FakeTime()
    with CustomerIoServer(SITE, API_KEY, rate_limit=2, window=1.0, clock=fake.time) as cio:
        report = sync(con, people(3), dest(cio, batch_size=1), fake, rng=random.Random(1))
    assert report.added == 3
    # no Retry-After from Customer.io: exponential backoff with jitter until the 1 s window has passed
    assert cio.statuses() == [200, 200, 429, 429, 200]
    assert len(fake.sleeps) == 2 and 0.5 <= fake.sleeps[0] <= 1.0 and 1.0 <= fake.sleeps[1] <= 2.0


def test_a_retry_does_not_resend_requests_already_delivered(con, creds):
    event = {"name": "upgraded", "time": 1714521600}
    with CustomerIoServer(SITE, API_KEY) as cio:
        cio.fail_next(1, status=503, after=1)            # the second request of the batch fails once
        report = sync(con, people(4, event=event, bio="y" * 200_000), dest(cio), rng=random.Random(2))
    assert report.added == 4 and report.requests == 2   # two engine attempts of the one batch
    assert cio.statuses() == [200, 503, 200]             # the first request was not sent again
    assert sorted(e["identifiers"]["id"] for e in cio.events) == ["c1", "c2", "c3", "c4"]


def test_mirror_removal_deletes_the_person(con, creds):
    with CustomerIoServer(SITE, API_KEY) as cio:
        sync(con, people(3), dest(cio), mode="mirror")
        report = sync(con, people(2), dest(cio), mode="mirror")
    assert report.removed == 1 and cio.deleted == ["c3"]
    assert cio.calls[-1].body == {"batch": [{"type": "person", "identifiers": {"id": "c3"}, "action": "delete"}]}
    assert sorted(cio.people) == ["c1", "c2"]
