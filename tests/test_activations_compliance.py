"""Korean advertising-message law, frequency caps and SMS sizing (CONTRACTS.md)."""

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest

from activations.compliance import (
    Decision,
    FrequencyCap,
    Message,
    Recipient,
    decide,
    prepare_advertising_text,
    sms_byte_length,
    sms_kind,
)

UTC = timezone.utc
ALL_CHANNELS = {"email": True, "sms": True, "push": True, "kakao": True}


def kst(y, m, d, hh, mm=0):
    """A Seoul wall-clock time as UTC (KST is UTC+9, no DST)."""
    return datetime(y, m, d, hh, mm, tzinfo=UTC) - timedelta(hours=9)


def recipient(**overrides):
    base = Recipient(
        customer_id="c1",
        consent=dict(ALL_CHANNELS),
        night_consent=False,
        timezone="Asia/Seoul",
        consent_confirmed_at=date(2024, 1, 10),
    )
    return replace(base, **overrides)


AD_SMS = Message(
    channel="sms",
    is_advertising=True,
    body="봄맞이 20% 할인",
    sender_name="골든타임",
    sender_contact="02-123-4567",
    opt_out_instruction="080-123-4567",
)
NOTICE_SMS = Message(channel="sms", is_advertising=False, body="주문하신 상품이 발송되었습니다.")
NOON = kst(2024, 6, 3, 12)


# --- suppression and opt-out ---------------------------------------------------------------------

def test_opt_out_beats_everything():
    everyone_would_allow = recipient(opted_out=True, night_consent=True)
    for message in (AD_SMS, NOTICE_SMS):
        decision = decide(everyone_would_allow, message, NOON)
        assert decision == Decision("drop", None, ["opted out"])
    # even at night, even with the purchase exception on
    assert decide(everyone_would_allow, AD_SMS, kst(2024, 6, 3, 23), allow_purchase_relationship=True).action == "drop"


def test_suppressed_drops_transactional_too():
    assert decide(recipient(suppressed=True), NOTICE_SMS, NOON).reasons == ["suppressed"]


def test_plain_send():
    assert decide(recipient(), AD_SMS, NOON) == Decision("send", NOON, [])


# --- consent ------------------------------------------------------------------------------------

def test_advertising_needs_opt_in_on_that_channel():
    only_email = recipient(consent={"email": True, "sms": False})
    decision = decide(only_email, AD_SMS, NOON)
    assert decision.action == "drop" and decision.reasons == ["no advertising consent for sms"]
    assert decide(only_email, replace(AD_SMS, channel="email", subject="봄 세일"), NOON).action == "send"
    assert decide(recipient(consent={}), replace(AD_SMS, channel="kakao"), NOON).action == "drop"


def test_transactional_needs_no_consent_and_ignores_night():
    nobody = recipient(consent={}, consent_confirmed_at=None)
    assert decide(nobody, NOTICE_SMS, kst(2024, 6, 3, 23)).action == "send"


def test_unknown_channel_is_an_error():
    with pytest.raises(ValueError):
        Message(channel="fax", is_advertising=True, body="x")


def test_purchase_relationship_exception_is_off_by_default():
    buyer = recipient(consent={}, last_purchase_date=date(2024, 3, 1), last_purchase_category="shoes")
    shoe_ad = replace(AD_SMS, product_category="shoes")
    assert decide(buyer, shoe_ad, NOON).action == "drop"
    on = decide(buyer, shoe_ad, NOON, allow_purchase_relationship=True)
    assert on.action == "send" and "purchase-relationship exception" in on.reasons[0]


def test_purchase_relationship_exception_limits():
    buyer = recipient(consent={}, last_purchase_date=date(2024, 1, 3), last_purchase_category="shoes")
    shoe_ad = replace(AD_SMS, product_category="shoes")
    # six months after 2024-01-03 is 2024-07-03: that day is still inside, the next is not
    assert decide(buyer, shoe_ad, kst(2024, 7, 3, 12), allow_purchase_relationship=True).action == "send"
    assert decide(buyer, shoe_ad, kst(2024, 7, 4, 12), allow_purchase_relationship=True).action == "drop"
    # another kind of goods, or no category on the message
    assert decide(buyer, replace(AD_SMS, product_category="bags"), NOON, allow_purchase_relationship=True).action == "drop"
    assert decide(buyer, AD_SMS, NOON, allow_purchase_relationship=True).action == "drop"
    # the night rule still applies under the exception
    assert decide(buyer, shoe_ad, kst(2024, 6, 3, 22), allow_purchase_relationship=True).action == "defer"


# --- 2-year re-confirmation ------------------------------------------------------------------------

def test_consent_older_than_two_years_is_dropped():
    confirmed = recipient(consent_confirmed_at=date(2022, 6, 3))
    assert decide(confirmed, AD_SMS, kst(2024, 6, 3, 12)).action == "send"  # exactly 2 years
    late = decide(confirmed, AD_SMS, kst(2024, 6, 4, 12))
    assert late.action == "drop" and late.reasons[0] == "re-confirmation due"


