"""The measures a council tracks: target, owner, why it matters and the next action.

Every scorecard measure (and the headline score) has a target, an owner who answers for
it, one line on why it matters and the next action, in the manner of a city performance
report (Tacoma's "24/7" measures, What Works Cities). The defaults below are sensible for
a small city; a city overrides any of them in its policy::

    [cities.springfield.policy.measures.patched]
    target = 95                       # percent of devices (uncheckable: a count; score: 0-100)
    owner = "IT manager"              # required whenever the table is written
    why = "Most break-ins use flaws that already have a fix."
    action = "Turn on automatic updates; clear the backlog each month."

``[policy.kpi_targets]`` (the older table) still sets targets; ``measures`` wins where both do.
Errors name the exact key: a percentage above 100, a negative target, an empty owner.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from itaudit.errors import ConfigError

DEFAULT_OWNER = "IT manager"


@dataclass(frozen=True)
class MeasureSpec:
    """How one measure is managed: its target and who answers for it."""

    key: str
    label: str
    target: float
    unit: str  # "%" (share of devices), "" (count of devices), "points" (the 0-100 score)
    better: str  # "higher" or "lower"
    owner: str
    why: str
    action: str


# key, label, target, unit, better, why, action
_DEFAULTS: list[tuple[str, str, float, str, str, str, str]] = [
    ("score", "IT risk score", 80.0, "points", "higher",
     "One number, traced to each finding.",
     "Work the top risks on page 1, in order."),
    ("refresh", "Devices within refresh age", 90.0, "%", "higher",
     "Old hardware fails more often.",
     "Fund this fiscal year's items of the refresh plan."),
    ("supported", "Devices on supported software", 100.0, "%", "higher",
     "No security fixes: criminals aim here.",
     "Upgrade or replace devices on unsupported software."),
    ("patched", "Devices patched within policy", 95.0, "%", "higher",
     "Most break-ins use already-fixed flaws.",
     "Turn on automatic updates; clear the backlog monthly."),
    ("exposure", "Devices with no critical exposure", 100.0, "%", "higher",
     "One critical flaw can let ransomware in.",
     "Fix every critical finding within 15 days."),
    ("freshness", "Inventory checked in the last 30 days", 95.0, "%", "higher",
     "We vouch only for devices we checked.",
     "Keep the monthly scan scheduled; fix failing access."),
    ("uncheckable", "Devices we could not check", 0.0, "", "lower",
     "Unchecked devices can hide big risks.",
     "Restore access to the devices listed as not checked."),
    ("completeness", "Inventory completeness (found devices we manage)", 95.0, "%", "higher",
     "Unmanaged devices are never patched.",
     "Register found devices, or remove them."),
]
MEASURE_KEYS = tuple(d[0] for d in _DEFAULTS)
_FIELDS = {"target", "owner", "why", "action"}


def default_measures() -> dict[str, MeasureSpec]:
    """The shipped defaults, one per measure (score first, then the scorecard's order)."""
    return {
        key: MeasureSpec(key, label, target, unit, better, DEFAULT_OWNER, why, action)
        for key, label, target, unit, better, why, action in _DEFAULTS
    }


def _check_target(spec: MeasureSpec, value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"expected a number, got {type(value).__name__} {value!r}", key=key)
    value = float(value)
    if value < 0:
        raise ConfigError("a target cannot be negative", key=key)
    if spec.unit in ("%", "points") and value > 100:
        what = "a percentage" if spec.unit == "%" else "the score"
        raise ConfigError(f"{value:g} is impossible: {what} cannot exceed 100", key=key)
    return value


def measures_of(policy: Any) -> dict[str, MeasureSpec]:
    """A policy's measures: the defaults, its ``kpi_targets``, then its ``measures`` tables."""
    out = default_measures()
    for name, target in dict(getattr(policy, "kpi_targets", None) or {}).items():
        if name in out:
            out[name] = replace(out[name], target=float(target))
    out.update(dict(getattr(policy, "measures", None) or {}))
    return out


def parse_measures(table: Any, kpi_targets: dict[str, float], key_prefix: str) -> dict[str, MeasureSpec]:
    """The measures a policy's ``measures`` table sets (over the defaults); validates ``kpi_targets`` too."""
    defaults = default_measures()
    for name, target in kpi_targets.items():
        if name in defaults:
            _check_target(defaults[name], target, f"{key_prefix}.kpi_targets.{name}")
    out: dict[str, MeasureSpec] = {}
    table = table or {}
    if not isinstance(table, dict):
        raise ConfigError("expected a table of measures", key=f"{key_prefix}.measures")
    for name, fields in table.items():
        mkey = f"{key_prefix}.measures.{name}"
        if name not in defaults:
            raise ConfigError(f"unknown measure (one of {', '.join(MEASURE_KEYS)})", key=mkey)
        if not isinstance(fields, dict):
            raise ConfigError("expected a table with target, owner, why, action", key=mkey)
        for k in fields:
            if k not in _FIELDS:
                raise ConfigError(f"unknown key (allowed: {', '.join(sorted(_FIELDS))})", key=f"{mkey}.{k}")
        owner = fields.get("owner")
        if not isinstance(owner, str) or not owner.strip():
            raise ConfigError("every measure the city sets needs an owner (a role or a name)", key=f"{mkey}.owner")
        base = defaults[name]
        if name in kpi_targets:
            base = replace(base, target=float(kpi_targets[name]))
        spec = replace(base, owner=owner.strip())
        if "target" in fields:
            spec = replace(spec, target=_check_target(spec, fields["target"], f"{mkey}.target"))
        for k in ("why", "action"):
            if k in fields:
                if not isinstance(fields[k], str) or not fields[k].strip():
                    raise ConfigError("expected a sentence", key=f"{mkey}.{k}")
                spec = replace(spec, **{k: fields[k].strip()})
        out[name] = spec
    return out
