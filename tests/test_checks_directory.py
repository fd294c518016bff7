"""AD-00x: directory checks on DeviceFacts.directory (as collectors/directory.py fills it)."""

from __future__ import annotations

import datetime as dt

import pytest
from checkhelp import AS_OF, ctx, facts, run

from itaudit.model import Directory
from itaudit.policy import Policy


def dfacts(*, gaps: dict[str, str] | None = None, posture: dict | None = None, **directory):
    f = facts(software={"os_name": "Windows 10 Pro", "product": "windows"}, posture=posture)
    f.directory = Directory(dn="CN=PC-1,OU=Workstations,DC=city,DC=test", name="PC-1", **directory)
    f.gaps.update(gaps or {})
    return f


def days_ago(n: int) -> dt.date:
    return AS_OF - dt.timedelta(days=n)


CASES = [
    ("AD-001", "pass", dfacts(last_logon=days_ago(3), disabled=False), ctx("workstation")),
    ("AD-001", "fail", dfacts(last_logon=days_ago(91), disabled=False), ctx("workstation")),
    ("AD-001", "pass", dfacts(last_logon=days_ago(400), disabled=True), ctx("workstation")),
    ("AD-001", "fail", dfacts(created=days_ago(200), disabled=False), ctx("workstation")),
    ("AD-001", "pass", dfacts(created=days_ago(10), disabled=False), ctx("workstation")),
    ("AD-001", "unknown", dfacts(disabled=False), ctx("workstation")),
    ("AD-001", "unknown", facts(), ctx("workstation")),  # not in a directory
    ("AD-002", "pass", dfacts(laps_source="legacy", laps_managed=True, laps_expires=AS_OF + dt.timedelta(days=5)),
     ctx("workstation")),
    ("AD-002", "fail", dfacts(laps_source="legacy+windows", laps_managed=False), ctx("workstation")),
    ("AD-002", "fail", dfacts(laps_source="windows", laps_managed=True, laps_expires=days_ago(45)),
     ctx("workstation")),
    ("AD-002", "pass", dfacts(laps_source="windows", laps_managed=True, laps_expires=days_ago(10)), ctx("server")),
    ("AD-002", "pass", dfacts(domain_controller=True, laps_source=None), ctx("server")),
    ("AD-002", "unknown", dfacts(laps_source=None, gaps={"directory.laps_managed": "no LAPS in schema"}),
     ctx("workstation")),
    ("AD-003", "pass", dfacts(bitlocker_keys=2), ctx("laptop")),
    ("AD-003", "fail", dfacts(bitlocker_keys=0), ctx("workstation")),
    ("AD-003", "unknown", dfacts(bitlocker_keys=None, gaps={"directory.bitlocker_keys": "not visible"}),
     ctx("workstation")),
]


@pytest.mark.parametrize(
    ("check_id", "status", "f", "c"), CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)]
)
def test_directory_cases(check_id, status, f, c):
    finding = run(check_id, f, c)
    assert finding.status.value == status, finding.summary


def test_laps_and_bitlocker_do_not_apply_to_linux():
    f = dfacts(laps_source="legacy", laps_managed=False, bitlocker_keys=0)
    f.software.os_name, f.software.os_family, f.software.product = "Debian GNU/Linux", None, None
    assert run("AD-002", f, ctx("workstation")).status.value == "pass"
    assert run("AD-003", f, ctx("workstation")).status.value == "pass"


def test_stale_threshold_is_the_city_policy():
    f = dfacts(last_logon=days_ago(45), disabled=False)
    assert run("AD-001", f, ctx("workstation")).status.value == "pass"
    assert run("AD-001", f, ctx("workstation", policy=Policy(stale_computer_days=30))).status.value == "fail"


def test_unknown_names_the_reason():
    f = run("AD-003", dfacts(bitlocker_keys=None, gaps={"directory.bitlocker_keys": "none visible to the account"}),
            ctx("workstation"))
    assert "none visible to the account" in f.detail


def test_bitlocker_fail_mentions_unencrypted_disk():
    f = run("AD-003", dfacts(bitlocker_keys=0, posture={"disk_encryption": False}), ctx("workstation"))
    assert "not encrypted either" in f.summary


def test_directory_age_is_a_lower_bound():
    """HW-001: a directory date can prove "past refresh age", never "still young"."""
    young = dfacts(created=days_ago(400))
    old = dfacts(created=days_ago(365 * 9))
    assert run("HW-001", young, ctx("workstation")).status.value == "unknown"
    res = run("HW-001", old, ctx("workstation"))
    assert res.status.value == "fail" and "lower bound" in res.evidence
    assert run("HW-003", young, ctx("workstation")).status.value == "pass"