def test_consent_age_uses_recipient_local_date():
    confirmed = recipient(consent_confirmed_at=date(2022, 6, 3))
    # 2024-06-03 16:00 UTC is already 2024-06-04 01:00 in Seoul
    assert decide(confirmed, AD_SMS, datetime(2024, 6, 3, 16, tzinfo=UTC)).reasons[0] == "re-confirmation due"


def test_consent_without_date_needs_reconfirmation():
    assert decide(recipient(consent_confirmed_at=None), AD_SMS, NOON).reasons[0] == "re-confirmation due"


def test_reconfirmation_does_not_apply_to_transactional():
    assert decide(recipient(consent_confirmed_at=date(2010, 1, 1)), NOTICE_SMS, NOON).action == "send"


def test_leap_day_consent():
    leap = recipient(consent_confirmed_at=date(2024, 2, 29))
    assert decide(leap, AD_SMS, kst(2026, 2, 28, 12)).action == "send"
    assert decide(leap, AD_SMS, kst(2026, 3, 1, 12)).action == "drop"


# --- night-time rule -------------------------------------------------------------------------------

def test_night_starts_at_21_00_exactly():
    decision = decide(recipient(), AD_SMS, kst(2024, 6, 3, 21, 0))
    assert decision.action == "defer"
    assert decision.send_at == kst(2024, 6, 4, 8) == datetime(2024, 6, 3, 23, 0, tzinfo=UTC)
    assert decide(recipient(), AD_SMS, kst(2024, 6, 3, 20, 59)).action == "send"


def test_day_starts_at_08_00_exactly():
    assert decide(recipient(), AD_SMS, kst(2024, 6, 4, 8, 0)).action == "send"
    early = decide(recipient(), AD_SMS, kst(2024, 6, 4, 7, 59))
    assert early.action == "defer" and early.send_at == kst(2024, 6, 4, 8)


def test_after_midnight_defers_to_same_morning():
    assert decide(recipient(), AD_SMS, kst(2024, 6, 4, 0, 30)).send_at == kst(2024, 6, 4, 8)


def test_night_consent_allows_sending_at_night():
    assert decide(recipient(night_consent=True), AD_SMS, kst(2024, 6, 3, 23)).action == "send"


def test_new_york_across_dst_start():
    ny = recipient(timezone="America/New_York")
    # 2024-03-09 22:00 EST (UTC-5); clocks spring forward that night; 08:00 EDT is 12:00 UTC
    decision = decide(ny, AD_SMS, datetime(2024, 3, 10, 3, 0, tzinfo=UTC))
    assert decision.action == "defer"
    assert decision.send_at == datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
    assert decision.send_at.tzinfo == UTC


def test_new_york_across_dst_end():
    ny = recipient(timezone="America/New_York")
    # 2024-11-02 22:00 EDT (UTC-4); clocks fall back that night; 08:00 EST is 13:00 UTC
    decision = decide(ny, AD_SMS, datetime(2024, 11, 3, 2, 0, tzinfo=UTC))
    assert decision.send_at == datetime(2024, 11, 3, 13, 0, tzinfo=UTC)
    # 08:00 EST exactly is day again
    assert decide(ny, AD_SMS, datetime(2024, 11, 3, 13, 0, tzinfo=UTC)).action == "send"


@pytest.mark.parametrize("bad_zone", [None, "", "Mars/Olympus", "../etc/passwd"])
def test_missing_or_invalid_timezone_falls_back_to_seoul(bad_zone):
    decision = decide(recipient(timezone=bad_zone), AD_SMS, kst(2024, 6, 3, 21, 30))
    assert decision.action == "defer" and decision.send_at == kst(2024, 6, 4, 8)
    assert any("Asia/Seoul" in reason for reason in decision.reasons)


def test_naive_now_is_refused():
    with pytest.raises(ValueError):
        decide(recipient(), AD_SMS, datetime(2024, 6, 3, 12))


# --- frequency caps --------------------------------------------------------------------------------

TWO_PER_WEEK = FrequencyCap(channel="sms", max_sends=2, period=timedelta(days=7))


def test_cap_boundary():
    one = [("sms", NOON - timedelta(days=1))]
    two = one + [("sms", NOON - timedelta(days=6, hours=23))]
    assert decide(recipient(), AD_SMS, NOON, one, [TWO_PER_WEEK]).action == "send"
    capped = decide(recipient(), AD_SMS, NOON, two, [TWO_PER_WEEK])
    assert capped.action == "drop" and capped.reasons[0].startswith("frequency cap: 2 of 2 sms")


def test_send_exactly_one_period_ago_no_longer_counts():
    sends = [("sms", NOON - timedelta(days=1)), ("sms", NOON - timedelta(days=7))]
    assert decide(recipient(), AD_SMS, NOON, sends, [TWO_PER_WEEK]).action == "send"


