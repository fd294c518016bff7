"""Exposure checks: SSH settings, cleartext services, SMBv1, firewall, encryption, antivirus,
administrators, and SNMP configuration."""

from __future__ import annotations

import re

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


def _ssh_source(facts: DeviceFacts) -> str:
    src = facts.posture.ssh_settings_source
    return f" (from {src})" if src else ""


def _no_ssh_server(facts: DeviceFacts, ctx: CheckContext) -> CheckResult | None:
    if facts.posture.ssh_banner or facts.posture.ssh_kex_offered:
        return None  # we spoke to its SSH server ourselves (on whatever port)
    if _listens(facts, "tcp", {22}) is False:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} runs no SSH server.")
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
            summary=f"{name_of(facts, ctx)} presented a TLS certificate we do not trust for it: either its "
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
            summary=f"{name_of(facts, ctx)} presented a different identity key than before: it was either "
            "rebuilt or someone may be impersonating it. We did not log in.",
            detail=detail,
            remediation="Confirm with the device's owner whether it was rebuilt; check the key on the "
            "console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then accept it with "
            "'itaudit hostkey accept DEVICE' (docs/cli.md#hostkey), which shows the old and new fingerprints.",
            cost=labour(ctx, "investigate", "verify the new key"),
        )
    if facts.identity.ssh_host_key:
        return CheckResult(
            Status.PASS,
            summary=f"{name_of(facts, ctx)} presented its known SSH key.",
            evidence=facts.identity.ssh_host_key,
        )
    if facts.sources:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} was not reached over SSH.")
    return unknown_result(
        summary=f"{name_of(facts, ctx)} has not been scanned yet.",
        missing=["identity.ssh_host_key"],
    )


