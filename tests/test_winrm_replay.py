"""The WinRM transport (pypsrp) against a replay of pypsrp's recorded exchanges with a real
Windows host, over HTTPS with certificate validation. Not a live Windows host: see
tests/winrm_replay.py for what the replay does and does not exercise."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from winrm_replay import ReplayHTTPS, make_pki

from collectors.base import CollectContext
from collectors.ssh import parse_probe
from collectors.winrm import SOURCE, WinRMCollector, client_options, run_script
from itaudit.checking import CheckContext, DeviceRecord, run_checks
from itaudit.credentials import WinRMCredential
from itaudit.errors import CertificateRefused, ConfigError, ProtocolError
from itaudit.model import ResultStatus, Target
from itaudit.plugins import load_checks

WINDOWS = Path(__file__).resolve().parent / "fixtures" / "windows"
RECORDED_SCRIPT = "$serv = Get-Service -Name winrm; $serv.Name; $serv.Status; $serv"
# What pypsrp's own test expects from this recording (tests/tests_pypsrp/test_client.py).
RECORDED_STDOUT = (
    "winrm\nRunning\n\nStatus   Name               DisplayName                           \n------"
    "   ----               -----------                           \nRunning  winrm              Wi"
    "ndows Remote Management (WS-Manag...\n\n"
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("winrm-pki"))


def _cred(ca_file, monkeypatch, **kw) -> WinRMCredential:
    monkeypatch.setenv("WINRM_TEST_PW", "test-only-password")
    return WinRMCredential(name="win", username="CITY\\itaudit-scan", password_env="WINRM_TEST_PW",
                           ca_file=str(ca_file) if ca_file else None, **kw)


def _fragments(b64: str) -> bytes:
    """The PSRP message bodies inside a base64 WinRM stream (fragment headers stripped)."""
    raw, out, i = base64.b64decode(b64), b"", 0
    while i < len(raw):
        length = int.from_bytes(raw[i + 17:i + 21], "big")
        out += raw[i + 21:i + 21 + length]
        i += 21 + length
    return out


def test_runs_a_script_over_verified_https(pki, monkeypatch):
    with ReplayHTTPS("test_client_execute_ps", pki) as srv:
        out = run_script(Target(address="127.0.0.1", protocol="winrm", port=srv.port),
                         _cred(pki.ca_pem, monkeypatch), RECORDED_SCRIPT, 10)
    assert srv.errors == []
    assert [s["action"].rsplit("/", 1)[-1] for s in srv.seen] == \
        ["Create", "Receive", "Receive", "Command", "Receive", "Delete"]
    assert out == RECORDED_STDOUT
    # The script itself travelled in the Command message, PSRP-encoded.
    args = re.search(r"<rsp:Arguments>([^<]+)</rsp:Arguments>", srv.seen[3]["body"]).group(1)
    assert RECORDED_SCRIPT.replace("$", "").encode() in _fragments(args).replace(b"$", b"")
    # No 401 challenge came, so no credential was ever sent (Negotiate is not pre-emptive).
    assert not any("Authorization" in s["headers"] for s in srv.seen)


@pytest.mark.parametrize("trust", ["other", "system"])
def test_untrusted_certificate_sends_nothing(pki, monkeypatch, trust):
    ca = pki.other_ca_pem if trust == "other" else None
    with ReplayHTTPS("test_client_execute_ps", pki) as srv, pytest.raises(CertificateRefused,
                                                                          match="no credentials sent"):
        run_script(Target(address="127.0.0.1", protocol="winrm", port=srv.port), _cred(ca, monkeypatch),
                   RECORDED_SCRIPT, 5)
    assert srv.seen == []


def test_refused_certificate_is_a_finding(pki, monkeypatch):
    """Like a changed SSH host key: an error line for the host and SEC-001 failing."""
    cred = _cred(pki.other_ca_pem, monkeypatch)
    with ReplayHTTPS("test_client_execute_ps", pki) as srv:
        target = Target(address="127.0.0.1", protocol="winrm", port=srv.port, credential="win")
        res = WinRMCollector().safe_collect(target, CollectContext(city_id="c", credentials={"win": cred},
                                                                   timeout=5))
    assert res.status == ResultStatus.ERROR and res.error_kind == "certificate"
    spec = load_checks()["SEC-001"]
    finding = run_checks(res.facts, CheckContext(as_of=__import__("datetime").date(2026, 12, 1),
                                                 device=DeviceRecord(collector_findings=res.collector_findings)),
                         [spec])[0]
    assert finding.status.value == "fail" and "TLS certificate" in finding.summary


def test_host_where_the_probe_prints_nothing(pki, monkeypatch):
    """The real transport, a recording whose script failed: a named error, not empty facts."""
    with ReplayHTTPS("test_client_execute_ps_failure", pki) as srv:
        target = Target(address="127.0.0.1", protocol="winrm", port=srv.port, credential="win")
        ctx = CollectContext(city_id="c", credentials={"win": _cred(pki.ca_pem, monkeypatch)}, timeout=10)
        with pytest.raises(ProtocolError, match="probe did not run"):
            WinRMCollector().collect(target, ctx)
    assert srv.errors == []


@pytest.mark.parametrize("case", sorted(p.name for p in WINDOWS.iterdir() if (p / "probe.txt").exists()))
def test_same_probe_and_parser_as_ssh(case, monkeypatch):
    """The collector sends the SSH path's probe and parses what comes back with the same parser."""
    text = (WINDOWS / case / "probe.txt").read_text(encoding="utf-8", errors="replace")
    sent = {}

    def runner(target, cred, script, timeout):
        sent["script"] = script
        return text

    from collectors.ssh import probe_script

    target = Target(address="10.0.0.5", protocol="winrm", credential="win")
    ctx = CollectContext(city_id="c", credentials={"win": _cred(None, monkeypatch)})
    res = WinRMCollector(runner=runner).collect(target, ctx)
    assert sent["script"] == probe_script("windows")
    via_ssh = parse_probe(text, "windows")
    assert res.facts.software == via_ssh.software and res.facts.hardware == via_ssh.hardware
    assert res.facts.posture == via_ssh.posture and res.facts.patching == via_ssh.patching
    assert set(res.facts.sources.values()) == {SOURCE}


def test_http_only_with_message_encryption_and_never_basic(tmp_path, monkeypatch):
    cred = _cred(None, monkeypatch, transport="http")
    opts = client_options(Target(address="pc1", protocol="winrm"), cred, 20)
    assert (opts["ssl"], opts["port"], opts["encryption"]) == (False, 5985, "always")
    opts = client_options(Target(address="pc1", protocol="winrm"), _cred(None, monkeypatch), 20)
    assert (opts["ssl"], opts["port"], opts["cert_validation"]) == (True, 5986, True)
    from itaudit.config import load

    cfg = tmp_path / "c.toml"
    cfg.write_text('[cities.t.credentials.w]\ntype = "winrm"\nusername = "u"\npassword_env = "P"\n'
                   'auth = "basic"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load(cfg, env={})
    assert err.value.key == "cities.t.credentials.w.auth"
