"""NHN Cloud SMS v3.0 through the real sync engine against a loopback NHN SMS (bytes counted in CP949)."""

from __future__ import annotations

import random

import pytest

from activations.compliance import Message, prepare_advertising_text
from activations.destinations.http import HttpError, post_json
from activations.destinations.sms import SenderNumberNotRegistered, SmsDestination
from activations.sync import SyncRow, run_sync
from contract_servers import NHN_BYTE_LIMIT, FakeTime, SmsServer, duckdb_con, env_fixture, sync_log, ticking_clock

APPKEY, SECRET, SEND_NO = "nhn-sms-appkey-77", "nhn-sms-secret-for-tests", "02-1544-0000"
APPKEY_ENV, SECRET_ENV = "GT_TEST_SMS_APPKEY", "GT_TEST_SMS_SECRET"
FIELDS = ["phone", "text", "subject", "is_advertising"]


creds = env_fixture(**{APPKEY_ENV: APPKEY, SECRET_ENV: SECRET})
con = duckdb_con


def server(**kw):
    return SmsServer(APPKEY, SECRET, registered_send_nos=["0215440000"], **kw)


def dest(srv, send_no=SEND_NO, **kw):
    return SmsDestination(srv.base_url, APPKEY_ENV, SECRET_ENV, send_no, **kw)


def message(key, text, phone=None, subject=None, ad=False):
    n = int("".join(ch for ch in key if ch.isdigit()) or 0)
    return {"message_id": key, "phone": phone or f"010-5555-{n:04d}", "text": text, "subject": subject,
            "is_advertising": ad}


def sync(con, rows, destination, fake=None, **kw):
    fake = fake or FakeTime()
    return run_sync(con, "sms_campaign", rows, "message_id", FIELDS, destination, mode="insert",
                    sleep=fake.sleep, clock=ticking_clock(), **kw)


def ad_text(body):
    return prepare_advertising_text(Message("sms", True, body, sender_name="골든타임", sender_contact="02-1544-0000",
                                            opt_out_instruction="080-123-4567")).body


def test_90_and_91_bytes_2000_and_2001_bytes_of_korean(con, creds):
    rows = [message("m1", "가" * 45), message("m2", "가" * 45 + "a"),
            message("m3", "가" * 1000), message("m4", "가" * 1000 + "a")]
    with server() as nhn:
        report = sync(con, rows, dest(nhn), max_rejected_share=0.3)
    assert (report.added, report.rejected) == (3, 1)
    sent = {s["recipientNo"]: (s["endpoint"], len(s["body"].encode("cp949"))) for s in nhn.sent}
    assert sent == {"01055550001": ("sms", 90), "01055550002": ("mms", 91), "01055550003": ("mms", 2000)}
    assert sync_log(con, "sms_campaign")["m4"] == (
        "rejected", "cannot be sent as SMS/LMS: text is 2001 bytes; an LMS holds at most 2000")
    assert [c.path.rsplit("/", 1)[1] for c in nhn.calls] == ["sms", "mms", "mms"]
    assert all(c.headers["X-Secret-Key"] == SECRET and c.body["sendNo"] == "0215440000" for c in nhn.calls)


def test_the_server_counts_euc_kr_bytes_itself(creds):
    headers = {"X-Secret-Key": SECRET}
    with server() as nhn:
        url = f"{nhn.base_url}/sms/v3.0/appKeys/{APPKEY}/sender/"
        body = {"sendNo": "0215440000", "recipientList": [{"recipientNo": "01055550001"}]}
        over = post_json(url + "sms", {**body, "body": "가" * 45 + "a"}, headers).json["header"]
        assert (over["isSuccessful"], over["resultCode"]) == (False, NHN_BYTE_LIMIT)
        assert post_json(url + "sms", {**body, "body": "가" * 45}, headers).json["header"]["isSuccessful"]
        assert not post_json(url + "mms", {**body, "body": "가" * 1001, "title": "t"}, headers).json["header"]["isSuccessful"]
        assert not post_json(url + "mms", {**body, "body": "x", "title": "가" * 21}, headers).json["header"]["isSuccessful"]
        assert not post_json(url + "sms", {**body, "body": "😀"}, headers).json["header"]["isSuccessful"]
        assert not post_json(url + "ad-sms", {**body, "body": "할인 행사"}, headers).json["header"]["isSuccessful"]
    assert len(nhn.sent) == 1


def test_unencodable_characters_are_rejected_before_sending(con, creds):
    with server() as nhn:
        report = sync(con, [message("m1", "배송 완료 😀")], dest(nhn), max_rejected_share=1.0)
    assert report.rejected == 1 and nhn.calls == []
    assert "'😀' (U+1F600)" in sync_log(con, "sms_campaign")["m1"][1]


