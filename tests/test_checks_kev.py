"""VULN-001 against the shipped KEV snapshot (catalog 2025-08-25)."""

from __future__ import annotations

import datetime as dt

import pytest
from checkhelp import ctx, facts, run

D = dt.date
FORTI_72 = {"os_family": "fortios", "os_version": "7.2.5"}
WIN10 = {
    "os_family": "windows",
    "os_name": "Microsoft Windows 10 Pro",
    "os_version": "10.0.19045",
    "edition": "Professional",
}
CASES = [
    ("VULN-001", "fail", facts(software=FORTI_72), ctx("firewall")),
    ("VULN-001", "fail", facts(software=WIN10, patching={"last_patched": D(2025, 1, 1)}), ctx("workstation")),
    (
        "VULN-001",
        "pass",
        facts(software=WIN10, patching={"last_patched": D(2025, 8, 20)}),
        ctx("workstation"),
    ),
    ("VULN-001", "unknown", facts(software=WIN10), ctx("workstation")),
    ("VULN-001", "unknown", facts(software={"os_family": "printer-os"}), ctx("printer")),
]


@pytest.mark.parametrize(
    ("check_id", "status", "f", "c"), CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)]
)
def test_kev_cases(check_id, status, f, c):
    finding = run(check_id, f, c)
    assert finding.status.value == status, finding.summary
    if status == "unknown":
        assert "missing facts:" in finding.detail


def test_vuln001_firewall_is_critical_and_lists_cves_with_due_dates():
    f = run("VULN-001", facts(software=FORTI_72), ctx("firewall"))
    assert f.severity.value == "critical"
    assert "being actively exploited by criminals" in f.summary
    assert "CVE-" in f.evidence and "CISA due" in f.evidence
    assert "no version ranges" in f.detail


def test_vuln001_only_counts_entries_after_last_update():
    early = run(
        "VULN-001", facts(software=WIN10, patching={"last_patched": D(2024, 1, 1)}), ctx("workstation")
    )
    late = run(
        "VULN-001", facts(software=WIN10, patching={"last_patched": D(2025, 6, 1)}), ctx("workstation")
    )
    n_early = int(early.summary.split(" with ")[1].split()[0])
    n_late = int(late.summary.split(" with ")[1].split()[0])
    assert n_early > n_late >= 1
