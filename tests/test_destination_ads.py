"""Meta Custom Audience and Google Customer Match destinations against loopback contract servers."""

from __future__ import annotations

import hashlib
import json
import random
import urllib.error
import urllib.request

import pytest

from activations.destinations import ads
from activations.destinations.ads import (GOOGLE_ADVISED_OPERATIONS_PER_REQUEST, GOOGLE_MAX_IDENTIFIERS_PER_USER,
                                          GOOGLE_MAX_OPERATIONS_PER_REQUEST, META_MAX_USERS_PER_REQUEST,
                                          NO_IDENTIFIER, UNKNOWN_REMOVAL, GoogleCustomerMatchDestination,
                                          MetaCustomAudienceDestination)
from activations.destinations.http import HttpError
from activations.sync import run_sync
try:
    from tests.ads_servers import GoogleServer, MetaServer
    from tests.contract_servers import duckdb_con, env_fixture
except ModuleNotFoundError:  # `pytest` puts tests/ (not the project root) on sys.path
    from ads_servers import GoogleServer, MetaServer
    from contract_servers import duckdb_con, env_fixture

META_ENV, GOOGLE_TOKEN_ENV, GOOGLE_DEV_ENV = "GT_TEST_META_TOKEN", "GT_TEST_GOOGLE_TOKEN", "GT_TEST_GOOGLE_DEV"
META_FIELDS = ["email", "phone", "country", "first_name", "last_name"]
GOOGLE_FIELDS = ["email", "phone", "country"]

# CONTRACTS.md reference cases.
JOHN_EMAIL_META = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
US_PHONE_META = "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


REFERENCE = [
    {"customer_id": "c1", "email": "John_Smith@gmail.com", "phone": "(650)555-1212", "country": "US",
     "first_name": "John", "last_name": "Smith"},
    {"customer_id": "c2", "email": None, "phone": "010-1234-5678", "country": None, "first_name": "민준",
     "last_name": "김"},
    {"customer_id": "c3", "email": "not-an-email", "phone": "call me", "country": None, "first_name": "No",
     "last_name": "Body"},
]
RAW_VALUES = ["John_Smith", "john_smith@gmail.com", "johnsmith@gmail.com", "6505551212", "010-1234-5678",
              "01012345678", "+821012345678", "+16505551212", "Smith", "not-an-email", "call me"]


def customers(n):
    return [{"customer_id": f"c{i}", "email": f"user{i}@example.com", "phone": f"010-5555-{i:04d}", "country": "KR",
             "first_name": "Ji", "last_name": "Park"} for i in range(1, n + 1)]


con = duckdb_con
creds = env_fixture(**{META_ENV: "meta-test-token", GOOGLE_TOKEN_ENV: "google-test-token", GOOGLE_DEV_ENV: "dev-token"})


def meta(server, tmp_path, **kw):
    kw.setdefault("hash_store_path", tmp_path / "hashes.sqlite")
    return MetaCustomAudienceDestination(server.base_url, server.audience_id, META_ENV, **kw)


def google(server, tmp_path, sleeps=None, **kw):
    kw.setdefault("hash_store_path", tmp_path / "hashes.sqlite")
    return GoogleCustomerMatchDestination(server.base_url, "123-456-7890", "987654321", GOOGLE_DEV_ENV,
                                          GOOGLE_TOKEN_ENV, sleep=(sleeps if sleeps is not None else []).append, **kw)


def run(con, audience, dest, sleeps=None, fields=META_FIELDS, name="vip", **kw):
    kw.setdefault("max_rejected_share", 0.5)
    return run_sync(con, name, audience, "customer_id", fields, dest, mode="mirror",
                    sleep=(sleeps if sleeps is not None else []).append, clock=lambda: 0.0,
                    rng=random.Random(7), **kw)


def assert_no_raw(server):
    traffic = server.raw_traffic().decode("utf-8", "replace").lower()
    for raw in RAW_VALUES + ["민준", "김"]:
        assert raw.lower() not in traffic, raw


def bodies(server, method=None, verb=None):
    out = []
    for m, path, _, body in server.requests:
        if (method is None or m == method) and (verb is None or path.endswith(":" + verb)):
            out.append(json.loads(body))
    return out


