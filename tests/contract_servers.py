"""Loopback stand-ins for the vendors, enforcing each one's documented contract (/work/shared/CONTRACTS.md).

One small configurable server class per vendor. Each runs a ``ThreadingHTTPServer`` on 127.0.0.1 with an
ephemeral port in a daemon thread (use it as a context manager), answers like the vendor (status codes,
body shapes, rate-limit headers) and records what it accepted so tests can assert on it:

- ``calls``: every request as ``Call(method, path, status, body, headers)`` (in arrival order);
- vendor-specific records of what was *delivered* (``users``, ``people``, ``delivered``, ``sent``, ...).

Common knobs: ``fail_next(n, status=503)`` injects 5xx answers; ``rate_limit``/``window`` make a small
per-window request limit (429 beyond it); ``clock`` (epoch seconds) makes rate-limit resets exact.

Shared with the other loopback servers and destination tests: ``LoopbackHTTPServer`` (the threaded
JSON server all of them build on), ``duckdb_con`` (a fixture) and ``env_fixture`` (credentials fixtures).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import duckdb
import pytest


class Headers(dict):
    """Request headers with case-insensitive lookup (urllib sends "X-secret-key" style names)."""

    def __init__(self, items=()):
        super().__init__((k.lower(), v) for k, v in items)

    def __getitem__(self, key):
        return super().__getitem__(key.lower())

    def get(self, key, default=None):  # type: ignore[override]
        return super().get(key.lower(), default)

    def __contains__(self, key):
        return super().__contains__(str(key).lower())


@dataclass
class Call:
    method: str
    path: str
    status: int
    body: Any
    headers: dict = field(default_factory=dict)


class LoopbackHTTPServer:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 (ephemeral port, ``origin``) in a daemon thread; use it
    as a context manager. Every request (GET/POST/PUT/DELETE) is answered by
    ``respond(method, path, headers, raw) -> (status, body, extra headers)``, called under ``lock``;
    ``body`` goes out as JSON (no body for ``None``)."""

    def __init__(self):
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                with owner.lock:
                    status, body, headers = owner.respond(self.command, self.path, self.headers, raw)
                data = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, str(value))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_DELETE = do_PUT = do_GET = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def respond(self, method, path, headers, raw):  # pragma: no cover - abstract
        raise NotImplementedError

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class ContractServer(LoopbackHTTPServer):
    """Base class: request log, injected 5xx and a fixed-window rate limiter."""

    def __init__(self, rate_limit: int | None = None, window: float = 1.0,
                 clock: Callable[[], float] = time.time):
        super().__init__()
        self.rate_limit = rate_limit
        self.window = window
        self.clock = clock
        self.calls: list[Call] = []
        self._fail: list[int | None] = []
        self._window_start: float | None = None
        self._window_count = 0
        self.base_url = self.origin

    # -- knobs ---------------------------------------------------------------------------------
    def fail_next(self, n: int = 1, status: int = 503, after: int = 0) -> "ContractServer":
        """The next ``n`` requests (after letting ``after`` requests through) answer ``status``."""
        self._fail.extend([None] * after + [status] * n)
        return self

    def statuses(self, path_part: str = "") -> list[int]:
        return [c.status for c in self.calls if path_part in c.path]

    # -- plumbing ------------------------------------------------------------------------------
    def _rate_check(self) -> tuple[bool, int, float]:
        """(allowed, remaining, reset epoch) for a fixed window starting at the first request."""
        now = self.clock()
        if self._window_start is None or now >= self._window_start + self.window:
            self._window_start, self._window_count = now, 0
        reset = self._window_start + self.window
        if self.rate_limit is None:
            return True, 1_000_000, reset
        if self._window_count >= self.rate_limit:
            return False, 0, reset
        self._window_count += 1
        return True, self.rate_limit - self._window_count, reset

    def respond(self, method, path, headers, raw):
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except ValueError:
            body = None
        status, answer, extra = self.handle(method, path, headers, raw, body)
        self.calls.append(Call(method, path, status, body, Headers(headers.items())))
        return status, answer, extra

    def injected_failure(self):
        if self._fail:
            status = self._fail.pop(0)
            if status is not None:
                return status, {"message": "injected server error"}, {}
        return None

    def handle(self, method, path, headers, raw, body):  # pragma: no cover - abstract
        raise NotImplementedError