@check("SEC-010", title="SSH host key shared with another device", severity="medium", **refs("SEC-010"))
def sec_host_key_shared(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The device presents the same SSH host key as another device in the inventory.

    Servers cloned from one template keep the template's host key unless it is regenerated.
    Each machine is still counted on its own (serial number, MAC address and address decide
    who is who, never the key), but a shared key means one machine's key unlocks
    impersonation of the others, and a pinned key no longer tells them apart. Devices not
    reached over SSH pass.
    """
    if ctx.device.shares_host_key_with:
        others = ", ".join(ctx.device.shares_host_key_with[:5])
        more = len(ctx.device.shares_host_key_with) - 5
        return CheckResult(
            Status.FAIL,
            summary=f"{name_of(facts, ctx)} has the same SSH identity key as {others}"
            + (f" and {more} more" if more > 0 else "")
            + ": they were probably cloned from one template, so one can impersonate the other.",
            evidence=facts.identity.ssh_host_key or "",
            remediation="Regenerate the host keys on each clone (remove /etc/ssh/ssh_host_* and run "
            "ssh-keygen -A, or dpkg-reconfigure openssh-server), then re-pin them in itaudit's known_hosts.",
            cost=labour(ctx, "config_change", "regenerate the host keys"),
        )
    if facts.identity.ssh_host_key:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} has an SSH identity key of its own.")
    if facts.sources:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} was not reached over SSH.")
    return unknown_result(
        summary=f"{name_of(facts, ctx)} has not been scanned yet.", missing=["identity.ssh_host_key"]
    )


@check("SEC-002", title="SSH allows root login with a password", severity="medium", **refs("SEC-002"))
def sec_ssh_root_login(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """sshd's ``PermitRootLogin`` is ``yes``: anyone who guesses root's password owns the host.

    ``prohibit-password`` (key only), ``forced-commands-only`` and ``no`` pass. Hosts with
    no SSH server listening pass. High severity on an internet-facing device.
    """
    value = facts.posture.ssh_root_login
    if value is None:
        return _no_ssh_server(facts, ctx) or unknown_result(
            summary=f"We could not read {name_of(facts, ctx)}'s SSH settings.",
            missing=["posture.ssh_root_login"],
        )
    source = _ssh_source(facts)
    if value.lower() != "yes":
        shown = "yes (passwords are off for root)" if value == "yes-keys-only" else value
        return CheckResult(
            Status.PASS,
            summary=f"{name_of(facts, ctx)} does not accept root logins by password.",
            evidence=f"PermitRootLogin {shown}{source}",
        )
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} lets anyone try to log in as the all-powerful root account with a "
        f"password.",
        evidence=f"PermitRootLogin yes{source}",
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
        return _no_ssh_server(facts, ctx) or unknown_result(
            summary=f"We could not read {name_of(facts, ctx)}'s SSH settings.",
            missing=["posture.ssh_password_auth"],
        )
    if not value:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} accepts SSH keys only.",
                           evidence=f"no password login{_ssh_source(facts)}")
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} accepts passwords over SSH, which attackers can try to guess.",
        evidence=f"PasswordAuthentication yes (or keyboard-interactive through PAM){_ssh_source(facts)}",
        remediation="Deploy SSH keys for administrators, then set 'PasswordAuthentication no' and reload "
        "sshd.",
        cost=labour(ctx, "config_change", "move administrators to SSH keys"),
        severity=Severity.HIGH if internet_facing(facts, ctx) else None,
    )


# --- SSH daemon settings and algorithms -------------------------------------------------

# Thresholds of the CIS Benchmarks for Linux distributions (section "Configure SSH Server"):
# MaxAuthTries 4 or less, LoginGraceTime one minute or less.
SSH_MAX_AUTH_TRIES = 4
SSH_MAX_LOGIN_GRACE = 60


def _ssh_setting(facts: DeviceFacts, ctx: CheckContext, field: str, what: str) -> CheckResult | None:
    """The unknown result (or pass: no SSH server) when a daemon setting was not read."""
    if getattr(facts.posture, field) is not None:
        return None
    return _no_ssh_server(facts, ctx) or unknown_result(
        summary=f"We could not read {name_of(facts, ctx)}'s SSH setting for {what}.",
        detail=facts.gaps.get(f"posture.{field}", ""),
        missing=[f"posture.{field}"],
    )


@check("SEC-021", title="SSH accepts empty passwords", severity="high", applies_to=HOST_KINDS, **refs("SEC-021"))
def sec_ssh_empty_passwords(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """sshd's ``PermitEmptyPasswords`` is ``yes``: an account without a password can log in
    over the network with nothing at all. Read from the daemon that served our session."""
    unknown = _ssh_setting(facts, ctx, "ssh_empty_passwords", "empty passwords")
    if unknown:
        return unknown
    if not facts.posture.ssh_empty_passwords:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} refuses SSH logins with an empty password.",
                           evidence=f"PermitEmptyPasswords no{_ssh_source(facts)}")
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} lets accounts without a password log in over SSH.",
        evidence=f"PermitEmptyPasswords yes{_ssh_source(facts)}",
        remediation="Set 'PermitEmptyPasswords no' in the sshd configuration and reload sshd; give every "
        "account a password or lock it (passwd -l).",
        cost=labour(ctx, "config_change", "change the SSH setting"),
        severity=Severity.CRITICAL if internet_facing(facts, ctx) else None,
    )


@check("SEC-022", title="SSH X11 forwarding enabled", severity="low", applies_to=HOST_KINDS, **refs("SEC-022"))
def sec_ssh_x11(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """sshd's ``X11Forwarding`` is ``yes``: a server rarely needs graphical forwarding, and it
    exposes the administrator's desktop session to the server (CIS Benchmarks: X11Forwarding no)."""
    unknown = _ssh_setting(facts, ctx, "ssh_x11_forwarding", "X11 forwarding")
    if unknown:
        return unknown
    if not facts.posture.ssh_x11_forwarding:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} does not forward graphical (X11) sessions.",
                           evidence=f"X11Forwarding no{_ssh_source(facts)}")
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} forwards graphical (X11) sessions over SSH, which servers rarely need.",
        evidence=f"X11Forwarding yes{_ssh_source(facts)}",
        remediation="Set 'X11Forwarding no' in the sshd configuration and reload sshd.",
        cost=labour(ctx, "config_change", "change the SSH setting"),
    )


