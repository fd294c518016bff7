"""Monthly email delivery: build the message, keep it in a per-city outbox, send over SMTP.

Nothing is lost: a message is written to the city's outbox (``<data_dir>/<city>/outbox/``)
before the first attempt, every attempt is appended to ``deliveries.jsonl`` beside it
(time, outcome, reason, next attempt), and a failed send is retried with exponential
back-off until ``smtp.retry_attempts`` is used up. The reports themselves stay on disk
whatever happens to the email.

The SMTP password is resolved from the environment or the keyring at the moment of
sending and appears in no log line, no record and no exception text.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import mimetypes
import os
import smtplib
import ssl
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from itaudit.config import SMTPConfig
from itaudit.credentials import read_secret
from itaudit.errors import AuthError, ItauditError

log = logging.getLogger("itaudit.delivery")

LOG_NAME = "deliveries.jsonl"
_MIME = {
    ".pdf": ("application", "pdf"),
    ".xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ".csv": ("text", "csv"),
    ".json": ("application", "json"),
    ".html": ("text", "html"),
}


class DeliveryError(ItauditError):
    """One send attempt failed; ``reason`` is safe to log (it never holds a secret)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass
class Attempt:
    """One line of ``deliveries.jsonl``."""

    time: str
    message: str  # the outbox file stem
    event: str  # "queued", "sent", "retry", "failed" (given up), "dry-run"
    attempt: int = 0
    recipients: list[str] | None = None
    reason: str | None = None
    next_attempt: str | None = None
    subject: str | None = None


# --- the message ----------------------------------------------------------------------


def build_message(*, sender: str, recipients: Sequence[str], cc: Sequence[str] = (), subject: str, text: str,
                  html: str | None, attachments: Sequence[Path] = (),
                  now: dt.datetime | None = None) -> EmailMessage:
    """A multipart message: plain text with an HTML alternative, then the attachments."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = formatdate((now or dt.datetime.now(dt.UTC)).timestamp(), localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the agent
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    for path in attachments:
        path = Path(path)
        maintype, subtype = _MIME.get(path.suffix.lower(), ("", ""))
        if not maintype:
            guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            maintype, _, subtype = guessed.partition("/")
        msg.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name)
    return msg


def read_message(path: Path) -> EmailMessage:
    """Parse an ``.eml`` file written by :func:`write_eml`."""
    with open(path, "rb") as fh:
        msg = BytesParser(policy=email_policy.default).parse(fh)
    assert isinstance(msg, EmailMessage)
    return msg


def write_eml(msg: EmailMessage, path: Path) -> Path:
    """Write a message as an ``.eml`` file readable by its owner only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(msg.as_bytes(policy=email_policy.SMTP))
    return path


# --- sending --------------------------------------------------------------------------


def _tls_context(smtp: SMTPConfig) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=smtp.ca_file) if smtp.ca_file else ssl.create_default_context()


def _password(smtp: SMTPConfig) -> str | None:
    try:
        return read_secret(env=smtp.password_env, keyring_ref=smtp.password_keyring)
    except AuthError as exc:
        raise DeliveryError(f"no SMTP password: {exc}") from None


def send(msg: EmailMessage, smtp: SMTPConfig) -> list[str]:
    """Send one message; return the recipients the server refused (others got it).

    Raises ``DeliveryError`` with a reason fit for a log line when nothing was sent.
    """
    to = [a.strip() for h in ("To", "Cc") for a in str(msg.get(h, "")).split(",") if a.strip()]
    password = _password(smtp) if smtp.username else None
    where = f"{smtp.host}:{smtp.port}"
    try:
        if smtp.security == "tls":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout,
                                                  context=_tls_context(smtp))
        else:
            conn = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        with conn:
            conn.ehlo()
            if smtp.security == "starttls":
                if not conn.has_extn("starttls"):
                    # Never fall back to clear text: the message describes the city's weak spots.
                    raise DeliveryError(f"{where} does not offer STARTTLS; refusing to send in clear text")
                conn.starttls(context=_tls_context(smtp))
                conn.ehlo()
            if smtp.username:
                conn.login(smtp.username, password or "")
            refused = conn.send_message(msg, from_addr=smtp.sender, to_addrs=to)
    except DeliveryError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"login rejected by {where}: {exc.smtp_code} {_text(exc.smtp_error)}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        detail = "; ".join(f"{r}: {c} {_text(m)}" for r, (c, m) in exc.recipients.items())
        raise DeliveryError(f"every recipient refused by {where}: {detail}") from None
    except smtplib.SMTPSenderRefused as exc:
        raise DeliveryError(f"sender {exc.sender!r} refused by {where}: {exc.smtp_code} "
                            f"{_text(exc.smtp_error)}") from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"{where} answered {exc.smtp_code} {_text(exc.smtp_error)}") from None
    except smtplib.SMTPServerDisconnected as exc:
        raise DeliveryError(f"{where} closed the connection: {exc}") from None
    except smtplib.SMTPException as exc:
        raise DeliveryError(f"SMTP error with {where}: {exc}") from None
    except ssl.SSLError as exc:
        raise DeliveryError(f"TLS with {where} failed: {exc.reason or exc}") from None
    except TimeoutError:  # socket.timeout is TimeoutError since 3.10
        raise DeliveryError(f"{where} did not answer within {smtp.timeout:g}s (timed out)") from None
    except ConnectionRefusedError:
        raise DeliveryError(f"connection to {where} refused") from None
    except OSError as exc:
        raise DeliveryError(f"cannot reach {where}: {exc.strerror or exc}") from None
    return sorted(refused)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return " ".join(str(value).split())[:300]


