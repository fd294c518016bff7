"""A WinRM server that replays pypsrp's recorded exchanges with a real Windows host, over HTTPS.

There is no open-source WinRM server, so the WinRM transport is tested against this: an
HTTPS endpoint on loopback (a certificate issued by a CA made for the test) that answers
each POST with the next recorded response of one of pypsrp's own test recordings
(``tests/fixtures/winrm/pypsrp/``, MIT, see SOURCE.md there). It checks that the client
sends the recorded sequence of WS-Management actions, and rewrites only what a replay must:
``RelatesTo`` is set to the MessageID the client sent (the client checks the pairing).

What this does NOT exercise: the NTLM/Kerberos handshake (the replay answers 200 without a
401 challenge, so no credential is ever sent to it) and HTTP message encryption. The docs
say so.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

RECORDINGS = Path(__file__).resolve().parent / "fixtures" / "winrm" / "pypsrp"
_ACTION = re.compile(r"<(?:\w+:)?Action[^>]*>([^<]+)</")
_MESSAGE_ID = re.compile(r"<(?:\w+:)?MessageID>([^<]+)</")
_RELATES = re.compile(r"(<(?:\w+:)?RelatesTo>)([^<]+)(</)")


def recording(name: str) -> list[dict[str, str]]:
    """The request/response pairs of one pypsrp recording."""
    doc = yaml.safe_load((RECORDINGS / f"{name}.yml").read_text(encoding="utf-8"))
    return list(doc["messages"])


@dataclass
class TestPKI:
    """A CA and a server certificate for 127.0.0.1 / localhost, made for one test session."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path
    other_ca_pem: Path  # a CA that did not issue the server certificate


def make_pki(folder: Path) -> TestPKI:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def ca(cn: str) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        return key, cert

    ca_key, ca_cert = ca("itaudit test WinRM CA")
    _, other_cert = ca("some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name("localhost")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    out = TestPKI(folder / "ca.pem", folder / "cert.pem", folder / "key.pem", folder / "other-ca.pem")
    out.ca_pem.write_bytes(ca_cert.public_bytes(pem))
    out.other_ca_pem.write_bytes(other_cert.public_bytes(pem))
    out.cert_pem.write_bytes(cert.public_bytes(pem))
    out.key_pem.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    return out


@dataclass
class ReplayServer:
    """What the replay saw: each request's action and headers, and any mismatch."""

    port: int
    seen: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    connections: int = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    messages: list[dict[str, str]] = []
    state: ReplayServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode("utf-8", errors="replace")
        i = len(self.state.seen)
        got = _ACTION.search(body)
        self.state.seen.append({"action": got.group(1) if got else None, "headers": dict(self.headers),
                                "body": body})
        if i >= len(self.messages):
            self.state.errors.append(f"request {i}: more requests than the recording has")
            self._send(500, "")
            return
        want = _ACTION.search(self.messages[i]["request"])
        if not got or not want or got.group(1) != want.group(1):
            self.state.errors.append(f"request {i}: action {got.group(1) if got else None}, recorded "
                                     f"{want.group(1) if want else None}")
            self._send(500, "")
            return
        response = self.messages[i]["response"]
        msg_id = _MESSAGE_ID.search(body)
        if msg_id:
            response = _RELATES.sub(lambda m: m.group(1) + msg_id.group(1) + m.group(3), response, count=1)
        self._send(200, response)

    def _send(self, code: int, text: str) -> None:
        data = text.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class ReplayHTTPS:
    """Serve one recording over HTTPS on 127.0.0.1 (a random port) in a thread."""

    def __init__(self, name: str, pki: TestPKI):
        self.state = ReplayServer(port=0)
        handler = type("Handler", (_Handler,), {"messages": recording(name), "state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(pki.cert_pem, pki.key_pem)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.state.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> ReplayServer:
        self.thread.start()
        return self.state

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