@check("SEC-023", title="SSH agent forwarding allowed", severity="low", applies_to=HOST_KINDS, **refs("SEC-023"))
def sec_ssh_agent_forwarding(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """sshd's ``AllowAgentForwarding`` is ``yes`` (OpenSSH's default): anyone with root on this
    server can use the keys of an administrator who forwards an agent to it."""
    unknown = _ssh_setting(facts, ctx, "ssh_agent_forwarding", "agent forwarding")
    if unknown:
        return unknown
    if not facts.posture.ssh_agent_forwarding:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} does not allow SSH agent forwarding.",
                           evidence=f"AllowAgentForwarding no{_ssh_source(facts)}")
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} lets administrators forward their SSH keys to it, where anyone with "
        "full control of it could use them.",
        evidence=f"AllowAgentForwarding yes{_ssh_source(facts)}",
        remediation="Set 'AllowAgentForwarding no' in the sshd configuration (use ProxyJump instead of "
        "agent forwarding) and reload sshd.",
        cost=labour(ctx, "config_change", "change the SSH setting"),
    )


@check("SEC-024", title="SSH allows many password guesses per connection", severity="low",
       applies_to=HOST_KINDS, **refs("SEC-024"))
def sec_ssh_max_auth_tries(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """sshd's ``MaxAuthTries`` is above 4 (CIS Benchmarks): more guesses per connection make
    password guessing cheaper."""
    unknown = _ssh_setting(facts, ctx, "ssh_max_auth_tries", "login attempts")
    if unknown:
        return unknown
    n = facts.posture.ssh_max_auth_tries or 0
    if n <= SSH_MAX_AUTH_TRIES:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} allows {n} login attempts per connection.",
                           evidence=f"MaxAuthTries {n}{_ssh_source(facts)}")
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} allows {n} login attempts per SSH connection (at most "
        f"{SSH_MAX_AUTH_TRIES} recommended).",
        evidence=f"MaxAuthTries {n}{_ssh_source(facts)}",
        remediation=f"Set 'MaxAuthTries {SSH_MAX_AUTH_TRIES}' in the sshd configuration and reload sshd.",
        cost=labour(ctx, "config_change", "change the SSH setting"),
    )


@check("SEC-025", title="SSH login grace time too long", severity="low", applies_to=HOST_KINDS,
       **refs("SEC-025"))
def sec_ssh_login_grace(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """sshd's ``LoginGraceTime`` is over 60 seconds or unlimited (0) (CIS Benchmarks: one
    minute or less): unauthenticated connections are held open longer, which eases
    exhausting the server's connection slots."""
    unknown = _ssh_setting(facts, ctx, "ssh_login_grace_seconds", "login grace time")
    if unknown:
        return unknown
    n = facts.posture.ssh_login_grace_seconds or 0
    if 0 < n <= SSH_MAX_LOGIN_GRACE:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} drops unauthenticated SSH connections "
                           f"after {n} seconds.", evidence=f"LoginGraceTime {n}{_ssh_source(facts)}")
    shown = "unlimited" if n == 0 else f"{n} seconds"
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} keeps unauthenticated SSH connections open for {shown} (at most "
        f"{SSH_MAX_LOGIN_GRACE} seconds recommended).",
        evidence=f"LoginGraceTime {n}{_ssh_source(facts)}",
        remediation=f"Set 'LoginGraceTime {SSH_MAX_LOGIN_GRACE}' in the sshd configuration and reload sshd.",
        cost=labour(ctx, "config_change", "change the SSH setting"),
    )


# A distribution's package revision in the SSH version string ("OpenSSH_9.2p1 Debian-2+deb12u3").
_BANNER_REVISION = re.compile(r"\b(Debian|Ubuntu|Raspbian)-\S+", re.I)


@check("SEC-026", title="SSH banner shows the exact OS package version", severity="low", applies_to=HOST_KINDS,
       **refs("SEC-026"))
