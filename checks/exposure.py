"""Exposure checks: SSH settings, cleartext services, SMBv1, firewall, encryption, antivirus,
administrators, and SNMP configuration."""

from __future__ import annotations

from checks._common import (
    HOST_KINDS,
    NETWORK_KINDS,
    internet_facing,
    labour,
    name_of,
    policy_of,
    refs,
    unknown_result,
)
from itaudit.checking import CheckContext, check
from itaudit.model import CheckResult, DeviceFacts, Severity, Status

CLEARTEXT = {
    ("tcp", 21): "FTP",
    ("tcp", 23): "Telnet",
    ("tcp", 512): "rexec",
    ("tcp", 513): "rlogin",
    ("tcp", 514): "rsh",
    ("udp", 69): "TFTP",
}


def _loopback(addr: str | None) -> bool:
    a = (addr or "").strip("[]")
    return a.startswith("127.") or a in ("::1", "localhost")


def _listens(facts: DeviceFacts, proto: str, ports: set[int]) -> bool | None:
    svcs = facts.posture.listening
    if svcs is None:
        return None
    return any(s.proto == proto and s.port in ports and not _loopback(s.address) for s in svcs)


def _no_ssh_server(facts: DeviceFacts) -> CheckResult | None:
    if _listens(facts, "tcp", {22}) is False:
        return CheckResult(Status.PASS, summary=f"{name_of(facts)} runs no SSH server.")
    return None