# ----------------------------------------------------------------------------------------------
# Braze
# ----------------------------------------------------------------------------------------------

BRAZE_IDENTIFIERS = ("external_id", "user_alias", "braze_id", "email", "phone")


class BrazeServer(ContractServer):
    """Braze REST: ``POST /users/track`` and ``POST /users/delete``.

    Enforces: ``Authorization: Bearer <key>`` (401); at most 75 attributes / events / purchases per
    request (400 "Max Input Length Exceeded"); an identifier on every object (a minor error with the
    object's ``index`` in a 201 answer, the rest goes through); events need ``name`` and ``time``;
    ``/users/delete`` takes at most 50 ``external_ids``; a small configurable rate limit (429);
    ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (epoch seconds) on every answer; injectable 5xx.
    Records ``users`` (external_id -> merged attributes; null removes an attribute), ``events`` and
    ``deleted``.
    """

    MAX_PER_KIND = 75
    MAX_DELETE = 50

    def __init__(self, api_key: str, rate_limit: int | None = None, window: float = 3.0, **kw):
        super().__init__(rate_limit=rate_limit, window=window, **kw)
        self.api_key = api_key
        self.users: dict[str, dict] = {}
        self.events: list[dict] = []
        self.deleted: list[str] = []

    def handle(self, method, path, headers, raw, body):
        allowed, remaining, reset = self._rate_check()
        limit = self.rate_limit if self.rate_limit is not None else 1_000_000
        rate_headers = {"X-RateLimit-Limit": limit, "X-RateLimit-Remaining": remaining,
                        "X-RateLimit-Reset": int(reset)}
        if headers.get("Authorization", "") != f"Bearer {self.api_key}":
            return 401, {"message": "Invalid API key"}, rate_headers
        if not allowed:
            return 429, {"message": "Too Many Requests"}, rate_headers
        failure = self.injected_failure()
        if failure:
            return failure[0], failure[1], rate_headers
        if not isinstance(body, dict):
            return 400, {"message": "Invalid JSON"}, rate_headers
        if path == "/users/delete":
            ids = body.get("external_ids") or []
            if len(ids) > self.MAX_DELETE:
                return 400, {"message": "Max Input Length Exceeded"}, rate_headers
            for external_id in ids:
                self.users.pop(external_id, None)
                self.deleted.append(external_id)
            return 202, {"deleted": len(ids), "message": "success"}, rate_headers
        if path != "/users/track":
            return 404, {"message": "Not Found"}, rate_headers
        kinds = {k: body.get(k) or [] for k in ("attributes", "events", "purchases")}
        if any(len(v) > self.MAX_PER_KIND for v in kinds.values()):
            return 400, {"message": "Max Input Length Exceeded"}, rate_headers
        errors = []
        for index, obj in enumerate(kinds["attributes"]):
            if not any(obj.get(k) for k in BRAZE_IDENTIFIERS):
                errors.append({"type": "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required",
                               "input_array": "attributes", "index": index})
                continue
            user = self.users.setdefault(str(obj.get("external_id") or obj.get("email") or obj.get("phone")), {})
            for key, value in obj.items():
                if key in BRAZE_IDENTIFIERS:
                    continue
                if value is None:
                    user.pop(key, None)
                else:
                    user[key] = value
        for index, obj in enumerate(kinds["events"]):
            if not any(obj.get(k) for k in BRAZE_IDENTIFIERS):
                errors.append({"type": "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required",
                               "input_array": "events", "index": index})
            elif not obj.get("name") or not obj.get("time"):
                errors.append({"type": "'name' and 'time' are required", "input_array": "events", "index": index})
            else:
                self.events.append(obj)
        answer = {"message": "success"}
        for kind in ("attributes", "events"):
            if kinds[kind]:
                answer[f"{kind}_processed"] = len(kinds[kind]) - sum(e["input_array"] == kind for e in errors)
        if errors:
            answer["errors"] = errors
        return 201, answer, rate_headers


# ----------------------------------------------------------------------------------------------
# Customer.io Track API v2
# ----------------------------------------------------------------------------------------------