def sec_ssh_banner_disclosure(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The SSH server's version string, sent to anyone before login, names the distribution's
    package revision (``OpenSSH_9.2p1 Debian-2+deb12u3``), so a scanner learns which security
    fixes the host has without logging in. The OpenSSH version itself is part of the
    protocol and passes; Debian and Ubuntu drop the revision with ``DebianBanner no``.
    Read from the banner the server sent us (no login needed)."""
    banner = facts.posture.ssh_banner
    if not banner:
        return _no_ssh_server(facts, ctx) or unknown_result(
            summary=f"We did not see {name_of(facts, ctx)}'s SSH version string.",
            missing=["posture.ssh_banner"],
        )
    m = _BANNER_REVISION.search(banner)
    if not m:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)}'s SSH banner does not show its OS package "
                           "version.", evidence=banner)
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} tells anyone who connects its exact SSH package version ({m.group(0)}), "
        "which shows attackers which security fixes it has.",
        evidence=banner,
        remediation="Add 'DebianBanner no' to the sshd configuration (Debian, Ubuntu) and reload sshd.",
        cost=labour(ctx, "config_change", "change the SSH setting"),
    )


# Weak SSH algorithms, one rule per family: (test on the name, why, the guidance it follows).
WEAK_SSH_ALGORITHMS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "kex": (
        ("diffie-hellman-group1-sha1", "1024-bit group and SHA-1",
         "NIST SP 800-131A Rev. 2 (under 112-bit security disallowed); RFC 9142"),
        ("diffie-hellman-group14-sha1", "SHA-1 key exchange", "RFC 9142 (moves SSH key exchange off SHA-1)"),
        ("diffie-hellman-group-exchange-sha1", "SHA-1 key exchange", "RFC 9142"),
        ("gss-*-sha1-*", "SHA-1 key exchange", "RFC 8732"),
    ),
    "host_keys": (
        ("ssh-rsa", "RSA signatures with SHA-1", "NIST SP 800-131A Rev. 2 (SHA-1 disallowed for signatures)"),
        ("ssh-dss", "DSA host key", "FIPS 186-5 (DSA no longer approved for signing)"),
        ("ssh-rsa-cert-v01@openssh.com", "RSA signatures with SHA-1", "NIST SP 800-131A Rev. 2"),
        ("ssh-dss-cert-v01@openssh.com", "DSA host key", "FIPS 186-5"),
    ),
    "ciphers": (
        ("3des-*", "Triple DES", "NIST SP 800-131A Rev. 2 (TDEA encryption disallowed after 2023)"),
        ("arcfour*", "RC4", "RFC 8758 (RC4 deprecated in SSH)"),
        ("*-cbc", "CBC mode", "CVE-2008-5161 (plaintext recovery against SSH in CBC mode)"),
        ("rijndael-cbc@lysator.liu.se", "CBC mode", "CVE-2008-5161"),
        ("des*", "single DES", "NIST SP 800-131A Rev. 2"),
        ("blowfish-*", "64-bit block cipher", "NIST SP 800-131A Rev. 2"),
        ("cast128-*", "64-bit block cipher", "NIST SP 800-131A Rev. 2"),
        ("none", "no encryption", "RFC 4253"),
    ),
    "macs": (
        ("hmac-md5*", "MD5 MAC", "BSI TR-02102-4 (recommends HMAC with SHA-2 only)"),
        ("hmac-sha1*", "SHA-1 MAC", "BSI TR-02102-4 (HMAC-SHA-1 dropped from its recommendations in 2020)"),
        ("hmac-ripemd160*", "RIPEMD-160 MAC", "BSI TR-02102-4"),
        ("none", "no integrity protection", "RFC 4253"),
    ),
}
_OFFER_FIELDS = {"kex": "ssh_kex_offered", "host_keys": "ssh_host_keys_offered", "ciphers": "ssh_ciphers_offered",
                 "macs": "ssh_macs_offered"}
_OFFER_LABELS = {"kex": "key exchange", "host_keys": "host key", "ciphers": "cipher", "macs": "MAC"}


def weak_ssh_algorithms(facts: DeviceFacts) -> list[tuple[str, str, str, str]] | None:
    """(family, algorithm, why, guidance) for every weak algorithm the server offered; None
    when its offer was not captured."""
    import fnmatch

    po = facts.posture
    offers = {fam: getattr(po, f) for fam, f in _OFFER_FIELDS.items()}
    if any(v is None for v in offers.values()):
        return None
    found = []
    for fam, rules in WEAK_SSH_ALGORITHMS.items():
        for algo in offers[fam] or []:
            for pattern, why, guidance in rules:
                if fnmatch.fnmatchcase(algo.lower(), pattern):
                    found.append((fam, algo, why, guidance))
                    break
    return found


@check("SEC-020", title="SSH server offers weak cryptography", severity="medium", **refs("SEC-020"))
def sec_ssh_weak_crypto(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The SSH server offers key exchange, host key, cipher or MAC algorithms that current
    guidance retires: SHA-1 key exchange (group1, group14-sha1, group-exchange-sha1; RFC
    9142, NIST SP 800-131A Rev. 2), ``ssh-rsa`` SHA-1 signatures and DSA host keys (NIST SP
    800-131A Rev. 2, FIPS 186-5), 3DES, RC4 (RFC 8758) and CBC-mode ciphers
    (CVE-2008-5161), MD5 and SHA-1 MACs (BSI TR-02102-4). Read from the server's own offer
    during key exchange, so it needs no login and runs when the login fails. A client that
    prefers strong algorithms still negotiates them, but an attacker in the path, or an
    old client, can use the weak ones.
    """
    found = weak_ssh_algorithms(facts)
    if found is None:
        missing = [f"posture.{f}" for f in _OFFER_FIELDS.values()]
        return _no_ssh_server(facts, ctx) or unknown_result(
            summary=f"We did not see which encryption {name_of(facts, ctx)}'s SSH server offers.",
            detail=facts.gaps.get("posture.ssh_kex_offered", ""),
            missing=missing,
        )
    if not found:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)}'s SSH server offers only current "
                           "encryption algorithms.", evidence=_offer_text(facts))
    by_family = {}
    for fam, algo, why, guidance in found:
        by_family.setdefault(fam, []).append(f"{algo} ({why}; {guidance})")
    detail = "; ".join(f"{_OFFER_LABELS[f]}: {', '.join(v)}" for f, v in by_family.items())
    only_weak_kex = all(a in {x[1] for x in found if x[0] == "kex"} for a in facts.posture.ssh_kex_offered or [])
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)}'s SSH server still offers {len(found)} outdated encryption "
        f"algorithm{'s' if len(found) != 1 else ''}"
        + (", and nothing better for key exchange" if only_weak_kex else "") + ".",
        detail=detail,
        evidence=_offer_text(facts),
        remediation="Remove them from the server's KexAlgorithms, HostKeyAlgorithms, Ciphers and MACs "
        "(OpenSSH 8.8 and later drop most by default: updating the firmware or OS often fixes it); "
        "replace DSA and SHA-1-only RSA host keys with Ed25519.",
        cost=labour(ctx, "config_change", "restrict the SSH algorithms"),
        severity=Severity.HIGH if only_weak_kex or internet_facing(facts, ctx) else None,
    )


