"""Webhook destination against a real loopback HTTP server that checks the signature and the limits."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket

import pytest

from activations.destinations import WebhookDestination
from activations.sync import SyncFailed, SyncRow, TransientError, run_sync
from contract_servers import LoopbackHTTPServer, duckdb_con, env_fixture

SECRET = "s3cret-for-tests"
ENV = "GOLDENTIME_TEST_WEBHOOK_SECRET"


class Hook(LoopbackHTTPServer):
    """Loopback webhook: HMAC (401), batch limit (400), 429 + Retry-After on the first call, records."""

    def __init__(self, limit=2, first_429=True, retry_after="2", fail_5xx=0):
        self.limit = limit
        self.first_429 = first_429
        self.retry_after = retry_after
        self.fail_5xx = fail_5xx
        self.calls: list[tuple[int, int]] = []  # (status, rows in body)
        self.received: list[dict] = []
        super().__init__()
        self.url = f"{self.origin}/hook"

    def respond(self, method, path, headers, raw):
        return self.handle(raw, headers)

    def handle(self, body, headers):
        rows = []
        try:
            rows = json.loads(body)["rows"]
        except (ValueError, KeyError):
            pass
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get("X-GoldenTime-Signature", ""), expected):
            self.calls.append((401, len(rows)))
            return 401, {"message": "bad signature"}, None
        if self.first_429 and not self.calls:
            self.calls.append((429, len(rows)))
            return 429, {"message": "slow down"}, {"Retry-After": self.retry_after}
        if self.fail_5xx:
            self.fail_5xx -= 1
            self.calls.append((503, len(rows)))
            return 503, {"message": "unavailable"}, None
        if len(rows) > self.limit:
            self.calls.append((400, len(rows)))
            return 400, {"message": f"Max Input Length Exceeded ({len(rows)} > {self.limit})"}, None
        if any("@" not in str(r["payload"].get("email", "@")) for r in rows):
            self.calls.append((422, len(rows)))
            return 422, {"message": "invalid email in batch"}, None
        errors = [{"key": r["key"], "message": "blocked"} for r in rows if r["payload"].get("tier") == "blocked"]
        self.calls.append((200, len(rows)))
        self.received.extend(r for r in rows if r["payload"].get("tier") != "blocked")
        return 200, {"message": "success", "errors": errors}, None


def customers(n=5):
    return [{"customer_id": f"c{i}", "email": f"c{i}@example.com", "tier": "gold"} for i in range(1, n + 1)]


secret = env_fixture(**{ENV: SECRET})
con = duckdb_con


def run(con, audience, dest, sleeps, **kw):
    return run_sync(con, "hook", audience, "customer_id", ["email", "tier"], dest,
                    sleep=sleeps.append, clock=lambda: 0.0, **kw)


def test_signed_batches_with_429_retry_after(con, secret):
    sleeps = []
    with Hook(limit=2) as hook:
        report = run(con, customers(), WebhookDestination(hook.url, ENV, batch_size=2), sleeps)
    assert (report.added, report.rejected, report.requests) == (5, 0, 4)
    assert sleeps == [2.0]
    assert hook.calls == [(429, 2), (200, 2), (200, 2), (200, 1)]
    assert [r["key"] for r in hook.received] == ["c1", "c2", "c3", "c4", "c5"]
    assert hook.received[0] == {
        "key": "c1", "operation": "add", "payload": {"customer_id": "c1", "email": "c1@example.com", "tier": "gold"},
        "idempotency_key": hook.received[0]["idempotency_key"]}
    assert len(hook.received[0]["idempotency_key"]) == 64
    with Hook(limit=2) as hook2:  # nothing changed: nothing sent
        assert run(con, customers(), WebhookDestination(hook2.url, ENV, batch_size=2), sleeps).processed == 0
    assert hook2.calls == []


def test_wrong_secret_is_401_and_every_row_rejected(con, monkeypatch):
    monkeypatch.setenv(ENV, "wrong")
    with Hook(limit=10, first_429=False) as hook:
        with pytest.raises(SyncFailed) as info:
            run(con, customers(), WebhookDestination(hook.url, ENV, batch_size=10), [])
    assert info.value.report.rejected == 5
    assert hook.calls == [(401, 5)] and hook.received == []
    assert all("HTTP 401" in msg for _, msg in info.value.report.rejected_rows)


def test_over_the_batch_limit_is_400_and_bisected(con, secret):
    with Hook(limit=2, first_429=False) as hook:
        report = run(con, customers(), WebhookDestination(hook.url, ENV, batch_size=5), [])
    assert (report.added, report.rejected) == (5, 0)
    assert hook.calls == [(400, 5), (200, 2), (400, 3), (200, 1), (200, 2)]
    assert sorted(r["key"] for r in hook.received) == ["c1", "c2", "c3", "c4", "c5"]


def test_bad_row_isolated_by_bisection_and_per_row_errors(con, secret):
    audience = customers(4)
    audience[2]["email"] = "not-an-email"   # whole batch refused (422) -> isolated
    audience[3]["tier"] = "blocked"         # 200 with a per-row error
    with Hook(limit=10, first_429=False) as hook:
        report = run(con, audience, WebhookDestination(hook.url, ENV, batch_size=4), [], max_rejected_share=0.5)
    assert (report.added, report.rejected) == (2, 2)
    assert dict(report.rejected_rows) == {"c3": 'HTTP 422: {"message": "invalid email in batch"}', "c4": "blocked"}
    assert [r["key"] for r in hook.received] == ["c1", "c2"]
    log = dict(con.execute("SELECT key, status FROM activations.sync_log").fetchall())
    assert log == {"c1": "ok", "c2": "ok", "c3": "rejected", "c4": "rejected"}


def test_5xx_is_transient_then_succeeds(con, secret):
    sleeps = []
    with Hook(limit=10, first_429=False, fail_5xx=2) as hook:
        import random
        report = run(con, customers(3), WebhookDestination(hook.url, ENV, batch_size=10), sleeps,
                     rng=random.Random(1))
    assert report.added == 3 and [c[0] for c in hook.calls] == [503, 503, 200]
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_connection_refused_is_transient_and_missing_secret_is_an_error(monkeypatch):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    row = SyncRow("c1", "add", {"customer_id": "c1"}, "h", "k")
    monkeypatch.setenv(ENV, SECRET)
    with pytest.raises(TransientError):
        WebhookDestination(f"http://127.0.0.1:{port}/", ENV, timeout=2).send([row])
    monkeypatch.delenv(ENV)
    with pytest.raises(RuntimeError, match=ENV):
        WebhookDestination(f"http://127.0.0.1:{port}/", ENV).send([row])


# --- the shared HTTP plumbing (activations/destinations/http.py) the webhook is built on -------------

def test_retry_after_seconds_http_date_and_rate_limit_reset():
    from email.utils import formatdate

    from activations.destinations.http import retry_after_seconds

    now = 1_700_000_000.0
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    assert retry_after_seconds({"Retry-After": formatdate(now + 30, usegmt=True)}, now=lambda: now) == 30.0
    assert retry_after_seconds({"X-RateLimit-Reset": str(int(now) + 3)}, now=lambda: now) == 3.0
    assert retry_after_seconds({"X-RateLimit-Reset": str(int(now) + 3)}, rate_limit_reset=False) is None
    assert retry_after_seconds({"Retry-After": "soon"}) is None and retry_after_seconds(None) is None


def test_post_json_timeouts_are_transient_and_echoed_secrets_are_scrubbed():
    from activations.destinations.http import HttpError, post_json

    silent = socket.socket()  # accepts connections (backlog) but never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        with pytest.raises(TransientError, match="network error"):
            post_json(f"http://127.0.0.1:{silent.getsockname()[1]}/", {"a": 1}, timeout=0.2)
    finally:
        silent.close()

    class Echo(LoopbackHTTPServer):
        def respond(self, method, path, headers, raw):
            return 403, {"message": f"bad key {headers.get('X-Secret-Key')}"}, None

    with Echo() as server, pytest.raises(HttpError) as info:
        post_json(f"{server.origin}/", {"a": 1}, {"X-Secret-Key": "top-secret-value"}, vendor="Acme")
    assert info.value.status == 403 and str(info.value) == "Acme HTTP 403: bad key ***"