class CustomerIoServer(ContractServer):
    """Customer.io Track API v2: ``POST /api/v2/batch``.

    Enforces: HTTP Basic ``site_id:api_key`` (a Bearer token or wrong pair -> 401); the request must be
    under 500 KB (413 ``{"meta": {"error": ...}}``); about 100 requests/s (429 beyond, configurable);
    each entry ``type: person`` with ``identifiers`` and an ``action`` of identify / event / delete
    (an event needs ``name``); a bad entry gives 207 with ``errors[{batch_index, reason, field,
    message}]`` while the rest is applied. Records ``people`` (id -> attributes), ``events``, ``deleted``.
    """

    def __init__(self, site_id: str, api_key: str, rate_limit: int | None = 100, window: float = 1.0,
                 max_bytes: int = 500 * 1024, **kw):
        super().__init__(rate_limit=rate_limit, window=window, **kw)
        self.site_id = site_id
        self.api_key = api_key
        self.max_bytes = max_bytes
        self.people: dict[str, dict] = {}
        self.events: list[dict] = []
        self.deleted: list[str] = []
        self.request_sizes: list[int] = []

    def handle(self, method, path, headers, raw, body):
        expected = "Basic " + base64.b64encode(f"{self.site_id}:{self.api_key}".encode()).decode()
        if headers.get("Authorization", "") != expected:
            return 401, {"meta": {"error": "Unauthorized request"}}, {}
        allowed, _remaining, _reset = self._rate_check()
        if not allowed:
            return 429, {"meta": {"error": "Too Many Requests"}}, {}
        failure = self.injected_failure()
        if failure:
            return failure
        if len(raw) >= self.max_bytes:
            return 413, {"meta": {"error": f"request body is {len(raw)} bytes; must be smaller than 500kb"}}, {}
        if path != "/api/v2/batch":
            return 404, {"meta": {"error": "not found"}}, {}
        if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
            return 400, {"meta": {"error": "batch must be an array"}}, {}
        self.request_sizes.append(len(raw))
        errors = []
        for index, entry in enumerate(body["batch"]):
            ids = entry.get("identifiers") or {}
            person = ids.get("id") or ids.get("email") or ids.get("cio_id")
            action = entry.get("action")
            if entry.get("type") != "person" or not person:
                errors.append({"batch_index": index, "reason": "required", "field": "identifiers",
                               "message": "identifiers must contain id, email or cio_id"})
            elif action == "identify":
                self.people.setdefault(str(person), {}).update(entry.get("attributes") or {})
            elif action == "event":
                if not entry.get("name"):
                    errors.append({"batch_index": index, "reason": "required", "field": "name",
                                   "message": "event name must not be blank"})
                else:
                    self.events.append(entry)
            elif action == "delete":
                self.people.pop(str(person), None)
                self.deleted.append(str(person))
            else:
                errors.append({"batch_index": index, "reason": "invalid", "field": "action",
                               "message": f"unsupported action {action!r}"})
        if errors:
            return 207, {"errors": errors}, {}
        return 200, {}, {}


# ----------------------------------------------------------------------------------------------
# NHN Cloud (KakaoTalk Bizmessage Alimtalk v2.3, SMS v3.0)
# ----------------------------------------------------------------------------------------------

def _header(ok: bool, code: int = 0, message: str = "success") -> dict:
    return {"isSuccessful": ok, "resultCode": code, "resultMessage": message}


def _refuse(code, message, status=200):
    """An NHN request-level refusal (``header.isSuccessful`` false)."""
    return status, {"header": _header(False, code, message)}, {}


def cp949_len(text: str) -> int | None:
    try:
        return len(text.encode("cp949"))
    except UnicodeEncodeError:
        return None


_KR_MOBILE = re.compile(r"^01[016789]\d{7,8}$")

# Result codes used by these stand-ins (NHN documents the shape, not these particular numbers).
NHN_AUTH_FAILED = -1001
NHN_INVALID_PARAMETER = -1002
NHN_DUPLICATE_REQUEST = -1020
NHN_TEMPLATE_NOT_FOUND = -1030
NHN_TEMPLATE_PROMOTIONAL = -1031
NHN_MISSING_TEMPLATE_PARAMETER = -1032
NHN_NOT_KAKAO_USER = -3001
NHN_UNREGISTERED_SEND_NO = -2010
NHN_INVALID_RECIPIENT = -2020
NHN_BYTE_LIMIT = -2030
NHN_AD_MARKING = -2040
NHN_RECIPIENT_REFUSED = -2050