def _offer_text(facts: DeviceFacts) -> str:
    po = facts.posture
    return "; ".join(f"{_OFFER_LABELS[f]}: {', '.join(getattr(po, field) or [])}"
                     for f, field in _OFFER_FIELDS.items())


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
            summary=f"We could not list {name_of(facts, ctx)}'s network services.",
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
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} runs no cleartext remote-access services.")
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} offers {', '.join(found)}, which send passwords unencrypted over the "
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
            return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} runs no file-sharing (SMB) server.")
        return unknown_result(
            summary=f"We could not tell whether {name_of(facts, ctx)} allows SMBv1.",
            missing=["posture.smb1_enabled"],
        )
    if not on:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} does not allow SMBv1.")
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} allows the obsolete SMBv1 file-sharing protocol used by ransomware such "
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
            summary=f"We could not tell whether {name_of(facts, ctx)}'s firewall is on.",
            missing=["posture.firewall_active"],
        )
    if on:
        return CheckResult(
            Status.PASS,
            summary=f"{name_of(facts, ctx)}'s firewall is on.",
            evidence=facts.posture.firewall_detail or "",
        )
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)}'s own firewall is off: any service on it is open to the whole network.",
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
            summary=f"We could not tell whether {name_of(facts, ctx)}'s disk is encrypted.",
            missing=["posture.disk_encryption"],
        )
    if on:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)}'s disk is encrypted.")
    return CheckResult(
        Status.FAIL,
        summary=f"Laptop {name_of(facts, ctx)} is not encrypted: if it is lost or stolen, its data can be read.",
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
            summary=f"We could not tell whether {name_of(facts, ctx)} has working anti-malware protection.",
            missing=["posture.antivirus_enabled"],
        )
    pol = policy_of(ctx)
    if not p.antivirus_enabled:
        return CheckResult(
            Status.FAIL,
            summary=f"{name_of(facts, ctx)} has no active anti-malware protection.",
            evidence=f"antivirus {p.antivirus or 'none'} disabled",
            remediation="Turn real-time protection back on (Defender: Set-MpPreference "
            "-DisableRealtimeMonitoring $false) or install the city's endpoint protection.",
            cost=labour(ctx, "config_change", "restore protection"),
        )
    if p.av_signature_age_days is None:
        return unknown_result(
            summary=f"{name_of(facts, ctx)} has anti-malware on; its signature age is not known.",
            missing=["posture.av_signature_age_days"],
        )
    if p.av_signature_age_days > pol.av_signature_max_days:
        return CheckResult(
            Status.FAIL,
            summary=f"{name_of(facts, ctx)}'s anti-malware has not updated for {p.av_signature_age_days} days, "
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
        summary=f"{name_of(facts, ctx)} has anti-malware on with current signatures.",
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
            summary=f"We could not list {name_of(facts, ctx)}'s administrators.",
            missing=["posture.local_admins"],
        )
    pol = policy_of(ctx)
    listing = ", ".join(admins[:20])
    if len(admins) <= pol.max_local_admins:
        return CheckResult(
            Status.PASS,
            summary=f"{name_of(facts, ctx)} has {len(admins)} local administrator(s).",
            evidence=listing,
        )
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} has {len(admins)} accounts with full administrator rights (policy: at "
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
            summary=f"We did not test {name_of(facts, ctx)} for default SNMP passwords.",
            missing=["posture.snmp_default_communities"],
        )
    if not found:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} does not accept default SNMP passwords.")
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} still accepts the factory-default SNMP password ({', '.join(found)}).",
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
            summary=f"We do not know which SNMP versions {name_of(facts, ctx)} accepts.",
            missing=["posture.snmp_versions"],
        )
    low = [v.lower() for v in versions]
    if "v3" in low:
        return CheckResult(
            Status.PASS, summary=f"{name_of(facts, ctx)} supports SNMPv3.", evidence=", ".join(versions)
        )
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} is managed with old SNMP versions that send their password unencrypted.",
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
            return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} does not use SNMPv3 (see NET-002).")
        return unknown_result(
            summary=f"We could not tell whether {name_of(facts, ctx)}'s SNMPv3 traffic is encrypted.",
            missing=["posture.snmp_v3_nopriv"],
        )
    if not nopriv:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)}'s SNMPv3 traffic is encrypted.")
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)}'s SNMPv3 management traffic is not encrypted.",
        remediation="Use the authPriv security level with AES privacy for every SNMPv3 user.",
        cost=labour(ctx, "config_change", "reconfigure the SNMPv3 users"),
    )


