"""Data-quality checks: is the inventory current and complete? (CISA CPG 1.A: monthly.)

These need scan history from the store, carried on ``CheckContext.device``:
``last_successful_scan`` (UTC ISO time) and ``consecutive_failures`` (failed scans since
the last success). Run them for devices whose latest scan failed too, with empty facts.
"""

from __future__ import annotations

from checks._common import HOST_KINDS, iso_day, kind_of, name_of, policy_of, refs, unknown_result
from itaudit.checking import CheckContext, check
from itaudit.model import CheckResult, DeviceFacts, Status


@check("DATA-001", title="Not scanned successfully in 30 days", severity="medium", **refs("DATA-001"))
def data_stale(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The device has not been scanned successfully within ``scan_max_age_days`` (30).

    CISA CPG 1.A asks for an asset inventory updated at least monthly: a device we have
    not seen for a month may be off, moved, or replaced by something unknown.
    """
    pol = policy_of(ctx)
    last = iso_day(ctx.device.last_successful_scan) or iso_day(facts.collected_at)
    if last is None:
        if ctx.device.consecutive_failures:
            return CheckResult(
                Status.FAIL,
                summary=f"We have never been able to check {name_of(facts, ctx)}.",
                detail=ctx.device.last_error or "",
                remediation="Check the address, credentials and firewall rules for the scanner.",
            )
        return unknown_result(
            summary=f"We have no scan record for {name_of(facts, ctx)}.",
            missing=["device.last_successful_scan"],
        )
    days = (ctx.as_of - last).days
    if days <= pol.scan_max_age_days:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} was checked {days} days ago.")
    return CheckResult(
        Status.FAIL,
        summary=f"We have not been able to check {name_of(facts, ctx)} for {days} days.",
        evidence=f"last successful scan {last.isoformat()}",
        detail=ctx.device.last_error or "",
        remediation="Find out whether the device still exists; fix access for the scanner or retire it "
        "from the inventory.",
    )


@check("DATA-002", title="Scan failing repeatedly", severity="medium", **refs("DATA-002"))
def data_failing(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The last ``scan_failure_threshold`` (3) scans of the device all failed.

    Reports the latest error (unreachable, refused credentials, timeout) so the fix is
    clear. ``consecutive_failures`` counts failed scans since the last success.
    """
    n = ctx.device.consecutive_failures
    if n is None:
        return unknown_result(
            summary=f"We have no scan history for {name_of(facts, ctx)}.",
            missing=["device.consecutive_failures"],
        )
    pol = policy_of(ctx)
    if n < pol.scan_failure_threshold:
        return CheckResult(Status.PASS, summary=f"Scans of {name_of(facts, ctx)} are working.")
    return CheckResult(
        Status.FAIL,
        summary=f"The last {n} scans of {name_of(facts, ctx)} failed, so we cannot vouch for it.",
        detail=ctx.device.last_error or "",
        remediation="Fix the cause shown (address, credential, firewall, SNMP community) and rescan.",
    )


_KEY_FACTS_HOST = ["software.os_name", "software.os_version", "patching.last_patched", "identity.serial"]
_KEY_FACTS_NET = ["software.os_version", "identity.model", "identity.serial"]


def _has(facts: DeviceFacts, dotted: str) -> bool:
    if dotted == "identity.serial":
        return bool(facts.identity.serial or facts.hardware.serial)
    if dotted == "identity.model":
        return bool(facts.identity.model or facts.hardware.model)
    if dotted == "software.os_version":
        return bool(facts.software.os_version or facts.software.firmware)
    v = facts.get(dotted)
    return v not in (None, "", [])


@check("DATA-003", title="Key facts missing", severity="low", **refs("DATA-003"))
def data_missing_facts(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """A successful scan left out facts other checks need (OS version, serial, patch date...).

    Servers and PCs need OS name and version, last patch date and serial number; network
    devices need firmware version, model and serial. Each gap is listed with its reason
    when the collector recorded one (``facts.gaps``), e.g. no DMI access without root.
    """
    if not facts.sources and not facts.collected_at:
        return unknown_result(
            summary=f"{name_of(facts, ctx)} has not been scanned successfully yet.",
            missing=["facts (no successful scan)"],
        )
    wanted = _KEY_FACTS_HOST if kind_of(facts, ctx) in HOST_KINDS else _KEY_FACTS_NET
    gaps = [k for k in wanted if not _has(facts, k)]
    if not gaps:
        return CheckResult(Status.PASS, summary=f"The scan of {name_of(facts, ctx)} found every key fact.")
    why = "; ".join(f"{k}: {facts.gaps.get(k, 'not reported')}" for k in gaps)
    return CheckResult(
        Status.FAIL,
        summary=f"The scan of {name_of(facts, ctx)} is incomplete: {len(gaps)} key fact(s) missing.",
        detail=why,
        remediation="Give the scan account the access the missing facts need (e.g. sudo for dmidecode), or "
        "record them in the asset register.",
    )
