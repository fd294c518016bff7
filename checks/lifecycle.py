"""Lifecycle checks: is the operating system or firmware still receiving security fixes?"""

from __future__ import annotations

import datetime as dt

from checks._common import (
    firmware_bound,
    fmt,
    identified_by,
    internet_facing,
    kind_of,
    labour,
    lifecycle_of,
    lifecycle_unknown,
    name_of,
    policy_of,
    refs,
    replacement,
    software_label,
    tags_of,
)
from itaudit import rules
from itaudit.checking import CheckContext, check
from itaudit.model import CheckResult, Cost, DeviceFacts, Severity, Status

_NETWORK_OS = {
    "fortios",
    "pan-os",
    "cisco-ios-xe",
    "cisco-ios",
    "cisco-asa",
    "junos",
    "routeros",
    "arubaos",
    "sonicos",
    "pfsense",
    "synology-dsm",
    "qnap-qts",
    "unifi-network",
    "vmware-esxi",
}


def _upgrade_cost(facts: DeviceFacts, ctx: CheckContext, product: str | None, target: str,
                  check_id: str | None = None) -> Cost:
    """Staff time to upgrade; on gear whose firmware is tied to its hardware, the replacement the
    capital plan budgets for it (``itaudit.rules.pull_year``: the same fiscal year)."""
    if check_id and firmware_bound(facts, ctx):
        pol = policy_of(ctx)
        pulled = rules.pull_year(pol, check_id, pol.refresh_class(kind_of(facts, ctx), tags_of(ctx)), ctx.as_of)
        if pulled:
            return replacement(facts, ctx, f"firmware tied to the hardware: {pulled[1]}", fiscal_year=pulled[0])
    task = "firmware_upgrade" if product in _NETWORK_OS else "os_upgrade"
    return labour(ctx, task, f"upgrade to {target}")


