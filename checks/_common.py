"""Helpers shared by the check modules: policy, knowledge, names, money, dates."""

from __future__ import annotations

import datetime as dt
from typing import Any

from itaudit import rules
from itaudit.checking import CheckContext
from itaudit.knowledge import Knowledge, LifecycleAnswer, framework_refs, lifecycle_for_facts
from itaudit.model import CheckResult, Cost, DeviceFacts, Status
from itaudit.policy import Policy, defaults

HOST_KINDS = ("server", "workstation", "laptop")
NETWORK_KINDS = ("switch", "router", "firewall", "wireless", "printer", "ups", "storage", "camera")
def refs(check_id: str) -> dict[str, tuple[str, ...]]:
    """Framework references for ``@check`` from itaudit/data/frameworks.json."""
    return framework_refs(check_id)


def policy_of(ctx: CheckContext) -> Policy:
    """The city's Policy (``ctx.policy`` may be a Policy or an object with ``.policy``)."""
    pol = ctx.policy
    if isinstance(pol, Policy):
        return pol
    inner = getattr(pol, "policy", None)
    return inner if isinstance(inner, Policy) else Policy()


def knowledge_of(ctx: CheckContext) -> Knowledge:
    """Shipped knowledge (``ctx.knowledge`` when the caller loaded a specific copy)."""
    return ctx.knowledge if isinstance(ctx.knowledge, Knowledge) else Knowledge.load()


def kind_of(facts: DeviceFacts, ctx: CheckContext) -> str | None:
    return ctx.device.kind or facts.identity.kind


def tags_of(ctx: CheckContext) -> list[str]:
    return [t.lower() for t in [*ctx.device.criticality, *ctx.device.tags]]


def internet_facing(facts: DeviceFacts, ctx: CheckContext) -> bool:
    """Firewalls face the internet by nature; other devices when tagged so in the config."""
    return kind_of(facts, ctx) == "firewall" or "internet-facing" in tags_of(ctx)


def is_virtual(facts: DeviceFacts) -> bool:
    """A virtual machine or container (``itaudit.rules.is_virtual``): no hardware of its own."""
    return rules.is_virtual(facts.software.virtualization)


def name_of(facts: DeviceFacts, ctx: CheckContext | None = None) -> str:
    """How a device is named in a sentence: the name the city gave it in its config, then the
    host name it reports (when different: "pd-rms01 (host rms-prod)"), else its address."""
    configured = ctx.device.name if ctx is not None else None
    host = facts.identity.hostname
    if configured and host and host.lower() != configured.lower():
        return f"{configured} (host {host})"
    return configured or host or facts.identity.address or "this device"


def labour(ctx: CheckContext, task: str, what: str) -> Cost:
    """Staff time as an operating cost at the city's labour rate."""
    pol = policy_of(ctx)
    hours = float(defaults()["effort_hours"][task])
    return Cost(
        amount=round(hours * pol.labour_rate, 2),
        kind="operating",
        budget_line=pol.pay_line("operating", department=ctx.device.department, device_line=ctx.device.budget_line),
        basis=f"{hours:g} h of staff time to {what} at {pol.currency} {pol.labour_rate:g}/h",
    )


def price_of(facts: DeviceFacts, ctx: CheckContext) -> rules.Price:
    """What replacing this device costs and who pays (``itaudit.rules.replacement_price``)."""
    return rules.replacement_price(
        policy_of(ctx),
        kind=kind_of(facts, ctx),
        department=ctx.device.department,
        tags=tags_of(ctx),
        register_cost=ctx.device.register_cost,
        register_line=ctx.device.budget_line,
    )


def replacement(facts: DeviceFacts, ctx: CheckContext, why: str, fiscal_year: int | None = None) -> Cost:
    """The device's replacement as a cost (the plan prices it with the same rule), due in
    ``fiscal_year`` (default: the current one). Its basis starts with "replacement ": that is
    how ``itaudit.rules.remedies`` knows a replacement subsumes the device's other fixes."""
    pol = policy_of(ctx)
    price = price_of(facts, ctx)
    return Cost(
        amount=price.amount,
        kind=price.kind,
        budget_line=price.budget_line,
        basis=f"replacement {price.device_class} at {pol.currency} {price.amount:,.0f} ({why}); {price.source}",
        fiscal_year=fiscal_year if fiscal_year is not None else pol.fiscal_year(ctx.as_of),
    )


