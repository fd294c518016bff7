"""A real SMTP server on loopback for the delivery tests: aiosmtpd, with STARTTLS or
implicit TLS, optional AUTH, and a switch to refuse messages; plus a silent TCP server
(accepts, never greets) for timeouts. Addresses are in 127.0.6.0/24, ports below 32768."""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

SMTP_HOST = "127.0.6.1"


def free_port(host: str = SMTP_HOST) -> int:
    """A free TCP port below the ephemeral range on ``host``."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


@dataclass
class TLSFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def make_cert(folder: Path, host: str = SMTP_HOST) -> TLSFiles:
    """A self-signed certificate for ``host`` (the client trusts it through smtp.ca_file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    files = TLSFiles(folder / "smtp.crt", folder / "smtp.key")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return files


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Handler:
    """aiosmtpd handler that keeps what it receives; ``refuse`` makes DATA fail with a 4xx."""

    received: list[Received] = field(default_factory=list)
    refuse: str | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return self.refuse
        msg = BytesParser(policy=email_policy.default).parsebytes(envelope.original_content or envelope.content)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 OK"


class SMTPPeer:
    """aiosmtpd on 127.0.6.1: security "starttls", "tls" or "none"; AUTH when a password is set."""

    def __init__(self, tls: TLSFiles | None, *, security: str = "starttls", username: str | None = None,
                 password: str | None = None, port: int | None = None):
        from aiosmtpd.controller import Controller

        self.handler = Handler()
        self.port = port or free_port()
        self.security = security
        self.logins: list[tuple[str, bool]] = []
        kwargs: dict[str, Any] = {}
        if password is not None:
            # aiosmtpd cannot tell that an implicit-TLS session is encrypted: there the
            # "AUTH only over TLS" rule is kept by the TLS wrapper itself.
            kwargs.update(authenticator=self._auth, auth_require_tls=security != "tls")
        if security == "starttls":
            assert tls is not None
            kwargs.update(tls_context=tls.server_context(), require_starttls=True)
        elif security == "tls":
            assert tls is not None
            kwargs.update(ssl_context=tls.server_context())
        self._user, self._password = username, password
        self.controller = Controller(self.handler, hostname=SMTP_HOST, port=self.port, ready_timeout=10,
                                     **kwargs)

    def _auth(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self._user
              and auth_data.password.decode() == self._password)
        self.logins.append((auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "?", ok))
        return AuthResult(success=ok, handled=False)

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def start(self) -> SMTPPeer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


class SilentServer:
    """Accepts TCP connections and never says a word: an SMTP server that hangs."""

    def __init__(self, host: str = "127.0.6.2"):
        self.host = host
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = free_port(host)
        self.sock.bind((host, self.port))
        self.sock.listen(8)
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self._conns.append(conn)
            except OSError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for c in self._conns:
            c.close()
        self.sock.close()


@pytest.fixture(scope="session", name="tls_files")
def tls_files_fixture(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    pytest.importorskip("cryptography")
    return make_cert(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture(name="smtp_peer")
def smtp_peer_fixture(tls_files: TLSFiles) -> Iterator[SMTPPeer]:
    """STARTTLS with AUTH (user "itaudit", password "relay-secret")."""
    pytest.importorskip("aiosmtpd")
    peer = SMTPPeer(tls_files, security="starttls", username="itaudit", password="relay-secret").start()
    yield peer
    peer.stop()
