"""Korean advertising-message law (Information and Communications Network Act, art. 50) and our
own frequency caps, as pure functions.

`decide()` answers, for one recipient and one message at one instant, whether to send now, hold
until a lawful time, or drop. `prepare_advertising_text()` adds the markings the law requires,
and `sms_kind()` says whether a text is an SMS or an LMS by its EUC-KR size.
The rules are in /work/shared/CONTRACTS.md ("Korean law for advertising messages", "SMS / LMS").
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Literal, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "CHANNELS",
    "DEFAULT_TIMEZONE",
    "Recipient",
    "Message",
    "FrequencyCap",
    "Decision",
    "decide",
    "recipient_zone",
    "next_morning",
    "prepare_advertising_text",
    "AD_PREFIX",
    "sms_byte_length",
    "sms_kind",
    "SMS_MAX_BYTES",
    "LMS_MAX_BYTES",
    "LMS_SUBJECT_MAX_BYTES",
]

CHANNELS = frozenset({"email", "sms", "push", "kakao"})
# Our customers are mostly in Korea; a customer without a usable time zone is treated as Korean
# so that the night-time rule is never skipped for lack of data.
DEFAULT_TIMEZONE = "Asia/Seoul"
NIGHT_STARTS = time(21, 0)  # 21:00 local is already night (the law: "from 21:00")
NIGHT_ENDS = time(8, 0)  # 08:00 local is already day
CONSENT_VALID_YEARS = 2
PURCHASE_RELATIONSHIP_MONTHS = 6

Action = Literal["send", "defer", "drop"]


@dataclass(frozen=True)
class Recipient:
    customer_id: str
    # channel -> prior opt-in to advertising on that channel ("email", "sms", "push", "kakao").
    consent: Mapping[str, bool] = field(default_factory=dict)
    # The separate prior consent to advertising between 21:00 and 08:00.
    night_consent: bool = False
    timezone: str | None = DEFAULT_TIMEZONE  # IANA name
    opted_out: bool = False  # the customer asked us to stop: wins over everything, at once
    suppressed: bool = False  # global suppression (bounces, complaints, legal hold, ...)
    # When the advertising consent was given or last re-confirmed (the law: every 2 years).
    consent_confirmed_at: date | None = None
    last_purchase_date: date | None = None
    last_purchase_category: str | None = None


@dataclass(frozen=True)
class Message:
    channel: str  # one of CHANNELS
    is_advertising: bool
    body: str
    subject: str | None = None  # email subject, LMS title
    sender_name: str | None = None
    sender_contact: str | None = None  # phone number or address of the sender
    opt_out_instruction: str | None = None  # free opt-out: an 080 number or an https link
    # The kind of goods advertised; only used by the purchase-relationship exception.
    product_category: str | None = None

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"unknown channel {self.channel!r}; expected one of {sorted(CHANNELS)}")


@dataclass(frozen=True)
class FrequencyCap:
    """At most `max_sends` messages on `channel` per customer within any `period`.

    Caps are a marketing-pressure rule, so by default they count and limit advertising only; an
    order confirmation must never be held back by a promotion sent the same day.
    """

    channel: str
    max_sends: int
    period: timedelta
    applies_to_transactional: bool = False


@dataclass(frozen=True)
class Decision:
    action: Action
    send_at: datetime | None  # UTC; None when dropped
    reasons: list[str] = field(default_factory=list)


def recipient_zone(recipient: Recipient) -> tuple[ZoneInfo, bool]:
    """The recipient's zone, and whether we had to fall back to DEFAULT_TIMEZONE."""
    name = recipient.timezone
    if isinstance(name, str) and name.strip():
        try:
            return ZoneInfo(name.strip()), False
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            pass
    return ZoneInfo(DEFAULT_TIMEZONE), True


