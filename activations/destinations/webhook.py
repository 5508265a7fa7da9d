"""Generic webhook destination: JSON POST of one batch, signed with HMAC-SHA256.

Header ``X-GoldenTime-Signature: sha256=<hex HMAC of the body>``; the secret is read from the
environment variable whose *name* is given. 429 / 5xx / time-outs → TransientError (honouring
Retry-After); 401/403 → every row rejected; other 4xx → the whole batch is refused (BatchRejected,
the engine bisects it) or, for a single row, that row is rejected. A 2xx body may carry
``{"results": [{"key", "status", "message"}]}`` or ``{"errors": [{"key", "message"}]}`` for
per-row outcomes; otherwise every row is ok.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from activations.sync.destination import BatchRejected, RowResult, SyncRow

from .http import HttpError, env_secret, post_json

SIGNATURE_HEADER = "X-GoldenTime-Signature"


def sign(secret: str | bytes, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


class WebhookDestination:
    def __init__(self, url: str, secret_env: str, name: str = "webhook", batch_size: int = 100,
                 max_requests_per_second: float | None = None, timeout: float = 10.0,
                 headers: dict | None = None):
        self.url = url
        self.secret_env = secret_env
        self.name = name
        self.batch_size = batch_size
        self.max_requests_per_second = max_requests_per_second
        self.timeout = timeout
        self.headers = dict(headers or {})

    def _secret(self) -> str:
        return env_secret(self.secret_env, "webhook secret")

    @staticmethod
    def body(rows: list[SyncRow]) -> bytes:
        return json.dumps({"rows": [
            {"key": r.key, "operation": r.operation, "payload": r.payload,
             "idempotency_key": r.idempotency_key} for r in rows
        ]}, sort_keys=True, separators=(",", ":"), default=str).encode()

    def send(self, rows: list[SyncRow]) -> list[RowResult]:
        body = self.body(rows)
        batch_key = hashlib.sha256("|".join(r.idempotency_key for r in rows).encode()).hexdigest()
        headers = {**self.headers, "Content-Type": "application/json",
                   SIGNATURE_HEADER: sign(self._secret(), body), "Idempotency-Key": batch_key}
        try:  # 429 / 5xx / network -> TransientError, raised by post_json
            response = post_json(self.url, body, headers, timeout=self.timeout)
        except HttpError as exc:
            message = f"HTTP {exc.status}: {exc.response.text[:500] if exc.response else exc.message}"
            if exc.status in (401, 403) or len(rows) == 1:
                return [RowResult(r.key, "rejected", message) for r in rows]
            raise BatchRejected(message) from None
        return self._parse_ok(rows, response.text.encode())

    @staticmethod
    def _parse_ok(rows: list[SyncRow], raw: bytes) -> list[RowResult]:
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if isinstance(data.get("results"), list):
            by_key = {str(r.get("key")): r for r in data["results"] if isinstance(r, dict)}
            out = []
            for row in rows:
                r = by_key.get(row.key, {})
                status = r.get("status", "ok")
                out.append(RowResult(row.key, "ok" if status == "ok" else "rejected", str(r.get("message", ""))))
            return out
        errors = {str(e.get("key")): str(e.get("message", "rejected"))
                  for e in data.get("errors", []) if isinstance(e, dict)}
        return [RowResult(r.key, "rejected", errors[r.key]) if r.key in errors else RowResult(r.key, "ok")
                for r in rows]
