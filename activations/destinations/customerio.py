"""Customer.io destination: people and events through the Track API v2 batch (``POST /api/v2/batch``).

Row payload keys (filled by the audience layer):
- ``id`` (str): the Customer.io person id (``identifiers: {"id": ...}``); a row without one is sent
  and Customer.io's per-entry error rejects that row only.
- ``attributes`` (dict): person attributes, sent as an ``identify`` entry.
- ``event`` (optional dict ``{name, time, properties}``): an ``event`` entry for the same person;
  ``time`` (epoch seconds or ISO-8601) becomes ``timestamp``; ``properties`` become the event's
  ``attributes``.

Removals (mirror mode): a ``delete`` entry for the person (``payload["id"]`` or the row key), which is
what Customer.io documents for removing a person; ``on_remove="ignore"`` reports ok and sends nothing.

Limits (Customer.io docs): Track API auth is HTTP Basic ``site_id:api_key`` (a Bearer token is
refused); a batch request must be smaller than 500 KB, so one engine batch is packed into as many
requests as needed under ``max_request_bytes`` (a row's entries stay in one request; a single row too
big on its own is rejected before sending); about 100 requests/s on the Track API (429 beyond).
A 207 answer lists per-entry ``errors`` with ``batch_index``: only those rows are rejected.
Requests already delivered within a batch are remembered, so a retry after a 429/5xx on a later
request does not send events twice. 401/403 raise ``HttpError`` (stops the run); 413 and other 4xx
refuse the batch (``BatchRejected``, the engine bisects).

Credentials: site id and API key are read at send time from the environment variables named by
``site_id_env`` and ``api_key_env``; they never appear in messages or exceptions.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Callable

from activations.sync.destination import RowResult, SyncRow

from .http import (DeliveryMemo, HttpError, MemoRunHooks, basic_auth, deliver_once, digest, env_secret,
                   json_object, post_json, refuse)

MAX_REQUEST_BYTES = 500_000  # the docs say "smaller than 500kb"; stay under the decimal reading
_ENVELOPE = len(b'{"batch":[]}')


def _timestamp(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, datetime):
        return int(value.timestamp())
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def _size(entry: dict) -> int:
    return len(json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8"))


class CustomerIoDestination(MemoRunHooks):
    def __init__(self, base_url: str, site_id_env: str, api_key_env: str, name: str = "customerio", *,
                 batch_size: int = 1000, max_requests_per_second: float | None = 100.0,
                 max_request_bytes: int = MAX_REQUEST_BYTES, timeout: float = 30.0, on_remove: str = "delete",
                 now: Callable[[], float] = time.time):
        if on_remove not in ("delete", "ignore"):
            raise ValueError("on_remove must be 'delete' or 'ignore'")
        self.base_url = base_url.rstrip("/")
        self.site_id_env = site_id_env
        self.api_key_env = api_key_env
        self.name = name
        self.batch_size = batch_size
        self.max_requests_per_second = max_requests_per_second
        self.max_request_bytes = max_request_bytes
        self.timeout = timeout
        self.on_remove = on_remove
        self.now = now
        self.memo = DeliveryMemo()  # cleared by the run hooks (MemoRunHooks)

    def _entries(self, row: SyncRow) -> tuple[list[dict], str | None]:
        payload = row.payload
        person = payload.get("id") if row.operation != "remove" else (payload.get("id") or row.key)
        identifiers = {"id": str(person)} if person not in (None, "") else {}
        if row.operation == "remove":
            return [{"type": "person", "identifiers": identifiers, "action": "delete"}], None
        attributes = payload.get("attributes") or {}
        if not isinstance(attributes, dict):
            return [], "payload 'attributes' must be a dict"
        entries = [{"type": "person", "identifiers": identifiers, "action": "identify", "attributes": attributes}]
        event = payload.get("event")
        if event is not None:
            if not isinstance(event, dict) or not event.get("name"):
                return [], "payload 'event' must be a dict with a 'name'"
            entry = {"type": "person", "identifiers": identifiers, "action": "event", "name": event["name"]}
            ts = _timestamp(event.get("time"))
            if ts is not None:
                entry["timestamp"] = ts
            if event.get("properties"):
                entry["attributes"] = event["properties"]
            entries.append(entry)
        return entries, None

    def _post(self, entries: list[dict]) -> tuple[int, dict]:
        auth = basic_auth(env_secret(self.site_id_env, "Customer.io site id"),
                          env_secret(self.api_key_env, "Customer.io Track API key"))
        try:
            response = post_json(self.base_url + "/api/v2/batch", {"batch": entries}, {"Authorization": auth},
                                 timeout=self.timeout, vendor="Customer.io", now=self.now)
        except HttpError as exc:
            refuse(exc)
        return response.status, json_object(response)

    def send(self, rows: list[SyncRow]) -> list[RowResult]:
        results: dict[int, RowResult] = {}
        packed: list[list[tuple[int, dict]]] = [[]]
        used = _ENVELOPE
        for i, row in enumerate(rows):
            if row.operation == "remove" and self.on_remove == "ignore":
                results[i] = RowResult(row.key, "ok", "removal ignored (on_remove='ignore')")
                continue
            entries, reason = self._entries(row)
            if reason:
                results[i] = RowResult(row.key, "rejected", reason)
                continue
            size = sum(_size(e) + 1 for e in entries)
            if _ENVELOPE + size >= self.max_request_bytes:
                results[i] = RowResult(row.key, "rejected",
                                       f"row is {size} bytes; a Customer.io batch request must be under "
                                       f"{self.max_request_bytes} bytes")
                continue
            if packed[-1] and used + size >= self.max_request_bytes:
                packed.append([])
                used = _ENVELOPE
            packed[-1].extend((i, e) for e in entries)
            used += size
        for chunk in packed:
            if chunk:
                results.update(self._send_chunk(rows, chunk))
        return [results[i] for i in range(len(rows))]

    def _send_chunk(self, rows, chunk: list[tuple[int, dict]]) -> dict[int, RowResult]:
        key = digest("batch", [rows[i].idempotency_key for i, _ in chunk], len(chunk))
        status, data = deliver_once(self.memo, key, lambda: self._post([e for _, e in chunk]))
        out = {i: RowResult(rows[i].key, "ok") for i, _ in chunk}
        for error in (data.get("errors") or []) if status == 207 or data.get("errors") else []:
            if not isinstance(error, dict):
                continue
            index = error.get("batch_index")
            if isinstance(index, int) and 0 <= index < len(chunk):
                i = chunk[index][0]
                text = error.get("message") or error.get("reason") or "rejected"
                field = f" ({error['field']})" if error.get("field") else ""
                previous = out[i].message + "; " if out[i].status == "rejected" else ""
                out[i] = RowResult(rows[i].key, "rejected",
                                   f"{previous}{chunk[index][1].get('action')}: {text}{field}")
        return out
