"""The Linux probe parser on every recorded case (tests/fixtures/linux/<case>/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collectors.linux import parse_linux
from itaudit.model import DeviceFacts

FIX = Path(__file__).parent / "fixtures" / "linux"
CASES = sorted(p for p in FIX.iterdir() if (p / "probe.txt").exists())


def actual(facts: DeviceFacts, key: str):
    """A fact by dotted name, dates as ISO; ``listening`` as sorted "proto/port" strings."""
    if key == "listening":
        return sorted({f"{s.proto}/{s.port}" for s in (facts.posture.listening or [])})
    value = facts.get(key)
    return value.isoformat() if hasattr(value, "isoformat") else value


def compare(facts: DeviceFacts, expected: dict) -> list[str]:
    """Differences between parsed facts and an expected.json (``gaps`` lists facts that must be unknown)."""
    problems = []
    for key, want in expected.items():
        if key == "gaps":
            problems += [f"no gap recorded for {g}" for g in want if g not in facts.gaps]
            problems += [f"gap {g} but value {facts.get(g)!r}" for g in want if facts.get(g) not in (None, [])]
            continue
        got = actual(facts, key)
        if got != want:
            problems.append(f"{key}: expected {want!r}, got {got!r}")
    return problems


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_linux_case(case: Path) -> None:
    facts = parse_linux((case / "probe.txt").read_bytes())
    expected = json.loads((case / "expected.json").read_text())
    assert compare(facts, expected) == []
    # Every fact the parser left unknown on a complete probe says why, or is optional.
    assert facts.software.os_family == "linux"
    assert facts.to_dict() == DeviceFacts.from_dict(facts.to_dict()).to_dict()


def test_at_least_the_required_cases() -> None:
    names = {c.name for c in CASES}
    required = {"debian-10", "debian-11", "debian-12", "ubuntu-18.04", "ubuntu-20.04", "ubuntu-22.04",
                "ubuntu-24.04", "rocky-8", "rhel-9", "centos-7", "no-dmi-access", "minimal-container"}
    assert required <= names


def test_truncated_probe_keeps_early_sections() -> None:
    text = (FIX / "debian-10" / "probe.txt").read_text()
    cut = text[: text.index("=== SECTION packages ===") + 200]
    facts = parse_linux(cut)
    assert facts.software.product is not None  # os-release came before the cut
    assert facts.patching.pending_updates is None
    assert "cut short" in facts.gaps["patching.pending_updates"]
    assert facts.patching.installed_count is None
    assert "truncated" in facts.gaps["patching.installed_count"]


def test_sshd_config_include_order_first_value_wins() -> None:
    probe = ("=== SECTION sshd ===\nsource=config\n--- /etc/ssh/sshd_config\nInclude /etc/ssh/sshd_config.d/*.conf\n"
             "PermitRootLogin yes\nPasswordAuthentication yes\n--- /etc/ssh/sshd_config.d/50-cloud.conf\n"
             "PasswordAuthentication no\n=== END ===\n")
    facts = parse_linux(probe)
    assert facts.posture.ssh_password_auth is False  # the drop-in is read first
    assert facts.posture.ssh_root_login == "yes"


def test_old_release_without_os_release() -> None:
    probe = ("=== SECTION os-release ===\n=== SECTION release-files ===\n--- /etc/redhat-release\n"
             "CentOS release 6.10 (Final)\n=== END ===\n")
    facts = parse_linux(probe)
    assert (facts.software.product, facts.software.release, facts.software.os_version) == ("centos", "6", "6.10")


def test_non_utf8_bytes_do_not_crash() -> None:
    raw = (FIX / "debian-10" / "probe.txt").read_bytes().replace(b"cityhall", b"city\xff\xfehall")
    facts = parse_linux(raw)
    assert facts.identity.hostname is not None and "\ufffd" in facts.identity.hostname
