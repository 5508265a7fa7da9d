"""Braze destination: user attributes (and optional custom events) through ``POST /users/track``.

Row payload keys (filled by the audience layer):
- ``external_id`` (str): the Braze external id. A row without one is still sent and Braze answers
  with a per-object error, which rejects that row only.
- ``attributes`` (dict): custom/standard attributes; each row becomes one attributes object
  ``{"external_id": ..., **attributes}`` (``None`` removes an attribute in Braze).
- ``event`` (optional dict ``{name, time, properties}``): one event object for the row; ``time``
  (ISO-8601) defaults to now. With ``event_name=`` set, rows being *added* also record that event
  (e.g. ``"entered_audience"``) unless they carry their own ``event``.

Limits (Braze docs): Bearer REST key; at most 75 attribute, 75 event and 75 purchase objects per
request (``batch_size`` 75: one row gives at most one of each); 3,000 requests per 3 seconds
(``max_requests_per_second`` 1,000). A 201 with ``errors`` is partial success: each error names the
``input_array`` and ``index`` of the object it refers to, and only that row is rejected.
429 / 5xx / time-outs are TransientError (a 429 waits until ``X-RateLimit-Reset`` or ``Retry-After``);
401/403 raise ``HttpError`` and stop the run (no row could succeed); other 4xx refuse the batch
(``BatchRejected``, the engine bisects it).

Removals (mirror mode), ``on_remove``:
- ``"clear"`` (default): Braze documents that setting an attribute to ``null`` removes it from the
  profile, so the row is sent as ``{"external_id": ..., <each of clear_attributes>: null}`` through
  ``/users/track``; the user and its history stay. Needs ``clear_attributes``.
- ``"delete"``: ``POST /users/delete`` with ``external_ids`` (at most 50 per request) — permanent.
- ``"ignore"``: nothing is sent; the row is reported ok.
For a removal the external id is ``payload["external_id"]`` when present, else the row key.

Credentials: the REST API key is read from the environment variable named by ``api_key_env`` at send
time; it never appears in messages or exceptions.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Callable

from activations.sync.destination import RowResult, SyncRow

from .http import (DeliveryMemo, HttpError, MemoRunHooks, bearer, chunks, deliver_once, digest, env_secret,
                   json_object, post_json, refuse)

MAX_OBJECTS_PER_KIND = 75
MAX_DELETE_IDS = 50


class BrazeDestination(MemoRunHooks):
    def __init__(self, base_url: str, api_key_env: str, name: str = "braze", event_name: str | None = None,
                 *, batch_size: int = MAX_OBJECTS_PER_KIND, max_requests_per_second: float | None = 1000.0,
                 timeout: float = 30.0, on_remove: str = "clear", clear_attributes=(),
                 now: Callable[[], float] = time.time):
        if on_remove not in ("clear", "delete", "ignore"):
            raise ValueError("on_remove must be 'clear', 'delete' or 'ignore'")
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.name = name
        self.event_name = event_name
        self.batch_size = batch_size
        self.max_requests_per_second = max_requests_per_second
        self.timeout = timeout
        self.on_remove = on_remove
        self.clear_attributes = tuple(clear_attributes)
        self.now = now
        self.memo = DeliveryMemo()  # cleared by the run hooks (MemoRunHooks)

    # -- building -------------------------------------------------------------------------------
    def _iso_now(self) -> str:
        return datetime.fromtimestamp(self.now(), timezone.utc).isoformat().replace("+00:00", "Z")

    def _objects(self, row: SyncRow) -> tuple[dict | None, dict | None, str | None]:
        """(attributes object, event object, rejection reason) for one add/change row."""
        payload = row.payload
        attributes = payload.get("attributes") or {}
        if not isinstance(attributes, dict):
            return None, None, "payload 'attributes' must be a dict"
        ident = {"external_id": payload["external_id"]} if payload.get("external_id") not in (None, "") else {}
        attrs = {**ident, **{k: v for k, v in attributes.items() if k != "external_id"}}
        event = payload.get("event")
        if event is None and self.event_name and row.operation == "add":
            event = {"name": self.event_name}
        event_obj = None
        if event is not None:
            if not isinstance(event, dict) or not event.get("name"):
                return None, None, "payload 'event' must be a dict with a 'name'"
            event_obj = {**ident, "name": event["name"], "time": event.get("time") or self._iso_now()}
            if event.get("properties"):
                event_obj["properties"] = event["properties"]
        return attrs, event_obj, None

    # -- sending --------------------------------------------------------------------------------
    def _post(self, path: str, body: dict) -> dict:
        headers = {"Authorization": bearer(env_secret(self.api_key_env, "Braze REST API key"))}
        try:
            response = post_json(self.base_url + path, body, headers, timeout=self.timeout, vendor="Braze",
                                 now=self.now)
        except HttpError as exc:
            refuse(exc)  # 401/403 stop the run (no row can succeed); other 4xx refuse the batch
        return json_object(response)

    def send(self, rows: list[SyncRow]) -> list[RowResult]:
        results: dict[int, RowResult] = {}
        track: list[tuple[int, dict | None, dict | None]] = []  # (row index, attributes, event)
        deletes: list[tuple[int, str]] = []
        for i, row in enumerate(rows):
            if row.operation == "remove":
                external_id = str(row.payload.get("external_id") or row.key)
                if self.on_remove == "ignore":
                    results[i] = RowResult(row.key, "ok", "removal ignored (on_remove='ignore')")
                elif self.on_remove == "delete":
                    deletes.append((i, external_id))
                elif not self.clear_attributes:
                    results[i] = RowResult(row.key, "rejected",
                                           "on_remove='clear' needs clear_attributes (the attributes to null)")
                else:
                    track.append((i, {"external_id": external_id, **{a: None for a in self.clear_attributes}}, None))
                continue
            attrs, event, reason = self._objects(row)
            if reason:
                results[i] = RowResult(row.key, "rejected", reason)
            else:
                track.append((i, attrs, event))

        for chunk in chunks(track, MAX_OBJECTS_PER_KIND):
            results.update(self._send_track(rows, chunk))
        for chunk in chunks(deletes, MAX_DELETE_IDS):
            key = digest("delete", [rows[i].idempotency_key for i, _ in chunk])
            deliver_once(self.memo, key, lambda: self._post("/users/delete", {"external_ids": [e for _, e in chunk]}))
            for i, _ in chunk:
                results[i] = RowResult(rows[i].key, "ok", "deleted from Braze")
        return [results[i] for i in range(len(rows))]

    def _send_track(self, rows, chunk) -> dict[int, RowResult]:
        attributes, events = [], []
        owner = {"attributes": [], "events": []}
        for i, attrs, event in chunk:
            if attrs is not None:
                attributes.append(attrs)
                owner["attributes"].append(i)
            if event is not None:
                events.append(event)
                owner["events"].append(i)
        body = {k: v for k, v in (("attributes", attributes), ("events", events)) if v}
        key = digest("track", [rows[i].idempotency_key for i, _, _ in chunk])
        answer = deliver_once(self.memo, key, lambda: self._post("/users/track", body))
        out = {i: RowResult(rows[i].key, "ok") for i, _, _ in chunk}
        message = answer.get("message", "success")
        if message not in ("success", "queued"):  # a fatal error in a 2xx answer
            return {i: RowResult(rows[i].key, "rejected", f"Braze: {message}") for i in out}
        unattributed = []
        for error in answer.get("errors") or []:
            if isinstance(error, dict):
                text = str(error.get("type") or error.get("message") or error)
                kind, index = error.get("input_array"), error.get("index")
                if kind in owner and isinstance(index, int) and 0 <= index < len(owner[kind]):
                    i = owner[kind][index]
                    previous = out[i].message if out[i].status == "rejected" else ""
                    out[i] = RowResult(rows[i].key, "rejected",
                                       f"{previous}; {kind}[{index}]: {text}" if previous else f"{kind}[{index}]: {text}")
                    continue
            unattributed.append(str(error))
        if unattributed:  # Braze applied the rest; keep the note on the rows that went through
            note = "Braze minor errors: " + "; ".join(unattributed)[:300]
            for i, res in out.items():
                if res.status == "ok":
                    out[i] = RowResult(res.key, "ok", note)
        return out
