"""Email destination over SMTP (smtplib): one message per row, never sent twice across a crash.

Payload keys (the sync's mapped fields):

- ``email``          recipient address (required)
- ``subject``        subject line (required); advertising mail must start with "(광고)"
- ``body_text``      plain-text body (required), sent as UTF-8
- ``body_html``      optional HTML alternative (multipart/alternative)
- ``is_advertising`` bool (required, no default: the destination will not guess)
- ``unsubscribe_url`` https URL of the one-click unsubscribe endpoint (required for advertising;
  see ``activations.unsubscribe.unsubscribe_url``). When present the message carries
  ``List-Unsubscribe: <url>`` and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058).

The engine's compliance layer (``activations.compliance``) marks advertising text and builds the
unsubscribe link; this destination is the last guard and rejects, before anything is sent, an
advertising message whose subject does not start with "(광고)" or that has no https unsubscribe URL,
and a non-advertising message that carries "(광고)". Use the sync mode ``insert`` for messages:
a changed payload is a new message. A ``remove`` row has nothing to unsend and is reported ok.

Outcomes: a per-recipient permanent refusal (5xx at RCPT or DATA, e.g. ``550 5.1.1``) rejects that
row with the SMTP code; a temporary one (4xx), a refused/dropped connection or a time-out raises
``TransientError`` so the engine retries the batch; an authentication failure (535) rejects the
batch's rows. Credentials are read from the environment variables *named* in the constructor at
send time and are never logged nor put in messages.

Exactly-once across crashes. SMTP servers do not deduplicate, so the destination keeps a delivery
journal: an append-only file (one line ``<idempotency key>\\t<Message-ID>\\t<UTC time>`` per message
the server acknowledged with 2xx), written and fsynced immediately after each acknowledgement.
A row whose idempotency key is journaled is skipped and reported ok, so a batch retried after a
transient error, or a sync re-run after the process was killed, does not send it again.
The remaining window, honestly: if the process dies (or the connection drops) after the server
accepted the message (end of DATA answered 250) but before the journal line reached the disk, the
re-run sends that one message again. The window is one message per crash, a few milliseconds wide;
the duplicate carries the same ``Message-ID`` (derived from the idempotency key), which lets
receiving systems that deduplicate on it drop it. Closing it fully would need the server's help
(e.g. a provider API with idempotency keys), which plain SMTP does not offer.
The journal only grows; lines older than the retention of the sync ledger can be pruned offline.
"""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import formatdate, parseaddr
from pathlib import Path
from urllib.parse import urlsplit

from activations.compliance import AD_PREFIX
from activations.identifiers import normalize_email_meta
from activations.sync.destination import RowResult, SyncRow, TransientError

try:  # POSIX: serialise appends from concurrent writers of the same journal
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = ["SmtpDestination", "DeliveryJournal", "PAYLOAD_KEYS"]

PAYLOAD_KEYS = ("email", "subject", "body_text", "body_html", "is_advertising", "unsubscribe_url")
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_RAW_HEADERS = {"list-unsubscribe"}
_MAX_URL = 900  # the header line must stay under SMTP's 998 characters


class _Policy(EmailPolicy):
    """SMTP policy that writes List-Unsubscribe as is.

    The stock policy folds a long header without spaces into RFC 2047 encoded words, which turns
    ``<https://...>`` into ``=?utf-8?q?=3Chttps...`` that mail clients do not read as a URL.
    """

    def fold(self, name, value):
        if name.lower() in _RAW_HEADERS:
            return f"{name}: {value}{self.linesep}"
        return super().fold(name, value)

    def fold_binary(self, name, value):
        if name.lower() in _RAW_HEADERS:
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


_POLICY = _Policy(linesep="\r\n")


