"""Shared JSON-over-HTTP plumbing for destinations (urllib only, no extra dependencies).

Stable API (other destination modules import it):

``post_json(url, body, headers=None, timeout=30.0, method="POST", *, vendor="", now=time.time)
-> HttpResponse(status, headers, json, text)``
    Sends ``body`` (a JSON-serialisable object, or ``bytes`` already serialised, or ``None`` for no
    body) with ``Content-Type: application/json``. Any 2xx/3xx answer is returned as an
    ``HttpResponse`` (``json`` is the decoded body or ``None``). Errors raise:

    - ``TransientError(message, retry_after=seconds|None)`` for 429, 5xx, time-outs and connection
      errors. ``retry_after`` honours ``Retry-After`` (seconds or HTTP-date) and, failing that,
      Braze-style ``X-RateLimit-Reset`` (epoch seconds) on a 429.
    - ``HttpError(status, message, response)`` for any other 4xx; ``str()`` is
      ``"<vendor> HTTP <status>: <vendor's message>"``.

    Messages never contain credentials: the values of credential headers (Authorization,
    X-Secret-Key, *key*, *token*, *secret*) are scrubbed from anything that is echoed back (the
    error message and ``HttpError.response.text``/``.json``).

``env_secret(name, what="")`` -> the value of environment variable ``name``, read at call time;
    a missing/empty variable raises ``MissingCredential`` (a RuntimeError) naming the *variable*.
``basic_auth(user, password)`` -> ``"Basic <base64>"``; ``bearer(token)`` -> ``"Bearer <token>"``.
``retry_after_seconds(headers, now=time.time, rate_limit_reset=True)`` -> float | None.
``vendor_message(data, text)`` -> the vendor's human message from a JSON error body.
``DeliveryMemo`` -> remembers sub-requests already delivered, for destinations that make several
    requests in one ``send`` (so the engine's retry of the whole batch does not repeat them).
``digest(*parts)`` -> sha256 hex of the JSON of ``parts`` (a stable key for a sub-request).
``deliver_once(memo, key, send)`` -> the memo's answer for ``key``, else ``send()``'s (then remembered).
``MemoRunHooks`` -> mixin: ``open_run``/``close_run`` clear ``self.memo``.
``chunks(items, size)`` -> consecutive slices of at most ``size`` items.
``json_object(response)`` -> the response's decoded JSON when it is an object, else ``{}``.
``refuse(exc, *hide)`` -> raises for an ``HttpError``: 401/403 re-raised (stop the run), any other
    4xx as ``BatchRejected`` (the engine bisects); the ``hide`` values are masked in the message.
``group_messages(rows, prepare)`` -> (results, groups) for message destinations (a removal cannot be
    unsent: reported ok); ``prepare(row)`` gives ``(group, entry)`` or ``(None, rejection reason)``.
``recipient_results(rows, chunk, send_results, vendor, ok_message)`` -> row results from an NHN Cloud
    answer's per-recipient list (matched by ``recipientSeq``, else ``recipientGroupingKey``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Hashable, Iterator, Mapping, NoReturn, Sequence

from activations.sync.destination import BatchRejected, RowResult, SyncRow, TransientError

__all__ = [
    "HttpError", "HttpResponse", "MissingCredential", "TransientError", "basic_auth", "bearer",
    "DeliveryMemo", "digest", "env_secret", "post_json", "retry_after_seconds", "vendor_message",
    "MemoRunHooks", "UNSENDABLE_REMOVAL", "chunks", "deliver_once", "group_messages", "json_object",
    "recipient_results", "refuse",
]

MAX_MESSAGE = 500
_SENSITIVE_HEADER = re.compile(r"authorization|secret|key|token|password", re.I)


class MissingCredential(RuntimeError):
    """A credential environment variable is not set (the message names the variable, not a value)."""


class HttpError(Exception):
    """A non-retryable HTTP answer (4xx other than 429)."""

    def __init__(self, status: int, message: str, response: "HttpResponse | None" = None,
                 vendor: str = ""):
        self.status = status
        self.message = message
        self.response = response
        self.vendor = vendor
        prefix = f"{vendor} " if vendor else ""
        super().__init__(f"{prefix}HTTP {status}: {message}")


class _Headers(dict):
    """Case-insensitive read access to response headers."""

    def __init__(self, items=()):
        super().__init__((k.lower(), v) for k, v in items)

    def get(self, key, default=None):  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key):
        return super().__getitem__(key.lower())

    def __contains__(self, key):
        return super().__contains__(str(key).lower())


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    json: Any
    text: str


def env_secret(name: str, what: str = "") -> str:
    value = os.environ.get(name)
    if not value:
        label = f"{what} " if what else ""
        raise MissingCredential(f"{label}credential environment variable {name!r} is not set")
    return value


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bearer(token: str) -> str:
    return f"Bearer {token}"


def retry_after_seconds(headers: Mapping[str, str] | None, now: Callable[[], float] = time.time,
                        rate_limit_reset: bool = True) -> float | None:
    """Seconds to wait: ``Retry-After`` (seconds or HTTP-date), else ``X-RateLimit-Reset`` (epoch s)."""
    if not headers:
        return None
    get = headers.get
    value = get("Retry-After") or get("retry-after")
    if value:
        value = str(value).strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                return max(0.0, when.timestamp() - now())
            except (TypeError, ValueError, IndexError):
                pass
    if rate_limit_reset:
        reset = get("X-RateLimit-Reset") or get("x-ratelimit-reset")
        if reset:
            try:
                return max(0.0, float(reset) - now())
            except ValueError:
                return None
    return None


def vendor_message(data: Any, text: str) -> str:
    """The human-readable part of a vendor error body (Braze, Customer.io, NHN Cloud shapes)."""
    if isinstance(data, dict):
        header = data.get("header")
        if isinstance(header, dict) and header.get("resultMessage"):
            code = header.get("resultCode")
            return f"{header['resultMessage']} (resultCode {code})" if code is not None else str(header["resultMessage"])
        for key in ("message", "error", "detail"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value
        meta = data.get("meta")
        if isinstance(meta, dict) and meta.get("error"):
            return str(meta["error"])
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(str(e.get("message") or e.get("reason") or e) if isinstance(e, dict) else str(e)
                             for e in errors[:5])
    return text.strip()


def _secrets_in(headers: Mapping[str, str]) -> list[str]:
    found: list[str] = []
    for name, value in headers.items():
        if "idempotency" in name.lower() or not _SENSITIVE_HEADER.search(name) or not value:
            continue
        value = str(value)
        found.append(value)
        scheme, _, token = value.partition(" ")
        if token:
            found.append(token)
            if scheme.lower() == "basic":
                try:
                    decoded = base64.b64decode(token).decode()
                    found.extend(p for p in decoded.split(":", 1) if len(p) >= 4)
                    found.append(decoded)
                except (ValueError, UnicodeDecodeError):
                    pass
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def _scrub(text: str, secrets: list[str], limit: int | None = MAX_MESSAGE) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text[:limit] if limit else text


def _decode(raw: bytes) -> tuple[Any, str]:
    text = raw.decode("utf-8", "replace")
    try:
        return (json.loads(text) if text.strip() else None), text
    except ValueError:
        return None, text


def post_json(url: str, body: Any, headers: Mapping[str, str] | None = None, timeout: float = 30.0,
              method: str = "POST", *, vendor: str = "",
              now: Callable[[], float] = time.time) -> HttpResponse:
    """Send JSON, return the 2xx answer; raise TransientError (429/5xx/network) or HttpError (4xx)."""
    headers = dict(headers or {})
    if body is None:
        data = None
    elif isinstance(body, (bytes, bytearray)):
        data = bytes(body)
    else:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
    if data is not None and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json; charset=utf-8"
    headers.setdefault("Accept", "application/json")
    secrets = _secrets_in(headers)
    prefix = f"{vendor} " if vendor else ""
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            parsed, text = _decode(raw)
            return HttpResponse(response.status, _Headers(response.headers.items()), parsed, text)
    except urllib.error.HTTPError as exc:
        try:
            raw = exc.read()
        except (OSError, socket.timeout):
            raw = b""
        parsed, text = _decode(_scrub(raw.decode("utf-8", "replace"), secrets, None).encode("utf-8"))
        response_headers = _Headers(exc.headers.items() if exc.headers else ())
        response = HttpResponse(exc.code, response_headers, parsed, text)
        message = _scrub(vendor_message(parsed, text) or (exc.reason or ""), secrets)
        if exc.code == 429 or exc.code >= 500:
            raise TransientError(f"{prefix}HTTP {exc.code}: {message}",
                                 retry_after_seconds(response_headers, now, rate_limit_reset=exc.code == 429)
                                 ) from None
        raise HttpError(exc.code, message, response, vendor) from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TransientError(f"{prefix}network error: {_scrub(str(reason), secrets)}") from None


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class DeliveryMemo:
    """Results of sub-requests already delivered, keyed by ``digest`` of what was sent.

    A destination that splits one batch into several HTTP requests records each delivered one here;
    when a later request fails transiently the engine retries the whole batch, and the delivered
    requests are answered from the memo instead of being sent twice. Bounded (oldest dropped);
    destinations clear it in ``open_run``/``close_run``.
    """

    def __init__(self, max_entries: int = 10_000):
        self.max_entries = max_entries
        self._done: OrderedDict[str, Any] = OrderedDict()

    def get(self, key: str) -> Any:
        return self._done.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self._done

    def put(self, key: str, value: Any) -> None:
        self._done[key] = value
        self._done.move_to_end(key)
        while len(self._done) > self.max_entries:
            self._done.popitem(last=False)

    def clear(self) -> None:
        self._done.clear()


def deliver_once(memo: DeliveryMemo, key: str, send: Callable[[], Any]) -> Any:
    """The answer remembered for ``key``; else ``send()``, remembered once it returned (not raised)."""
    answer = memo.get(key)
    if answer is None:
        answer = send()
        memo.put(key, answer)
    return answer


class MemoRunHooks:
    """Run hooks of a destination whose ``memo`` (a ``DeliveryMemo``) lives for one run."""

    memo: DeliveryMemo

    def open_run(self, run_id: str) -> None:
        self.memo.clear()

    def close_run(self, run_id: str) -> None:
        self.memo.clear()


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def json_object(response: HttpResponse) -> dict:
    return response.json if isinstance(response.json, dict) else {}


def refuse(exc: HttpError, *hide: str) -> NoReturn:
    """Raise for a 4xx answer: 401/403 (wrong credentials: no row can succeed) stop the run as
    ``HttpError``; anything else refuses the batch (``BatchRejected``). ``hide`` (e.g. an appkey in
    the URL) is masked; a 401/403 then loses its response."""
    def masked(text: str) -> str:
        for value in hide:
            text = text.replace(value, "***")
        return text

    if exc.status in (401, 403):
        if hide:
            raise HttpError(exc.status, masked(exc.message), None, exc.vendor) from None
        raise exc
    raise BatchRejected(masked(str(exc))) from None


UNSENDABLE_REMOVAL = "removal: nothing to send (a message cannot be unsent)"


def group_messages(rows: list[SyncRow], prepare: Callable[[SyncRow], tuple[Any, Any]]
                   ) -> tuple[dict[int, RowResult], dict[Hashable, list[tuple[int, Any]]]]:
    """Removals ok (nothing to send); other rows ``prepare(row)`` -> ``(group, entry)`` grouped in
    row order, or ``(None, reason)`` rejected."""
    results: dict[int, RowResult] = {}
    groups: dict[Hashable, list[tuple[int, Any]]] = {}
    for i, row in enumerate(rows):
        if row.operation == "remove":
            results[i] = RowResult(row.key, "ok", UNSENDABLE_REMOVAL)
            continue
        group, entry = prepare(row)
        if group is None:
            results[i] = RowResult(row.key, "rejected", entry)
        else:
            groups.setdefault(group, []).append((i, entry))
    return results, groups


def recipient_results(rows: list[SyncRow], chunk: list[tuple[int, dict]], send_results, vendor: str,
                      ok_message: Callable[[dict], str]) -> dict[int, RowResult]:
    """NHN Cloud per-recipient results (resultCode 0 = accepted) for ``chunk`` ((row index, recipient
    entry) in request order), matched by ``recipientSeq`` (1-based), else ``recipientGroupingKey``."""
    by_seq = {r.get("recipientSeq"): r for r in send_results if isinstance(r, dict)}
    by_group = {r.get("recipientGroupingKey"): r for r in send_results if isinstance(r, dict)}
    out = {}
    for seq, (i, entry) in enumerate(chunk, start=1):
        result = by_seq.get(seq) or by_group.get(entry["recipientGroupingKey"])
        if result is None:
            out[i] = RowResult(rows[i].key, "rejected", f"{vendor} returned no result for this recipient")
        elif result.get("resultCode") in (0, "0"):
            out[i] = RowResult(rows[i].key, "ok", ok_message(result))
        else:
            out[i] = RowResult(rows[i].key, "rejected",
                               f"resultCode {result.get('resultCode')}: {result.get('resultMessage', '')}")
    return out