def decide(
    recipient: Recipient,
    message: Message,
    now_utc: datetime,
    recent_sends: Iterable[tuple[str, datetime]] = (),
    caps: Sequence[FrequencyCap] = (),
    *,
    allow_purchase_relationship: bool = False,
) -> Decision:
    """Send now, defer (to `send_at`, UTC) or drop one message to one recipient.

    Order of the rules, first match wins:
      1. opted out or suppressed -> drop (also for transactional messages);
      2. advertising without prior opt-in on the message's channel -> drop, unless
         `allow_purchase_relationship` and the exception below applies;
      3. advertising with consent confirmed more than 2 years ago (or never dated) -> drop,
         "re-confirmation due";
      4. a frequency cap reached on the channel -> drop;
      5. advertising between 21:00 and 08:00 recipient time without night consent -> defer to
         the next 08:00 recipient time.
    Transactional messages skip 2, 3 and 5 (and 4 unless a cap says `applies_to_transactional`).

    `recent_sends` are (channel, sent_at UTC) of what this customer already received; the
    caller passes the sends that should count (normally the advertising ones, from the ledger).

    `allow_purchase_relationship` enables art. 50(1)(1): no prior opt-in is needed when the
    customer bought the same kind of goods (`message.product_category` equal to
    `recipient.last_purchase_category`) within the last 6 months. Off by default because it only
    holds when we collected the contact details ourselves through that purchase, which this
    function cannot check; turn it on per campaign after that has been confirmed.
    """
    if now_utc.tzinfo is None or now_utc.utcoffset() is None:
        raise ValueError("now_utc must be timezone-aware")
    now_utc = now_utc.astimezone(timezone.utc)
    zone, fell_back = recipient_zone(recipient)
    now_local = now_utc.astimezone(zone)
    notes: list[str] = []
    if fell_back:
        notes.append(f"timezone {recipient.timezone!r} unusable; used {DEFAULT_TIMEZONE}")

    # 1. Opt-outs take effect immediately and always win.
    if recipient.opted_out:
        return Decision("drop", None, ["opted out"] + notes)
    if recipient.suppressed:
        return Decision("drop", None, ["suppressed"] + notes)

    if message.is_advertising:
        # 2. Prior opt-in per channel.
        if not recipient.consent.get(message.channel, False):
            if allow_purchase_relationship and _purchase_relationship_applies(
                recipient, message, now_local.date()
            ):
                notes.append("no opt-in; purchase-relationship exception (same goods, within 6 months)")
            else:
                return Decision("drop", None, [f"no advertising consent for {message.channel}"] + notes)
        else:
            # 3. Consent must have been re-confirmed within the last 2 years.
            confirmed = recipient.consent_confirmed_at
            if confirmed is None:
                return Decision("drop", None, ["re-confirmation due", "consent date unknown"] + notes)
            if now_local.date() > _add_years(confirmed, CONSENT_VALID_YEARS):
                return Decision(
                    "drop", None, ["re-confirmation due", f"consent confirmed {confirmed.isoformat()}"] + notes
                )

    # 4. Frequency caps.
    sends = list(recent_sends)
    for cap in caps:
        if cap.channel != message.channel:
            continue
        if not message.is_advertising and not cap.applies_to_transactional:
            continue
        window_start = now_utc - cap.period
        # Half-open window (now - period, now]: a send exactly one period ago no longer counts.
        in_window = sum(
            1
            for channel, sent_at in sends
            if channel == cap.channel and window_start < _as_utc(sent_at) <= now_utc
        )
        if in_window >= cap.max_sends:
            return Decision(
                "drop",
                None,
                [f"frequency cap: {in_window} of {cap.max_sends} {cap.channel} sends in {cap.period}"] + notes,
            )

    # 5. Night-time rule (advertising only).
    if message.is_advertising and not recipient.night_consent and _is_night(now_local.time()):
        resume_local = next_morning(now_local)
        return Decision(
            "defer",
            resume_local.astimezone(timezone.utc),
            [f"night-time {now_local:%H:%M} {zone.key} without night consent; held until 08:00 local"] + notes,
        )

    return Decision("send", now_utc, notes)


def _is_night(local: time) -> bool:
    return local >= NIGHT_STARTS or local < NIGHT_ENDS


def next_morning(now_local: datetime) -> datetime:
    """The next 08:00 wall-clock time in now_local's zone (today if before 08:00).

    Built from the local date and wall time, not by adding hours, so a DST change during the
    night still lands on 08:00 local.
    """
    day = now_local.date() if now_local.time() < NIGHT_ENDS else now_local.date() + timedelta(days=1)
    return datetime.combine(day, NIGHT_ENDS, tzinfo=now_local.tzinfo)


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("recent_sends timestamps must be timezone-aware")
    return moment.astimezone(timezone.utc)


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February -> 28 February
        return day.replace(year=day.year + years, day=28)


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate_day in range(day.day, 27, -1):  # clamp 31 -> 30/29/28
        try:
            return date(year, month, candidate_day)
        except ValueError:
            continue
    return date(year, month, min(day.day, 28))


def _purchase_relationship_applies(recipient: Recipient, message: Message, today_local: date) -> bool:
    if recipient.last_purchase_date is None or not message.product_category:
        return False
    if recipient.last_purchase_category != message.product_category:
        return False
    # "within 6 months": the purchase day plus 6 calendar months is the last eligible day.
    return today_local <= _add_months(recipient.last_purchase_date, PURCHASE_RELATIONSHIP_MONTHS)


