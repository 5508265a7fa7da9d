"""SMS / LMS destination through NHN Cloud Notification SMS (API v3.0).

``POST {base_url}/sms/v3.0/appKeys/{appKey}/sender/{sms|mms|ad-sms|ad-mms}`` with header
``X-Secret-Key``; body ``body`` (the text), ``sendNo`` (the pre-registered sender number),
``title`` (LMS only) and ``recipientList`` (<= 1,000; ``recipientNo``, ``recipientGroupingKey`` = the
row key). The answer: ``header.isSuccessful`` for the request, ``body.data.sendResultList[]`` with a
``resultCode`` per recipient (0 = accepted), which is each row's result.

Row payload keys (filled by the audience layer):
- ``phone``: normalised to Korean national digits (``+82 10-1234-5678`` -> ``01012345678``);
  anything not Korean is rejected before sending.
- ``text`` (str): the message. Its size in EUC-KR (CP949) bytes picks the kind through
  ``compliance.sms_kind``: up to 90 bytes and no subject -> SMS (``/sender/sms``), up to 2,000 bytes
  -> LMS (``/sender/mms``); over 2,000 bytes or characters EUC-KR cannot encode -> the row is
  rejected before sending, with the reason.
- ``subject`` (optional): LMS title (<= 40 bytes; a subject makes the message an LMS). An LMS without
  one gets its first line, cut to 40 bytes, as title.
- ``is_advertising`` (optional, default False): advertising goes to ``/sender/ad-sms`` or
  ``/sender/ad-mms`` and its text must already start with "(광고)" and carry the free opt-out line
  ("무료수신거부 ..."), as ``compliance.prepare_advertising_text`` writes them; otherwise the row is
  rejected (the engine's compliance layer adds them; this destination is the last guard). A
  non-advertising text that carries "(광고)" is rejected too (it would mislabel a notice).
- Removals send nothing (a message cannot be unsent) and are reported ok; use mode ``insert``.

Requests: rows are grouped by endpoint (SMS/LMS x ad/non-ad) and, because one request carries one
``body`` for all its recipients, by identical text and subject; each group is sent in requests of at
most 1,000 recipients. Requests already delivered within a batch are remembered, so a retry after a
429/5xx on a later request does not send them twice.

Errors: 401/403 raise ``HttpError`` and stop the run; an unregistered ``sendNo`` raises
``SenderNumberNotRegistered`` (stops the run: no message can go out); other request-level refusals
reject that request's rows with NHN's message; 429/5xx/time-outs are TransientError. The appkey and
secret key are read at send time from the env vars named in the constructor and never appear in
messages; the sender number is not a secret and is given directly.
"""

from __future__ import annotations

import time
from typing import Callable

from activations.compliance import AD_PREFIX, sms_byte_length, sms_kind
from activations.sync.destination import RowResult, SyncRow

from .http import (DeliveryMemo, HttpError, MemoRunHooks, chunks, digest, env_secret, group_messages,
                   json_object, post_json, recipient_results, refuse)
from .kakao import korean_national_number

MAX_RECIPIENTS = 1000
OPT_OUT_MARKER = "무료수신거부"
AD_MARK_VARIANTS = ("(광고)", "( 광고 )", "[광고]")


class SenderNumberNotRegistered(RuntimeError):
    """NHN refused ``sendNo``: it must be pre-registered in the NHN Cloud console (Telecommunications
    Business Act); no message can be sent until it is."""


def _title_from(text: str, limit: int = 40) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    while line and sms_byte_length(line) > limit:
        line = line[:-1]
    return line