@check("SEC-001", title="SSH host key changed", severity="high", **refs("SEC-001"))
def sec_host_key_changed(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The device offered a different SSH host key from the one pinned on first contact.

    Raised by the SSH collector, which then sends no credentials. Either the device was
    rebuilt or replaced (then re-pin the key after checking it), or something is
    intercepting the connection. Devices not reached over SSH pass. The WinRM collector
    raises it too when a host's HTTPS certificate is untrusted or names another host
    (also before any credential is sent).
    """
    detail = ctx.device.collector_findings.get("SEC-001")
    if detail and "TLS certificate" in detail:  # WinRM over HTTPS (collectors/winrm.py)
        return CheckResult(
            Status.FAIL,
            summary=f"{name_of(facts)} presented a TLS certificate we do not trust for it: either its "
            "certificate changed or someone may be impersonating it. We did not log in.",
            detail=detail,
            remediation="Check the WinRM HTTPS listener's certificate on the console (winrm enumerate "
            "winrm/config/listener; its thumbprint and issuer) and that the credential's ca_file holds the CA "
            "that issued it.",
            cost=labour(ctx, "investigate", "verify the certificate"),
        )
    if detail:
        return CheckResult(
            Status.FAIL,
            summary=f"{name_of(facts)} presented a different identity key than before: it was either "
            "rebuilt or someone may be impersonating it. We did not log in.",
            detail=detail,
            remediation="Confirm with the device's owner whether it was rebuilt; check the key on the "
            "console "
            "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then re-pin it in itaudit's known_hosts.",
            cost=labour(ctx, "investigate", "verify the new key"),
        )
    if facts.identity.ssh_host_key:
        return CheckResult(
            Status.PASS,
            summary=f"{name_of(facts)} presented its known SSH key.",
            evidence=facts.identity.ssh_host_key,
        )
    if facts.sources:
        return CheckResult(Status.PASS, summary=f"{name_of(facts)} was not reached over SSH.")
    return unknown_result(
        summary=f"{name_of(facts)} has not been scanned yet.",
        missing=["identity.ssh_host_key"],
    )


@check("SEC-002", title="SSH allows root login with a password", severity="medium", **refs("SEC-002"))
def sec_ssh_root_login(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """sshd's ``PermitRootLogin`` is ``yes``: anyone who guesses root's password owns the host.

    ``prohibit-password`` (key only), ``forced-commands-only`` and ``no`` pass. Hosts with
    no SSH server listening pass. High severity on an internet-facing device.
    """
    value = facts.posture.ssh_root_login
    if value is None:
        return _no_ssh_server(facts) or unknown_result(
            summary=f"We could not read {name_of(facts)}'s SSH settings.",
            missing=["posture.ssh_root_login"],
        )
    if value.lower() != "yes":
        return CheckResult(
            Status.PASS,
            summary=f"{name_of(facts)} does not accept root logins by password.",
            evidence=f"PermitRootLogin {value}",
        )
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts)} lets anyone try to log in as the all-powerful root account with a "
        f"password.",
        evidence="PermitRootLogin yes",
        remediation="Set 'PermitRootLogin prohibit-password' (or 'no') in /etc/ssh/sshd_config and reload "
        "sshd; "
        "use named accounts with sudo.",
        cost=labour(ctx, "config_change", "change the SSH setting"),
        severity=Severity.HIGH if internet_facing(facts, ctx) else None,
    )


@check("SEC-003", title="SSH password authentication enabled", severity="low", **refs("SEC-003"))
def sec_ssh_password_auth(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """sshd accepts passwords, so it can be brute-forced; keys are not guessable.

    High severity on an internet-facing device. Hosts with no SSH server pass.
    """
    value = facts.posture.ssh_password_auth
    if value is None:
        return _no_ssh_server(facts) or unknown_result(
            summary=f"We could not read {name_of(facts)}'s SSH settings.",
            missing=["posture.ssh_password_auth"],
        )
    if not value:
        return CheckResult(Status.PASS, summary=f"{name_of(facts)} accepts SSH keys only.")
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts)} accepts passwords over SSH, which attackers can try to guess.",
        evidence="PasswordAuthentication yes",
        remediation="Deploy SSH keys for administrators, then set 'PasswordAuthentication no' and reload "
        "sshd.",
        cost=labour(ctx, "config_change", "move administrators to SSH keys"),
        severity=Severity.HIGH if internet_facing(facts, ctx) else None,
    )


@check(
    "SEC-004",
    title="Cleartext remote access service listening (telnet, ftp, rsh, tftp)",
    severity="high",
    **refs("SEC-004"),
)
def sec_cleartext_services(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """Telnet, FTP, rsh/rlogin/rexec or TFTP listens on a network address.

    These send passwords and data unencrypted. Services bound to loopback only are
    ignored. Critical on an internet-facing device.
    """
    svcs = facts.posture.listening
    if svcs is None:
        return unknown_result(
            summary=f"We could not list {name_of(facts)}'s network services.",
            missing=["posture.listening"],
        )
    found = sorted(
        {
            f"{CLEARTEXT[(s.proto, s.port)]} ({s.proto}/{s.port})"
            for s in svcs
            if (s.proto, s.port) in CLEARTEXT and not _loopback(s.address)
        }
    )
    if not found:
        return CheckResult(Status.PASS, summary=f"{name_of(facts)} runs no cleartext remote-access services.")
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts)} offers {', '.join(found)}, which send passwords unencrypted over the "
        f"network.",
        evidence="; ".join(
            f"{s.proto} {s.address or '*'}:{s.port} {s.process or ''}".strip()
            for s in svcs
            if (s.proto, s.port) in CLEARTEXT
        ),
        remediation="Disable the service (systemctl disable --now telnet.socket vsftpd ...; 'no service "
        "telnet' / "
        "'transport input ssh' on network gear) and use SSH/SFTP instead.",
        cost=labour(ctx, "config_change", "disable the services"),
        severity=Severity.CRITICAL if internet_facing(facts, ctx) else None,
    )


@check("SEC-005", title="SMBv1 enabled", severity="high", **refs("SEC-005"))
def sec_smb1(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The obsolete SMBv1 file-sharing protocol (WannaCry, NotPetya) is enabled.

    Hosts with no SMB server listening pass.
    """
    on = facts.posture.smb1_enabled
    if on is None:
        if _listens(facts, "tcp", {139, 445}) is False:
            return CheckResult(Status.PASS, summary=f"{name_of(facts)} runs no file-sharing (SMB) server.")
        return unknown_result(
            summary=f"We could not tell whether {name_of(facts)} allows SMBv1.",
            missing=["posture.smb1_enabled"],
        )
    if not on:
        return CheckResult(Status.PASS, summary=f"{name_of(facts)} does not allow SMBv1.")
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts)} allows the obsolete SMBv1 file-sharing protocol used by ransomware such "
        f"as "
        "WannaCry.",
        remediation="Windows: Disable-WindowsOptionalFeature -Online -FeatureName SMB1Protocol (and "
        "Set-SmbServerConfiguration -EnableSMB1Protocol $false). Samba: 'server min protocol = SMB2'.",
        cost=labour(ctx, "config_change", "turn SMBv1 off and test old clients"),
    )


