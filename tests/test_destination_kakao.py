"""Kakao Alimtalk (NHN Cloud v2.3) through the real sync engine against a loopback NHN Bizmessage."""

from __future__ import annotations

import random

import pytest

from activations.destinations.http import HttpError, MissingCredential
from activations.destinations.kakao import AlimtalkDestination, korean_national_number, request_idempotency_key
from activations.sync import SyncRow, run_sync
from contract_servers import AlimtalkServer, FakeTime, duckdb_con, env_fixture, sync_log, ticking_clock

APPKEY, SECRET, SENDER_KEY = "nhn-appkey-0001", "nhn-secret-key-for-tests", "f" * 40
ENVS = {"appkey": "GT_TEST_ALIMTALK_APPKEY", "secret": "GT_TEST_ALIMTALK_SECRET", "sender": "GT_TEST_KAKAO_SENDER_KEY"}
SEND_NO = "0215440000"
TEMPLATES = {
    "ORDER_SHIPPED": {"content": "#{name}님, 주문 #{order_id} 상품이 발송되었습니다."},
    "SALE_NOTICE": {"content": "#{name}님, 주말 특가 50% 할인!", "promotional": True},
}
FIELDS = ["phone", "template_code", "template_parameters", "is_advertising", "fallback_text", "fallback_subject"]


creds = env_fixture(**{ENVS["appkey"]: APPKEY, ENVS["secret"]: SECRET, ENVS["sender"]: SENDER_KEY})
con = duckdb_con


def server(**kw):
    return AlimtalkServer(APPKEY, SECRET, SENDER_KEY, TEMPLATES, registered_send_nos=[SEND_NO], **kw)


def dest(srv, **kw):
    return AlimtalkDestination(srv.base_url, ENVS["appkey"], ENVS["secret"], ENVS["sender"],
                               resend_send_no=SEND_NO, **kw)


def orders(n, **over):
    rows = []
    for i in range(1, n + 1):
        row = {"order_id": f"o{i}", "phone": f"010-1234-{i:04d}", "template_code": "ORDER_SHIPPED",
               "template_parameters": {"name": "김민준", "order_id": f"o{i}"}, "is_advertising": False,
               "fallback_text": None, "fallback_subject": None}
        row.update(over)
        rows.append(row)
    return rows


def sync(con, rows, destination, fake=None, **kw):
    fake = fake or FakeTime()
    return run_sync(con, "alimtalk_shipping", rows, "order_id", FIELDS, destination, mode="insert",
                    sleep=fake.sleep, clock=ticking_clock(), **kw)


class CrashAfterSend:
    """Wraps a destination: the first batch reaches the vendor, then the process 'dies' before the
    engine can record the outcome in the ledger."""

    def __init__(self, inner):
        self.inner, self.name, self.batch_size = inner, inner.name, inner.batch_size
        self.max_requests_per_second = None
        self.crashed = False

    def send(self, rows):
        results = self.inner.send(rows)
        if not self.crashed:
            self.crashed = True
            raise KeyboardInterrupt("killed after the vendor accepted the batch")
        return results


def test_phone_normalisation():
    assert korean_national_number("+82 10-1234-5678") == "01012345678"
    assert korean_national_number("010.1234.5678") == "01012345678"
    assert korean_national_number("+1 650 555 1212") is None and korean_national_number(None) is None


def test_sends_with_secret_sender_key_template_and_idempotency_key(con, creds):
    with server() as nhn:
        report = sync(con, orders(3), dest(nhn))
        assert (report.added, report.rejected, report.requests) == (3, 0, 1)
        call = nhn.calls[0]
        assert call.path == f"/alimtalk/v2.3/appkeys/{APPKEY}/messages"
        assert call.headers["X-Secret-Key"] == SECRET
        assert call.body["senderKey"] == SENDER_KEY and call.body["templateCode"] == "ORDER_SHIPPED"
        assert call.body["recipientList"][0] == {
            "recipientNo": "01012340001", "templateParameter": {"name": "김민준", "order_id": "o1"},
            "recipientGroupingKey": "o1"}
        keys = [r[0] for r in con.execute("SELECT idempotency_key FROM activations.sync_log ORDER BY key").fetchall()]
        rows = [SyncRow(f"o{i}", "add", {}, "", k) for i, k in enumerate(keys, start=1)]
        assert call.headers["X-NC-API-IDEMPOTENCY-KEY"] == request_idempotency_key(rows)
        assert [d["content"] for d in nhn.delivered][0] == "김민준님, 주문 o1 상품이 발송되었습니다."
        assert sync(con, orders(3), dest(nhn)).requests == 0  # insert mode: never twice


def test_advertising_rows_are_rejected_before_sending(con, creds):
    with server() as nhn:
        report = sync(con, orders(2, is_advertising=True), dest(nhn), max_rejected_share=1.0)
    assert report.rejected == 2 and nhn.calls == []
    assert "Alimtalk carries information only" in sync_log(con, "alimtalk_shipping")["o1"][1]


def test_missing_template_variable_rejects_only_that_recipient(con, creds):
    rows = orders(3)
    rows[1]["template_parameters"] = {"name": "이서연"}
    with server() as nhn:
        report = sync(con, rows, dest(nhn), max_rejected_share=0.5)
    assert (report.added, report.rejected) == (2, 1)
    assert sync_log(con, "alimtalk_shipping")["o2"] == ("rejected", "resultCode -1032: missing template parameter #{order_id}")
    assert [d["recipientNo"] for d in nhn.delivered] == ["01012340001", "01012340003"]