class SmsDestination(MemoRunHooks):
    def __init__(self, base_url: str, appkey_env: str, secret_key_env: str, send_no: str, name: str = "nhn_sms",
                 *, batch_size: int = MAX_RECIPIENTS, max_requests_per_second: float | None = None,
                 timeout: float = 30.0, now: Callable[[], float] = time.time):
        digits = "".join(ch for ch in str(send_no) if ch.isdigit())
        if not digits:
            raise ValueError("send_no must be the pre-registered sender number")
        self.base_url = base_url.rstrip("/")
        self.appkey_env = appkey_env
        self.secret_key_env = secret_key_env
        self.send_no = digits
        self.name = name
        self.batch_size = batch_size
        self.max_requests_per_second = max_requests_per_second
        self.timeout = timeout
        self.now = now
        self.memo = DeliveryMemo()  # cleared by the run hooks (MemoRunHooks)

    def _message(self, row: SyncRow) -> tuple[tuple | None, dict | str]:
        """((endpoint, text, title), recipient entry) or (None, rejection reason)."""
        p = row.payload
        number = korean_national_number(p.get("phone"))
        if number is None:
            return None, "phone is not a valid Korean number"
        text = p.get("text")
        if not isinstance(text, str) or not text.strip():
            return None, "text is empty"
        subject = p.get("subject") or None
        is_ad = bool(p.get("is_advertising", False))
        if is_ad:
            if not text.startswith(AD_PREFIX):
                return None, f'advertising text must start with "{AD_PREFIX}"'
            if OPT_OUT_MARKER not in text:
                return None, f'advertising text must give the free opt-out line ("{OPT_OUT_MARKER} ...")'
            if subject and not subject.startswith(AD_PREFIX):
                return None, f'advertising subject must start with "{AD_PREFIX}"'
        elif any(mark in text or mark in (subject or "") for mark in AD_MARK_VARIANTS):
            return None, 'a non-advertising message must not carry "(광고)"'
        try:
            kind = sms_kind(text, subject)
        except ValueError as exc:
            return None, f"cannot be sent as SMS/LMS: {exc}"
        endpoint = ("ad-" if is_ad else "") + ("sms" if kind == "SMS" else "mms")
        title = None if kind == "SMS" else (subject or _title_from(text))
        return (endpoint, text, title), {"recipientNo": number, "recipientGroupingKey": row.key[:100]}

    def send(self, rows: list[SyncRow]) -> list[RowResult]:
        results, groups = group_messages(rows, self._message)
        if groups:
            appkey = env_secret(self.appkey_env, "NHN Cloud SMS appKey")
            secret = env_secret(self.secret_key_env, "NHN Cloud SMS secret key")
            for group, members in groups.items():
                for chunk in chunks(members, MAX_RECIPIENTS):
                    results.update(self._send_chunk(rows, group, chunk, appkey, secret))
        return [results[i] for i in range(len(rows))]

    def _send_chunk(self, rows, group, chunk, appkey, secret) -> dict[int, RowResult]:
        endpoint, text, title = group
        key = digest(endpoint, [rows[i].idempotency_key for i, _ in chunk])
        cached = self.memo.get(key)
        if cached is not None:
            return cached
        body = {"body": text, "sendNo": self.send_no, "recipientList": [e for _, e in chunk]}
        if title is not None:
            body["title"] = title
        url = f"{self.base_url}/sms/v3.0/appKeys/{appkey}/sender/{endpoint}"
        try:
            response = post_json(url, body, {"X-Secret-Key": secret}, timeout=self.timeout, vendor="NHN SMS",
                                 now=self.now)
        except HttpError as exc:
            refuse(exc, appkey)
        data = json_object(response)
        out = self._parse(rows, chunk, endpoint, data)
        self.memo.put(key, out)
        return out

    def _parse(self, rows, chunk, endpoint, data) -> dict[int, RowResult]:
        header = data.get("header") or {}
        if not header.get("isSuccessful", False):
            message = str(header.get("resultMessage", "no message"))
            lowered = message.lower()
            if "sendno" in lowered.replace(" ", "") or "sending number" in lowered or "발신번호" in message:
                raise SenderNumberNotRegistered(
                    f"NHN SMS refused sender number {self.send_no}: {message} (resultCode "
                    f"{header.get('resultCode')}); pre-register it in the NHN Cloud console")
            return {i: RowResult(rows[i].key, "rejected",
                                 f"NHN SMS refused the {endpoint} request: {message} "
                                 f"(resultCode {header.get('resultCode')})") for i, _ in chunk}
        send_results = (((data.get("body") or {}).get("data") or {}).get("sendResultList")) or []
        return recipient_results(rows, chunk, send_results, "NHN SMS", lambda _result: f"sent as {endpoint}")
