"""PATCH-00x: pass, fail and unknown cases."""

from __future__ import annotations

import datetime as dt

import pytest
from checkhelp import ctx, facts, run

from itaudit.policy import Policy

D = dt.date
CASES = [
    ("PATCH-001", "fail", facts(patching={"security_updates": 4, "pending_updates": 12}), ctx("server")),
    ("PATCH-001", "pass", facts(patching={"security_updates": 0}), ctx("server")),
    ("PATCH-001", "pass", facts(patching={"pending_updates": 0}), ctx("server")),
    ("PATCH-001", "unknown", facts(patching={"pending_updates": 5}), ctx("server")),
    ("PATCH-002", "fail", facts(patching={"last_patched": D(2026, 9, 1)}), ctx("server")),
    ("PATCH-002", "pass", facts(patching={"last_patched": D(2026, 11, 1)}), ctx("server")),
    ("PATCH-002", "unknown", facts(), ctx("server")),
    (
        "PATCH-003",
        "fail",
        facts(patching={"reboot_required": True, "last_patched": D(2026, 11, 1)}),
        ctx("server"),
    ),
    (
        "PATCH-003",
        "pass",
        facts(patching={"reboot_required": True, "last_patched": D(2026, 11, 20)}),
        ctx("server"),
    ),
    ("PATCH-003", "pass", facts(patching={"reboot_required": False}), ctx("server")),
    ("PATCH-003", "unknown", facts(patching={"reboot_required": True}), ctx("server")),
    ("PATCH-003", "unknown", facts(), ctx("server")),
    ("PATCH-004", "fail", facts(patching={"auto_updates": False}), ctx("workstation")),
    ("PATCH-004", "pass", facts(patching={"auto_updates": True}), ctx("workstation")),
    ("PATCH-004", "unknown", facts(), ctx("workstation")),
]


@pytest.mark.parametrize(
    ("check_id", "status", "f", "c"), CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)]
)
def test_patching_cases(check_id, status, f, c):
    finding = run(check_id, f, c)
    assert finding.status.value == status, finding.summary
    if status == "unknown":
        assert "missing facts:" in finding.detail or "Could not be checked: missing" in finding.summary


def test_patch002_uses_policy_days_and_escalates():
    f = facts(patching={"last_patched": D(2026, 10, 1)})  # 53 days
    assert run("PATCH-002", f, ctx("server", policy=Policy(patch_max_days=60))).status.value == "pass"
    assert run("PATCH-002", f, ctx("server")).severity.value == "medium"
    old = run("PATCH-002", facts(patching={"last_patched": D(2026, 1, 1)}), ctx("server"))
    assert old.severity.value == "high"


def test_patch004_is_low_on_servers():
    assert run("PATCH-004", facts(patching={"auto_updates": False}), ctx("server")).severity.value == "low"