@check("SEC-006", title="Host firewall off", severity="medium", applies_to=HOST_KINDS, **refs("SEC-006"))
def sec_firewall(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The host firewall (Windows Defender Firewall, nftables/firewalld/ufw) is not active."""
    on = facts.posture.firewall_active
    if on is None:
        return unknown_result(
            summary=f"We could not tell whether {name_of(facts)}'s firewall is on.",
            missing=["posture.firewall_active"],
        )
    if on:
        return CheckResult(
            Status.PASS,
            summary=f"{name_of(facts)}'s firewall is on.",
            evidence=facts.posture.firewall_detail or "",
        )
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts)}'s own firewall is off: any service on it is open to the whole network.",
        evidence=facts.posture.firewall_detail or "",
        remediation="Turn the host firewall on with a default-deny inbound rule set (GPO for Windows; "
        "firewalld/ufw on Linux) allowing only the services the host provides.",
        cost=labour(ctx, "config_change", "enable and tune the firewall"),
    )


@check(
    "SEC-007",
    title="Disk encryption off on a laptop",
    severity="high",
    applies_to=("laptop",),
    **refs("SEC-007"),
)
def sec_laptop_encryption(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """A laptop's disk is not encrypted (BitLocker, LUKS, FileVault).

    A lost or stolen laptop then exposes everything on it — for a police or finance
    laptop, a reportable breach.
    """
    on = facts.posture.disk_encryption
    if on is None:
        flags = [d.encrypted for d in facts.hardware.disks if d.encrypted is not None]
        on = all(flags) if flags else None
    if on is None:
        return unknown_result(
            summary=f"We could not tell whether {name_of(facts)}'s disk is encrypted.",
            missing=["posture.disk_encryption"],
        )
    if on:
        return CheckResult(Status.PASS, summary=f"{name_of(facts)}'s disk is encrypted.")
    return CheckResult(
        Status.FAIL,
        summary=f"Laptop {name_of(facts)} is not encrypted: if it is lost or stolen, its data can be read.",
        remediation="Turn on BitLocker with TPM protector and escrow the recovery key (Windows), or LUKS "
        "(Linux; requires reinstall).",
        cost=labour(ctx, "config_change", "enable disk encryption"),
    )


@check(
    "SEC-008",
    title="Antivirus off or signatures stale",
    severity="high",
    applies_to=HOST_KINDS,
    **refs("SEC-008"),
)
def sec_antivirus(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """Anti-malware is disabled, or its signatures are older than ``av_signature_max_days``.

    Stale signatures alone are medium severity; protection turned off is high.
    """
    p = facts.posture
    if p.antivirus_enabled is None:
        return unknown_result(
            summary=f"We could not tell whether {name_of(facts)} has working anti-malware protection.",
            missing=["posture.antivirus_enabled"],
        )
    pol = policy_of(ctx)
    if not p.antivirus_enabled:
        return CheckResult(
            Status.FAIL,
            summary=f"{name_of(facts)} has no active anti-malware protection.",
            evidence=f"antivirus {p.antivirus or 'none'} disabled",
            remediation="Turn real-time protection back on (Defender: Set-MpPreference "
            "-DisableRealtimeMonitoring $false) or install the city's endpoint protection.",
            cost=labour(ctx, "config_change", "restore protection"),
        )
    if p.av_signature_age_days is None:
        return unknown_result(
            summary=f"{name_of(facts)} has anti-malware on; its signature age is not known.",
            missing=["posture.av_signature_age_days"],
        )
    if p.av_signature_age_days > pol.av_signature_max_days:
        return CheckResult(
            Status.FAIL,
            summary=f"{name_of(facts)}'s anti-malware has not updated for {p.av_signature_age_days} days, "
            f"so it "
            "misses recent threats.",
            evidence=f"{p.antivirus or 'antivirus'} signatures {p.av_signature_age_days} days old "
            f"(policy {pol.av_signature_max_days})",
            remediation="Check signature updates (Update-MpSignature; proxy/WSUS settings).",
            cost=labour(ctx, "investigate", "fix signature updates"),
            severity=Severity.MEDIUM,
        )
    return CheckResult(
        Status.PASS,
        summary=f"{name_of(facts)} has anti-malware on with current signatures.",
        evidence=f"{p.antivirus or 'antivirus'}; signatures {p.av_signature_age_days} days old",
    )


@check(
    "SEC-009",
    title="Too many local administrators",
    severity="medium",
    applies_to=HOST_KINDS,
    **refs("SEC-009"),
)
def sec_local_admins(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """More accounts hold local administrator rights than ``max_local_admins`` allows.

    Every extra administrator is one more password that gives full control of the host.
    """
    admins = facts.posture.local_admins
    if admins is None:
        return unknown_result(
            summary=f"We could not list {name_of(facts)}'s administrators.",
            missing=["posture.local_admins"],
        )
    pol = policy_of(ctx)
    listing = ", ".join(admins[:20])
    if len(admins) <= pol.max_local_admins:
        return CheckResult(
            Status.PASS,
            summary=f"{name_of(facts)} has {len(admins)} local administrator(s).",
            evidence=listing,
        )
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts)} has {len(admins)} accounts with full administrator rights (policy: at "
        f"most "
        f"{pol.max_local_admins}).",
        evidence=listing,
        remediation="Remove administrator rights from everyday user accounts; use LAPS for the local "
        "Administrator and a separate admin account for IT staff.",
        cost=labour(ctx, "config_change", "review the administrators group"),
    )


@check(
    "NET-001",
    title="SNMP default community string accepted",
    severity="high",
    applies_to=NETWORK_KINDS,
    **refs("NET-001"),
)
def net_snmp_default_community(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The device answers SNMP with a factory-default community ("public", "private").

    Anyone on the network can read its configuration — or, with "private", change it.
    Critical when a default write community answers.
    """
    found = facts.posture.snmp_default_communities
    if found is None:
        return unknown_result(
            summary=f"We did not test {name_of(facts)} for default SNMP passwords.",
            missing=["posture.snmp_default_communities"],
        )
    if not found:
        return CheckResult(Status.PASS, summary=f"{name_of(facts)} does not accept default SNMP passwords.")
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts)} still accepts the factory-default SNMP password ({', '.join(found)}).",
        evidence=f"answered community: {', '.join(found)}",
        remediation="Remove the default communities; move monitoring to SNMPv3 authPriv (or a long random "
        "read-only community restricted by ACL to the monitoring host).",
        cost=labour(ctx, "config_change", "change the SNMP configuration"),
        severity=Severity.CRITICAL if any(c.lower() == "private" for c in found) else None,
    )