def test_documented_limits_are_the_defaults():
    assert META_MAX_USERS_PER_REQUEST == 10_000
    assert GOOGLE_MAX_OPERATIONS_PER_REQUEST == 100_000
    assert GOOGLE_ADVISED_OPERATIONS_PER_REQUEST == 10_000
    assert GOOGLE_MAX_IDENTIFIERS_PER_USER == 20
    m = MetaCustomAudienceDestination("https://graph.facebook.com/v21.0", "1", META_ENV, hash_store_path=":memory:")
    g = GoogleCustomerMatchDestination("https://googleads.googleapis.com/v17", "1", "2", GOOGLE_DEV_ENV,
                                       GOOGLE_TOKEN_ENV, hash_store_path=":memory:")
    assert (m.batch_size, m.max_users_per_request) == (10_000, 10_000)
    assert (g.batch_size, g.max_operations_per_request) == (10_000, 10_000)
    assert MetaServer().limit == 10_000 and GoogleServer().limit == 100_000
    with pytest.raises(ValueError):
        MetaCustomAudienceDestination("x", "1", META_ENV, max_users_per_request=10_001, hash_store_path=":memory:")
    with pytest.raises(ValueError):
        GoogleCustomerMatchDestination("x", "1", "2", GOOGLE_DEV_ENV, GOOGLE_TOKEN_ENV,
                                       max_operations_per_request=100_001, hash_store_path=":memory:")


# --- Meta ---------------------------------------------------------------------------------------

def test_meta_exact_hashes_for_the_reference_cases(con, creds, tmp_path):
    with MetaServer() as server:
        report = run(con, REFERENCE, meta(server, tmp_path))
    assert (report.added, report.rejected) == (2, 1)
    assert report.rejected_rows == [("c3", NO_IDENTIFIER)]
    (body,) = bodies(server, "POST")
    assert body["payload"] == {"schema": ["EMAIL", "PHONE", "FN", "LN"], "data": [
        [JOHN_EMAIL_META, US_PHONE_META, sha("john"), sha("smith")],
        ["", sha("821012345678"), sha("민준"), sha("김")]]}
    session = body["session"]
    assert isinstance(session["session_id"], int) and session["batch_seq"] == 1 and session["last_batch_flag"] is True
    assert server.requests[0][2]["authorization"] == "Bearer meta-test-token"
    assert_no_raw(server)


def test_meta_batches_split_at_the_request_limit_in_one_session(con, creds, tmp_path):
    with MetaServer(limit=3) as server:
        report = run(con, customers(8), meta(server, tmp_path, batch_size=7, max_users_per_request=3))
    assert report.added == 8 and report.requests == 2
    assert [(m, s, n) for m, s, n, _ in server.calls] == [("POST", 200, 3), ("POST", 200, 3), ("POST", 200, 1),
                                                          ("POST", 200, 1)]
    sessions = [s for *_, s in server.calls]
    assert len({s["session_id"] for s in sessions}) == 1
    assert [s["batch_seq"] for s in sessions] == [1, 2, 3, 4]
    assert [s["last_batch_flag"] for s in sessions] == [False, False, False, True]  # the engine's short tail
    assert len(server.members) == 8


def test_meta_over_the_limit_is_the_vendor_400_and_bisected(con, creds, tmp_path):
    with MetaServer(limit=3) as server:
        report = run(con, customers(5), meta(server, tmp_path, batch_size=5, max_users_per_request=5))
    assert (report.added, report.rejected) == (5, 0)
    assert [(s, n) for _, s, n, _ in server.calls] == [(400, 5), (200, 2), (200, 3)]
    assert len(server.members) == 5


def test_meta_mirror_removal_deletes_the_stored_hashes(con, creds, tmp_path):
    with MetaServer() as server:
        run(con, customers(3), meta(server, tmp_path))
        report = run(con, customers(2), meta(server, tmp_path))  # c3 left the audience
    assert (report.removed, report.rejected) == (1, 0)
    (delete,) = bodies(server, "DELETE")
    assert delete["payload"]["data"] == [[sha("user3@example.com"), sha("821055550003"), sha("ji"), sha("park")]]
    posts = bodies(server, "POST")
    assert delete["session"]["session_id"] != posts[0]["session"]["session_id"]
    assert {m[0] for m in server.members} == {sha("user1@example.com"), sha("user2@example.com")}
    assert_no_raw(server)


