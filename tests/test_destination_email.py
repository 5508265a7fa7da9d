"""SMTP destination against a real aiosmtpd server on loopback, and the one-click unsubscribe app."""

from __future__ import annotations

import email
import socket
import threading
import urllib.error
import urllib.request
from email.policy import default as default_policy
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from activations.compliance import AD_PREFIX
from activations.destinations.email import SmtpDestination
from activations.sync import SyncFailed, SyncRow, TransientError, run_sync
from activations.unsubscribe import (UnsubscribeApp, make_token, record_suppression, suppressed_customers,
                                     unsubscribe_url, verify)
from contract_servers import duckdb_con

SECRET = "unsubscribe-secret-for-tests"
SECRET_ENV = "GOLDENTIME_TEST_UNSUBSCRIBE_SECRET"
USER_ENV, PASS_ENV = "GOLDENTIME_TEST_SMTP_USER", "GOLDENTIME_TEST_SMTP_PASSWORD"
SENDER = "Golden Time <news@goldentime.example>"
BASE = "https://unsub.goldentime.example/u"
FIELDS = ["email", "subject", "body_text", "is_advertising", "unsubscribe_url"]


class Mailbox:
    """aiosmtpd handler: stores envelopes; per-address RCPT answers (a list is used up in order)."""

    def __init__(self):
        self.received: list[tuple[str, list[str], bytes]] = []
        self.answers: dict[str, list[str]] = {}
        self.logins: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        queue = self.answers.get(address)
        if queue:
            answer = queue[0] if len(queue) == 1 else queue.pop(0)
            if not answer.startswith("250"):
                return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Message accepted for delivery"

    def messages(self):
        return [email.message_from_bytes(raw, policy=default_policy) for _, _, raw in self.received]