# --- message text ------------------------------------------------------------------------------

AD_PREFIX = "(광고)"
# Existing markings we recognise so as not to double them: "(광고)", "( 광고 )", "[광고]".
_EXISTING_AD_MARK = re.compile(r"^\s*[\(\[]\s*광고\s*[\)\]]\s*")
_ANY_AD_MARK = re.compile(r"[\(\[]\s*광고\s*[\)\]]")


def prepare_advertising_text(message: Message) -> Message:
    """The message with the markings the law requires, idempotently.

    Advertising: body (and subject, when there is one, e.g. email/LMS) starts with "(광고)";
    the body names the sender and its contact and ends with the free opt-out instruction; parts
    already present are not repeated, so preparing twice gives the same text.
    Non-advertising: returned unchanged; it must not carry "(광고)" (ValueError if it does,
    because Alimtalk rejects it and it mislabels an order notice).
    """
    if not message.is_advertising:
        for text in (message.body, message.subject or ""):
            if _ANY_AD_MARK.search(text):
                raise ValueError('a non-advertising message must not carry "(광고)"')
        return message

    missing = [
        name
        for name in ("sender_name", "sender_contact", "opt_out_instruction")
        if not (getattr(message, name) or "").strip()
    ]
    if missing:
        raise ValueError(f"advertising message lacks {', '.join(missing)}")
    sender_name = message.sender_name.strip()
    contact = message.sender_contact.strip()
    opt_out = message.opt_out_instruction.strip()

    content = _EXISTING_AD_MARK.sub("", message.body, count=1).strip()
    if sender_name not in content:
        content = f"{sender_name}\n{content}" if content else sender_name
    lines = [f"{AD_PREFIX} {content}"]
    if contact not in content:
        lines.append(f"문의 {contact}")
    if opt_out not in content:
        lines.append(f"무료수신거부 {opt_out}")
    body = "\n".join(lines)

    subject = message.subject
    if subject is not None:
        subject = f"{AD_PREFIX} {_EXISTING_AD_MARK.sub('', subject, count=1).strip()}".rstrip()
    elif message.channel == "email":
        raise ValueError('an advertising email needs a subject (it must start with "(광고)")')
    return dataclasses.replace(message, body=body, subject=subject)


# --- SMS / LMS size ---------------------------------------------------------------------------

SMS_MAX_BYTES = 90
LMS_MAX_BYTES = 2000
LMS_SUBJECT_MAX_BYTES = 40
# Korean carriers count EUC-KR bytes: ASCII 1, Hangul 2. We encode with CP949, Microsoft's
# superset of EUC-KR that every Korean SMS gateway actually accepts, because Python's strict
# "euc_kr" codec writes the 8,822 syllables outside KS X 1001 (e.g. "똠", "햏") as 8-byte jamo
# sequences, which would overcount; with CP949 every Hangul syllable is 2 bytes.
_SMS_ENCODING = "cp949"


def sms_byte_length(text: str) -> int:
    """EUC-KR (CP949) byte length; ValueError naming the characters that cannot be encoded."""
    try:
        return len(text.encode(_SMS_ENCODING))
    except UnicodeEncodeError:
        bad = []
        for ch in text:
            try:
                ch.encode(_SMS_ENCODING)
            except UnicodeEncodeError:
                label = f"{ch!r} (U+{ord(ch):04X})"
                if label not in bad:
                    bad.append(label)
        raise ValueError(f"characters EUC-KR cannot encode: {', '.join(bad)}") from None


def sms_kind(text: str, subject: str | None = None) -> Literal["SMS", "LMS"]:
    """"SMS" up to 90 bytes, "LMS" up to 2,000 bytes (subject up to 40), else ValueError.

    A subject makes it an LMS: an SMS has no subject field.
    """
    body_bytes = sms_byte_length(text)
    if subject:
        subject_bytes = sms_byte_length(subject)
        if subject_bytes > LMS_SUBJECT_MAX_BYTES:
            raise ValueError(f"LMS subject is {subject_bytes} bytes; at most {LMS_SUBJECT_MAX_BYTES}")
    if body_bytes > LMS_MAX_BYTES:
        raise ValueError(f"text is {body_bytes} bytes; an LMS holds at most {LMS_MAX_BYTES}")
    if body_bytes <= SMS_MAX_BYTES and not subject:
        return "SMS"
    return "LMS"