@check(
    "EOL-001",
    title="Operating system or firmware past end of security support",
    severity="high",
    **refs("EOL-001"),
)
def eol_past_security_support(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The device's operating system or firmware no longer receives security fixes.

    The version the device reports is matched to a release in the shipped lifecycle
    data (endoflife.date snapshot plus curated vendor tables): Windows by build number
    and edition, Linux distributions and network firmware by release cycle
    ("22.04.3" -> 22.04, "10.2.3-h4" -> 10.2). The check fails when the end of security
    support (``eol``) is on or before the as-of date and no extended support applies:
    free extended support (Debian LTS) counts, paid extended support (Windows ESU,
    Ubuntu Pro, RHEL ELS) counts only when the city policy says it was bought
    (``esu_purchased``, ``extended_support``). A version the matcher does not understand
    gives ``unknown``, never a failure. Severity is critical on an internet-facing device
    (a firewall, or a device tagged ``internet-facing``).
    """
    ans = lifecycle_of(facts, ctx)
    if ans.status == "unknown":
        return lifecycle_unknown(ans, facts, ctx)
    label = software_label(ans, facts)
    if ans.status != "eol":
        return CheckResult(
            Status.PASS,
            summary=f"{name_of(facts, ctx)} runs {label}, which still receives security fixes ({ans.reason}).",
            evidence=f"source: {ans.source}",
        )
    remedy = "Upgrade to a supported release"
    if ans.extended_kind == "paid" and isinstance(ans.eoes, dt.date) and ans.eoes > ctx.as_of:
        remedy += f", or buy {ans.extended_name} (available until {fmt(ans.eoes)}) as a stopgap"
    if ans.product == "windows" and kind_of(facts, ctx) in ("workstation", "laptop"):
        remedy += "; if the PC cannot run Windows 11 (see HW-004), replace it"
    if firmware_bound(facts, ctx):
        remedy += (
            "; its firmware is tied to the hardware, so where the vendor publishes no supported release "
            "for this model it must be replaced (the capital plan budgets the replacement now)"
        )
    severity = Severity.CRITICAL if internet_facing(facts, ctx) else None
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} runs unsupported software ({label}): it no longer receives security "
        f"fixes since {fmt(ans.eol)}.",
        detail=f"{ans.product} release {ans.cycle}; {ans.reason}. Data dated {ans.data_date}.",
        evidence="; ".join(x for x in (
            f"reported: {facts.software.os_name or ''} {facts.software.os_version or ''} "
            f"{facts.software.edition or ''}".strip(),
            f"source: {ans.source}", identified_by(facts)) if x),
        remediation=remedy + ".",
        cost=_upgrade_cost(facts, ctx, ans.product, "a supported release", "EOL-001"),
        severity=severity,
    )


@check("EOL-002", title="Security support ends within 12 months", severity="medium", **refs("EOL-002"))
def eol_ending_soon(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """Security support for the device's OS or firmware ends within the next 12 months.

    Same matching as EOL-001. Fails when the end of security support falls within 365
    days after the as-of date, so the upgrade (or replacement) can be planned and
    budgeted before it becomes EOL-001. Devices already past the date pass here: EOL-001
    reports them.
    """
    ans = lifecycle_of(facts, ctx)
    if ans.status == "unknown":
        return lifecycle_unknown(ans, facts, ctx)
    label = software_label(ans, facts)
    if ans.status in ("eol", "extended"):
        return CheckResult(
            Status.PASS,
            summary=f"{name_of(facts, ctx)} ({label}) is already past its end of security support "
            "(reported by EOL-001 or EOL-003).",
            evidence=f"source: {ans.source}",
        )
    if ans.status != "ending_soon":
        return CheckResult(
            Status.PASS,
            summary=f"{name_of(facts, ctx)} ({label}): security support does not "
            f"end within 12 months ({ans.reason}).",
            evidence=f"source: {ans.source}",
        )
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} runs {label}, which stops receiving security fixes on {fmt(ans.eol)} "
        f"({ans.days_to_eol} days): plan the upgrade now.",
        detail=f"{ans.product} release {ans.cycle}; {ans.reason}.",
        evidence=f"source: {ans.source}",
        remediation=f"Schedule the upgrade to a supported release before {fmt(ans.eol)}.",
        cost=_upgrade_cost(facts, ctx, ans.product, "a supported release", "EOL-002"),
    )


@check("EOL-003", title="Running on extended support", severity="low", **refs("EOL-003"))
def eol_extended_support(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """Past the normal end of security support, kept patched only by extended support.

    Fails when the device is inside an extended-support window: paid (Windows 10 ESU,
    Windows Server ESU, Ubuntu Pro, RHEL ELS — only when the city bought it) or free
    (Debian LTS, narrower coverage). Fixes stop for good at the end of extended support,
    and paid years get dearer (Windows 10 ESU doubles every year), so this is a budget
    item. The cost is the current paid year's price per unit (``rules.deferral_price`` over
    extended_support.json, or the city's own price) where one is known; else the upgrade.
    """
    ans = lifecycle_of(facts, ctx)
    if ans.status == "unknown":
        return lifecycle_unknown(ans, facts, ctx)
    label = software_label(ans, facts)
    if ans.status != "extended":
        return CheckResult(
            Status.PASS,
            summary=f"{name_of(facts, ctx)} ({label}) is not on extended support.",
            evidence=f"source: {ans.source}",
        )
    pol = policy_of(ctx)
    cost = _upgrade_cost(facts, ctx, ans.product, "a supported release")
    offer = rules.offer_for(ans.product, ans.cycle)
    if offer and ans.extended_kind == "paid" and isinstance(ans.eol, dt.date):
        price = rules.deferral_price(pol, offer, ans.eol, ctx.as_of,
                                     ans.eoes if isinstance(ans.eoes, dt.date) else None)
        if price.known and price.price is not None:
            cost = Cost(
                price.price,
                "operating",
                pol.pay_line("operating", department=ctx.device.department, device_line=ctx.device.budget_line),
                f"{price.name} year {price.year} price per {price.unit} ({price.source})",
            )
    paid = {"paid": "paid ", "free": "free community "}.get(ans.extended_kind or "", "")
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} runs {label} on {paid}extended support ({ans.extended_name}): security "
        f"fixes stop for good on {fmt(ans.eoes)}.",
        detail=ans.reason,
        evidence=f"source: {ans.source}",
        remediation=f"Upgrade or replace before {fmt(ans.eoes)}; extended support only buys time.",
        cost=cost,
    )