class LoopbackController(Controller):
    """aiosmtpd Controller on an ephemeral port (port=0): read the real port before the self-test."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"mailer" and auth_data.password == b"pa55word"
    if ok:
        server.event_handler.logins.append(auth_data.login.decode())
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp():
    box = Mailbox()
    controller = LoopbackController(box, hostname="127.0.0.1", port=0, authenticator=authenticator,
                                    auth_require_tls=False)
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


con = duckdb_con


def mails(n=5, advertising=True):
    out = []
    for i in range(1, n + 1):
        out.append({
            "customer_id": f"c{i}", "email": f"c{i}@example.com",
            "subject": f"{AD_PREFIX} 골든타임 봄 세일 {i}" if advertising else f"주문 {i} 배송 안내",
            "body_text": f"{AD_PREFIX} 골든타임\n안녕하세요 고객님 {i}, 봄맞이 최대 50% 할인!\n무료수신거부 080-000-0000",
            "is_advertising": advertising,
            "unsubscribe_url": unsubscribe_url(BASE, f"c{i}", "email", SECRET),
        })
    return out


def dest(box, tmp_path, **kw):
    kw.setdefault("journal_path", tmp_path / "journal.log")
    return SmtpDestination("127.0.0.1", box.port, SENDER, **kw)


def run(con, audience, destination, sleeps, fields=FIELDS, **kw):
    return run_sync(con, "spring_sale_email", audience, "customer_id", fields, destination, mode="insert",
                    sleep=sleeps.append, clock=lambda: 0.0, **kw)


def test_advertising_mail_as_received(con, smtp, tmp_path):
    sleeps = []
    report = run(con, mails(3), dest(smtp, tmp_path, batch_size=2), sleeps)
    assert (report.added, report.rejected, report.requests) == (3, 0, 2) and sleeps == []
    assert [(frm, to) for frm, to, _ in smtp.received] == [
        ("news@goldentime.example", [f"c{i}@example.com"]) for i in (1, 2, 3)]
    first = smtp.messages()[0]
    assert first["Subject"] == f"{AD_PREFIX} 골든타임 봄 세일 1"
    assert first["To"] == "c1@example.com" and first["From"] == SENDER
    assert first["List-Unsubscribe"] == f"<{unsubscribe_url(BASE, 'c1', 'email', SECRET)}>"
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    ikey = con.execute("SELECT idempotency_key FROM activations.sync_log WHERE key = 'c1'").fetchone()[0]
    assert first["Message-ID"] == f"<{ikey}@goldentime.example>"
    assert first.get_content_charset() == "utf-8"
    # base64 of the canonical (CRLF) text: Korean UTF-8 survives any relay, 8BITMIME or not.
    assert first["Content-Transfer-Encoding"] == "base64"
    assert first.get_content().replace("\r\n", "\n") == mails(1)[0]["body_text"] + "\n"
    raw_headers = smtp.received[0][2].split(b"\r\n\r\n", 1)[0]
    assert b"List-Unsubscribe: <https://unsub.goldentime.example/u?t=v1." in raw_headers  # not RFC 2047-encoded
    assert "c1@example.com" not in first["List-Unsubscribe"]  # no PII in the link


def test_last_guard_rejects_unmarked_advertising_before_sending(con, smtp, tmp_path):
    audience = mails(5)
    audience[0]["subject"] = "골든타임 봄 세일"                 # no (광고)
    audience[1]["unsubscribe_url"] = None                      # no opt-out link
    audience[2]["unsubscribe_url"] = "http://unsub.example/u"  # not https
    audience[4]["email"] = "고객@example.com"                   # would need SMTPUTF8
    report = run(con, audience, dest(smtp, tmp_path), [], max_rejected_share=1.0)
    assert (report.added, report.rejected) == (1, 4)
    assert dict(report.rejected_rows) == {
        "c1": f'advertising subject must start with "{AD_PREFIX}"',
        "c2": "advertising email needs an https unsubscribe_url",
        "c3": "unsubscribe_url must be an https URL",
        "c5": "non-ASCII email address (SMTPUTF8 is not supported)"}
    assert [to for _, to, _ in smtp.received] == [["c4@example.com"]]


def test_transactional_mail_has_no_ad_marking_and_html_alternative(con, smtp, tmp_path):
    audience = mails(2, advertising=False)
    audience[0]["unsubscribe_url"] = None
    audience[1]["subject"] = f"{AD_PREFIX} 주문 안내"  # mislabelled: refused
    audience[0]["body_html"] = "<p>주문하신 상품이 발송되었습니다</p>"
    audience[1]["body_html"] = None
    report = run(con, audience, dest(smtp, tmp_path), [], fields=FIELDS + ["body_html"], max_rejected_share=1.0)
    assert dict(report.rejected_rows) == {"c2": f'a non-advertising email must not carry "{AD_PREFIX}"'}
    (msg,) = smtp.messages()
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    assert msg.get_body(("html",)).get_content().strip() == "<p>주문하신 상품이 발송되었습니다</p>"
    assert "주문 1 배송 안내" == msg["Subject"]


def test_550_for_one_recipient_rejects_only_that_row(con, smtp, tmp_path):
    smtp.answers["c2@example.com"] = ["550 5.1.1 <c2@example.com>: Recipient address rejected: User unknown"]
    report = run(con, mails(3), dest(smtp, tmp_path), [], max_rejected_share=0.5)
    assert (report.added, report.rejected) == (2, 1)
    assert report.rejected_rows == [
        ("c2", "SMTP 550 5.1.1 <c2@example.com>: Recipient address rejected: User unknown")]
    assert [to for _, to, _ in smtp.received] == [["c1@example.com"], ["c3@example.com"]]


def test_temporary_4xx_retries_the_batch_without_resending(con, smtp, tmp_path):
    smtp.answers["c3@example.com"] = ["451 4.7.1 Greylisted, try again later", "250 OK"]
    sleeps = []
    report = run(con, mails(4), dest(smtp, tmp_path), sleeps)
    assert (report.added, report.rejected, report.requests) == (4, 0, 2)
    assert len(sleeps) == 1
    assert sorted(to[0] for _, to, _ in smtp.received) == [f"c{i}@example.com" for i in (1, 2, 3, 4)]


class Crash(BaseException):
    """Stands for the process being killed (not an Exception: nothing may swallow it)."""


class CrashAfterJournal(SmtpDestination):
    """Killed right after the 3rd message was accepted and journaled."""

    def _record_delivery(self, row, message_id):
        super()._record_delivery(row, message_id)
        self.count = getattr(self, "count", 0) + 1
        if self.count == 3:
            raise Crash()


class CrashBeforeJournal(SmtpDestination):
    """Killed after the server accepted the 3rd message but before its journal line: the window."""

    def _record_delivery(self, row, message_id):
        self.count = getattr(self, "count", 0) + 1
        if self.count == 3:
            raise Crash()
        super()._record_delivery(row, message_id)


def test_crash_after_three_of_five_then_rerun_delivers_each_exactly_once(con, smtp, tmp_path):
    journal = tmp_path / "journal.log"
    with pytest.raises(Crash):
        run(con, mails(5), CrashAfterJournal("127.0.0.1", smtp.port, SENDER, journal_path=journal), [])
    assert len(smtp.received) == 3
    assert con.execute("SELECT status FROM activations.sync_runs").fetchall() == [("interrupted",)]
    assert len(journal.read_text().splitlines()) == 3
    # A new process: a fresh destination reading the same journal; the engine re-plans all 5.
    report = run(con, mails(5), dest(smtp, tmp_path, journal_path=journal), [])
    assert (report.added, report.rejected) == (5, 0)
    recipients = [to[0] for _, to, _ in smtp.received]
    assert sorted(recipients) == [f"c{i}@example.com" for i in range(1, 6)]  # exactly once each
    ids = [m["Message-ID"] for m in smtp.messages()]
    assert len(set(ids)) == 5
    # Nothing left to send afterwards.
    assert run(con, mails(5), dest(smtp, tmp_path, journal_path=journal), []).processed == 0
    assert len(smtp.received) == 5


def test_documented_window_crash_before_journal_write_duplicates_one_message(con, smtp, tmp_path):
    journal = tmp_path / "journal.log"
    with pytest.raises(Crash):
        run(con, mails(5), CrashBeforeJournal("127.0.0.1", smtp.port, SENDER, journal_path=journal), [])
    run(con, mails(5), dest(smtp, tmp_path, journal_path=journal), [])
    recipients = [to[0] for _, to, _ in smtp.received]
    assert len(recipients) == 6 and recipients.count("c3@example.com") == 2
    dup = [m["Message-ID"] for m in smtp.messages() if m["To"] == "c3@example.com"]
    assert dup[0] == dup[1]  # same Message-ID: receivers that deduplicate on it drop the copy


def test_credentials_from_env_and_auth_failure(con, smtp, tmp_path, monkeypatch):
    monkeypatch.setenv(USER_ENV, "mailer")
    monkeypatch.setenv(PASS_ENV, "wrong-password")
    d = dest(smtp, tmp_path, username_env=USER_ENV, password_env=PASS_ENV)
    with pytest.raises(SyncFailed) as info:
        run(con, mails(2), d, [])
    assert info.value.report.rejected == 2 and smtp.received == []
    assert all(msg.startswith("authentication failed: SMTP 535") for _, msg in info.value.report.rejected_rows)
    assert all("wrong-password" not in msg for _, msg in info.value.report.rejected_rows)
    monkeypatch.setenv(PASS_ENV, "pa55word")
    report = run(con, mails(2), d, [])
    assert report.added == 2 and smtp.logins == ["mailer"] and len(smtp.received) == 2
    monkeypatch.delenv(PASS_ENV)
    with pytest.raises(RuntimeError, match=PASS_ENV):
        d.send([SyncRow("c9", "add", mails(1)[0], "h", "k9")])
    with pytest.raises(ValueError, match="clear text"):
        SmtpDestination("smtp.example.com", 25, SENDER, USER_ENV, PASS_ENV, journal_path=tmp_path / "j")


def test_connection_refused_is_transient(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    d = SmtpDestination("127.0.0.1", port, SENDER, journal_path=tmp_path / "j", timeout=2)
    with pytest.raises(TransientError):
        d.send([SyncRow("c1", "add", mails(1)[0], "h", "k1")])


# --- one-click unsubscribe ----------------------------------------------------------------------

class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def unsubscribe_server(con, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    calls = []

    def record(customer_id, channel, reason):
        calls.append((customer_id, channel, reason))
        record_suppression(con.cursor(), customer_id, channel, reason)

    server = make_server("127.0.0.1", 0, UnsubscribeApp(SECRET_ENV, record), WSGIServer, QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", calls
    server.shutdown()
    server.server_close()


def http(url, data=None, headers=None):
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def loopback(link, origin):
    parts = urlsplit(link)
    return f"{origin}{parts.path}?{parts.query}"


def test_one_click_post_from_the_received_header_suppresses_at_once(con, smtp, tmp_path, unsubscribe_server):
    origin, calls = unsubscribe_server
    run(con, mails(2), dest(smtp, tmp_path), [])
    link = smtp.messages()[1]["List-Unsubscribe"].strip("<>")
    assert suppressed_customers(con, "email") == set()
    # A link scanner's GET shows the confirmation page and changes nothing.
    status, page, headers = http(loopback(link, origin))
    assert status == 200 and 'method="post"' in page and calls == []
    assert "Set-Cookie" not in headers
    # The mail provider's one-click POST (RFC 8058): no cookie, form body.
    status, text, headers = http(loopback(link, origin), b"List-Unsubscribe=One-Click",
                                 {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and "Set-Cookie" not in headers
    assert suppressed_customers(con, "email") == {"c2"} and suppressed_customers(con, "sms") == set()
    assert calls == [("c2", "email", "unsubscribe: one-click (RFC 8058)")]
    record_suppression(con, "c1", "all", "complaint")
    assert suppressed_customers(con, "sms") == {"c1"}
    assert suppressed_customers(con, "email") == {"c1", "c2"}


def test_bad_signature_is_400_and_records_nothing(con, unsubscribe_server):
    origin, calls = unsubscribe_server
    forged = make_token("c1", "email", "another-secret")
    good = make_token("c1", "email", SECRET)
    tampered = good.replace(good.split(".")[1], make_token("c2", "email", SECRET).split(".")[1])
    for token in (forged, tampered, "garbage", ""):
        status, _, _ = http(f"{origin}/u?t={token}", b"List-Unsubscribe=One-Click")
        assert status == 400
    status, _, _ = http(f"{origin}/u?t={good}", b"something=else")  # signed, but not one-click
    assert status == 400
    boundary = "XyZ"
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n"
                 f"One-Click\r\n--{boundary}--\r\n").encode()
    status, _, _ = http(f"{origin}/u?t={good}", multipart, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200 and calls == [("c1", "email", "unsubscribe: one-click (RFC 8058)")]
    assert suppressed_customers(con, "email") == {"c1"}


def test_token_round_trip_carries_no_pii():
    link = unsubscribe_url("https://example.com/unsub?lang=ko", "cust-42", "sms", SECRET)
    assert link.startswith("https://example.com/unsub?lang=ko&t=v1.")
    token = urlsplit(link).query.split("t=")[1]
    assert verify(token, SECRET) == ("cust-42", "sms")
    assert verify(token, ["old", SECRET]) == ("cust-42", "sms")  # rotation: old and new secrets
    assert verify(token, "other") is None
    with pytest.raises(ValueError):
        unsubscribe_url("http://example.com/u", "c1", "email", SECRET)
