"""SEC-00x and NET-00x: pass, fail and unknown cases."""

from __future__ import annotations

import pytest
from checkhelp import ctx, facts, run

from itaudit.model import Disk

SSH = [("tcp", 22, "0.0.0.0", "sshd")]
NO_SSH = [("tcp", 443, "0.0.0.0", "nginx")]
# The offer of OpenSSH 9.2 (Debian 12) as captured from the test sshd, and of a legacy one.
MODERN = {"ssh_kex_offered": ["sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "ecdh-sha2-nistp256"],
          "ssh_host_keys_offered": ["ssh-ed25519", "rsa-sha2-512"],
          "ssh_ciphers_offered": ["chacha20-poly1305@openssh.com", "aes128-ctr", "aes128-gcm@openssh.com"],
          "ssh_macs_offered": ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-256"]}
LEGACY = {"ssh_kex_offered": ["diffie-hellman-group14-sha1"], "ssh_host_keys_offered": ["ssh-rsa"],
          "ssh_ciphers_offered": ["aes128-cbc", "3des-cbc", "aes128-ctr"], "ssh_macs_offered": ["hmac-sha1"]}
CASES = [
    ("SEC-020", "pass", facts(posture=MODERN), ctx("server")),
    ("SEC-020", "fail", facts(posture=LEGACY), ctx("switch")),
    ("SEC-020", "fail", facts(posture={**MODERN, "ssh_macs_offered": ["hmac-sha2-256", "hmac-sha1"]}), ctx("server")),
    ("SEC-020", "unknown", facts(posture={"listening": SSH}), ctx("server")),
    ("SEC-021", "fail", facts(posture={"ssh_empty_passwords": True}), ctx("server")),
    ("SEC-021", "pass", facts(posture={"ssh_empty_passwords": False}), ctx("server")),
    ("SEC-021", "unknown", facts(posture={"listening": SSH}), ctx("server")),
    ("SEC-022", "fail", facts(posture={"ssh_x11_forwarding": True}), ctx("server")),
    ("SEC-022", "pass", facts(posture={"ssh_x11_forwarding": False}), ctx("server")),
    ("SEC-022", "unknown", facts(), ctx("server")),
    ("SEC-023", "fail", facts(posture={"ssh_agent_forwarding": True}), ctx("server")),
    ("SEC-023", "pass", facts(posture={"ssh_agent_forwarding": False}), ctx("server")),
    ("SEC-023", "unknown", facts(), ctx("server")),
    ("SEC-024", "fail", facts(posture={"ssh_max_auth_tries": 6}), ctx("server")),
    ("SEC-024", "pass", facts(posture={"ssh_max_auth_tries": 3}), ctx("server")),
    ("SEC-024", "unknown", facts(), ctx("server")),
    ("SEC-025", "fail", facts(posture={"ssh_login_grace_seconds": 120}), ctx("server")),
    ("SEC-025", "fail", facts(posture={"ssh_login_grace_seconds": 0}), ctx("server")),
    ("SEC-025", "pass", facts(posture={"ssh_login_grace_seconds": 30}), ctx("server")),
    ("SEC-025", "unknown", facts(), ctx("server")),
    ("SEC-002", "pass", facts(posture={"ssh_root_login": "yes-keys-only"}), ctx("server")),
    # banners as the real sshd of tests/fixtures/linux/debian-12 and a RHEL-family one send them
    ("SEC-026", "fail", facts(posture={"ssh_banner": "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u7"}), ctx("server")),
    ("SEC-026", "pass", facts(posture={"ssh_banner": "SSH-2.0-OpenSSH_8.7"}), ctx("server")),
    ("SEC-026", "unknown", facts(), ctx("server")),
    ("NET-010", "fail", facts(posture={"snmp_versions": ["v2c", "v3"]}), ctx("switch")),
    ("NET-010", "pass", facts(posture={"snmp_versions": ["v3"]}), ctx("switch")),
    ("NET-010", "pass", facts(posture={"snmp_versions": ["v2c"]}), ctx("switch")),
    ("NET-010", "unknown", facts(), ctx("switch")),
    ("SEC-001", "fail", facts(scanned=False), ctx("server", collector_findings={"SEC-001": "key changed"})),
    ("SEC-001", "pass", facts(identity={"ssh_host_key": "ssh-ed25519 SHA256:abc"}), ctx("server")),
    ("SEC-001", "unknown", facts(scanned=False), ctx("server")),
    ("SEC-002", "fail", facts(posture={"ssh_root_login": "yes"}), ctx("server")),
    ("SEC-002", "pass", facts(posture={"ssh_root_login": "prohibit-password"}), ctx("server")),
    ("SEC-002", "pass", facts(posture={"listening": NO_SSH}), ctx("server")),
    ("SEC-002", "unknown", facts(posture={"listening": SSH}), ctx("server")),
    ("SEC-003", "fail", facts(posture={"ssh_password_auth": True}), ctx("server")),
    ("SEC-003", "pass", facts(posture={"ssh_password_auth": False}), ctx("server")),
    ("SEC-003", "unknown", facts(), ctx("server")),
    ("SEC-004", "fail", facts(posture={"listening": [("tcp", 23, "0.0.0.0", "telnetd")]}), ctx("server")),
    (
        "SEC-004",
        "pass",
        facts(posture={"listening": [("tcp", 21, "127.0.0.1", "vsftpd"), *SSH]}),
        ctx("server"),
    ),
    ("SEC-004", "unknown", facts(), ctx("server")),
    ("SEC-005", "fail", facts(posture={"smb1_enabled": True}), ctx("workstation")),
    ("SEC-005", "pass", facts(posture={"smb1_enabled": False}), ctx("workstation")),
    ("SEC-005", "pass", facts(posture={"listening": SSH}), ctx("server")),
    ("SEC-005", "unknown", facts(), ctx("server")),
    ("SEC-006", "fail", facts(posture={"firewall_active": False}), ctx("server")),
    ("SEC-006", "pass", facts(posture={"firewall_active": True}), ctx("server")),
    ("SEC-006", "unknown", facts(), ctx("server")),
    ("SEC-007", "fail", facts(posture={"disk_encryption": False}), ctx("laptop")),
    ("SEC-007", "fail", facts(hardware={"disks": [Disk("sda", encrypted=False)]}), ctx("laptop")),
    ("SEC-007", "pass", facts(posture={"disk_encryption": True}), ctx("laptop")),
    ("SEC-007", "unknown", facts(), ctx("laptop")),
    ("SEC-008", "fail", facts(posture={"antivirus_enabled": False}), ctx("workstation")),
    (
        "SEC-008",
        "fail",
        facts(posture={"antivirus_enabled": True, "av_signature_age_days": 30}),
        ctx("workstation"),
    ),
    (
        "SEC-008",
        "pass",
        facts(posture={"antivirus_enabled": True, "av_signature_age_days": 1}),
        ctx("workstation"),
    ),
    ("SEC-008", "unknown", facts(posture={"antivirus_enabled": True}), ctx("workstation")),
    ("SEC-008", "unknown", facts(), ctx("workstation")),
    ("SEC-009", "fail", facts(posture={"local_admins": ["Administrator", "a", "b"]}), ctx("workstation")),
    ("SEC-009", "pass", facts(posture={"local_admins": ["Administrator"]}), ctx("workstation")),
    ("SEC-009", "unknown", facts(), ctx("workstation")),
    ("SEC-010", "fail", facts(identity={"ssh_host_key": "ssh-ed25519 AAAA"}),
     ctx("server", shares_host_key_with=["app02"])),
    ("SEC-010", "pass", facts(identity={"ssh_host_key": "ssh-ed25519 AAAA"}), ctx("server")),
    ("SEC-010", "unknown", facts(scanned=False), ctx("server")),
    ("NET-001", "fail", facts(posture={"snmp_default_communities": ["public"]}), ctx("switch")),
    ("NET-001", "pass", facts(posture={"snmp_default_communities": []}), ctx("switch")),
    ("NET-001", "unknown", facts(), ctx("switch")),
    ("NET-002", "fail", facts(posture={"snmp_versions": ["v1", "v2c"]}), ctx("printer")),
    ("NET-002", "pass", facts(posture={"snmp_versions": ["v2c", "v3"]}), ctx("printer")),
    ("NET-002", "unknown", facts(), ctx("printer")),
    ("NET-003", "fail", facts(posture={"snmp_versions": ["v3"], "snmp_v3_nopriv": True}), ctx("switch")),
    ("NET-003", "pass", facts(posture={"snmp_versions": ["v3"], "snmp_v3_nopriv": False}), ctx("switch")),
    ("NET-003", "pass", facts(posture={"snmp_versions": ["v2c"]}), ctx("switch")),
    ("NET-003", "unknown", facts(), ctx("switch")),
]


@pytest.mark.parametrize(
    ("check_id", "status", "f", "c"), CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)]
)
def test_exposure_cases(check_id, status, f, c):
    finding = run(check_id, f, c)
    assert finding.status.value == status, finding.summary
    if status == "unknown":
        assert "missing facts:" in finding.detail or "Could not be checked: missing" in finding.summary