def firmware_bound(facts: DeviceFacts, ctx: CheckContext) -> bool:
    """Is the device's software tied to its hardware (``itaudit.rules.firmware_bound``)? A VM is not."""
    if is_virtual(facts):
        return False
    return rules.firmware_bound(policy_of(ctx).refresh_class(kind_of(facts, ctx), tags_of(ctx)))
# Lifecycle answers by (knowledge, policy, as-of, software facts): a city's thousands of PCs
# share a few dozen OS builds, and three checks ask for each device (bench/directory_scale.py).
_LIFECYCLE_MEMO: dict[tuple[Any, ...], LifecycleAnswer] = {}


def lifecycle_of(facts: DeviceFacts, ctx: CheckContext) -> LifecycleAnswer:
    """Lifecycle status of the device's OS or firmware at ``ctx.as_of``."""
    sw = facts.software
    knowledge, policy = knowledge_of(ctx), policy_of(ctx)
    # The knowledge object itself (kept alive by the key, so its id is never reused) and the
    # policy's two answers to "was extended support bought?".
    key = (knowledge, policy.esu_purchased, tuple(policy.extended_support), ctx.as_of, sw.os_family, sw.os_name,
           sw.os_version, sw.os_build, sw.edition, sw.product, sw.release, sw.firmware)
    ans = _LIFECYCLE_MEMO.get(key)
    if ans is None:
        if len(_LIFECYCLE_MEMO) > 4096:
            _LIFECYCLE_MEMO.clear()
        ans = _LIFECYCLE_MEMO[key] = lifecycle_for_facts(knowledge, sw, as_of=ctx.as_of,
                                                         paid_extended=policy.paid_extended)
    return ans


def lifecycle_unknown(ans: LifecycleAnswer, facts: DeviceFacts, ctx: CheckContext | None = None) -> CheckResult:
    """An ``unknown`` result naming what is missing for a lifecycle judgment."""
    missing = []
    if ans.product is None:
        missing = ["software.product", "software.os_name"]
    elif not (facts.software.os_version or facts.software.firmware or facts.software.os_build):
        missing = ["software.os_version"]
    elif "edition" in ans.reason:
        missing = ["software.edition"]
    else:
        missing = ["a software.os_version the lifecycle data knows"]
    return unknown_result(
        summary=f"We could not tell whether {name_of(facts, ctx)}'s software is still supported: {ans.reason}.",
        detail=f"lifecycle data dated {ans.data_date}",
        missing=missing,
        evidence=identified_by(facts),
    )


def identified_by(facts: DeviceFacts) -> str:
    """How an SNMP device's family, version, model and serial were found (empty for other devices)."""
    how = facts.evidence.get("snmp_identified_by") or ""
    gap = facts.gaps.get("software.os_family")
    return "; ".join(x for x in (f"identified by {how}" if how else "", gap or "") if x)


def software_label(ans: LifecycleAnswer, facts: DeviceFacts) -> str:
    title = ans.title or ans.product or "software"
    return f"{title} {ans.label or ans.cycle}".strip()


def fmt(d: Any) -> str:
    return d.isoformat() if isinstance(d, dt.date) else ("date not published" if d is True else "no end date")


def iso_day(value: str | None) -> dt.date | None:
    """Date part of an ISO date or time string, or None."""
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def unknown_result(*, summary: str, missing: list[str], detail: str = "", evidence: str = "") -> CheckResult:
    """An ``unknown`` result whose detail names the missing facts (Finding keeps no ``missing``)."""
    named = f"missing facts: {', '.join(missing)}" if missing else ""
    return CheckResult(
        Status.UNKNOWN,
        summary=summary,
        detail="; ".join(x for x in (named, detail) if x),
        evidence=evidence,
        missing=missing,
    )
