"""The sending law as the sync engine's gate: consent, suppression, frequency caps, night time.

``activations.compliance.decide`` holds the rules for one recipient and one message; this module
feeds it the customer 360 (consent per channel, night consent, time zone), the global suppression
list and the sends already recorded in the ledger, and counts the sends it lets through in this run
so a cap holds within a run too.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Mapping, Sequence

from activations.compliance import Decision, FrequencyCap, Message, Recipient, decide
from activations.sync.ledger import Ledger

from .spec import parse_duration

CONSENT_COLUMNS = {"email": "consent_email", "sms": "consent_sms", "push": "consent_push", "kakao": "consent_kakao"}
# Reasons that make a customer ineligible whatever the hour: they are kept out of the experiment
# (assigning them an arm would only dilute the measured effect with people we may never message).
_STATIC_DROP = ("opted out", "suppressed", "no advertising consent", "re-confirmation due")


def frequency_caps(config: Mapping) -> list[FrequencyCap]:
    caps = []
    for i, item in enumerate(config.get("frequency_caps") or []):
        caps.append(FrequencyCap(
            channel=str(item["channel"]), max_sends=int(item["max_sends"]),
            period=parse_duration(item["period"], f"_config.yml frequency_caps[{i}].period"),
            applies_to_transactional=bool(item.get("applies_to_transactional", False))))
    return caps


def _as_date(value) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def recipient_from_profile(row: Mapping, suppressed: bool) -> Recipient:
    """A Recipient from a customer-360 row.

    The consent is taken as confirmed on the day of the identify that last carried the traits
    (``traits_updated_at``): the events do not date each consent separately.
    """
    consent = {channel: bool(row.get(column)) for channel, column in CONSENT_COLUMNS.items()}
    return Recipient(
        customer_id=str(row["customer_id"]),
        consent=consent,
        night_consent=bool(row.get("consent_night")),
        timezone=row.get("timezone"),
        suppressed=suppressed,
        consent_confirmed_at=_as_date(row.get("traits_updated_at")),
        last_purchase_date=_as_date(row.get("last_order_at")),
        last_purchase_category=row.get("favourite_category"),
    )


class SendingLaw:
    """Callable gate for ``run_sync``: one ``Decision`` per key, in order."""

    def __init__(self, con, channel: str, advertising: bool, members: Sequence[Mapping], now: datetime,
                 caps: Sequence[FrequencyCap] = (), allow_purchase_relationship: bool = False):
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        self.channel = channel
        self.advertising = advertising
        self.now = now
        self.caps = [cap for cap in caps if cap.channel == channel]
        self.allow_purchase_relationship = allow_purchase_relationship
        ledger = Ledger(con)
        suppressed = ledger.suppressed(channel)
        self.recipients = {str(row["customer_id"]): recipient_from_profile(row, str(row["customer_id"]) in suppressed)
                           for row in members}
        longest = max((cap.period for cap in self.caps), default=timedelta(0))
        self.sent: dict[str, list[tuple[str, datetime]]] = {}
        if self.caps:
            for key, times in ledger.recent_sends(channel, now - longest, advertising_only=advertising).items():
                self.sent[key] = [(channel, t) for t in times]
        self.message = Message(channel=channel, is_advertising=advertising, body="")

    def decide(self, key: str, caps: bool = True) -> Decision:
        recipient = self.recipients.get(key)
        if recipient is None:
            return Decision("drop", None, ["not in the audience's customer 360 rows"])
        return decide(recipient, self.message, self.now, self.sent.get(key, ()), self.caps if caps else (),
                      allow_purchase_relationship=self.allow_purchase_relationship)

    def eligible(self, keys: Sequence[str]) -> tuple[list[str], dict[str, int]]:
        """Keys that may receive this message at some hour, and the count of the others by reason."""
        kept, dropped = [], {}
        for key in keys:
            decision = self.decide(key, caps=False)
            reason = decision.reasons[0] if decision.reasons else ""
            if decision.action == "drop" and reason.startswith(_STATIC_DROP):
                dropped[reason] = dropped.get(reason, 0) + 1
            else:
                kept.append(key)
        return kept, dropped

    def __call__(self, keys: Sequence[str]) -> list[Decision]:
        decisions = []
        for key in keys:
            decision = self.decide(key)
            if decision.action == "send":
                # Count it now: a second message to the same customer later in this run meets the cap.
                self.sent.setdefault(key, []).append((self.channel, self.now))
            decisions.append(decision)
        return decisions
