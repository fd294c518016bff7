"""The check registry: checks are pure functions declared with ``@check``.

A check takes the facts of one device and a ``CheckContext`` (as-of date, the device's
record, the city's policy, shipped knowledge) and returns a ``CheckResult``. It does no
I/O and never reads the clock. A check that lacks the facts it needs returns
``Status.UNKNOWN`` naming them (``checks._common.unknown_result``), with its own words for
what is missing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from itaudit.model import CheckResult, DeviceFacts, Finding, Severity, Status

if TYPE_CHECKING:
    from itaudit.knowledge import Knowledge
    from itaudit.policy import Policy

CheckFn = Callable[[DeviceFacts, "CheckContext"], CheckResult]

_ID_RE = re.compile(r"^(HW|EOL|PATCH|SEC|NET|VULN|DATA|SCAN|AD)-\d{3}$")


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    severity: Severity
    fn: CheckFn
    applies_to: tuple[str, ...] = ()  # device kinds; empty = all
    cpg: tuple[str, ...] = ()  # CISA Cross-Sector CPG ids, e.g. "1.E"
    cis: tuple[str, ...] = ()  # CIS Controls v8 safeguards, e.g. "2.2"
    family: str = ""

    @property
    def doc(self) -> str:
        return (self.fn.__doc__ or "").strip()

    @property
    def references(self) -> list[str]:
        return [f"CISA CPG 1.0.1 {c}" for c in self.cpg] + [f"CIS v8 {c}" for c in self.cis]


@dataclass
class DeviceRecord:
    """What the store and the config know about a device, beyond this scan's facts."""

    id: int | None = None
    name: str | None = None  # the name the city gave it (config, or the store's record)
    kind: str | None = None
    department: str | None = None
    criticality: list[str] = field(default_factory=list)
    purchase_date: dt.date | None = None
    first_seen: str | None = None
    last_seen: str | None = None
    budget_line: str | None = None  # the asset register's account
    register_cost: float | None = None  # the asset register's cost
    # Added for the risk model (checks/dataquality.py, checks/exposure.py); filled by the store.
    tags: list[str] = field(default_factory=list)  # config tags: "internet-facing", "core", "rugged"
    last_successful_scan: str | None = None  # UTC ISO time of the last scan that produced facts
    consecutive_failures: int | None = None  # failed scans since the last success (None = unknown)
    last_error: str | None = None  # reason of the latest failed scan
    collector_findings: dict[str, str] = field(default_factory=dict)  # CollectResult.collector_findings
    # Other devices in service presenting the same SSH host key (cloned from one template).
    shares_host_key_with: list[str] = field(default_factory=list)


@dataclass
class CheckContext:
    as_of: dt.date
    device: DeviceRecord = field(default_factory=DeviceRecord)
    # The city's policy: refresh periods, costs, budget lines, fiscal year (None: shipped defaults).
    policy: Policy | None = None
    # Shipped knowledge (lifecycle, KEV); None: the checks load the shipped copy.
    knowledge: Knowledge | None = None


REGISTRY: dict[str, CheckSpec] = {}


def check(
    id: str,
    *,
    title: str,
    severity: Severity | str,
    applies_to: Iterable[str] = (),
    cpg: Iterable[str] = (),
    cis: Iterable[str] = (),
) -> Callable[[CheckFn], CheckFn]:
    """Register a check. The ID is stable forever; ``family`` comes from its prefix."""

    def deco(fn: CheckFn) -> CheckFn:
        if not _ID_RE.match(id):
            raise ValueError(f"check id {id!r} must look like FAMILY-123")
        if id in REGISTRY and REGISTRY[id].fn is not fn:
            existing = REGISTRY[id].fn
            # Re-importing the same module (tests, reload) is fine; a clash is not.
            if (existing.__module__, existing.__qualname__) != (fn.__module__, fn.__qualname__):
                raise ValueError(f"check id {id} registered twice")
        if not (fn.__doc__ or "").strip():
            raise ValueError(f"check {id} needs a docstring: it is its documentation")
        REGISTRY[id] = CheckSpec(
            id=id,
            title=title,
            severity=Severity(severity),
            fn=fn,
            applies_to=tuple(applies_to),
            cpg=tuple(cpg),
            cis=tuple(cis),
            family=id.split("-")[0],
        )
        return fn

    return deco


def run_checks(
    facts: DeviceFacts, ctx: CheckContext, specs: Iterable[CheckSpec] | None = None
) -> list[Finding]:
    """Run every applicable check on one device; never raises for a bad check."""
    kind = ctx.device.kind or facts.identity.kind
    out: list[Finding] = []
    for spec in specs if specs is not None else sorted(REGISTRY.values(), key=lambda s: s.id):
        if spec.applies_to and kind not in spec.applies_to:
            continue
        try:
            res = spec.fn(facts, ctx)
        except Exception as exc:  # a bug in one check must not stop the others
            res = CheckResult(Status.ERROR, summary=f"Check failed: {type(exc).__name__}: {exc}")
        out.append(
            Finding(
                check_id=spec.id,
                status=res.status,
                severity=res.severity or spec.severity,
                title=spec.title,
                summary=res.summary,
                detail=res.detail,
                evidence=res.evidence,
                remediation=res.remediation,
                cost=res.cost,
                references=spec.references,
            )
        )
    return out