def test_cap_counts_only_its_channel():
    sends = [("email", NOON - timedelta(days=1)), ("email", NOON - timedelta(days=2))]
    assert decide(recipient(), AD_SMS, NOON, sends, [TWO_PER_WEEK]).action == "send"


def test_caps_skip_transactional_unless_asked():
    sends = [("sms", NOON - timedelta(hours=1))] * 5
    assert decide(recipient(), NOTICE_SMS, NOON, sends, [TWO_PER_WEEK]).action == "send"
    strict = replace(TWO_PER_WEEK, applies_to_transactional=True)
    assert decide(recipient(), NOTICE_SMS, NOON, sends, [strict]).action == "drop"


def test_cap_checked_before_night_deferral():
    two = [("sms", NOON - timedelta(days=1))] * 2
    assert decide(recipient(), AD_SMS, kst(2024, 6, 3, 22), two, [TWO_PER_WEEK]).action == "drop"


# --- advertising text --------------------------------------------------------------------------------

def test_prepare_adds_prefix_sender_contact_and_opt_out():
    prepared = prepare_advertising_text(AD_SMS)
    assert prepared.body == "(광고) 골든타임\n봄맞이 20% 할인\n문의 02-123-4567\n무료수신거부 080-123-4567"
    assert prepared.body.startswith("(광고)")


def test_prefix_not_doubled_and_idempotent():
    already = replace(AD_SMS, body="(광고) 골든타임 봄맞이 20% 할인")
    prepared = prepare_advertising_text(already)
    assert prepared.body.count("광고") == 1 and prepared.body.startswith("(광고) 골든타임 봄맞이")
    assert prepare_advertising_text(prepared) == prepared
    assert prepare_advertising_text(prepare_advertising_text(AD_SMS)) == prepare_advertising_text(AD_SMS)
    bracketed = prepare_advertising_text(replace(AD_SMS, body="[광고]봄맞이 할인"))
    assert bracketed.body.startswith("(광고) 골든타임\n봄맞이 할인") and "[광고]" not in bracketed.body


def test_prepare_does_not_repeat_contact_or_opt_out_already_in_body():
    body = "골든타임 봄 세일 문의 02-123-4567 수신거부 080-123-4567"
    assert prepare_advertising_text(replace(AD_SMS, body=body)).body == "(광고) " + body


def test_email_subject_gets_prefix_once():
    email = replace(AD_SMS, channel="email", subject="봄 세일", opt_out_instruction="https://gt.example/u/abc")
    prepared = prepare_advertising_text(email)
    assert prepared.subject == "(광고) 봄 세일"
    assert prepared.body.startswith("(광고)") and prepared.body.endswith("무료수신거부 https://gt.example/u/abc")
    assert prepare_advertising_text(prepared).subject == "(광고) 봄 세일"
    with pytest.raises(ValueError):
        prepare_advertising_text(replace(email, subject=None))


def test_advertising_without_opt_out_or_sender_is_refused():
    with pytest.raises(ValueError, match="opt_out_instruction"):
        prepare_advertising_text(replace(AD_SMS, opt_out_instruction=None))
    with pytest.raises(ValueError, match="sender_name"):
        prepare_advertising_text(replace(AD_SMS, sender_name=" "))


def test_non_advertising_text_unchanged_and_never_marked():
    assert prepare_advertising_text(NOTICE_SMS) is NOTICE_SMS
    with pytest.raises(ValueError):
        prepare_advertising_text(replace(NOTICE_SMS, body="(광고) 주문 안내"))


# --- SMS / LMS by EUC-KR bytes --------------------------------------------------------------------

def test_euc_kr_byte_counts():
    assert sms_byte_length("안녕하세요") == 10  # each Hangul syllable is 2 bytes
    assert sms_byte_length("abc 123") == 7
    assert sms_byte_length("(광고) 할인") == 11
    assert sms_byte_length("똠햏") == 4  # syllables outside KS X 1001 still count 2 (CP949)


def test_sms_lms_boundaries():
    assert sms_kind("가" * 45) == "SMS"  # 90 bytes
    assert sms_kind("가" * 45 + "a") == "LMS"  # 91 bytes
    assert sms_kind("a" * 90) == "SMS"
    assert sms_kind("가" * 1000) == "LMS"  # 2,000 bytes
    with pytest.raises(ValueError, match="2000"):
        sms_kind("가" * 1000 + "a")


def test_subject_makes_lms_and_is_limited_to_40_bytes():
    assert sms_kind("짧은 본문", subject="가" * 20) == "LMS"
    with pytest.raises(ValueError, match="subject"):
        sms_kind("짧은 본문", subject="가" * 20 + "a")


def test_unencodable_characters_are_named():
    with pytest.raises(ValueError) as error:
        sms_kind("할인 🎉 오늘만 🎉")
    assert "U+1F389" in str(error.value) and str(error.value).count("U+1F389") == 1
