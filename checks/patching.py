"""Patching checks: pending security updates, patch age, pending reboots, automatic updates."""

from __future__ import annotations

from checks._common import HOST_KINDS, kind_of, labour, name_of, policy_of, refs, unknown_result
from itaudit.checking import CheckContext, check
from itaudit.model import CheckResult, DeviceFacts, Severity, Status


@check(
    "PATCH-001", title="Security updates pending", severity="high", applies_to=HOST_KINDS, **refs("PATCH-001")
)
def patch_security_pending(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """Security updates are available for the device but not installed.

    Counts the security updates the package manager (apt, dnf/yum, zypper) or Windows
    Update reports as pending. A device that reports no pending updates at all passes
    even without a separate security count.
    """
    p = facts.patching
    n = p.security_updates
    if n is None and p.pending_updates == 0:
        n = 0
    if n is None:
        return unknown_result(
            summary=f"We could not tell whether {name_of(facts, ctx)} has security updates waiting.",
            missing=["patching.security_updates"],
        )
    if n == 0:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} has no security updates waiting.")
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} has {n} security update{'s' if n != 1 else ''} waiting to be installed.",
        detail=f"{p.pending_updates if p.pending_updates is not None else '?'} updates pending in total "
        f"({p.package_manager or 'package manager unknown'})",
        evidence=f"security_updates={n}; pending_updates={p.pending_updates}",
        remediation="Install the pending security updates in the next maintenance window "
        "(apt-get upgrade / dnf upgrade --security / Windows Update) and reboot if required.",
        cost=labour(ctx, "patch", "install the updates"),
    )


@check(
    "PATCH-002",
    title="Days since last patch over policy",
    severity="medium",
    applies_to=HOST_KINDS,
    **refs("PATCH-002"),
)
def patch_age(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The last SECURITY update was installed longer ago than the city's ``patch_max_days``.

    Uses the date of the last security update installed, from the package manager's logs
    (apt's history matched against the distribution's security archive; on dnf/yum systems
    the newest install of a package version an installed security advisory shipped, from
    dnf's log or ``rpm -qa --last``; on SUSE libzypp's last applied security patch; the
    install dates of Windows updates). Upgrading a few unrelated packages does not make a device
    "patched": the date of the last change of any package is shown beside it. Severity
    rises to high past three times the policy (a device nobody patches).
    """
    last = facts.patching.last_patched
    any_change = facts.patching.last_package_change
    beside = f"; last change of any package {any_change.isoformat()}" if any_change else ""
    if last is None:
        return unknown_result(
            summary=f"We do not know when {name_of(facts, ctx)} last received a security update.",
            detail=f"{facts.gaps.get('patching.last_patched', '')}{beside}".strip("; "),
            missing=["patching.last_patched"],
        )
    pol = policy_of(ctx)
    days = (ctx.as_of - last).days
    if days <= pol.patch_max_days:
        return CheckResult(
            Status.PASS,
            summary=f"{name_of(facts, ctx)} last received a security update {days} days ago (policy: "
            f"{pol.patch_max_days}).",
            evidence=f"last security update {last.isoformat()}{beside}",
        )
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} has not received a security update for {days} days (city policy: every "
        f"{pol.patch_max_days} days).",
        evidence=f"last security update {last.isoformat()}{beside}",
        remediation="Patch the device and put it on the regular patch schedule.",
        cost=labour(ctx, "patch", "patch it"),
        severity=Severity.HIGH if days > 3 * pol.patch_max_days else None,
    )


@check(
    "PATCH-003", title="Reboot pending too long", severity="low", applies_to=HOST_KINDS, **refs("PATCH-003")
)
def patch_reboot_pending(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """Updates were installed but the device has waited for a reboot longer than policy.

    Until the reboot, a patched kernel or system library is not in use. The reboot is
    taken to be pending since the last install (``patching.last_package_change``, else
    ``patching.last_patched``); fails when that is more than ``reboot_max_days`` ago.
    """
    p = facts.patching
    if p.reboot_required is None:
        return unknown_result(
            summary=f"We could not tell whether {name_of(facts, ctx)} is waiting for a reboot.",
            missing=["patching.reboot_required"],
        )
    if not p.reboot_required:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} is not waiting for a reboot.")
    since = p.last_package_change or p.last_patched
    if since is None:
        return unknown_result(
            summary=f"{name_of(facts, ctx)} is waiting for a reboot; we do not know since when.",
            missing=["patching.last_package_change"],
        )
    pol = policy_of(ctx)
    days = (ctx.as_of - since).days
    if days <= pol.reboot_max_days:
        return CheckResult(
            Status.PASS,
            summary=f"{name_of(facts, ctx)} is waiting for a reboot since {days} days, within the policy "
            f"({pol.reboot_max_days}).",
        )
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} has waited {days} days for a restart: installed security fixes are not "
        "active until it restarts.",
        evidence=f"reboot required; last install {since.isoformat()}",
        remediation="Restart the device in a maintenance window.",
        cost=labour(ctx, "config_change", "schedule and check the restart"),
    )


@check(
    "PATCH-004", title="Automatic updates off", severity="medium", applies_to=HOST_KINDS, **refs("PATCH-004")
)
def patch_auto_updates(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """Automatic (unattended) security updates are turned off.

    unattended-upgrades / dnf-automatic on Linux, the Windows Update policy on Windows.
    Low severity on servers, where updates are often applied by hand in a window.
    """
    auto = facts.patching.auto_updates
    if auto is None:
        return unknown_result(
            summary=f"We could not tell whether {name_of(facts, ctx)} installs updates automatically.",
            missing=["patching.auto_updates"],
        )
    if auto:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} installs updates automatically.")
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} does not install security updates automatically.",
        remediation="Enable unattended-upgrades (Debian/Ubuntu), dnf-automatic (RHEL family) or automatic "
        "Windows Update through Group Policy / Intune.",
        cost=labour(ctx, "config_change", "turn automatic updates on"),
        severity=Severity.LOW if kind_of(facts, ctx) == "server" else None,
    )