class DeliveryJournal:
    """Append-only, fsynced file of idempotency keys the SMTP server acknowledged."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._keys: set[str] | None = None

    def load(self) -> set[str]:
        keys: set[str] = set()
        if self.path.exists():
            with open(self.path, "r", encoding="utf-8") as fh:
                for line in fh:
                    if not line.endswith("\n"):
                        continue  # torn last line: its write never completed
                    key = line.split("\t", 1)[0].strip()
                    if key:
                        keys.add(key)
        self._keys = keys
        return keys

    def __contains__(self, key: str) -> bool:
        if self._keys is None:
            self.load()
        return key in self._keys

    def append(self, key: str, message_id: str) -> None:
        if self._keys is None:
            self.load()
        created = not self.path.exists()
        if created:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        line = f"{key}\t{message_id}\t{datetime.now(timezone.utc).isoformat()}\n".encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:  # make the new directory entry durable too
            try:
                dfd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            except OSError:  # pragma: no cover - platforms without directory fsync
                pass
        self._keys.add(key)


class _Reject(Exception):
    """A row refused before sending (validation) or permanently by the server."""


def _smtp_text(code: int, response) -> str:
    if isinstance(response, bytes):
        response = response.decode("utf-8", "replace")
    return f"SMTP {code} {str(response).strip()}".strip()


def _https_url(url: object) -> str | None:
    if not isinstance(url, str):
        return None
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc or len(url) > _MAX_URL:
        return None
    if any(ch in url for ch in "<>\r\n\t ,\"") or not url.isascii():
        return None
    return url


class SmtpDestination:
    """Sends one email per row through an SMTP server (see the module docstring for payload keys)."""

    def __init__(self, host: str, port: int, sender: str, username_env: str | None = None,
                 password_env: str | None = None, starttls: bool = False,
                 journal_path: str | os.PathLike | None = None, batch_size: int = 50,
                 max_requests_per_second: float | None = None, name: str = "email",
                 timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None):
        self.host = host
        self.port = int(port)
        self.sender = sender
        self.username_env = username_env
        self.password_env = password_env
        self.starttls = starttls
        self.batch_size = batch_size
        self.max_requests_per_second = max_requests_per_second
        self.name = name
        self.timeout = timeout
        self.ssl_context = ssl_context
        _, address = parseaddr(sender)
        if "@" not in address or not address.isascii():
            raise ValueError(f"sender {sender!r} needs an ASCII address")
        self.sender_address = address
        self.message_id_domain = address.rpartition("@")[2]
        if (username_env or password_env) and not (username_env and password_env):
            raise ValueError("give both username_env and password_env, or neither")
        if username_env and not starttls and host not in _LOOPBACK:
            raise ValueError("refusing to send SMTP credentials in clear text: set starttls=True")
        if journal_path is None:
            journal_path = Path(os.environ.get("GOLDENTIME_STATE_DIR", ".goldentime")) / f"{name}-journal.log"
        self.journal = DeliveryJournal(journal_path)

    # -- engine hooks -------------------------------------------------------------------
    def open_run(self, run_id: str) -> None:
        self.journal.load()  # another process may have appended since we last read it

    # -- message ------------------------------------------------------------------------
    def message_id(self, row: SyncRow) -> str:
        return f"<{row.idempotency_key}@{self.message_id_domain}>"

    def build_message(self, row: SyncRow) -> tuple[str, EmailMessage]:
        """Validate the payload and build the message; _Reject with the reason if it may not go."""
        p = row.payload
        recipient = p.get("email")
        if not isinstance(recipient, str) or normalize_email_meta(recipient) is None:
            raise _Reject("invalid or missing email address")
        recipient = recipient.strip()
        if not recipient.isascii():
            raise _Reject("non-ASCII email address (SMTPUTF8 is not supported)")
        subject, body_text = p.get("subject"), p.get("body_text")
        if not isinstance(subject, str) or not subject.strip():
            raise _Reject("missing subject")
        if any(ch in subject for ch in "\r\n"):
            raise _Reject("subject contains a line break")
        if not isinstance(body_text, str) or not body_text.strip():
            raise _Reject("missing body_text")
        advertising = p.get("is_advertising")
        if not isinstance(advertising, bool):
            raise _Reject("is_advertising must be true or false")
        url = p.get("unsubscribe_url")
        unsubscribe = _https_url(url) if url not in (None, "") else None
        if url not in (None, "") and unsubscribe is None:
            raise _Reject("unsubscribe_url must be an https URL")
        if advertising:
            if not subject.startswith(AD_PREFIX):
                raise _Reject(f'advertising subject must start with "{AD_PREFIX}"')
            if unsubscribe is None:
                raise _Reject("advertising email needs an https unsubscribe_url")
        elif AD_PREFIX in subject:
            raise _Reject(f'a non-advertising email must not carry "{AD_PREFIX}"')

        try:
            return recipient, self._compose(row, recipient, subject, body_text, unsubscribe)
        except (ValueError, TypeError) as exc:  # e.g. a header value the email package refuses
            raise _Reject(f"cannot build the message: {exc}") from None

    def _compose(self, row: SyncRow, recipient: str, subject: str, body_text: str,
                 unsubscribe: str | None) -> EmailMessage:
        msg = EmailMessage(policy=_POLICY)
        msg["From"] = self.sender
        msg["To"] = recipient
        msg["Subject"] = subject
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = self.message_id(row)
        if unsubscribe:
            msg["List-Unsubscribe"] = f"<{unsubscribe}>"
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        # base64: Korean text stays intact through servers without 8BITMIME.
        msg.set_content(body_text, charset="utf-8", cte="base64")
        body_html = row.payload.get("body_html")
        if isinstance(body_html, str) and body_html.strip():
            msg.add_alternative(body_html, subtype="html", charset="utf-8", cte="base64")
        return msg

    # -- sending ------------------------------------------------------------------------
    def _credentials(self) -> tuple[str, str] | None:
        if not self.username_env:
            return None
        values = []
        for env in (self.username_env, self.password_env):
            value = os.environ.get(env)
            if not value:
                raise RuntimeError(f"SMTP credential env var {env!r} is not set")
            values.append(value)
        return values[0], values[1]

    def _connect(self) -> smtplib.SMTP:
        credentials = self._credentials()
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except smtplib.SMTPConnectError as exc:
            raise TransientError(f"connect: {_smtp_text(exc.smtp_code, exc.smtp_error)}") from None
        except (OSError, socket.timeout) as exc:
            raise TransientError(f"cannot connect to {self.host}:{self.port}: {exc.__class__.__name__}") from None
        try:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=self.ssl_context or ssl.create_default_context())
                smtp.ehlo()
            if credentials:
                smtp.login(*credentials)
        except BaseException:
            _quietly_close(smtp)
            raise
        return smtp

    def _send_one(self, smtp: smtplib.SMTP, recipient: str, msg: EmailMessage) -> None:
        data = msg.as_bytes(policy=_POLICY)
        try:
            refused = smtp.sendmail(self.sender_address, [recipient], data)
        except smtplib.SMTPRecipientsRefused as exc:
            code, response = next(iter(exc.recipients.values()))
            _classify(code, response)
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
            _classify(exc.smtp_code, exc.smtp_error)
        if refused:  # only possible with several recipients; kept for completeness
            code, response = next(iter(refused.values()))
            _classify(code, response)

    def send(self, rows: list[SyncRow]) -> list[RowResult]:
        results: list[RowResult | None] = [None] * len(rows)
        to_send: list[tuple[int, SyncRow, str, EmailMessage]] = []
        for i, row in enumerate(rows):
            if row.operation == "remove":
                results[i] = RowResult(row.key, "ok", "removal: an email cannot be unsent")
            elif row.idempotency_key in self.journal:
                results[i] = RowResult(row.key, "ok", "already delivered (journal)")
            else:
                try:
                    recipient, msg = self.build_message(row)
                except _Reject as exc:
                    results[i] = RowResult(row.key, "rejected", str(exc))
                else:
                    to_send.append((i, row, recipient, msg))

        if to_send:
            try:
                smtp = self._connect()
            except smtplib.SMTPAuthenticationError as exc:
                message = f"authentication failed: {_smtp_text(exc.smtp_code, exc.smtp_error)}"
                for i, row, _, _ in to_send:
                    results[i] = RowResult(row.key, "rejected", message)
                return results
            except smtplib.SMTPNotSupportedError as exc:
                message = f"server does not support a required extension: {exc}"
                for i, row, _, _ in to_send:
                    results[i] = RowResult(row.key, "rejected", message)
                return results
            except smtplib.SMTPResponseException as exc:
                message = _smtp_text(exc.smtp_code, exc.smtp_error)
                if not 500 <= exc.smtp_code < 600:
                    raise TransientError(message) from None
                for i, row, _, _ in to_send:
                    results[i] = RowResult(row.key, "rejected", message)
                return results
            except (smtplib.SMTPException, OSError) as exc:
                raise TransientError(f"SMTP session failed: {exc.__class__.__name__}: {exc}") from None
            try:
                for i, row, recipient, msg in to_send:
                    try:
                        self._send_one(smtp, recipient, msg)
                    except _Reject as exc:
                        results[i] = RowResult(row.key, "rejected", str(exc))
                        continue
                    except smtplib.SMTPServerDisconnected as exc:
                        raise TransientError(f"SMTP server disconnected: {exc}") from None
                    except (smtplib.SMTPException, OSError) as exc:
                        raise TransientError(f"SMTP error: {exc.__class__.__name__}: {exc}") from None
                    self._record_delivery(row, msg["Message-ID"])
                    results[i] = RowResult(row.key, "ok")
            finally:
                _quietly_close(smtp)
        return results

    def _record_delivery(self, row: SyncRow, message_id: str) -> None:
        """Called right after the server accepted a message: journal it before anything else."""
        self.journal.append(row.idempotency_key, message_id)


def _classify(code: int, response) -> None:
    """4xx (and unknown) -> TransientError for the batch; 5xx -> _Reject for the row."""
    text = _smtp_text(code, response)
    if 500 <= code < 600:
        raise _Reject(text)
    raise TransientError(text)


def _quietly_close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        try:
            smtp.close()
        except OSError:
            pass