class AlimtalkServer(ContractServer):
    """NHN Cloud KakaoTalk Bizmessage: ``POST /alimtalk/v2.3/appkeys/{appkey}/messages``.

    Enforces: the appkey in the path and ``X-Secret-Key`` (401); ``X-NC-API-IDEMPOTENCY-KEY`` repeated
    within 10 minutes -> refused (``header.isSuccessful`` false, resultCode ``NHN_DUPLICATE_REQUEST``);
    ``senderKey`` of 40 characters and the configured one; ``templateCode`` <= 20 characters and
    registered (``templates``: code -> {"content": text with #{var}, "promotional": bool}); a
    promotional template is refused (Alimtalk carries information only); <= 1,000 recipients; per
    recipient: a Korean mobile number and every ``#{var}`` filled (else that recipient's resultCode
    is an error). Numbers in ``non_kakao_users`` are "not a KakaoTalk user": with a
    ``resendParameter`` the SMS/LMS fallback is recorded in ``fallbacks`` (bytes checked in CP949, the
    resend sender number must be registered) and the recipient succeeds; without one it fails.
    Records ``delivered`` (one entry per Kakao message) and ``fallbacks``. ``lose_responses = n``
    processes the next n accepted requests and answers 504, as when the answer is lost on the way.
    """

    IDEMPOTENCY_HEADER = "X-NC-API-IDEMPOTENCY-KEY"
    IDEMPOTENCY_WINDOW = 600.0

    def __init__(self, appkey: str, secret_key: str, sender_key: str, templates: dict,
                 non_kakao_users=(), registered_send_nos=("0215440000",), **kw):
        super().__init__(**kw)
        self.appkey = appkey
        self.secret_key = secret_key
        self.sender_key = sender_key
        self.templates = templates
        self.non_kakao_users = set(non_kakao_users)
        self.registered_send_nos = set(registered_send_nos)
        self.seen_keys: dict[str, float] = {}
        self.delivered: list[dict] = []
        self.fallbacks: list[dict] = []
        self.lose_responses = 0  # process the request, then answer 504 (the answer is "lost")

    def handle(self, method, path, headers, raw, body):
        status, answer, extra = self._handle(method, path, headers, raw, body)
        if status == 200 and answer.get("header", {}).get("isSuccessful") and self.lose_responses:
            self.lose_responses -= 1
            return 504, {"header": _header(False, -9999, "gateway timeout")}, {}
        return status, answer, extra

    def _handle(self, method, path, headers, raw, body):
        match = re.fullmatch(r"/alimtalk/v2\.3/appkeys/([^/]+)/messages", path)
        if not match:
            return 404, {"header": _header(False, -1, "not found")}, {}
        if match.group(1) != self.appkey or headers.get("X-Secret-Key") != self.secret_key:
            return _refuse(NHN_AUTH_FAILED, "Invalid appkey or secret key", status=401)
        failure = self.injected_failure()
        if failure:
            return failure[0], {"header": _header(False, -9999, "internal server error")}, {}
        key = headers.get(self.IDEMPOTENCY_HEADER)
        now = self.clock()
        if key:
            seen = self.seen_keys.get(key)
            if seen is not None and now - seen < self.IDEMPOTENCY_WINDOW:
                return _refuse(NHN_DUPLICATE_REQUEST, "Duplicate request: idempotency key already used")
            self.seen_keys[key] = now
        if not isinstance(body, dict):
            return _refuse(NHN_INVALID_PARAMETER, "invalid JSON body")
        sender_key = body.get("senderKey") or ""
        if len(sender_key) != 40 or sender_key != self.sender_key:
            return _refuse(NHN_INVALID_PARAMETER, "senderKey must be the registered 40-character sender key")
        code = body.get("templateCode") or ""
        if len(code) > 20:
            return _refuse(NHN_INVALID_PARAMETER, "templateCode is longer than 20 characters")
        template = self.templates.get(code)
        if template is None:
            return _refuse(NHN_TEMPLATE_NOT_FOUND, f"template {code!r} is not registered")
        if template.get("promotional"):
            return _refuse(NHN_TEMPLATE_PROMOTIONAL,
                           "template has promotional content; Alimtalk carries information only")
        recipients = body.get("recipientList") or []
        if not recipients or len(recipients) > 1000:
            return _refuse(NHN_INVALID_PARAMETER, "recipientList must hold 1 to 1,000 recipients")
        variables = re.findall(r"#\{([^}]+)\}", template["content"])
        results = []
        for seq, recipient in enumerate(recipients, start=1):
            number = str(recipient.get("recipientNo") or "")
            params = recipient.get("templateParameter") or {}
            result = {"recipientSeq": seq, "recipientNo": number,
                      "recipientGroupingKey": recipient.get("recipientGroupingKey")}
            missing = [v for v in variables if v not in params]
            if not _KR_MOBILE.match(number):
                result.update(resultCode=NHN_INVALID_PARAMETER, resultMessage="invalid recipientNo")
            elif missing:
                result.update(resultCode=NHN_MISSING_TEMPLATE_PARAMETER,
                              resultMessage=f"missing template parameter {', '.join('#{' + m + '}' for m in missing)}")
            elif number in self.non_kakao_users:
                result.update(self._fallback(number, recipient.get("resendParameter") or {}))
            else:
                content = template["content"]
                for name, value in params.items():
                    content = content.replace("#{" + name + "}", str(value))
                self.delivered.append({"recipientNo": number, "templateCode": code, "content": content,
                                       "idempotency_key": key})
                result.update(resultCode=0, resultMessage="success")
            results.append(result)
        return 200, {"header": _header(True), "message": {
            "requestId": f"req-{len(self.calls) + 1}", "senderGroupingKey": body.get("senderGroupingKey"),
            "sendResults": results}}, {}

    def _fallback(self, number: str, resend: dict) -> dict:
        if not resend.get("isResend"):
            return {"resultCode": NHN_NOT_KAKAO_USER, "resultMessage": "not a KakaoTalk user; no resend requested"}
        kind = resend.get("resendType")
        content = resend.get("resendContent") or ""
        size = cp949_len(content)
        limit = {"SMS": 90, "LMS": 2000}.get(kind)
        if limit is None or size is None or size > limit:
            return {"resultCode": NHN_BYTE_LIMIT,
                    "resultMessage": f"resendContent does not fit a {kind} (EUC-KR bytes: {size})"}
        if resend.get("resendSendNo") not in self.registered_send_nos:
            return {"resultCode": NHN_UNREGISTERED_SEND_NO, "resultMessage": "resendSendNo is not registered"}
        self.fallbacks.append({"recipientNo": number, "type": kind, "content": content,
                               "title": resend.get("resendTitle"), "sendNo": resend.get("resendSendNo")})
        return {"resultCode": 0,
                "resultMessage": f"not a KakaoTalk user; resent as {kind} (resendStatus: success)"}