def test_advertising_goes_to_the_ad_endpoint_only_when_marked(con, creds):
    rows = [message("m1", ad_text("주말 특가 30% 할인"), ad=True),
            message("m2", ad_text("신상품 안내 " * 10), ad=True),
            message("m3", "주말 특가 30% 할인", ad=True),                     # no (광고)
            message("m4", "(광고) 주말 특가 30% 할인", ad=True),               # no opt-out line
            message("m5", "(광고) 주문하신 상품이 발송되었습니다")]              # notice marked as an ad
    with server() as nhn:
        report = sync(con, rows, dest(nhn), max_rejected_share=0.7)
    assert (report.added, report.rejected) == (2, 3)
    assert [(s["recipientNo"], s["endpoint"]) for s in nhn.sent] == [("01055550001", "ad-sms"), ("01055550002", "ad-mms")]
    assert nhn.sent[0]["body"].startswith("(광고) 골든타임") and "무료수신거부 080-123-4567" in nhn.sent[0]["body"]
    assert nhn.sent[1]["title"].startswith("(광고)")
    log = sync_log(con, "sms_campaign")
    assert log["m3"][1] == 'advertising text must start with "(광고)"'
    assert "무료수신거부" in log["m4"][1]
    assert log["m5"][1] == 'a non-advertising message must not carry "(광고)"'


def test_rows_are_grouped_by_kind_and_text_into_requests_of_at_most_1000(creds):
    same = "주문하신 상품이 발송되었습니다"
    rows = [SyncRow(f"m{i}", "add", message(f"m{i}", same, phone=f"0105{i:07d}"), "h", f"k{i}") for i in range(1001)]
    rows.append(SyncRow("lms", "add", message("lms", "긴 안내 " * 20, subject="안내"), "h", "k-lms"))
    with server() as nhn:
        destination = dest(nhn)
        results = destination.send(rows)
    assert [r.status for r in results] == ["ok"] * 1002
    assert [(c.path.rsplit("/", 1)[1], len(c.body["recipientList"])) for c in nhn.calls] == [
        ("sms", 1000), ("sms", 1), ("mms", 1)]
    assert nhn.calls[2].body["title"] == "안내" and "title" not in nhn.calls[0].body


def test_lms_without_subject_gets_its_first_line_as_title(con, creds):
    text = "배송 안내: 고객님의 주문이 오늘 출발했습니다 확인 부탁드립니다\n" + "상세 " * 30
    with server() as nhn:
        sync(con, [message("m1", text)], dest(nhn))
    title = nhn.sent[0]["title"]
    assert text.startswith(title) and len(title.encode("cp949")) <= 40


def test_unregistered_sender_number_is_a_clear_error(con, creds):
    with server() as nhn:
        with pytest.raises(SenderNumberNotRegistered) as info:
            sync(con, [message("m1", "배송 완료")], dest(nhn, send_no="010-9999-9999"))
    text = str(info.value)
    assert "01099999999" in text and "pre-register" in text and SECRET not in text and APPKEY not in text
    assert nhn.sent == []


def test_per_recipient_refusal_rejects_only_that_row_and_a_rerun_sends_nothing(con, creds):
    rows = [message(f"m{i}", "배송 완료") for i in range(1, 4)]
    with server(refused_numbers=["01055550002"]) as nhn:
        report = sync(con, rows, dest(nhn), max_rejected_share=0.5)
        assert (report.added, report.rejected, report.requests) == (2, 1, 1)
        assert sync_log(con, "sms_campaign")["m2"] == ("rejected", "resultCode -2050: recipient refused (080 opt-out)")
        assert sync(con, rows[:1] + rows[2:], dest(nhn)).requests == 0


def test_5xx_retried_and_wrong_secret_is_a_clear_401(con, creds, monkeypatch):
    fake = FakeTime()
    with server() as nhn:
        nhn.fail_next(1, status=502)
        report = sync(con, [message("m1", "배송 완료")], dest(nhn), fake, rng=random.Random(5))
        assert report.added == 1 and nhn.statuses() == [502, 200] and len(fake.sleeps) == 1
        monkeypatch.setenv(SECRET_ENV, "wrong-sms-secret")
        with pytest.raises(HttpError) as info:
            sync(con, [message("m2", "배송 완료")], dest(nhn))
    assert info.value.status == 401 and "Invalid appKey or secret key" in str(info.value)
    assert "wrong-sms-secret" not in str(info.value) and APPKEY not in str(info.value)