def test_meta_removal_without_stored_hashes_is_rejected(con, creds, tmp_path):
    with MetaServer() as server:
        run(con, customers(2), meta(server, tmp_path, hash_store_path=tmp_path / "a.sqlite"))
        report = run(con, customers(1), meta(server, tmp_path, hash_store_path=tmp_path / "lost.sqlite"),
                     max_rejected_share=1.0)
    assert report.rejected_rows == [("c2", UNKNOWN_REMOVAL)]
    assert bodies(server, "DELETE") == []


def test_meta_throttling_waits_estimated_time_to_regain_access(con, creds, tmp_path):
    sleeps = []
    with MetaServer(throttle=1) as server:
        report = run(con, customers(2), meta(server, tmp_path), sleeps)
    assert report.added == 2 and sleeps == [60.0]
    assert [s for _, s, _, _ in server.calls] == [400, 200]
    assert bodies(server)[0]["session"]["batch_seq"] == bodies(server)[1]["session"]["batch_seq"] == 1


def test_meta_raw_identifier_is_refused_like_the_vendor(con, creds, tmp_path, monkeypatch):
    with MetaServer() as server:
        body = json.dumps({"payload": {"schema": ["EMAIL"], "data": [["john_smith@gmail.com"]]},
                           "session": {"session_id": 1, "batch_seq": 1, "last_batch_flag": True}}).encode()
        status, answer = _post(f"{server.base_url}/{server.audience_id}/users", body,
                               {"Authorization": "Bearer meta-test-token"})
        assert status == 400 and answer["error"]["code"] == 100 and "SHA-256" in answer["error"]["message"]
        # A destination bug that leaked a raw value: the server refuses, bisection isolates the row.
        dest = meta(server, tmp_path)
        original = dest.identifiers
        monkeypatch.setattr(dest, "identifiers", lambda p: {**original(p), "EMAIL": p["email"]}
                            if p.get("customer_id") == "c2" else original(p))
        report = run(con, customers(3), dest)
    assert (report.added, report.rejected) == (2, 1) and report.rejected_rows[0][0] == "c2"
    assert "HTTP 400" in report.rejected_rows[0][1] and "SHA-256" in report.rejected_rows[0][1]
    assert {m[0] for m in server.members} == {sha("user1@example.com"), sha("user3@example.com")}


def test_meta_bad_token_stops_the_run(con, creds, tmp_path, monkeypatch):
    monkeypatch.setenv(META_ENV, "expired-token")
    with MetaServer() as server:
        with pytest.raises(HttpError) as info:
            run(con, customers(2), meta(server, tmp_path))
    assert info.value.status == 400 and "expired-token" not in str(info.value)
    assert len(server.requests) == 1 and server.members == set()


# --- Google -------------------------------------------------------------------------------------

def test_google_job_lifecycle_and_exact_hashes(con, creds, tmp_path):
    audience = [
        {"customer_id": "c1", "email": " John.Smith@Gmail.com ", "phone": "010-1234-5678", "country": None},
        {"customer_id": "c2", "email": None, "phone": "(650)555-1212", "country": "US"},
        {"customer_id": "c3", "email": "not-an-email", "phone": "call me", "country": None},
    ]
    with GoogleServer() as server:
        dest = google(server, tmp_path, login_customer_id="111-222-3333")
        report = run(con, audience, dest, fields=GOOGLE_FIELDS)
    assert (report.added, report.rejected) == (2, 1) and report.rejected_rows == [("c3", NO_IDENTIFIER)]
    assert [c[:2] for c in server.calls] == [("search", 200), ("create", 200), ("addOperations", 200), ("run", 200)]
    (create,) = [json.loads(b) for _, p, _, b in server.requests if p.endswith(":create")]
    assert create["job"]["type"] == "CUSTOMER_MATCH_USER_LIST"
    assert create["job"]["customerMatchUserListMetadata"] == {"userList": "customers/1234567890/userLists/987654321"}
    (add,) = bodies(server, verb="addOperations")
    assert add == {"enablePartialFailure": True, "operations": [
        {"create": {"userIdentifiers": [{"hashedEmail": sha("johnsmith@gmail.com")},
                                        {"hashedPhoneNumber": sha("+821012345678")}]}},
        {"create": {"userIdentifiers": [{"hashedPhoneNumber": sha("+16505551212")}]}}]}
    headers = server.requests[-1][2]
    assert headers["authorization"] == "Bearer google-test-token" and headers["developer-token"] == "dev-token"
    assert headers["login-customer-id"] == "1112223333"
    assert server.members == {sha("johnsmith@gmail.com"), sha("+821012345678"), sha("+16505551212")}
    assert [job["status"] for job in server.jobs.values()] == ["SUCCESS"]
    assert dest.ran_jobs[0][1].startswith("customers/1234567890/operations/")
    assert_no_raw(server)


