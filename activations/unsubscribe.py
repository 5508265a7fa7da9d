"""Signed one-click unsubscribe links (RFC 8058) and the global suppression list.

``unsubscribe_url(base_url, customer_id, channel, secret)`` gives an https link whose only
parameter is a token ``v1.<base64url(customer_id)>.<channel>.<base64url(HMAC-SHA256)>``: the
customer id is our opaque key (no email, phone or name in the URL), and the HMAC over version,
customer id and channel means nobody can unsubscribe someone else by editing the link. Links do not
expire: the law wants opting out to work at any time. Rotating the secret invalidates old links,
so keep the old secret accepted (pass several to ``verify``) for as long as old mail is around.

``UnsubscribeApp`` is a tiny WSGI app for that link:
- ``POST`` with the body ``List-Unsubscribe=One-Click`` (form-urlencoded or multipart, as RFC 8058
  allows) is the one-click unsubscribe sent by mail providers: no cookie, no session, no CSRF
  token; the ``record`` callback runs before the 200 answer, so the opt-out takes effect at once.
- ``GET`` only shows a confirmation page with a button that makes the same POST: link scanners
  and prefetchers open links with GET, which must never unsubscribe anyone.
- a missing or badly signed token is ``400``; other methods ``405``; a failing ``record`` ``500``
  (so the provider retries) and nothing is claimed.

``record_suppression`` / ``suppressed_customers`` read and write ``activations.suppressions``
(channel ``'all'`` means every channel), the list that always wins over any audience.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import os
import re
from email.parser import BytesParser
from email.policy import HTTP
from typing import Callable, Iterable
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from activations.sync.ledger import SCHEMA, Ledger, now

__all__ = [
    "unsubscribe_url",
    "make_token",
    "verify",
    "UnsubscribeApp",
    "record_suppression",
    "suppressed_customers",
    "ONE_CLICK_BODY",
]

TOKEN_VERSION = "v1"
TOKEN_PARAM = "t"
ONE_CLICK_BODY = "List-Unsubscribe=One-Click"
ALL_CHANNELS = "all"
_CHANNEL = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_MAX_BODY = 64 * 1024
_MAX_CUSTOMER_ID = 256


def _key(secret: str | bytes) -> bytes:
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if not secret:
        raise ValueError("an empty unsubscribe secret would make every link forgeable")
    return secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, customer_id: str, channel: str) -> bytes:
    message = b"\x00".join([TOKEN_VERSION.encode(), customer_id.encode("utf-8"), channel.encode("ascii")])
    return hmac.new(secret, message, hashlib.sha256).digest()


def make_token(customer_id: str, channel: str, secret: str | bytes) -> str:
    customer_id = str(customer_id)
    if not customer_id or len(customer_id) > _MAX_CUSTOMER_ID:
        raise ValueError("customer_id must be a non-empty opaque id")
    if not _CHANNEL.match(channel or ""):
        raise ValueError(f"invalid channel {channel!r}")
    mac = _mac(_key(secret), customer_id, channel)
    return f"{TOKEN_VERSION}.{_b64(customer_id.encode('utf-8'))}.{channel}.{_b64(mac)}"


def unsubscribe_url(base_url: str, customer_id: str, channel: str, secret: str | bytes) -> str:
    """``base_url`` (https) with the signed token added as the ``t`` query parameter."""
    parts = urlsplit(base_url)
    if parts.scheme != "https" or not parts.netloc:
        raise ValueError("the unsubscribe base_url must be an https URL (RFC 8058)")
    query = [(k, v) for k, vs in parse_qs(parts.query, keep_blank_values=True).items() for v in vs]
    query.append((TOKEN_PARAM, make_token(customer_id, channel, secret)))
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query), ""))


def verify(token: str | None, secret: str | bytes | Iterable[str | bytes]) -> tuple[str, str] | None:
    """(customer_id, channel) when the token is well formed and signed with (one of) the secret(s);
    None otherwise. Never raises on bad input."""
    if not isinstance(token, str) or len(token) > 1024:
        return None
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != TOKEN_VERSION:
        return None
    _, encoded_id, channel, encoded_mac = parts
    if not _CHANNEL.match(channel):
        return None
    try:
        customer_id = _unb64(encoded_id).decode("utf-8")
        given = _unb64(encoded_mac)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not customer_id:
        return None
    secrets = [secret] if isinstance(secret, (str, bytes)) else list(secret)
    for candidate in secrets:
        try:
            expected = _mac(_key(candidate), customer_id, channel)
        except ValueError:
            continue
        if hmac.compare_digest(expected, given):
            return customer_id, channel
    return None


# --- WSGI app ---------------------------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>수신거부 / Unsubscribe</title></head>
<body><main>
<h1>수신거부 / Unsubscribe</h1>
<p>{channel} 광고 수신을 거부하시겠습니까? / Stop receiving {channel} advertising from us?</p>
<form method="post" action="{action}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">수신거부 / Unsubscribe</button>
</form>
</main></body></html>
"""


