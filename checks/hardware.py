"""Hardware checks: age against the refresh policy, Windows 11 eligibility, UPS batteries."""

from __future__ import annotations

import datetime as dt
import re

from checks._common import (
    is_virtual,
    kind_of,
    name_of,
    policy_of,
    refs,
    replacement,
    tags_of,
    unknown_result,
)
from itaudit import rules
from itaudit.checking import CheckContext, check
from itaudit.knowledge import windows_build
from itaudit.model import CheckResult, Cost, DeviceFacts, Severity, Status
from itaudit.policy import fiscal_year_bounds, windows11_requirements

AGE_FACTS = ["device.purchase_date", "hardware.manufacture_date", "hardware.bios_date", "directory.created"]
DIRECTORY_SINCE = rules.DIRECTORY_SINCE


_BASIS_WORDS = {
    "purchase date": "purchase date from the asset register",
    "manufacture date": "manufacture date reported by the device",
    "BIOS date": "BIOS date (an estimate: a BIOS update makes the machine look younger than it is)",
}


def age_basis(facts: DeviceFacts, ctx: CheckContext) -> tuple[dt.date, str] | None:
    """The date to age a device from (``itaudit.rules.age_basis``), and where it came from in words."""
    found = rules.age_basis(ctx.device.purchase_date, facts.hardware.manufacture_date, facts.hardware.bios_date,
                            facts.directory.created)
    if not found:
        return None
    if found[1] == DIRECTORY_SINCE:
        return found[0], (f"{DIRECTORY_SINCE} {found[0].isoformat()} (an estimate and a lower bound: the "
                          "machine is at least as old as its computer object)")
    return found[0], _BASIS_WORDS[found[1]]


def _lower_bound(source: str) -> bool:
    """An age from the directory proves "at least this old", never "this young"."""
    return source.startswith(DIRECTORY_SINCE)


_years = rules.age_years


_due = rules.refresh_due


