"""Monthly email delivery against a real SMTP server (aiosmtpd) on loopback.

STARTTLS and implicit TLS with AUTH; a server that refuses the connection, one that never
answers, one that rejects the login and one that refuses the message: each attempt is
recorded with its reason and retried with back-off, and the message is never lost.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import subprocess
from pathlib import Path

import pytest
from peers_smtp import SMTP_HOST, SilentServer, SMTPPeer, TLSFiles, free_port, smtp_peer_fixture, tls_files_fixture  # noqa: F401,E501

from itaudit.config import SMTPConfig
from itaudit.delivery import Outbox, backoff, build_message, read_message, send

PASSWORD_ENV = "ITAUDIT_TEST_SMTP_PASSWORD"  # noqa: S105 - a variable name
T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def _smtp(peer_port: int, tls: TLSFiles | None, **kw: object) -> SMTPConfig:
    base: dict[str, object] = dict(host=SMTP_HOST, sender="itaudit@msp.example.com", port=peer_port,
                                   security="starttls", username="itaudit", password_env=PASSWORD_ENV,
                                   ca_file=str(tls.cert) if tls else None, timeout=5.0, retry_attempts=4,
                                   retry_backoff=60.0, retry_backoff_max=600.0)
    base.update(kw)
    return SMTPConfig(**base)  # type: ignore[arg-type]


def _pdf(tmp_path: Path) -> Path:
    """A tiny real PDF (one page, one line of text) so the test can open what arrives."""
    text = "Springfield monthly summary"
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref))
    path = tmp_path / "springfield-monthly-2026-11.pdf"
    path.write_bytes(out.getvalue())
    return path


def _xlsx(tmp_path: Path) -> Path:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Fiscal year", "Cost"])
    ws.append(["FY2027", 12000])
    path = tmp_path / "springfield-plan.xlsx"
    wb.save(path)
    return path


def _message(tmp_path: Path) -> object:
    return build_message(sender="itaudit@msp.example.com", recipients=["manager@springfield.example.org"],
                         cc=["finance@springfield.example.org"], subject="Springfield: IT risk summary",
                         text="Score 71 of 100.\n", html="<p>Score <b>71</b> of 100.</p>",
                         attachments=[_pdf(tmp_path), _xlsx(tmp_path)], now=T0)


@pytest.mark.peers
def test_starttls_with_login_delivers_body_and_attachments(smtp_peer: SMTPPeer, tls_files: TLSFiles,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "relay-secret")
    outbox = Outbox(tmp_path / "outbox")
    mid = outbox.enqueue(_message(tmp_path), now=T0)  # type: ignore[arg-type]
    attempts = outbox.flush(_smtp(smtp_peer.port, tls_files), now=T0)
    assert [a.event for a in attempts] == ["sent"], attempts
    assert smtp_peer.logins == [("itaudit", True)]
    (got,) = smtp_peer.received
    assert sorted(got.rcpt_tos) == ["finance@springfield.example.org", "manager@springfield.example.org"]
    msg = got.message
    assert msg["Subject"] == "Springfield: IT risk summary"
    assert msg.get_body(("plain",)).get_content().strip() == "Score 71 of 100."
    assert "<b>71</b>" in msg.get_body(("html",)).get_content()
    files = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
    assert set(files) == {"springfield-monthly-2026-11.pdf", "springfield-plan.xlsx"}
    # Open what arrived: the PDF with poppler, the spreadsheet with openpyxl.
    pdf = tmp_path / "got.pdf"
    pdf.write_bytes(files["springfield-monthly-2026-11.pdf"])
    if subprocess.run(["which", "pdftotext"], capture_output=True).returncode == 0:
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True).stdout.decode()
        assert "Springfield monthly summary" in text
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.load_workbook(io.BytesIO(files["springfield-plan.xlsx"]))
    assert [c.value for c in wb.active[2]] == ["FY2027", 12000]
    # The record: queued then sent, and the password appears nowhere on disk.
    events = [json.loads(line) for line in outbox.log_path.read_text().splitlines()]
    assert [e["event"] for e in events] == ["queued", "sent"] and events[1]["message"] == mid
    assert all(b"relay-secret" not in p.read_bytes() for p in outbox.folder.iterdir())
    assert outbox.pending() == []


@pytest.mark.peers
def test_implicit_tls(tls_files: TLSFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("aiosmtpd")
    monkeypatch.setenv(PASSWORD_ENV, "relay-secret")
    peer = SMTPPeer(tls_files, security="tls", username="itaudit", password="relay-secret").start()
    try:
        refused = send(_message(tmp_path), _smtp(peer.port, tls_files, security="tls"))  # type: ignore[arg-type]
    finally:
        peer.stop()
    assert refused == [] and len(peer.received) == 1
    assert peer.logins == [("itaudit", True)]


@pytest.mark.peers
def test_untrusted_certificate_is_refused(tls_files: TLSFiles, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("aiosmtpd")
    monkeypatch.setenv(PASSWORD_ENV, "relay-secret")
    peer = SMTPPeer(tls_files, security="starttls", username="itaudit", password="relay-secret").start()
    outbox = Outbox(tmp_path / "outbox")
    outbox.enqueue(_message(tmp_path), now=T0)  # type: ignore[arg-type]
    try:
        (a,) = outbox.flush(_smtp(peer.port, None), now=T0)  # no ca_file: the self-signed cert is not trusted
    finally:
        peer.stop()
    assert a.event == "retry" and "TLS" in (a.reason or "") and "CERTIFICATE" in (a.reason or "").upper()
    assert peer.logins == [] and peer.received == []  # no password sent to an unverified server


def test_backoff_doubles_and_is_capped() -> None:
    smtp = _smtp(25, None, retry_backoff=60.0, retry_backoff_max=600.0)
    assert [backoff(n, smtp) for n in range(1, 7)] == [60, 120, 240, 480, 600, 600]


@pytest.mark.peers
def test_refused_then_timeout_then_bad_login_then_delivered(tls_files: TLSFiles, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """Each failure is logged with its reason and retried after a longer wait; nothing is lost."""
    pytest.importorskip("aiosmtpd")
    caplog.set_level(logging.INFO, logger="itaudit")
    monkeypatch.setenv(PASSWORD_ENV, "relay-secret")
    port = free_port()
    outbox = Outbox(tmp_path / "outbox")
    outbox.enqueue(_message(tmp_path), now=T0)  # type: ignore[arg-type]
    smtp = _smtp(port, tls_files, timeout=0.5, retry_attempts=5)
    now = T0

    # 1. Nobody listens: connection refused.
    (a1,) = outbox.flush(smtp, now=now)
    assert a1.event == "retry" and "refused" in (a1.reason or "")
    assert dt.datetime.fromisoformat(a1.next_attempt or "") == now + dt.timedelta(seconds=60)
    assert outbox.flush(smtp, now=now + dt.timedelta(seconds=59)) == []  # not due yet

    # 2. A server that accepts and never greets: timed out.
    silent = SilentServer()
    try:
        now += dt.timedelta(seconds=60)
        (a2,) = outbox.flush(_smtp(silent.port, tls_files, host=silent.host, timeout=0.5, retry_attempts=5),
                             now=now)
    finally:
        silent.close()
    assert a2.event == "retry" and "timed out" in (a2.reason or ""), a2
    assert dt.datetime.fromisoformat(a2.next_attempt or "") == now + dt.timedelta(seconds=120)

    # 3. A real server that rejects the login (wrong password in the environment).
    peer = SMTPPeer(tls_files, security="starttls", username="itaudit", password="relay-secret", port=port).start()
    try:
        monkeypatch.setenv(PASSWORD_ENV, "wrong")
        now += dt.timedelta(seconds=120)
        (a3,) = outbox.flush(smtp, now=now)
        assert a3.event == "retry" and "login rejected" in (a3.reason or "") and "535" in (a3.reason or ""), a3
        assert "wrong" not in (a3.reason or "")
        # 4. The password is fixed: the same message goes out, once.
        monkeypatch.setenv(PASSWORD_ENV, "relay-secret")
        now += dt.timedelta(seconds=240)
        (a4,) = outbox.flush(smtp, now=now)
    finally:
        peer.stop()
    assert a4.event == "sent" and a4.attempt == 4
    assert len(peer.received) == 1
    assert {p.get_filename() for p in peer.received[0].message.iter_attachments()} == {
        "springfield-monthly-2026-11.pdf", "springfield-plan.xlsx"}
    events = [(a.event, a.attempt) for a in outbox.history()]
    assert events == [("queued", 0), ("retry", 1), ("retry", 2), ("retry", 3), ("sent", 4)]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "refused" in logged and "timed out" in logged and "login rejected" in logged
    assert "relay-secret" not in logged and "wrong" not in logged.replace("wrong password", "")


@pytest.mark.peers
def test_gives_up_after_the_last_attempt_and_keeps_the_message(tls_files: TLSFiles, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("aiosmtpd")
    monkeypatch.setenv(PASSWORD_ENV, "relay-secret")
    peer = SMTPPeer(tls_files, security="starttls", username="itaudit", password="relay-secret").start()
    peer.handler.refuse = "451 4.3.0 mailbox temporarily unavailable"
    outbox = Outbox(tmp_path / "outbox")
    mid = outbox.enqueue(_message(tmp_path), now=T0)  # type: ignore[arg-type]
    smtp = _smtp(peer.port, tls_files, retry_attempts=2, retry_backoff=1.0)
    try:
        (a1,) = outbox.flush(smtp, now=T0)
        (a2,) = outbox.flush(smtp, now=T0 + dt.timedelta(seconds=1))
    finally:
        peer.stop()
    assert (a1.event, a2.event) == ("retry", "failed")
    assert "451" in (a2.reason or "")
    assert outbox.pending() == [] and outbox.next_due() is None
    kept = read_message(outbox.folder / f"{mid}.eml")
    assert kept["Subject"] == "Springfield: IT risk summary" and len(list(kept.iter_attachments())) == 2


def test_missing_password_env_is_a_recorded_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    outbox = Outbox(tmp_path / "outbox")
    outbox.enqueue(_message(tmp_path), now=T0)  # type: ignore[arg-type]
    (a,) = outbox.flush(_smtp(free_port(), None), now=T0)
    assert a.event == "retry" and PASSWORD_ENV in (a.reason or "")


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    """A crash while appending leaves half a line: the rest of the record still reads."""
    outbox = Outbox(tmp_path / "outbox")
    outbox.enqueue(_message(tmp_path), now=T0)  # type: ignore[arg-type]
    with open(outbox.log_path, "a", encoding="utf-8") as fh:
        fh.write('{"time": "2026-12-01T12:00:01+00:00", "mess')
    assert [a.event for a in outbox.history()] == ["queued"]
    assert len(outbox.pending()) == 1