class UnsubscribeApp:
    """WSGI app for the one-click unsubscribe link (see the module docstring)."""

    def __init__(self, secret_env: str, record: Callable[[str, str, str], None],
                 reason: str = "unsubscribe: one-click (RFC 8058)"):
        self.secret_env = secret_env
        self.record = record
        self.reason = reason

    def _secrets(self) -> list[str]:
        value = os.environ.get(self.secret_env, "")
        # Several secrets, comma-separated, during a rotation: the first one signs new links.
        return [s for s in (part.strip() for part in value.split(",")) if s]

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method not in ("GET", "HEAD", "POST"):
            return _answer(start_response, "405 Method Not Allowed", "method not allowed\n",
                           [("Allow", "GET, HEAD, POST")])
        secrets = self._secrets()
        if not secrets:
            return _answer(start_response, "500 Internal Server Error", "unsubscribe is not configured\n")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        identity = verify((query.get(TOKEN_PARAM) or [None])[0], secrets)
        if identity is None:
            return _answer(start_response, "400 Bad Request", "invalid or expired unsubscribe link\n")
        customer_id, channel = identity

        if method in ("GET", "HEAD"):
            action = html.escape(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "") + "?"
                                 + environ.get("QUERY_STRING", ""), quote=True)
            page = _PAGE.format(channel=html.escape(channel), action=action)
            return _answer(start_response, "200 OK", page if method == "GET" else "",
                           content_type="text/html; charset=utf-8")

        body = _read_body(environ)
        if body is None:
            return _answer(start_response, "413 Content Too Large", "request body too large\n")
        if not _is_one_click(environ.get("CONTENT_TYPE", ""), body):
            return _answer(start_response, "400 Bad Request", f"the body must be {ONE_CLICK_BODY}\n")
        try:
            self.record(customer_id, channel, self.reason)
        except Exception:  # noqa: BLE001 - the provider retries on 5xx; nothing claimed
            return _answer(start_response, "500 Internal Server Error", "could not record the unsubscribe\n")
        return _answer(start_response, "200 OK", "수신거부가 처리되었습니다. / You have been unsubscribed.\n")


def _read_body(environ) -> bytes | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > _MAX_BODY:
        return None
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _is_one_click(content_type: str, body: bytes) -> bool:
    if content_type.lower().startswith("multipart/form-data"):
        head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
        message = BytesParser(policy=HTTP).parsebytes(head + body)
        if not message.is_multipart():
            return False
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "List-Unsubscribe":
                return part.get_payload(decode=True).strip() == b"One-Click"
        return False
    try:
        form = parse_qs(body.decode("ascii"), strict_parsing=False)
    except UnicodeDecodeError:
        return False
    return form.get("List-Unsubscribe") == ["One-Click"]


def _answer(start_response, status: str, text: str, extra=None, content_type="text/plain; charset=utf-8"):
    data = text.encode("utf-8")
    headers = [("Content-Type", content_type), ("Content-Length", str(len(data))),
               ("Cache-Control", "no-store"), ("X-Robots-Tag", "noindex")] + list(extra or [])
    start_response(status, headers)
    return [data]


# --- suppression list ---------------------------------------------------------------------------

def record_suppression(con, customer_id: str, channel: str, reason: str) -> None:
    """Insert or replace (customer_id, channel) in activations.suppressions; effective at once."""
    if not str(customer_id or "").strip():
        raise ValueError("customer_id is required")
    if not str(channel or "").strip():
        raise ValueError("channel is required ('all' for every channel)")
    Ledger(con)  # creates the schema and tables if needed
    con.execute(
        f"INSERT OR REPLACE INTO {SCHEMA}.suppressions (customer_id, channel, reason, created_at) "
        "VALUES (?, ?, ?, ?)",
        [str(customer_id), channel, reason or "", now()],
    )


def suppressed_customers(con, channel: str) -> set[str]:
    """Customers suppressed on ``channel`` or on every channel ('all')."""
    Ledger(con)
    rows = con.execute(
        f"SELECT DISTINCT customer_id FROM {SCHEMA}.suppressions WHERE channel = ? OR channel = ?",
        [channel, ALL_CHANNELS],
    ).fetchall()
    return {r[0] for r in rows}