def _virtual_pass(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    return CheckResult(
        Status.PASS,
        summary=f"{name_of(facts, ctx)} is a virtual machine "
        f"({facts.software.virtualization}): there is no hardware of its own to replace.",
    )


@check("HW-001", title="Hardware past its refresh age", severity="medium", **refs("HW-001"))
def hw_past_refresh(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The device is older than the city's refresh period for its class.

    Age is counted from the purchase date in the asset register, else the manufacture
    date the device reports, else its BIOS date (an estimate, said so in the evidence),
    else the day its computer object was created in the directory (an estimate and a
    lower bound: it can prove a machine is past its refresh age, never that it is not,
    so a younger-looking one is ``unknown``).
    The refresh period and replacement cost come from the city policy for the device's
    class and department (a core switch or a rugged police laptop has its own rule).
    Virtual machines pass: they have no hardware of their own. A device that did not
    answer is judged on its dates on record and the facts last collected from it (as
    ``HW-002`` is), so the plan and its findings place it alike.
    """
    if is_virtual(facts):
        return _virtual_pass(facts, ctx)
    basis = age_basis(facts, ctx)
    if basis is None:
        return unknown_result(summary=f"The age of {name_of(facts, ctx)} is not known.", missing=AGE_FACTS)
    start, source = basis
    pol = policy_of(ctx)
    kind = kind_of(facts, ctx)
    rule = pol.refresh_for(kind, ctx.device.department, tags=tags_of(ctx))
    cls = pol.refresh_class(kind, tags_of(ctx))
    age = _years(start, ctx.as_of)
    due = _due(start, rule.years)
    evidence = (
        f"age {age:.1f} years from {start.isoformat()} ({source}); {cls} refresh period {rule.years:g} years"
    )
    if ctx.as_of < due and _lower_bound(source):
        return unknown_result(
            summary=f"{name_of(facts, ctx)} is at least {age:.1f} years old ({source}); its true age is not known.",
            missing=["device.purchase_date", "hardware.manufacture_date", "hardware.bios_date"],
            evidence=evidence,
        )
    if ctx.as_of < due:
        return CheckResult(
            Status.PASS,
            summary=f"{name_of(facts, ctx)} is {age:.1f} years old, within the "
            f"{rule.years:g}-year refresh period (due {due.isoformat()}).",
            evidence=evidence,
        )
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} is due for replacement: it is {age:.1f} years old, past the city's "
        f"{rule.years:g}-year refresh period for a {cls}.",
        detail=f"due since {due.isoformat()}",
        evidence=evidence,
        remediation="Add it to the refresh plan; check warranty and vendor support status.",
        cost=replacement(facts, ctx, f"due since {due.isoformat()}"),
    )


@check(
    "HW-002",
    title="Hardware due for refresh by the end of next fiscal year",
    severity="low",
    **refs("HW-002"),
)
def hw_due_next_fiscal_year(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The device reaches its refresh age before the end of the next fiscal year.

    This is the list the budget being prepared must fund. The fiscal year follows the
    city policy (named by the year it ends: FY2027 = July 2026 – June 2027 for a July
    start). Devices already past their refresh age are reported by HW-001 instead.
    """
    if is_virtual(facts):
        return _virtual_pass(facts, ctx)
    basis = age_basis(facts, ctx)
    if basis is None:
        return unknown_result(summary=f"The age of {name_of(facts, ctx)} is not known.", missing=AGE_FACTS)
    start, source = basis
    pol = policy_of(ctx)
    rule = pol.refresh_for(kind_of(facts, ctx), ctx.device.department, tags=tags_of(ctx))
    due = _due(start, rule.years)
    next_fy = pol.fiscal_year(ctx.as_of) + 1
    _, fy_end = fiscal_year_bounds(next_fy, pol.fiscal_year_start_month)
    evidence = (
        f"from {start.isoformat()} ({source}); refresh period {rule.years:g} years; due {due.isoformat()}"
    )
    if due <= ctx.as_of:
        return CheckResult(
            Status.PASS,
            summary=f"{name_of(facts, ctx)} is already past its refresh age (reported by HW-001).",
            evidence=evidence,
        )
    if due > fy_end and _lower_bound(source):
        return unknown_result(
            summary=f"{name_of(facts, ctx)} is due by {due.isoformat()} at the latest ({source}); its true age is "
            "not known.",
            missing=["device.purchase_date", "hardware.manufacture_date", "hardware.bios_date"],
            evidence=evidence,
        )
    if due > fy_end:
        return CheckResult(
            Status.PASS,
            summary=f"{name_of(facts, ctx)} is not due for replacement before the end "
            f"of FY{next_fy} (due {due.isoformat()}).",
            evidence=evidence,
        )
    due_fy = pol.fiscal_year(due)
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} will be due for replacement in FY{due_fy} (on {due.isoformat()}): "
        "include it in the budget request.",
        evidence=evidence,
        remediation=f"Budget the replacement for FY{due_fy}.",
        cost=replacement(facts, ctx, f"due {due.isoformat()}, FY{due_fy}", fiscal_year=due_fy),
    )


