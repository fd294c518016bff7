"""The checks judged on probe output, as of a fixed date. Each expectation is a fact about that
system: support dates from the vendors' lifecycle pages, posture from the probe output.

``linux-recorded/`` holds output recorded from real installations (its README says how);
``linux/`` and ``windows/`` are the composed cases the simulated city serves (their OS
versions and settings are real-world ones, their package lists are not)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from collectors.linux import parse_linux
from collectors.windows import parse_windows
from itaudit import plugins
from itaudit.checking import CheckContext, DeviceRecord, run_checks
from itaudit.knowledge import Knowledge
from itaudit.policy import Policy

FIXTURES = Path(__file__).parent / "fixtures"
AS_OF = dt.date(2026, 11, 23)

# case -> (checks that must fail, checks that must pass)
EXPECT: dict[str, tuple[set[str], set[str]]] = {
    # CentOS 7 ended 2024-06-30; firewall off, FTP listening, root login with password.
    "linux/centos-7": ({"EOL-001", "SEC-002", "SEC-004", "SEC-006"}, set()),
    # Debian 11 LTS ended 2026-08-31; Debian 12 is past regular security support but on (free) LTS.
    "linux/debian-11": ({"EOL-001"}, {"SEC-002"}),
    "linux/debian-12": ({"EOL-003"}, {"EOL-001", "SEC-004"}),
    # Ubuntu 18.04 and 20.04 standard support ended (ESM is paid, not bought); 22.04 ends 2027-04.
    "linux/ubuntu-18.04": ({"EOL-001", "SEC-004", "PATCH-001", "PATCH-003"}, set()),
    "linux/ubuntu-20.04": ({"EOL-001"}, set()),
    "linux/ubuntu-22.04": ({"EOL-002"}, {"EOL-001", "PATCH-001", "SEC-004"}),
    "linux/ubuntu-24.04": (set(), {"EOL-001", "EOL-002", "SEC-007"}),
    "linux/rhel-9": (set(), {"EOL-001", "EOL-002"}),
    # SLES 15 SP5 general support ended 2024-12-31; DMI locked: age unknown, said so.
    "linux/no-dmi-access": ({"EOL-001", "HW-003"}, set()),
    # Windows 10 22H2 ended 2025-10-14 and its CPU cannot run Windows 11.
    "windows/win10-22h2": ({"EOL-001", "HW-004"}, set()),
    # Windows 10 LTSC 2019 is supported until 2029-01-09: must NOT be flagged end of life.
    "windows/ps51-single-object": ({"SEC-006", "SEC-008", "PATCH-004"}, {"EOL-001"}),
    # Windows 11 24H2 Pro ended 2026-10-13; BitLocker off on a laptop; stale signatures.
    "windows/win11-24h2": ({"EOL-001", "SEC-007", "SEC-008"}, set()),
    "windows/winserver-2012r2": ({"EOL-001", "SEC-005", "SEC-006", "PATCH-004"}, set()),
    # Server 2016 mainstream ended, extended support to 2027-01-12: ending within 12 months.
    "windows/winserver-2016": ({"EOL-002"}, {"EOL-001"}),
    "windows/winserver-2022": (set(), {"EOL-001", "EOL-002", "SEC-005", "SEC-006"}),
}


# Recorded from real installations on 2026-12-03 (tests/fixtures/linux-recorded/README.md).
RECORDED_AS_OF = dt.date(2026, 12, 3)
EXPECT_RECORDED: dict[str, tuple[set[str], set[str]]] = {
    # Standard support ended 2023-05-31; 103 security updates pending; root may log in with a password;
    # telnet listening; no firewall rules; sudo 1.8.21p2-3ubuntu1 < 1.8.21p2-3ubuntu1.4 (CVE-2021-3156, KEV).
    "ubuntu-18.04": ({"EOL-001", "PATCH-001", "PATCH-004", "SEC-002", "SEC-003", "SEC-004", "SEC-006", "VULN-001"},
                     set()),
    # Standard support ended 2025-05-31; sudo 1.8.31-1ubuntu1 < 1.8.31-1ubuntu1.2; root login and passwords off.
    "ubuntu-20.04": ({"EOL-001", "PATCH-001", "VULN-001"}, {"SEC-002", "SEC-003"}),
    # Standard support ends 2027-04-01; two security updates held back by `apt-get upgrade`;
    # unattended-upgrades installed; default sshd (passwords on, root by key only).
    "ubuntu-22.04": ({"EOL-002", "PATCH-001", "SEC-003"}, {"EOL-001", "PATCH-004", "SEC-002"}),
    "ubuntu-24.04": ({"PATCH-001", "PATCH-004", "SEC-006"}, {"EOL-001", "EOL-002", "SEC-002", "SEC-003"}),
    # Debian 11: security support 2024-08-14, LTS ended 2026-08-31; fully patched; auto updates on.
    "debian-11": ({"EOL-001", "SEC-003"}, {"PATCH-001", "PATCH-004", "SEC-002"}),
}


@pytest.mark.parametrize("name", sorted(EXPECT_RECORDED))
def test_checks_on_real_recordings(name: str, knowledge: Knowledge) -> None:
    facts = parse_linux((FIXTURES / "linux-recorded" / name / "probe.txt").read_bytes())
    verdicts = _verdicts(facts, RECORDED_AS_OF, knowledge)
    must_fail, must_pass = EXPECT_RECORDED[name]
    assert {c for c in must_fail if verdicts.get(c) != "fail"} == set(), verdicts
    assert {c for c in must_pass if verdicts.get(c) != "pass"} == set(), verdicts


def _verdicts(facts, as_of: dt.date, knowledge: Knowledge) -> dict[str, str]:
    ctx = CheckContext(as_of=as_of, device=DeviceRecord(kind=facts.identity.kind, consecutive_failures=0),
                       policy=Policy(), knowledge=knowledge)
    return {f.check_id: f.status.value for f in run_checks(facts, ctx)}


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    plugins.load_checks()
    return Knowledge.load()


@pytest.mark.parametrize("case", sorted(EXPECT), ids=lambda c: c)
def test_checks_on_recorded_systems(case: str, knowledge: Knowledge) -> None:
    platform, name = case.split("/")
    parse = parse_linux if platform == "linux" else parse_windows
    facts = parse((FIXTURES / platform / name / "probe.txt").read_bytes())
    verdicts = _verdicts(facts, AS_OF, knowledge)
    must_fail, must_pass = EXPECT[case]
    assert {c for c in must_fail if verdicts.get(c) != "fail"} == set(), verdicts
    assert {c for c in must_pass if verdicts.get(c) != "pass"} == set(), verdicts
    # Checks that apply to this kind of device all give a verdict: none is silently skipped.
    kind = facts.identity.kind
    applicable = {s.id for s in plugins.load_checks().values() if not s.applies_to or kind in s.applies_to}
    assert set(verdicts) == applicable
