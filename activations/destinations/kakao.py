"""KakaoTalk Alimtalk destination through NHN Cloud KakaoTalk Bizmessage (API v2.3).

``POST {base_url}/alimtalk/v2.3/appkeys/{appkey}/messages`` with header ``X-Secret-Key``; body
``senderKey`` (40 characters), ``templateCode`` (a registered template, <= 20 characters) and
``recipientList`` (<= 1,000), each recipient ``recipientNo``, ``templateParameter`` (fills every
``#{name}`` of the template), optional ``resendParameter`` (SMS/LMS fallback when Kakao delivery
fails) and ``recipientGroupingKey`` (the row key). The answer's ``message.sendResults[]`` carry a
``resultCode`` per recipient (0 = accepted): that is each row's result.

Row payload keys (filled by the audience layer):
- ``phone``: the recipient; normalised to Korean national digits (``+82 10-1234-5678`` ->
  ``01012345678``); a number that is not Korean is rejected before sending.
- ``template_code`` (str, <= 20), ``template_parameters`` (dict: variable name -> value).
- ``is_advertising``: must be ``False``. Alimtalk carries information only (order, payment,
  delivery, booking notices); an advertising row is rejected before sending, with that reason
  (promotions go by Friendtalk/SMS with consent and "(광고)").
- ``fallback_text`` (optional) and ``fallback_subject`` (optional): ``resendParameter`` with
  ``isResend`` true, ``resendType`` SMS or LMS chosen by ``compliance.sms_kind`` (text that fits no
  LMS, or has characters EUC-KR cannot encode, rejects the row before sending), ``resendContent``,
  ``resendTitle`` (LMS) and ``resendSendNo`` (``resend_send_no`` or the env var
  ``resend_send_no_env``).
- Removals send nothing (a message cannot be unsent) and are reported ok; use mode ``insert``.

Idempotency (crash-resume never double-sends): every request carries ``X-NC-API-IDEMPOTENCY-KEY``,
the row's idempotency key for a one-row request, else the SHA-256 of the rows' keys in order.
NHN refuses a key repeated within 10 minutes; the destination reads that refusal as "already
delivered" and reports the rows ok. A run killed after NHN accepted a batch but before the ledger
recorded it re-sends the same rows in the same batch (the engine plans unchanged rows in the same
order), hence the same key, and nothing is delivered twice. Limitation: a re-run within 10 minutes
of a batch whose every row was refused per recipient is also read as delivered; fix the cause or
wait 10 minutes before re-running such a batch.

Errors: HTTP 401/403 (wrong appkey/secret) raise ``HttpError`` and stop the run; 429/5xx/time-outs
are TransientError; a request-level refusal (``header.isSuccessful`` false: unknown or promotional
template, bad parameters) rejects that request's rows with NHN's message. Credentials (appkey,
secret key, sender key) are read at send time from the env vars named in the constructor and never
appear in messages.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Callable

from activations.compliance import sms_kind
from activations.identifiers import normalize_phone_e164
from activations.sync.destination import RowResult, SyncRow

from .http import (DeliveryMemo, HttpError, MemoRunHooks, chunks, env_secret, group_messages, json_object,
                   post_json, recipient_results, refuse)

IDEMPOTENCY_HEADER = "X-NC-API-IDEMPOTENCY-KEY"
MAX_RECIPIENTS = 1000
MAX_TEMPLATE_CODE = 20
SENDER_KEY_LENGTH = 40
DUPLICATE_MARKERS = ("idempotency", "duplicate", "중복")


def korean_national_number(raw) -> str | None:
    """Digits in Korean national form ("01012345678"), or None for anything that is not Korean."""
    e164 = normalize_phone_e164(raw if isinstance(raw, str) else str(raw or ""), "KR")
    if not e164 or not e164.startswith("+82"):
        return None
    return "0" + e164[3:]


def request_idempotency_key(rows: list[SyncRow]) -> str:
    if len(rows) == 1:
        return rows[0].idempotency_key
    return hashlib.sha256("|".join(r.idempotency_key for r in rows).encode()).hexdigest()


def is_duplicate_refusal(status: int, data) -> bool:
    if status == 409:
        return True
    header = data.get("header") if isinstance(data, dict) else None
    if not isinstance(header, dict) or header.get("isSuccessful", True):
        return False
    return any(m in str(header.get("resultMessage", "")).lower() for m in DUPLICATE_MARKERS)


class AlimtalkDestination(MemoRunHooks):
    def __init__(self, base_url: str, appkey_env: str, secret_key_env: str, sender_key_env: str,
                 name: str = "kakao_alimtalk", *, resend_send_no: str | None = None,
                 resend_send_no_env: str | None = None, batch_size: int = MAX_RECIPIENTS,
                 max_requests_per_second: float | None = None, timeout: float = 30.0,
                 now: Callable[[], float] = time.time):
        self.base_url = base_url.rstrip("/")
        self.appkey_env = appkey_env
        self.secret_key_env = secret_key_env
        self.sender_key_env = sender_key_env
        self.name = name
        self.resend_send_no = resend_send_no
        self.resend_send_no_env = resend_send_no_env
        self.batch_size = min(batch_size, MAX_RECIPIENTS)
        self.max_requests_per_second = max_requests_per_second
        self.timeout = timeout
        self.now = now
        self.memo = DeliveryMemo()  # cleared by the run hooks (MemoRunHooks)

    # -- validation -------------------------------------------------------------------------
    def _send_no(self) -> str | None:
        value = self.resend_send_no or (os.environ.get(self.resend_send_no_env) if self.resend_send_no_env else None)
        return "".join(ch for ch in value if ch.isdigit()) if value else None

    def _recipient(self, row: SyncRow) -> tuple[str | None, dict | str]:
        """(template code, recipient entry) or (None, rejection reason)."""
        p = row.payload
        if p.get("is_advertising") is not False:
            return None, ("Alimtalk carries information only: advertising rows are not sent "
                          "(is_advertising must be False; use Friendtalk/SMS with consent and \"(광고)\")")
        number = korean_national_number(p.get("phone"))
        if number is None:
            return None, "phone is not a valid Korean number"
        code = p.get("template_code")
        if not isinstance(code, str) or not code or len(code) > MAX_TEMPLATE_CODE:
            return None, f"template_code must be a registered code of 1 to {MAX_TEMPLATE_CODE} characters"
        params = p.get("template_parameters") or {}
        if not isinstance(params, dict):
            return None, "template_parameters must be a dict"
        entry = {"recipientNo": number, "templateParameter": {str(k): "" if v is None else str(v) for k, v in params.items()},
                 "recipientGroupingKey": row.key[:100]}
        text = p.get("fallback_text")
        if text:
            subject = p.get("fallback_subject") or None
            try:
                kind = sms_kind(text, subject)
            except ValueError as exc:
                return None, f"fallback text cannot be sent as SMS/LMS: {exc}"
            send_no = self._send_no()
            if not send_no:
                return None, "fallback_text given but no resend sender number is configured"
            resend = {"isResend": True, "resendType": kind, "resendContent": text, "resendSendNo": send_no}
            if kind == "LMS" and subject:
                resend["resendTitle"] = subject
            entry["resendParameter"] = resend
        return code, entry

    # -- sending ------------------------------------------------------------------------------
    def send(self, rows: list[SyncRow]) -> list[RowResult]:
        results, groups = group_messages(rows, self._recipient)
        if groups:
            appkey = env_secret(self.appkey_env, "NHN Cloud Alimtalk appkey")
            secret = env_secret(self.secret_key_env, "NHN Cloud Alimtalk secret key")
            sender_key = env_secret(self.sender_key_env, "Kakao sender key")
            if len(sender_key) != SENDER_KEY_LENGTH:
                raise ValueError(f"the Kakao sender key in {self.sender_key_env!r} must be "
                                 f"{SENDER_KEY_LENGTH} characters")
            for code, members in groups.items():
                for chunk in chunks(members, MAX_RECIPIENTS):
                    results.update(self._send_chunk(rows, code, chunk, appkey, secret, sender_key))
        return [results[i] for i in range(len(rows))]

    def _send_chunk(self, rows, code, chunk, appkey, secret, sender_key) -> dict[int, RowResult]:
        key = request_idempotency_key([rows[i] for i, _ in chunk])
        cached = self.memo.get(key)
        if cached is not None:
            return cached
        body = {"senderKey": sender_key, "templateCode": code, "recipientList": [e for _, e in chunk]}
        headers = {"X-Secret-Key": secret, IDEMPOTENCY_HEADER: key}
        url = f"{self.base_url}/alimtalk/v2.3/appkeys/{appkey}/messages"
        try:
            response = post_json(url, body, headers, timeout=self.timeout, vendor="NHN Alimtalk", now=self.now)
            status, data = response.status, json_object(response)
        except HttpError as exc:
            if exc.status != 409:
                refuse(exc, appkey)
            status, data = 409, {}
        out = self._parse(rows, chunk, status, data)
        self.memo.put(key, out)
        return out

    @staticmethod
    def _parse(rows, chunk, status, data) -> dict[int, RowResult]:
        if is_duplicate_refusal(status, data):
            return {i: RowResult(rows[i].key, "ok",
                                 "already delivered (NHN refused the repeated idempotency key)") for i, _ in chunk}
        header = data.get("header") or {}
        if not header.get("isSuccessful", False):
            message = f"NHN Alimtalk refused the request: {header.get('resultMessage', 'no message')} " \
                      f"(resultCode {header.get('resultCode')})"
            return {i: RowResult(rows[i].key, "rejected", message) for i, _ in chunk}
        send_results = ((data.get("message") or {}).get("sendResults")) or []
        return recipient_results(rows, chunk, send_results, "NHN Alimtalk", _ok_note)


def _ok_note(result: dict) -> str:
    message = str(result.get("resultMessage") or "")
    return "" if message.lower() == "success" else message