def test_promotional_or_unknown_template_is_refused_by_nhn(con, creds):
    rows = orders(1, template_code="SALE_NOTICE") + [
        {**orders(2)[1], "template_code": "NOT_REGISTERED"}]
    with server() as nhn:
        report = sync(con, rows, dest(nhn), max_rejected_share=1.0)
    assert report.rejected == 2 and nhn.delivered == [] and len(nhn.calls) == 2
    log = sync_log(con, "alimtalk_shipping")
    assert "Alimtalk carries information only" in log["o1"][1] and "(resultCode -1031)" in log["o1"][1]
    assert "not registered" in log["o2"][1]


def test_sms_or_lms_fallback_for_a_non_kakao_user_is_recorded(con, creds):
    rows = orders(3)
    rows[0]["fallback_text"] = "주문 o1 발송 완료"                  # fits an SMS (17 bytes)
    rows[1]["fallback_text"] = "주문 o2 상품이 발송되었습니다. " * 5   # > 90 bytes: LMS
    rows[1]["fallback_subject"] = "발송 안내"
    non_kakao = ["01012340001", "01012340002", "01012340003"]
    with server(non_kakao_users=non_kakao) as nhn:
        report = sync(con, rows, dest(nhn), max_rejected_share=0.5)
    assert (report.added, report.rejected) == (2, 1)
    resend = nhn.calls[0].body["recipientList"][1]["resendParameter"]
    assert resend == {"isResend": True, "resendType": "LMS", "resendContent": rows[1]["fallback_text"],
                      "resendSendNo": SEND_NO, "resendTitle": "발송 안내"}
    assert [(f["recipientNo"], f["type"]) for f in nhn.fallbacks] == [("01012340001", "SMS"), ("01012340002", "LMS")]
    log = sync_log(con, "alimtalk_shipping")
    assert log["o1"] == ("ok", "not a KakaoTalk user; resent as SMS (resendStatus: success)")
    assert log["o3"][0] == "rejected" and "not a KakaoTalk user" in log["o3"][1]
    assert nhn.delivered == []


def test_fallback_text_that_fits_no_lms_is_rejected_before_sending(con, creds):
    with server() as nhn:
        report = sync(con, orders(1, fallback_text="가" * 1001), dest(nhn), max_rejected_share=1.0)
    assert report.rejected == 1 and nhn.calls == []
    assert "2002 bytes" in sync_log(con, "alimtalk_shipping")["o1"][1]


def test_crash_after_the_vendor_accepted_then_resume_delivers_each_message_once(con, creds):
    with server() as nhn:
        with pytest.raises(KeyboardInterrupt):
            sync(con, orders(3), CrashAfterSend(dest(nhn, batch_size=2)))
        assert len(nhn.delivered) == 2  # o1, o2 went out; the ledger never heard of it
        assert con.execute("SELECT status FROM activations.sync_runs").fetchone()[0] == "interrupted"
        report = sync(con, orders(3), dest(nhn, batch_size=2))  # a fresh process resumes
    assert (report.added, report.rejected) == (3, 0)
    assert [c.status for c in nhn.calls] == [200, 200, 200]
    key = "X-NC-API-IDEMPOTENCY-KEY"
    assert nhn.calls[1].headers[key] == nhn.calls[0].headers[key]  # same rows, same key: refused
    assert sorted(d["recipientNo"] for d in nhn.delivered) == ["01012340001", "01012340002", "01012340003"]
    log = sync_log(con, "alimtalk_shipping")
    assert log["o1"] == ("ok", "already delivered (NHN refused the repeated idempotency key)")
    assert log["o3"] == ("ok", "")


def test_lost_answer_then_retry_is_refused_as_duplicate_and_counted_once(con, creds):
    fake = FakeTime()
    with server() as nhn:
        nhn.lose_responses = 1
        report = sync(con, orders(2), dest(nhn), fake, rng=random.Random(3))
    assert report.added == 2 and [c.status for c in nhn.calls] == [504, 200]
    assert len(nhn.delivered) == 2 and len(fake.sleeps) == 1
    assert sync_log(con, "alimtalk_shipping")["o1"][1].startswith("already delivered")


def test_more_than_1000_recipients_are_split(creds):
    rows = [SyncRow(r["order_id"], "add", r, "h", f"k{i}") for i, r in enumerate(orders(1001))]
    with server() as nhn:
        destination = dest(nhn)
        assert destination.batch_size == 1000  # the engine never hands over more
        results = destination.send(rows)       # and a bigger batch is split all the same
    assert [r.status for r in results] == ["ok"] * 1001
    assert [len(c.body["recipientList"]) for c in nhn.calls] == [1000, 1]


def test_wrong_secret_is_a_clear_401_and_credentials_come_from_env(con, creds, monkeypatch):
    monkeypatch.setenv(ENVS["secret"], "wrong-secret-value")
    with server() as nhn:
        with pytest.raises(HttpError) as info:
            sync(con, orders(1), dest(nhn))
        assert info.value.status == 401 and "Invalid appkey or secret key" in str(info.value)
        assert "wrong-secret-value" not in str(info.value) and APPKEY not in str(info.value)
        monkeypatch.setenv(ENVS["sender"], "short")
        with pytest.raises(ValueError, match=ENVS["sender"]) as bad:
            dest(nhn).send([SyncRow("o1", "add", orders(1)[0], "h", "k")])
        assert "short" not in str(bad.value)
        monkeypatch.delenv(ENVS["appkey"])
        with pytest.raises(MissingCredential, match=ENVS["appkey"]):
            dest(nhn).send([SyncRow("o1", "add", orders(1)[0], "h", "k")])
    assert nhn.delivered == []