class SmsServer(ContractServer):
    """NHN Cloud SMS v3.0: ``POST /sms/v3.0/appKeys/{appKey}/sender/{sms|mms|ad-sms|ad-mms}``.

    Enforces: appKey and ``X-Secret-Key`` (401); ``sendNo`` pre-registered (``header.isSuccessful``
    false, ``NHN_UNREGISTERED_SEND_NO``); sizes in EUC-KR (CP949) bytes: SMS body <= 90, MMS/LMS body
    <= 2,000 and title <= 40, characters EUC-KR cannot encode refused; ad endpoints: body starts with
    "(광고)" and carries the "무료수신거부" opt-out line; <= 1,000 recipients; per recipient a Korean
    mobile number, and numbers in ``refused_numbers`` (opted out at the carrier's 080 service) fail
    with their own resultCode. Answers ``body.data.sendResultList``. Records ``sent`` (one entry per
    recipient message: endpoint, recipientNo, body, title).
    """

    ENDPOINTS = ("sms", "mms", "ad-sms", "ad-mms")

    def __init__(self, appkey: str, secret_key: str, registered_send_nos=("0215440000",),
                 refused_numbers=(), **kw):
        super().__init__(**kw)
        self.appkey = appkey
        self.secret_key = secret_key
        self.registered_send_nos = set(registered_send_nos)
        self.refused_numbers = set(refused_numbers)
        self.sent: list[dict] = []

    def handle(self, method, path, headers, raw, body):
        match = re.fullmatch(r"/sms/v3\.0/appKeys/([^/]+)/sender/([a-z-]+)", path)
        if not match or match.group(2) not in self.ENDPOINTS:
            return 404, {"header": _header(False, -1, "not found")}, {}
        if match.group(1) != self.appkey or headers.get("X-Secret-Key") != self.secret_key:
            return _refuse(NHN_AUTH_FAILED, "Invalid appKey or secret key", status=401)
        failure = self.injected_failure()
        if failure:
            return failure[0], {"header": _header(False, -9999, "internal server error")}, {}
        endpoint = match.group(2)
        if not isinstance(body, dict):
            return _refuse(NHN_INVALID_PARAMETER, "invalid JSON body")
        if body.get("sendNo") not in self.registered_send_nos:
            return _refuse(NHN_UNREGISTERED_SEND_NO, "Unregistered sending number (sendNo)")
        text = body.get("body") or ""
        title = body.get("title")
        size = cp949_len(text)
        if size is None or (title is not None and cp949_len(title) is None):
            return _refuse(NHN_BYTE_LIMIT, "body contains characters EUC-KR cannot encode")
        is_mms = endpoint.endswith("mms")
        limit = 2000 if is_mms else 90
        if size > limit:
            return _refuse(NHN_BYTE_LIMIT, f"body is {size} bytes; {endpoint} allows {limit}")
        if is_mms and title is not None and cp949_len(title) > 40:
            return _refuse(NHN_BYTE_LIMIT, "title is longer than 40 bytes")
        if endpoint.startswith("ad-") and (not text.startswith("(광고)") or "무료수신거부" not in text):
            return _refuse(NHN_AD_MARKING, 'advertising body must start with "(광고)" and give the 무료수신거부 number')
        recipients = body.get("recipientList") or []
        if not recipients or len(recipients) > 1000:
            return _refuse(NHN_INVALID_PARAMETER, "recipientList must hold 1 to 1,000 recipients")
        results = []
        for seq, recipient in enumerate(recipients, start=1):
            number = str(recipient.get("recipientNo") or "")
            result = {"recipientNo": number, "recipientSeq": seq,
                      "recipientGroupingKey": recipient.get("recipientGroupingKey")}
            if not _KR_MOBILE.match(number):
                result.update(resultCode=NHN_INVALID_RECIPIENT, resultMessage="invalid recipientNo")
            elif number in self.refused_numbers:
                result.update(resultCode=NHN_RECIPIENT_REFUSED, resultMessage="recipient refused (080 opt-out)")
            else:
                self.sent.append({"endpoint": endpoint, "recipientNo": number, "body": text, "title": title})
                result.update(resultCode=0, resultMessage="SUCCESS")
            results.append(result)
        return 200, {"header": _header(True, 0, "SUCCESS"), "body": {"data": {
            "requestId": f"req-{len(self.calls) + 1}", "statusCode": "2",
            "senderGroupingKey": body.get("senderGroupingKey"), "sendResultList": results}}}, {}