@check(
    "NET-002",
    title="SNMP v1/v2c only (no SNMPv3)",
    severity="medium",
    applies_to=NETWORK_KINDS,
    **refs("NET-002"),
)
def net_snmp_v1_v2c_only(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The device is managed with SNMP v1/v2c only: the community travels in cleartext."""
    versions = facts.posture.snmp_versions
    if not versions:
        return unknown_result(
            summary=f"We do not know which SNMP versions {name_of(facts)} accepts.",
            missing=["posture.snmp_versions"],
        )
    low = [v.lower() for v in versions]
    if "v3" in low:
        return CheckResult(
            Status.PASS, summary=f"{name_of(facts)} supports SNMPv3.", evidence=", ".join(versions)
        )
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts)} is managed with old SNMP versions that send their password unencrypted.",
        evidence=", ".join(versions),
        remediation="Configure an SNMPv3 authPriv user (SHA/AES), switch monitoring to it, then disable "
        "v1/v2c.",
        cost=labour(ctx, "config_change", "move monitoring to SNMPv3"),
    )


@check(
    "NET-003",
    title="SNMPv3 without privacy (encryption)",
    severity="medium",
    applies_to=NETWORK_KINDS,
    **refs("NET-003"),
)
def net_snmp_v3_nopriv(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """SNMPv3 is used with authNoPriv/noAuthNoPriv: management traffic is not encrypted.

    Devices that do not speak SNMPv3 pass here (NET-002 reports them).
    """
    nopriv = facts.posture.snmp_v3_nopriv
    if nopriv is None:
        versions = [v.lower() for v in facts.posture.snmp_versions or []]
        if versions and "v3" not in versions:
            return CheckResult(Status.PASS, summary=f"{name_of(facts)} does not use SNMPv3 (see NET-002).")
        return unknown_result(
            summary=f"We could not tell whether {name_of(facts)}'s SNMPv3 traffic is encrypted.",
            missing=["posture.snmp_v3_nopriv"],
        )
    if not nopriv:
        return CheckResult(Status.PASS, summary=f"{name_of(facts)}'s SNMPv3 traffic is encrypted.")
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts)}'s SNMPv3 management traffic is not encrypted.",
        remediation="Use the authPriv security level with AES privacy for every SNMPv3 user.",
        cost=labour(ctx, "config_change", "reconfigure the SNMPv3 users"),
    )
