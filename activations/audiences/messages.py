"""Personalised payloads: the spec's field mapping plus its message templates, rendered per customer.

Templates are Jinja in a sandbox with strict undefined variables, so a typo in a personal field
(``{{ nmae }}``) fails the preview instead of sending "Dear ," to a million people. Advertising
texts get the markings the law requires (``compliance.prepare_advertising_text``) here, before the
payload is hashed, so the ledger's payload hash covers exactly what was sent.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Mapping

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from activations.compliance import Message, prepare_advertising_text

from .spec import AudienceSpec, AudienceSpecError, Variant

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
_ENV.filters["won"] = lambda value: f"{int(round(float(value or 0))):,}원"
_ENV.filters["first"] = lambda value, default="": (list(value)[0] if value is not None and len(value) else default)
# The text fields of each channel that carry the message (and get the advertising markings).
BODY_FIELD = {"email": "body_text", "sms": "text", "push": "body", "kakao": "fallback_text"}
SUBJECT_FIELD = {"email": "subject", "sms": "subject", "push": "title"}


class MessageError(ValueError):
    """A template that cannot be rendered for a customer (the message names the audience and field)."""


def _plain(value: Any) -> Any:
    """JSON-safe values for payloads (the ledger hashes them; destinations serialise them)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _render(template: Any, context: Mapping, where: str) -> Any:
    if isinstance(template, str):
        try:
            return _ENV.from_string(template).render(context).strip()
        except TemplateError as exc:
            raise MessageError(f"{where}: {exc}") from None
    if isinstance(template, dict):
        return {k: _render(v, context, f"{where}.{k}") for k, v in template.items()}
    if isinstance(template, list):
        return [_render(v, context, f"{where}[{i}]") for i, v in enumerate(template)]
    return template


class PayloadBuilder:
    """Builds the payload of one customer for one variant of an audience."""

    def __init__(self, spec: AudienceSpec, config: Mapping, environ: Mapping[str, str] | None = None):
        self.spec = spec
        self.sender = config.get("sender") or {}
        self.unsubscribe = config.get("unsubscribe") or {}
        self.environ = os.environ if environ is None else environ
        if spec.advertising and spec.is_messaging:
            missing = [k for k in ("name", "contact", "opt_out") if not self.sender.get(k)]
            if missing:
                raise AudienceSpecError(f"_config.yml sender lacks {', '.join(missing)} (the law requires them in ads)")

    def _unsubscribe_url(self, customer_id: str, channel: str) -> str:
        from activations.unsubscribe import unsubscribe_url

        secret_env = self.unsubscribe.get("secret_env", "GOLDENTIME_UNSUBSCRIBE_SECRET")
        secret = self.environ.get(secret_env)
        if not secret:
            raise MessageError(f"{self.spec.name}: environment variable {secret_env} (unsubscribe link secret) is not set")
        return unsubscribe_url(self.unsubscribe["base_url"], customer_id, channel, secret)

    def build(self, row: Mapping, variant: Variant) -> dict:
        spec = self.spec
        channel = variant.channel or spec.channel
        context = {k: _plain(v) for k, v in row.items()}
        payload: dict[str, Any] = {}
        for destination_field, column in (variant.fields or spec.fields).items():
            if column not in row:
                raise MessageError(f"{spec.name}: fields.{destination_field}: no column {column!r}")
            payload[destination_field] = _plain(row[column])
        for field, template in variant.message.items():
            payload[field] = _render(template, context, f"{spec.name} variant {variant.name} message.{field}")
        if spec.is_messaging:
            payload["is_advertising"] = spec.advertising
            payload["campaign_id"] = spec.name
            payload["variant"] = variant.name
            if channel == "email" and self.unsubscribe.get("base_url"):
                payload["unsubscribe_url"] = self._unsubscribe_url(str(row["customer_id"]), channel)
            if spec.advertising:
                self._mark_advertising(payload, channel)
        return payload

    def _mark_advertising(self, payload: dict, channel: str) -> None:
        body_field, subject_field = BODY_FIELD.get(channel), SUBJECT_FIELD.get(channel)
        opt_out = payload.get("unsubscribe_url") if channel == "email" else None
        message = Message(
            channel=channel, is_advertising=True, body=str(payload.get(body_field, "")),
            subject=payload.get(subject_field) if subject_field else None,
            sender_name=self.sender["name"], sender_contact=self.sender["contact"],
            opt_out_instruction=opt_out or self.sender["opt_out"])
        try:
            marked = prepare_advertising_text(message)
        except ValueError as exc:
            raise MessageError(f"{self.spec.name}: {exc}") from None
        payload[body_field] = marked.body
        if subject_field and marked.subject is not None:
            payload[subject_field] = marked.subject