@check(
    "NET-010",
    title="SNMP v1/v2c still answered beside SNMPv3",
    severity="medium",
    applies_to=NETWORK_KINDS,
    **refs("NET-010"),
)
def net_snmp_legacy_beside_v3(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The device speaks SNMPv3 but still answers SNMP v1 or v2c: the encrypted protocol
    protects nothing while the cleartext one stays open beside it.

    Devices without SNMPv3 are NET-002's; the versions are those the device answered
    during the scan (our own request and the exposure probes), whatever our login's outcome.
    """
    versions = [v.lower() for v in facts.posture.snmp_versions or []]
    if not versions:
        return unknown_result(
            summary=f"We do not know which SNMP versions {name_of(facts, ctx)} accepts.",
            missing=["posture.snmp_versions"],
        )
    old = [v for v in ("v1", "v2c") if v in versions]
    if "v3" not in versions:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} does not use SNMPv3 (see NET-002).",
                           evidence=", ".join(versions))
    if not old:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} answers SNMPv3 only.",
                           evidence=", ".join(versions))
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} uses encrypted SNMPv3 but still answers the old unencrypted "
        f"SNMP {' and '.join(old)} beside it.",
        evidence=", ".join(versions),
        remediation="Once monitoring uses the SNMPv3 user, remove the v1/v2c communities "
        "(no snmp-server community ...; rocommunity lines in snmpd.conf).",
        cost=labour(ctx, "config_change", "turn off SNMP v1/v2c"),
    )