@check("HW-003", title="Hardware age unknown", severity="low", **refs("HW-003"))
def hw_age_unknown(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """Neither a purchase date, a manufacture date nor a BIOS date is known for the device.

    Without an age the device cannot be put in the refresh plan: a data gap worth fixing
    by adding the purchase date to the asset register. ``unknown`` when the device has
    not been scanned successfully yet (no facts at all), since the scan may still find
    a date.
    """
    if is_virtual(facts):
        return _virtual_pass(facts, ctx)
    basis = age_basis(facts, ctx)
    if basis is not None:
        return CheckResult(Status.PASS, summary=f"The age of {name_of(facts, ctx)} is known ({basis[1]}).")
    if not facts.sources and not facts.collected_at:
        return unknown_result(
            summary=f"{name_of(facts, ctx)} has not been scanned yet.",
            missing=["facts (no successful scan)"],
        )
    gaps = "; ".join(f"{k}: {v}" for k, v in facts.gaps.items() if k.startswith("hardware."))
    return CheckResult(
        Status.FAIL,
        summary=f"We do not know how old {name_of(facts, ctx)} is, so it cannot be planned for replacement.",
        detail=gaps or "no purchase, manufacture or BIOS date",
        remediation="Record the purchase date in the asset register (itaudit assets import).",
    )


# --- Windows 11 -------------------------------------------------------------------------------


def cpu_windows11(cpu: str | None) -> tuple[bool | None, str]:
    """Can this CPU run Windows 11? (True/False/None for unknown) and why."""
    if not cpu:
        return None, "CPU model unknown"
    req = windows11_requirements()
    c = cpu.lower()
    if "core(tm) ultra" in c or "core ultra" in c:
        return True, "Intel Core Ultra"
    if any(x.lower() in c for x in req.get("intel_core_exceptions", [])):
        return True, "on Microsoft's list of exceptions"
    m = re.search(r"\bi[3579]-(\d{3,5})", c)
    if m:
        num = m.group(1)
        if len(num) == 3:
            gen = 1
        elif len(num) == 5 or num.startswith("1"):
            gen = int(num[:2])
        else:
            gen = int(num[0])
        need = int(req["intel_core_min_generation"])
        return gen >= need, f"Intel Core generation {gen} (needs {need} or later)"
    m = re.search(r"xeon\(r\)?\s*(?:cpu\s*)?e[357]-\d{4}", c) or re.search(r"xeon.*\be[357]-", c)
    if m:
        return False, "Intel Xeon E3/E5/E7 (too old for Windows 11)"
    m = re.search(r"xeon.*\b(?:bronze|silver|gold|platinum)\s+(\d)(\d)\d\d", c)
    if m:
        gen = int(m.group(2))
        need = int(req["intel_xeon_scalable_min_generation"])
        return gen >= need, f"Intel Xeon Scalable generation {gen} (needs {need} or later)"
    m = re.search(r"ryzen\s+(?:threadripper\s+)?\d?\s*(?:pro\s+)?(\d)(\d{3})", c)
    if m:
        series = int(m.group(1)) * 1000
        need = int(req["amd_ryzen_min_series"])
        return series >= need, f"AMD Ryzen {series} series (needs {need} or later)"
    if re.search(
        r"core\(tm\)2|core 2|pentium\(r\) (?:4|d|dual)|celeron\(r\) cpu|athlon|phenom|\bfx-|\ba\d{1,2}-", c
    ):
        return False, "CPU family older than Windows 11 supports"
    return None, f"CPU {cpu!r} not recognised"


def _windows_pc(facts: DeviceFacts) -> bool:
    fam = (facts.software.os_family or "").lower()
    name = (facts.software.os_name or "").lower()
    return (fam == "windows" or "windows" in name) and "server" not in name


@check(
    "HW-004",
    title="Cannot run a supported operating system (Windows 11 ineligible)",
    severity="high",
    applies_to=("workstation", "laptop"),
    **refs("HW-004"),
)
def hw_windows11_ineligible(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """A Windows 10 (or older) PC whose hardware cannot run Windows 11.

    Windows 10 left support on 2025-10-14, so for these PCs "patch" means "replace": a
    budget decision, not an IT task. Judged from the shipped Windows 11 requirements:
    TPM 2.0, a supported CPU generation (Intel Core 8th generation or later, AMD Ryzen
    2000 or later, ...) and 4 GB of memory. Secure Boot turned off is reported but not
    counted as a blocker (it usually only needs switching on). PCs already on Windows 11
    and non-Windows PCs pass; a missing TPM, CPU or memory fact gives ``unknown``.
    """
    if not _windows_pc(facts):
        return CheckResult(
            Status.PASS,
            summary=f"{name_of(facts, ctx)} is not a Windows PC: the Windows 11 "
            "hardware requirement does not apply.",
        )
    build = windows_build(facts.software.os_version) or windows_build(facts.software.os_build)
    if build is not None and build >= 22000:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} already runs Windows 11.")
    req = windows11_requirements()
    hw = facts.hardware
    blockers, unknown, notes = [], [], []
    if hw.tpm_version is None:
        unknown.append("hardware.tpm_version")
    elif not str(hw.tpm_version).startswith("2"):
        blockers.append(f"TPM {hw.tpm_version} (needs {req['tpm_min']})")
    ok, why = cpu_windows11(hw.cpu_model)
    if ok is None:
        unknown.append("hardware.cpu_model")
        notes.append(why)
    elif not ok:
        blockers.append(why)
    if hw.memory_bytes is None:
        unknown.append("hardware.memory_bytes")
    elif hw.memory_bytes < int(req["memory_min_bytes"]) * 0.9:  # installed RAM reports a little under
        blockers.append(f"{hw.memory_bytes / 2**30:.1f} GB memory (needs 4 GB)")
    if hw.secure_boot is False:
        notes.append("Secure Boot is off (may only need enabling in the firmware)")
    evidence = (
        f"TPM {hw.tpm_version}; CPU {hw.cpu_model}; Secure Boot {hw.secure_boot}; source {req['source']}"
    )
    if blockers:
        return CheckResult(
            Status.FAIL,
            summary=f"{name_of(facts, ctx)} cannot run Windows 11, so it cannot move to a supported version of "
            "Windows: it must be replaced.",
            detail="; ".join(blockers + notes),
            evidence=evidence,
            remediation="Replace the PC (or move it to a supported non-Windows OS if its role allows).",
            cost=replacement(facts, ctx, "Windows 11 ineligible"),
        )
    if unknown:
        return unknown_result(
            summary=f"We could not tell whether {name_of(facts, ctx)} can run Windows 11.",
            detail="; ".join(notes),
            evidence=evidence,
            missing=unknown,
        )
    return CheckResult(
        Status.PASS,
        summary=f"{name_of(facts, ctx)} meets the Windows 11 hardware requirements: upgrade it in place.",
        detail="; ".join(notes),
        evidence=evidence,
    )


@check(
    "HW-005",
    title="UPS battery past its replacement date",
    severity="medium",
    applies_to=("ups",),
    **refs("HW-005"),
)
def hw_ups_battery(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The UPS battery is past its replacement date or the UPS reports it needs replacing.

    Uses the battery replacement date the UPS reports (or, failing that, its own
    battery status). An expired battery means the equipment it protects goes down in
    the next power cut. The cost is the policy's UPS battery price.
    """
    hw = facts.hardware
    status = (hw.battery_status or "").lower()
    says_replace = any(w in status for w in ("replace", "depleted", "bad"))
    pol = policy_of(ctx)
    batt = rules.part_price(pol, "ups-battery", department=ctx.device.department,
                            register_line=ctx.device.budget_line)
    cost = Cost(
        batt.amount,
        batt.kind,
        batt.budget_line,
        f"UPS battery at {pol.currency} {batt.amount:,.0f}; {batt.source}",
        fiscal_year=pol.fiscal_year(ctx.as_of),
    )
    evidence = f"battery replace date {hw.battery_replace_date}; battery status {hw.battery_status}"
    overdue = hw.battery_replace_date is not None and hw.battery_replace_date <= ctx.as_of
    if overdue or says_replace:
        when = (
            f"since {hw.battery_replace_date.isoformat()}" if overdue and hw.battery_replace_date else "now"
        )
        return CheckResult(
            Status.FAIL,
            summary=f"The battery of UPS {name_of(facts, ctx)} is due for replacement ({when}): the equipment it "
            "protects may go down in the next power cut.",
            evidence=evidence,
            remediation="Replace the battery pack and run a self-test; reset the battery date on the UPS.",
            cost=cost,
            severity=Severity.HIGH if "public-safety" in tags_of(ctx) else None,
        )
    if hw.battery_replace_date is None and not status:
        return unknown_result(
            summary=f"UPS {name_of(facts, ctx)} did not report its battery state.",
            missing=["hardware.battery_replace_date", "hardware.battery_status"],
        )
    return CheckResult(
        Status.PASS,
        summary=f"The battery of UPS {name_of(facts, ctx)} is not due for replacement.",
        evidence=evidence,
    )
