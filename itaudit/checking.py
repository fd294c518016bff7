"""The check registry: checks are pure functions declared with ``@check``.

A check takes the facts of one device and a ``CheckContext`` (as-of date, the device's
record, the city's policy, shipped knowledge) and returns a ``CheckResult``. It does no
I/O and never reads the clock. A check that lacks the facts it needs returns
``Status.UNKNOWN`` naming them; ``run_checks`` does that for it when a fact listed in
``needs`` is missing, so a check body may assume its needs are present.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from itaudit.model import CheckResult, DeviceFacts, Finding, Severity, Status

CheckFn = Callable[[DeviceFacts, "CheckContext"], CheckResult]

_ID_RE = re.compile(r"^(HW|EOL|PATCH|SEC|NET|VULN|DATA|SCAN|AD)-\d{3}$")


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    severity: Severity
    fn: CheckFn
    needs: tuple[str, ...] = ()
    applies_to: tuple[str, ...] = ()  # device kinds; empty = all
    cpg: tuple[str, ...] = ()  # CISA Cross-Sector CPG ids, e.g. "1.E"
    cis: tuple[str, ...] = ()  # CIS Controls v8 safeguards, e.g. "2.2"
    family: str = ""

    @property
    def doc(self) -> str:
        return (self.fn.__doc__ or "").strip()

    @property
    def references(self) -> list[str]:
        return [f"CISA CPG {c}" for c in self.cpg] + [f"CIS v8 {c}" for c in self.cis]


@dataclass
class DeviceRecord:
    """What the store and the config know about a device, beyond this scan's facts."""

    id: int | None = None
    kind: str | None = None
    department: str | None = None
    criticality: list[str] = field(default_factory=list)
    purchase_date: dt.date | None = None
    first_seen: str | None = None
    last_seen: str | None = None
    budget_line: str | None = None
    # Added for the risk model (checks/dataquality.py, checks/exposure.py); filled by the store.
    tags: list[str] = field(default_factory=list)  # config tags: "internet-facing", "core", "rugged"
    last_successful_scan: str | None = None  # UTC ISO time of the last scan that produced facts
    consecutive_failures: int | None = None  # failed scans since the last success (None = unknown)
    last_error: str | None = None  # reason of the latest failed scan
    collector_findings: dict[str, str] = field(default_factory=dict)  # CollectResult.collector_findings


@dataclass
class CheckContext:
    as_of: dt.date
    device: DeviceRecord = field(default_factory=DeviceRecord)
    # city policy: refresh periods, costs, budget lines, fiscal year (config.CityConfig)
    policy: Any = None
    # shipped knowledge (lifecycle, KEV); see itaudit.knowledge
    knowledge: Any = None


REGISTRY: dict[str, CheckSpec] = {}


def check(
    id: str,
    *,
    title: str,
    severity: Severity | str,
    needs: Iterable[str] = (),
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
            needs=tuple(needs),
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
        missing = [n for n in spec.needs if _missing(facts, n)]
        if missing:
            reasons = [f"{n} ({facts.gaps[n]})" if n in facts.gaps else n for n in missing]
            res = CheckResult(
                Status.UNKNOWN,
                summary=f"Could not be checked: missing {', '.join(reasons)}.",
                missing=missing,
            )
        else:
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


def _missing(facts: DeviceFacts, dotted: str) -> bool:
    value = facts.get(dotted)
    return value is None or value == [] or value == ""
