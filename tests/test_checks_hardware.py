"""HW-00x: pass, fail and unknown cases built from facts."""

from __future__ import annotations

import datetime as dt

import pytest
from checkhelp import ctx, facts, run

from checks.hardware import cpu_windows11
from itaudit.policy import Policy, parse_policy

D = dt.date
WIN10_OLD = dict(os_family="windows", os_name="Microsoft Windows 10 Pro", os_version="10.0.19045")
WIN10_NEW_HW = dict(tpm_version="2.0", cpu_model="Intel(R) Core(TM) i5-10500", memory_bytes=16 * 2**30)

CASES = [
    # HW-001 past refresh age
    ("HW-001", "fail", facts(hardware={"bios_date": D(2016, 3, 1)}), ctx("workstation")),
    ("HW-001", "pass", facts(hardware={"bios_date": D(2024, 3, 1)}), ctx("workstation")),
    ("HW-001", "pass", facts(software={"virtualization": "kvm"}), ctx("server")),
    ("HW-001", "unknown", facts(), ctx("server")),
    # purchase date from the register wins over a younger BIOS date
    (
        "HW-001",
        "fail",
        facts(hardware={"bios_date": D(2025, 1, 1)}),
        ctx("laptop", purchase_date=D(2021, 6, 1)),
    ),
    # HW-002 due by the end of next fiscal year (as of 2026-11-23 = FY2027; next = FY2028, ends 2028-06-30)
    ("HW-002", "fail", facts(hardware={"manufacture_date": D(2022, 1, 10)}), ctx("workstation")),
    ("HW-002", "pass", facts(hardware={"manufacture_date": D(2025, 1, 10)}), ctx("workstation")),
    ("HW-002", "pass", facts(hardware={"manufacture_date": D(2015, 1, 10)}), ctx("workstation")),
    ("HW-002", "unknown", facts(), ctx("workstation")),
    # HW-003 age unknown
    ("HW-003", "fail", facts(), ctx("server")),
    ("HW-003", "pass", facts(hardware={"bios_date": D(2020, 1, 1)}), ctx("server")),
    ("HW-003", "unknown", facts(scanned=False), ctx("server")),
    # HW-004 Windows 11 eligibility
    (
        "HW-004",
        "fail",
        facts(
            software=WIN10_OLD,
            hardware={
                "tpm_version": "1.2",
                "cpu_model": "Intel(R) Core(TM) i5-6500",
                "memory_bytes": 8 * 2**30,
            },
        ),
        ctx("workstation"),
    ),
    ("HW-004", "pass", facts(software=WIN10_OLD, hardware=WIN10_NEW_HW), ctx("workstation")),
    (
        "HW-004",
        "pass",
        facts(
            software={
                "os_family": "windows",
                "os_name": "Microsoft Windows 11 Pro",
                "os_version": "10.0.26100",
            }
        ),
        ctx("laptop"),
    ),
    ("HW-004", "pass", facts(software={"os_family": "linux", "os_name": "Ubuntu"}), ctx("workstation")),
    (
        "HW-004",
        "unknown",
        facts(
            software=WIN10_OLD,
            hardware={"cpu_model": "Intel(R) Core(TM) i5-10500", "memory_bytes": 8 * 2**30},
        ),
        ctx("workstation"),
    ),
    # HW-005 UPS battery
    ("HW-005", "fail", facts(hardware={"battery_replace_date": D(2026, 1, 1)}), ctx("ups")),
    ("HW-005", "fail", facts(hardware={"battery_status": "replace battery"}), ctx("ups")),
    (
        "HW-005",
        "pass",
        facts(hardware={"battery_replace_date": D(2028, 1, 1), "battery_status": "normal"}),
        ctx("ups"),
    ),
    ("HW-005", "unknown", facts(), ctx("ups")),
]


@pytest.mark.parametrize(
    ("check_id", "status", "f", "c"), CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)]
)
def test_hardware_cases(check_id, status, f, c):
    finding = run(check_id, f, c)
    assert finding.status.value == status, finding.summary
    if status == "unknown":
        assert "missing facts:" in finding.detail or "Could not be checked: missing" in finding.summary
    assert finding.summary
    if status == "fail" and check_id in ("HW-001", "HW-002", "HW-004", "HW-005"):
        assert finding.cost is not None and finding.cost.amount > 0 and finding.cost.basis


def test_hw001_evidence_says_age_source_and_bios_is_estimate():
    f = run("HW-001", facts(hardware={"bios_date": D(2016, 3, 1)}), ctx("workstation"))
    assert "BIOS date" in f.evidence and "estimate" in f.evidence
    assert f.cost.amount == 1200 and f.cost.kind == "operating"


def test_hw001_department_override_and_capital_line():
    pol = parse_policy(
        {
            "capital_budget_line": "101-1410-5740",
            "departments": {
                "police": {"budget_line": "101-2110-5740", "refresh": {"laptop": {"years": 3, "cost": 5200}}}
            },
        },
        "cities.x.policy",
    )
    f = facts(hardware={"manufacture_date": D(2023, 1, 1)})
    assert run("HW-001", f, ctx("laptop", policy=pol)).status.value == "pass"  # 4-year city rule
    police = run("HW-001", f, ctx("laptop", policy=pol, department="police"))
    assert police.status.value == "fail"
    assert police.cost.amount == 5200 and police.cost.kind == "capital"
    assert police.cost.budget_line == "101-2110-5740"


def test_core_switch_tag_uses_core_switch_price():
    f = facts(hardware={"manufacture_date": D(2015, 1, 1)})
    core = run("HW-001", f, ctx("switch", tags=["core"]))
    access = run("HW-001", f, ctx("switch"))
    assert core.cost.amount == 20000 and core.cost.kind == "capital"
    assert access.cost.amount == 3500


def test_hw002_names_fiscal_year():
    f = run("HW-002", facts(hardware={"manufacture_date": D(2022, 1, 10)}), ctx("workstation"))
    assert "FY2027" in f.summary  # due 2027-01-10, inside FY2027 (Jul 2026 - Jun 2027)
    pol = Policy(fiscal_year_start_month=1)
    f = run("HW-002", facts(hardware={"manufacture_date": D(2022, 1, 10)}), ctx("workstation", policy=pol))
    assert "FY2027" in f.summary


@pytest.mark.parametrize(
    ("cpu", "ok"),
    [
        ("Intel(R) Core(TM) i5-8500 CPU @ 3.00GHz", True),
        ("Intel(R) Core(TM) i7-7700 CPU @ 3.60GHz", False),
        ("Intel(R) Core(TM) i7-7820HQ CPU @ 2.90GHz", True),
        ("Intel(R) Core(TM) i5-1135G7 @ 2.40GHz", True),
        ("Intel(R) Core(TM) i5-3470 CPU @ 3.20GHz", False),
        ("AMD Ryzen 5 3600 6-Core Processor", True),
        ("AMD Ryzen 7 1700 Eight-Core Processor", False),
        ("Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz", False),
        ("Intel(R) Core(TM)2 Duo CPU E8400 @ 3.00GHz", False),
        ("Some Future CPU", None),
    ],
)
def test_cpu_windows11(cpu, ok):
    assert cpu_windows11(cpu)[0] is ok
