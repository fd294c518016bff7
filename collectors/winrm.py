"""Collect a Windows host over WinRM (pypsrp): the same probe and parser as the SSH path.

The only module that imports pypsrp. One PowerShell Remoting session per host runs
``probes/windows.ps1`` (the text the SSH path sends, comments stripped) and the output is
parsed by ``collectors.windows.parse_windows``.

Transport rules, not options:
- HTTPS (port 5986) validates the certificate against the credential's ``ca_file`` (else
  the system trust store) and the host name; there is no switch to turn that off. An
  untrusted or mismatched certificate ends the attempt during the TLS handshake, before
  any credential is sent, and is reported like a changed SSH host key (check SEC-001).
- HTTP (port 5985) is allowed only with message encryption (Negotiate/NTLM or Kerberos
  wrap every message); Basic authentication is never offered, on HTTP or HTTPS.

Tested against a replay of pypsrp's own recorded exchanges with a real Windows host
(``tests/winrm_replay.py``), not against a live Windows machine: see docs/directory.md.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

from collectors.base import CollectContext, Collector, now_iso
from collectors.windows import parse_windows
from itaudit.credentials import WinRMCredential
from itaudit.errors import (
    AuthError,
    CertificateRefused,
    CollectError,
    CollectTimeout,
    ConnectError,
    ProtocolError,
)
from itaudit.model import CollectResult, ResultStatus, Target, clip

SOURCE = "winrm:windows-probe"

Runner = Callable[[Target, WinRMCredential, str, float], str]


def client_options(target: Target, cred: WinRMCredential, timeout: float) -> dict[str, Any]:
    """pypsrp ``Client`` keyword arguments for one target (no password: added at connect)."""
    https = cred.transport == "https"
    return {
        "server": target.address,
        "port": target.port or (5986 if https else 5985),
        "username": cred.username,
        "ssl": https,
        "auth": cred.auth,
        # Certificate validation is always on for HTTPS: a CA file, else the system's store.
        "cert_validation": cred.ca_file or True,
        # HTTPS: TLS protects the messages. HTTP: message encryption or nothing is sent.
        "encryption": "auto" if https else "always",
        "connection_timeout": int(max(1, timeout)),
        "read_timeout": int(max(2, timeout)),
        "operation_timeout": int(max(1, timeout - 1)),
        "no_proxy": True,
        "path": "wsman",
    }


def _translate(exc: Exception, label: str) -> CollectError:
    """pypsrp / requests exceptions as the project's, with a reason a person can act on."""
    import requests
    from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError

    text = clip(str(exc), 300) or type(exc).__name__
    if isinstance(exc, requests.exceptions.SSLError) or "CERTIFICATE_VERIFY_FAILED" in text:
        why = text.split("certificate verify failed:")[-1].split("(_ssl")[0].strip(" :'\")") \
            if "certificate verify failed" in text else "TLS handshake failed"
        return CertificateRefused(f"{label}: TLS certificate refused ({clip(why, 200)}); no credentials sent")
    if isinstance(exc, AuthenticationError) or (isinstance(exc, WinRMTransportError) and exc.code == 401):
        return AuthError(f"{label}: the credentials were refused ({text})")
    if isinstance(exc, requests.exceptions.Timeout):
        return CollectTimeout(f"{label} did not answer in time")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return ConnectError(f"{label} unreachable: {text}")
    if isinstance(exc, WinRMError):
        return ProtocolError(f"{label}: WinRM error: {text}")
    return ProtocolError(f"{label}: {type(exc).__name__}: {text}")


def run_script(target: Target, cred: WinRMCredential, script: str, timeout: float) -> str:
    """Run a PowerShell script on the target over WinRM; its output objects as text lines."""
    with warnings.catch_warnings():
        # pypsrp imports pyspnego, whose optional GSSAPI/Kerberos backends warn when absent.
        warnings.simplefilter("ignore")
        from pypsrp.client import Client

    label = f"winrm://{target.address}:{target.port or (5986 if cred.transport == 'https' else 5985)}"
    password = cred.password()
    if not password:
        raise AuthError(f"{label}: no password for WinRM credential {cred.name}")
    try:
        client = Client(password=password, **client_options(target, cred, timeout))
        output, _streams, _had_errors = client.execute_ps(script)
    except CollectError:
        raise
    except Exception as exc:
        raise _translate(exc, label) from None
    return str(output)


class WinRMCollector(Collector):
    """Windows over WinRM: one PowerShell Remoting session running the Windows probe."""

    protocol = "winrm"

    def __init__(self, runner: Runner | None = None):
        self.runner = runner or run_script

    def collect(self, target: Target, ctx: CollectContext) -> CollectResult:
        """Collect one target; raises a ``CollectError`` subclass on failure."""
        from collectors.ssh import probe_script  # the same probe text the SSH path sends

        started = now_iso()
        t0 = time.monotonic()
        cred = ctx.credentials.get(target.credential or "")
        if not isinstance(cred, WinRMCredential):
            raise AuthError(f"no WinRM credential {target.credential!r} for this city")
        text = self.runner(target, cred, probe_script("windows"), ctx.timeout)
        if "=== ITAUDIT " not in text[:4096] and "=== SECTION " not in text:
            first = text.strip().splitlines()
            raise ProtocolError(f"the windows probe did not run: {clip(first[0] if first else '', 200)}")
        if len(text.encode("utf-8", errors="replace")) > ctx.max_output:
            text = text.encode("utf-8", errors="replace")[: ctx.max_output].decode("utf-8", errors="ignore")
        facts = parse_windows(text)
        if facts.collected_at:
            facts.add_evidence("device-clock", facts.collected_at)
        facts.collected_at = started
        facts.identity.address = target.address
        facts.sources = {k: SOURCE for k in facts.sources}  # the sections came over WinRM, not SSH
        status = ResultStatus.OK
        if "=== END ===" not in text[-256:]:
            status = ResultStatus.PARTIAL
            facts.gaps.setdefault("probe", "probe ended early")
        return CollectResult(target, status, facts=facts, started_at=started,
                             duration_ms=int((time.monotonic() - t0) * 1000),
                             error=None if status is ResultStatus.OK else facts.gaps.get("probe"))
