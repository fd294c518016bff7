"""The Linux parser on probe output recorded from real systems (tests/fixtures/linux-recorded/).

Each recording comes with ``truth.txt``: the same system observed in the same session through
other commands than the probe's. The parser must agree with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.linux import parse_linux

FIX = Path(__file__).parent / "fixtures" / "linux-recorded"
CASES = sorted(p for p in FIX.iterdir() if (p / "probe.txt").exists())


def truth(case: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in (case / "truth.txt").read_text().splitlines() if "=" in line)


def sshd_t(t: dict[str, str]) -> dict[str, str]:
    return dict(item.split(" ", 1) for item in t["sshd_T"].split(";") if item)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_parser_agrees_with_the_system_seen_another_way(case: Path) -> None:
    facts = parse_linux((case / "probe.txt").read_bytes())
    t = truth(case)
    assert facts.identity.hostname == t["hostname"]
    assert facts.software.release == t["version_id"]
    assert facts.patching.installed_count == int(t["dpkg_installed"])
    assert facts.patching.pending_updates == int(t["apt_list_upgradable"])
    assert facts.patching.security_updates == int(t["apt_list_upgradable_security"])
    assert sorted(facts.posture.uid0_accounts or []) == sorted(t["uid0"].split())
    ssh = sshd_t(t)
    want_root = {"without-password": "prohibit-password"}.get(ssh["permitrootlogin"], ssh["permitrootlogin"])
    assert facts.posture.ssh_root_login == want_root
    assert facts.posture.ssh_password_auth is (ssh["passwordauthentication"] == "yes")
    installed = {p.name: p.version for p in facts.patching.packages or []}
    for name in ("sudo", "libc6", "openssh-server"):
        assert installed.get(name) == (t[f"pkg_{name}"] or None), name
    # A container has no DMI: the hardware facts are gaps with the reason, never a guess.
    assert facts.hardware.serial is None and "DMI" in facts.gaps["hardware.serial"]


def test_held_back_security_updates_are_pending() -> None:
    """Ubuntu 22.04 after `apt-get upgrade`: udev and libudev1 security updates need a new package,
    so a plain upgrade holds them back. They are pending, and two of them are security updates."""
    facts = parse_linux((FIX / "ubuntu-22.04" / "probe.txt").read_bytes())
    assert (facts.patching.pending_updates, facts.patching.security_updates) == (5, 2)


def test_sudo_and_no_sudo_logins_are_told_apart() -> None:
    with_sudo = parse_linux((FIX / "ubuntu-20.04" / "probe.txt").read_bytes())
    without = parse_linux((FIX / "ubuntu-22.04" / "probe.txt").read_bytes())
    assert with_sudo.posture.firewall_active is False  # read as root through sudo: no rules at all
    assert without.posture.firewall_active is None
    assert "sudo" in without.gaps["posture.firewall_active"]