# ----------------------------------------------------------------------------------------------
# Test helpers
# ----------------------------------------------------------------------------------------------


class FakeTime:
    """Epoch clock shared by a contract server and a destination; ``sleep`` records and advances it.

    Pass ``sleep=fake.sleep`` to ``run_sync`` so retries wait in fake time (no real sleeping) and the
    recorded waits can be asserted exactly.
    """

    def __init__(self, start: float = 1_700_000_000.0):
        self.now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def ticking_clock(step: float = 1.0) -> Callable[[], float]:
    """A monotonic clock for the engine that moves ``step`` seconds per call, so its request-rate
    throttle never has to wait in tests (the rate limits themselves are enforced by the servers)."""
    state = {"t": 0.0}

    def clock() -> float:
        state["t"] += step
        return state["t"]

    return clock


def sync_log(con, sync_name: str) -> dict[str, tuple[str, str]]:
    """key -> (status, message) of the latest log entry per key."""
    rows = con.execute(
        "SELECT key, status, message FROM activations.sync_log WHERE sync_name = ? ORDER BY logged_at",
        [sync_name]).fetchall()
    return {k: (s, m) for k, s, m in rows}


@pytest.fixture
def duckdb_con():
    """An in-memory DuckDB connection (test modules bind it as ``con = duckdb_con``)."""
    c = duckdb.connect()
    yield c
    c.close()


def env_fixture(**values: str):
    """A fixture that sets the given environment variables (credentials) for one test."""
    @pytest.fixture
    def fixture(monkeypatch):
        for name, value in values.items():
            monkeypatch.setenv(name, value)
    return fixture
