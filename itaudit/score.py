"""Risk scores a manager can read and an engineer can audit: 0-100, 100 = best.

Device score = 100 − Σ (severity points × criticality weight) over the device's *failed*
findings, floored at 0. Severity points and criticality weights are data
(``itaudit/data/score_weights.json``; a city may override criticality weights in its
policy). City score = the mean of its device scores. Every point lost is traceable to
findings: ``ScoreBreakdown.items`` lists them, and ``why()`` puts them in sentences.
Unknown and error results take no points; they are counted, because "we could not check
N devices" belongs next to the score. See docs/scoring.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

from itaudit.errors import KnowledgeError
from itaudit.knowledge import shipped_data_dir
from itaudit.model import Severity

WEIGHTS_FORMAT = "itaudit-score-weights/1"


@cache
def default_weights() -> dict[str, Any]:
    """The shipped score_weights.json, validated."""
    path = shipped_data_dir() / "score_weights.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KnowledgeError(f"{path}: cannot read score weights ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != WEIGHTS_FORMAT:
        raise KnowledgeError(f"{path}: unknown format (expected {WEIGHTS_FORMAT})")
    return doc


@dataclass
class ScoreItem:
    """Points one finding (device score) or one check across devices (city score) took off."""

    check_id: str
    title: str
    severity: str
    points: float
    device: str | None = None
    summary: str = ""
    count: int = 1  # devices (city score)


@dataclass
class ScoreBreakdown:
    """A score with the findings that explain it."""

    score: float
    label: str | None = None
    weight: float = 1.0  # criticality weight applied (device score)
    items: list[ScoreItem] = field(default_factory=list)  # biggest first
    failed: int = 0
    unknown: int = 0
    passed: int = 0
    devices: int = 1

    def why(self, limit: int = 10) -> list[str]:
        """Plain sentences: where the lost points came from, biggest first."""
        out = []
        for it in self.items[:limit]:
            where = f" on {it.count} device{'s' if it.count != 1 else ''}" if self.devices > 1 else ""
            out.append(f"−{it.points:.1f}: {it.title} ({it.check_id}, {it.severity}){where}")
        rest = sum(i.points for i in self.items[limit:])
        if rest:
            out.append(f"−{rest:.1f}: {len(self.items) - limit} smaller items")
        if self.unknown:
            out.append(f"{self.unknown} check result(s) could not be judged (no points taken; facts missing)")
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["why"] = self.why()
        return d


def _get(f: Any, name: str) -> Any:
    v = f.get(name) if isinstance(f, Mapping) else getattr(f, name, None)
    return getattr(v, "value", v)


def criticality_weight(tags: Iterable[str], weights: Mapping[str, float] | None = None) -> float:
    """The highest weight among a device's criticality tags; ``default`` (1.0) when none match."""
    table = {k.lower(): float(v) for k, v in (weights or default_weights()["criticality"]).items()}
    found = [table[t.lower()] for t in tags if t.lower() in table]
    return max(found, default=table.get("default", 1.0))


def device_score(
    findings: Iterable[Any],
    criticality: Iterable[str] = (),
    *,
    label: str | None = None,
    weights: Mapping[str, float] | None = None,
    severity_points: Mapping[str, float] | None = None,
    weight: float | None = None,
) -> ScoreBreakdown:
    """Score one device from its findings (``Finding`` objects or dicts with the same keys).

    ``weight`` is the device's criticality weight when the caller already has it
    (``criticality_weight(criticality, weights)``, worked out once per set of tags)."""
    pts_table = severity_points if severity_points is not None else default_weights()["severity_points"]
    w = weight if weight is not None else criticality_weight(criticality, weights)
    items: list[ScoreItem] = []
    failed = unknown = passed = 0
    for f in findings:
        status = _get(f, "status")
        if status == "fail":
            failed += 1
            sev = str(_get(f, "severity"))
            pts = float(pts_table.get(sev, 0)) * w
            if pts > 0:
                items.append(
                    ScoreItem(
                        str(_get(f, "check_id")),
                        str(_get(f, "title") or ""),
                        sev,
                        pts,
                        device=label,
                        summary=str(_get(f, "summary") or ""),
                    )
                )
        elif status in ("unknown", "error"):
            unknown += 1
        elif status == "pass":
            passed += 1
    total = sum(i.points for i in items)
    if total > 100:
        # Floor at 0, and scale the items so they still add up to exactly the points lost.
        for i in items:
            i.points = i.points * 100 / total
        total = 100.0
    items.sort(key=lambda i: (-i.points, i.check_id))
    return ScoreBreakdown(
        score=round(100 - total, 1),
        label=label,
        weight=w,
        items=items,
        failed=failed,
        unknown=unknown,
        passed=passed,
    )


def _worse(severity: str, than: str) -> bool:
    """Is ``severity`` worse than ``than`` (by ``Severity.rank``; an unknown name is never worse)?"""
    try:
        return Severity(severity).rank > Severity(than).rank
    except ValueError:
        return False


def city_score(devices: Iterable[ScoreBreakdown], *, label: str | None = None) -> ScoreBreakdown:
    """The mean of device scores; items aggregate each check's share of the points lost."""
    devs = list(devices)
    if not devs:
        return ScoreBreakdown(score=100.0, label=label, devices=0)
    n = len(devs)
    agg: dict[str, ScoreItem] = {}
    for d in devs:
        seen: set[str] = set()
        for it in d.items:
            a = agg.get(it.check_id)
            if a is None:
                a = agg[it.check_id] = ScoreItem(it.check_id, it.title, it.severity, 0.0, count=0)
            a.points += it.points / n
            if _worse(it.severity, a.severity):  # the line names the worst severity among its devices
                a.severity = it.severity
            if it.check_id not in seen:
                a.count += 1
                seen.add(it.check_id)
    items = sorted(agg.values(), key=lambda i: (-i.points, i.check_id))
    for i in items:
        i.points = round(i.points, 2)
    score = sum(d.score for d in devs) / n
    return ScoreBreakdown(
        score=round(score, 1),
        label=label,
        items=items,
        failed=sum(d.failed for d in devs),
        unknown=sum(d.unknown for d in devs),
        passed=sum(d.passed for d in devs),
        devices=n,
    )