# --- the outbox -----------------------------------------------------------------------


def backoff(attempt: int, smtp: SMTPConfig) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): doubling, capped."""
    return min(smtp.retry_backoff * (2 ** max(0, attempt - 1)), smtp.retry_backoff_max)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="seconds")


class Outbox:
    """One city's messages waiting to be sent, and the record of every attempt."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.log_path = self.folder / LOG_NAME

    def _append(self, a: Attempt) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = json.dumps({k: v for k, v in asdict(a).items() if v is not None}, ensure_ascii=False)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def history(self) -> list[Attempt]:
        """Every recorded event, oldest first (a torn last line from a crash is skipped)."""
        if not self.log_path.exists():
            return []
        out = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(Attempt(**json.loads(line)))
            except (ValueError, TypeError):
                continue
        return out

    def enqueue(self, msg: EmailMessage, *, now: dt.datetime) -> str:
        """Keep a message on disk for sending; return its id."""
        mid = f"{now.astimezone(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        write_eml(msg, self.folder / f"{mid}.eml")
        self._append(Attempt(time=_iso(now), message=mid, event="queued", recipients=_recipients(msg),
                             subject=str(msg["Subject"]), next_attempt=_iso(now)))
        return mid

    def state(self) -> dict[str, Attempt]:
        """The latest event of each message."""
        last: dict[str, Attempt] = {}
        for a in self.history():
            last[a.message] = a
        return last

    def pending(self) -> list[Attempt]:
        """Messages still to send (queued or waiting for a retry), with their due time."""
        return [a for a in self.state().values() if a.event in ("queued", "retry")]

    def next_due(self) -> dt.datetime | None:
        """When the next pending message is due, or None."""
        dues = [dt.datetime.fromisoformat(a.next_attempt) for a in self.pending() if a.next_attempt]
        return min(dues) if dues else None

    def flush(self, smtp: SMTPConfig | None, *, now: dt.datetime,
              sender: Callable[[EmailMessage, SMTPConfig], list[str]] = send) -> list[Attempt]:
        """Try every message that is due; record and return each attempt."""
        done = []
        for p in self.pending():
            if p.next_attempt and dt.datetime.fromisoformat(p.next_attempt) > now:
                continue
            done.append(self._attempt(p, smtp, now, sender))
        return done

    def _attempt(self, p: Attempt, smtp: SMTPConfig | None, now: dt.datetime,
                 sender: Callable[[EmailMessage, SMTPConfig], list[str]]) -> Attempt:
        n = p.attempt + 1
        path = self.folder / f"{p.message}.eml"
        base: dict[str, Any] = {"time": _iso(now), "message": p.message, "attempt": n, "recipients": p.recipients,
                "subject": p.subject}
        try:
            if smtp is None:
                raise DeliveryError("no [smtp] table in the config")
            if not path.exists():
                raise DeliveryError(f"message file {path} is missing")
            refused = sender(read_message(path), smtp)
        except DeliveryError as exc:
            limit = smtp.retry_attempts if smtp else 1
            if n >= limit or not path.exists():
                a = Attempt(**base, event="failed", reason=exc.reason)
                log.error("email %s NOT delivered after %d attempts: %s; it stays in %s", p.message, n,
                          exc.reason, path)
            else:
                wait = backoff(n, smtp)  # type: ignore[arg-type]
                a = Attempt(**base, event="retry", reason=exc.reason,
                            next_attempt=_iso(now + dt.timedelta(seconds=wait)))
                log.warning("email %s attempt %d failed: %s; retrying in %s", p.message, n, exc.reason,
                            _human(wait))
            self._append(a)
            return a
        reason = f"refused recipients: {', '.join(refused)}" if refused else None
        a = Attempt(**base, event="sent", reason=reason)
        self._append(a)
        log.info("email %s sent to %s (attempt %d)%s", p.message, ", ".join(p.recipients or []), n,
                 f"; {reason}" if reason else "")
        return a

    def record_dry_run(self, path: Path, msg: EmailMessage, *, now: dt.datetime) -> None:
        """Note that a dry run wrote the message to ``path`` instead of sending it."""
        self._append(Attempt(time=_iso(now), message=path.stem, event="dry-run", recipients=_recipients(msg),
                             subject=str(msg["Subject"]), reason=f"written to {path}"))


def _recipients(msg: EmailMessage) -> list[str]:
    return [a.strip() for h in ("To", "Cc") for a in str(msg.get(h, "")).split(",") if a.strip()]


def _human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