def test_google_operations_split_at_the_request_limit(con, creds, tmp_path):
    with GoogleServer(limit=3) as server:
        report = run(con, customers(8), google(server, tmp_path, batch_size=7, max_operations_per_request=3),
                     fields=GOOGLE_FIELDS)
    assert report.added == 8
    assert [c for c in server.calls if c[0] == "addOperations"] == [
        ("addOperations", 200, 3), ("addOperations", 200, 3), ("addOperations", 200, 1), ("addOperations", 200, 1)]
    assert len(server.jobs) == 1 and len(server.members) == 16


def test_google_over_the_limit_is_too_many_user_identifiers_and_bisected(con, creds, tmp_path):
    with GoogleServer(limit=3) as server:
        report = run(con, customers(5), google(server, tmp_path, batch_size=5, max_operations_per_request=5),
                     fields=GOOGLE_FIELDS)
    assert (report.added, report.rejected) == (5, 0)
    assert [c[1:] for c in server.calls if c[0] == "addOperations"] == [(400, 5), (200, 2), (200, 3)]
    assert len(server.members) == 10


def test_google_mirror_removal_uses_a_separate_remove_job(con, creds, tmp_path):
    with GoogleServer() as server:
        run(con, customers(3), google(server, tmp_path), fields=GOOGLE_FIELDS)
        report = run(con, customers(2), google(server, tmp_path), fields=GOOGLE_FIELDS)
    assert report.removed == 1
    adds = bodies(server, verb="addOperations")
    assert adds[-1] == {"enablePartialFailure": True, "operations": [{"remove": {"userIdentifiers": [
        {"hashedEmail": sha("user3@example.com")}, {"hashedPhoneNumber": sha("+821055550003")}]}}]}
    assert [j["kind"] for j in server.jobs.values()] == ["create", "remove"]
    assert sha("user3@example.com") not in server.members and sha("user2@example.com") in server.members


def test_google_429_retried_after_the_quota_retry_delay(con, creds, tmp_path):
    sleeps = []
    with GoogleServer(throttle=2) as server:  # the pending-job search and the job creation
        report = run(con, customers(2), google(server, tmp_path), sleeps, fields=GOOGLE_FIELDS)
    assert report.added == 2 and sleeps == [2.0]
    assert [c[:2] for c in server.calls] == [("search", 429), ("create", 429), ("create", 200),
                                             ("addOperations", 200), ("run", 200)]
    assert len(server.members) == 4


def test_google_partial_failure_rejects_only_its_row(con, creds, tmp_path, monkeypatch):
    with GoogleServer() as server:
        dest = google(server, tmp_path)
        original = dest.identifiers
        monkeypatch.setattr(dest, "identifiers", lambda p: {"hashedEmail": p["email"]}
                            if p.get("customer_id") == "c2" else original(p))
        report = run(con, customers(3), dest, fields=GOOGLE_FIELDS)
    assert (report.added, report.rejected) == (2, 1)
    assert report.rejected_rows == [("c2", "offlineUserDataJobError=INVALID_SHA256_FORMAT: "
                                           "The SHA256 encoded value is malformed.")]
    assert sha("user1@example.com") in server.members and "user2@example.com" not in server.members