def test_severity_escalations():
    telnet = facts(posture={"listening": [("tcp", 23, "0.0.0.0", "telnetd")]})
    assert run("SEC-004", telnet, ctx("server")).severity.value == "high"
    assert run("SEC-004", telnet, ctx("server", tags=["internet-facing"])).severity.value == "critical"
    assert (
        run("SEC-003", facts(posture={"ssh_password_auth": True}), ctx("firewall")).severity.value == "high"
    )
    private = facts(posture={"snmp_default_communities": ["public", "private"]})
    assert run("NET-001", private, ctx("switch")).severity.value == "critical"
    stale = facts(posture={"antivirus_enabled": True, "av_signature_age_days": 30})
    assert run("SEC-008", stale, ctx("workstation")).severity.value == "medium"


def test_laptop_only_and_network_only_checks_skip_other_kinds():
    from itaudit.checking import run_checks
    from itaudit.plugins import load_checks

    specs = [load_checks()[i] for i in ("SEC-007", "NET-001")]
    assert run_checks(facts(), ctx("server"), specs) == []


def test_net001_references_default_passwords_goal():
    f = run("NET-001", facts(posture={"snmp_default_communities": ["public"]}), ctx("switch"))
    assert "CISA CPG 1.0.1 2.A" in f.references
    assert "public" in f.evidence