def test_google_job_left_pending_by_a_killed_run_is_run_next_time(con, creds, tmp_path):
    class Crash(BaseException):
        pass

    class Killed(GoogleCustomerMatchDestination):
        def send(self, rows):
            if rows[0].key == "c3":
                raise Crash()
            return super().send(rows)

    with GoogleServer() as server:
        with pytest.raises(Crash):
            run(con, customers(4), Killed(server.base_url, "1234567890", "987654321", GOOGLE_DEV_ENV,
                                          GOOGLE_TOKEN_ENV, batch_size=2, hash_store_path=tmp_path / "h.sqlite"),
                fields=GOOGLE_FIELDS)
        assert [j["status"] for j in server.jobs.values()] == ["PENDING"] and server.members == set()
        dest = google(server, tmp_path, batch_size=2, hash_store_path=tmp_path / "h.sqlite")
        report = run(con, customers(4), dest, fields=GOOGLE_FIELDS)
    assert report.added == 2  # c1, c2 were acknowledged before the crash; their job runs now
    assert [j["status"] for j in server.jobs.values()] == ["SUCCESS", "SUCCESS"]
    assert len(dest.ran_jobs) == 2
    assert {sha(f"user{i}@example.com") for i in range(1, 5)} <= server.members


def test_google_bad_credentials_stop_the_run(con, creds, tmp_path, monkeypatch):
    monkeypatch.setenv(GOOGLE_DEV_ENV, "not-the-dev-token")
    with GoogleServer() as server:
        with pytest.raises(HttpError) as info:
            run(con, customers(2), google(server, tmp_path, recover_pending_jobs=False), fields=GOOGLE_FIELDS)
    assert info.value.status == 401 and "not-the-dev-token" not in str(info.value)
    assert server.jobs == {}


def test_google_job_creation_refused_stops_the_run(con, creds, tmp_path):
    with GoogleServer(user_list_id="555") as server:  # our user list does not exist there
        with pytest.raises(RuntimeError, match="INVALID_USER_LIST_ID"):
            run(con, customers(4), google(server, tmp_path), fields=GOOGLE_FIELDS)
    assert [c[:2] for c in server.calls] == [("search", 200), ("create", 400)]


def test_google_server_contract_refusals():
    with GoogleServer() as server:
        auth = {"Authorization": "Bearer google-test-token", "developer-token": "dev-token"}
        status, answer = _post(f"{server.base_url}/customers/1234567890/offlineUserDataJobs:create", json.dumps(
            {"job": {"type": "CUSTOMER_MATCH_USER_LIST",
                     "customerMatchUserListMetadata": {"userList": server.user_list}}}).encode(), auth)
        job = answer["resourceName"]
        url = f"{server.base_url}/{job}:addOperations"
        raw = {"operations": [{"create": {"userIdentifiers": [{"hashedEmail": "john_smith@gmail.com"}]}}]}
        status, answer = _post(url, json.dumps(raw).encode(), auth)
        assert status == 400 and _codes(answer) == ["INVALID_SHA256_FORMAT"]
        unknown = {"operations": [{"create": {"userIdentifiers": [{"email": sha("a@b.co")}]}}]}
        status, answer = _post(url, json.dumps(unknown).encode(), auth)
        assert status == 400 and 'Unknown name "email"' in answer["error"]["message"]
        mixed = {"operations": [{"create": {"userIdentifiers": [{"hashedEmail": sha("a@b.co")}]}},
                                {"remove": {"userIdentifiers": [{"hashedEmail": sha("c@d.co")}]}}]}
        status, answer = _post(url, json.dumps(mixed).encode(), auth)
        assert status == 400 and _codes(answer) == ["CONFLICTING_OPERATION"]
        many = {"operations": [{"create": {"userIdentifiers": [{"hashedEmail": sha(f"{i}@b.co")} for i in range(21)]}}]}
        status, answer = _post(url, json.dumps(many).encode(), auth)
        assert status == 400 and _codes(answer) == ["TOO_MANY_USER_IDENTIFIERS"]
        status, answer = _post(url, b'{"operations": []}', {"Authorization": "Bearer google-test-token"})
        assert status == 401 and answer["error"]["status"] == "UNAUTHENTICATED"


def _codes(answer):
    return [v for d in answer["error"]["details"] for e in d["errors"] for v in e["errorCode"].values()]


def _post(url, body, headers):
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_module_exports():
    assert {"MetaCustomAudienceDestination", "GoogleCustomerMatchDestination"} <= set(ads.__all__)
