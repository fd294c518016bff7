"""The monthly summary's report model, built from one city's store.

Months are the months of the scans' as-of dates. A month's report scan is its latest
finished scan (a complete one when there is one). Everything the template shows is
computed here, so the JSON export and the HTML say the same thing.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from itaudit.store import ScanInfo, Store
from reports.common import (
    KPI_CHECKS,
    SEVERITY_RANK,
    budget_line_label,
    data_dates,
    device_label,
    plural,
    policy_of,
    score_weights,
)

# Scorecard measures: key, label, default target, unit, better ("higher" or "lower").
KPI_DEFS: list[tuple[str, str, float, str, str]] = [
    ("refresh", "Devices within refresh age", 90.0, "%", "higher"),
    ("supported", "Devices on supported software", 100.0, "%", "higher"),
    ("patched", "Devices patched within policy", 95.0, "%", "higher"),
    ("exposure", "Devices with no critical exposure", 100.0, "%", "higher"),
    ("freshness", "Inventory checked in the last 30 days", 95.0, "%", "higher"),
    ("uncheckable", "Devices we could not check", 0.0, "", "lower"),
    # Of the devices found on the city's networks, the share itaudit manages (needs a discovery sweep).
    ("completeness", "Inventory completeness (found devices we manage)", 95.0, "%", "higher"),
]
_ALL_CHECKED = "Every device was checked and dated."
AMBER_BAND = 10.0  # percentage points (or, for counts, % of devices) short of target = amber


@dataclass
class Kpi:
    key: str
    label: str
    target: float
    actual: float | None
    unit: str
    better: str
    rag: str  # "green", "amber", "red" or "none"
    trend: list[float | None]
    trend_labels: list[str]
    note: str = ""

    @property
    def actual_text(self) -> str:
        if self.actual is None:
            return "n/a"
        return shown_value(self.actual, self.target, self.better) + self.unit

    @property
    def target_text(self) -> str:
        sign = "≥ " if self.better == "higher" else "≤ "
        return sign + (f"{self.target:.0f}{self.unit}" if self.unit else f"{self.target:,.0f}")


def _meets(value: float, target: float, better: str) -> bool:
    return value >= target if better == "higher" else value <= target


def shown_value(actual: float, target: float, better: str) -> str:
    """``actual`` rounded for display, never rounded onto the target it missed.

    249 of 250 (99.6%) against a 100% target shows "99.6", not "100": near a missed target the
    value gets one decimal, rounded away from the target (down when higher is better, up when
    lower is better), so it stays short of it (99.96% shows "99.9").
    """
    text = f"{actual:,.0f}"
    if _meets(actual, target, better) or not _meets(float(text.replace(",", "")), target, better):
        return text
    # (1e-9: a share like 99.5 stored as 99.4999999… still floors to 99.5)
    tenths = math.floor(actual * 10 + 1e-9) if better == "higher" else math.ceil(actual * 10 - 1e-9)
    return f"{tenths / 10:,.1f}"


@dataclass
class Risk:
    check_id: str
    title: str
    sentence: str
    severity: str
    devices: int
    cost: float
    cost_kind: str
    budget_lines: list[str]
    examples: list[str]


@dataclass
class Change:
    device: str
    title: str
    severity: str


@dataclass
class MonthlyReport:
    city_id: str
    city_name: str
    month: str
    month_label: str
    as_of: str
    has_data: bool
    scan_date: str | None = None
    scan_status: str | None = None
    last_scan_date: str | None = None  # the newest scan before the month, when the month has none
    devices_total: int = 0
    devices_checked: int = 0
    # Of the devices checked: judged from the directory alone, or fully audited by a scan (issue 17).
    directory_only: int = 0
    fully_audited: int = 0
    audit_sentence: str = ""
    score: float | None = None
    prev_score: float | None = None
    prev_label: str | None = None
    headline: str = ""
    score_words: str = ""
    score_trend: list[float | None] = field(default_factory=list)
    score_why: list[str] = field(default_factory=list)
    top_risks: list[Risk] = field(default_factory=list)
    total_cost: float = 0.0
    cost_by_line: list[tuple[str, str, float]] = field(default_factory=list)  # (line, kind, amount)
    kpis: list[Kpi] = field(default_factory=list)
    new: list[Change] = field(default_factory=list)
    resolved: list[Change] = field(default_factory=list)
    new_count: int = 0
    resolved_count: int = 0
    still_open_count: int = 0
    first_month: bool = False
    unknown_age: int = 0
    not_checked: list[tuple[str, str]] = field(default_factory=list)  # (device, reason)
    gaps_sentence: str = ""
    data_dates: dict[str, str] = field(default_factory=dict)
    plan: list[tuple[str, int, float]] = field(default_factory=list)  # (FY, devices due, cost)
    plan_note: str = ""

    def to_json(self) -> str:
        """The report model as JSON (no secrets: only what the report shows)."""
        return json.dumps(asdict(self), indent=2, default=str)


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """First and last day of a YYYY-MM month."""
    first = dt.date.fromisoformat(month + "-01")
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return first, last


def month_label(month: str) -> str:
    first = dt.date.fromisoformat(month + "-01")
    return f"{calendar.month_name[first.month]} {first.year}"


def shift_month(month: str, delta: int) -> str:
    first = dt.date.fromisoformat(month + "-01")
    idx = first.year * 12 + first.month - 1 + delta
    return f"{idx // 12:04d}-{idx % 12 + 1:02d}"


def report_scan(scans: list[ScanInfo], month: str, as_of: dt.date) -> ScanInfo | None:
    """The month's report scan: its latest complete scan, else its latest incomplete one."""
    first, last = month_bounds(month)
    last = min(last, as_of)
    inside = [s for s in scans if first.isoformat() <= s.as_of[:10] <= last.isoformat()]
    complete = [s for s in inside if s.status == "complete"]
    pick = complete or inside
    return pick[-1] if pick else None


def _kpi_targets(city: Any) -> dict[str, float]:
    targets = getattr(getattr(city, "policy", None), "kpi_targets", None)
    return {str(k): float(v) for k, v in dict(targets or {}).items()}


def _rag(actual: float | None, target: float, better: str, amber: float) -> str:
    if actual is None:
        return "none"
    gap = (target - actual) if better == "higher" else (actual - target)
    if gap <= 0:
        return "green"
    return "amber" if gap <= amber else "red"


def _pct(num: float, den: float) -> float | None:
    return 100.0 * num / den if den else None


def _measures(
    scan: ScanInfo,
    rows: list[tuple[Any, ...]],
    freshness: tuple[int, int],
    device_weights: dict[int, float],
) -> dict[str, Any]:
    """One month's scorecard figures from the per-device rows of its report scan."""
    checked = len(rows)
    # City score as itaudit.score defines it: the mean of device scores, where a device loses
    # its failed checks' severity points times its criticality weight, floored at 0.
    score = sum(100.0 - min(100.0, r[1] * device_weights.get(r[0], 1.0)) for r in rows) / checked if checked else None
    m: dict[str, int] = {"critical": sum(r[2] for r in rows)}
    for g, name in enumerate(KPI_CHECKS):
        m[f"{name}_known"] = sum(r[3 + 2 * g] for r in rows)
        m[f"{name}_fail"] = sum(r[4 + 2 * g] for r in rows)
    fresh, known = freshness
    return {
        "score": round(score, 1) if score is not None else None,
        "refresh": _pct(m["refresh_known"] - m["refresh_fail"], m["refresh_known"]),
        "supported": _pct(m["supported_known"] - m["supported_fail"], m["supported_known"]),
        "patched": _pct(m["patched_known"] - m["patched_fail"], m["patched_known"]),
        "exposure": _pct(checked - m["critical"], checked),
        "freshness": _pct(fresh, known),
        "uncheckable": float(scan.n_failed),
        "checked": checked,
        "unknown_age": checked - m["refresh_known"],
        "devices_known": known,
    }


# What a group of failing checks means, in the city's words: (one device, several devices).
_PLAIN: dict[str, tuple[str, str]] = {
    "HW-001": (
        "is due for replacement (older than the city's refresh age)",
        "are due for replacement (older than the city's refresh age)",
    ),
    "HW-002": (
        "falls due for replacement by the end of next fiscal year",
        "fall due for replacement by the end of next fiscal year",
    ),
    "HW-003": ("is of unknown age, so it cannot be planned for", "are of unknown age, so they cannot be planned for"),
    "HW-004": (
        "cannot run a supported operating system, so it must be replaced",
        "cannot run a supported operating system, so they must be replaced",
    ),
    "HW-005": ("has a UPS battery past its replacement date", "have UPS batteries past their replacement date"),
    "EOL-001": (
        "runs unsupported software that no longer receives security fixes",
        "run unsupported software that no longer receives security fixes",
    ),
    "EOL-002": (
        "runs software that stops receiving security fixes within a year",
        "run software that stops receiving security fixes within a year",
    ),
    "EOL-003": ("runs on paid extended support", "run on paid extended support"),
    "PATCH-001": ("is missing security updates", "are missing security updates"),
    "PATCH-002": ("has not been patched within the city's policy", "have not been patched within the city's policy"),
    "PATCH-003": (
        "has waited too long for a restart to finish updating",
        "have waited too long for a restart to finish updating",
    ),
    "PATCH-004": ("has automatic updates turned off", "have automatic updates turned off"),
    "SEC-001": (
        "answered with a changed identity key, which can mean an impostor",
        "answered with changed identity keys, which can mean an impostor",
    ),
    "EOL": (
        "runs unsupported software that no longer receives security fixes",
        "run unsupported software that no longer receives security fixes",
    ),
    "VULN": (
        "runs software with flaws being actively exploited by criminals",
        "run software with flaws being actively exploited by criminals",
    ),
    "PATCH": ("is missing security updates", "are missing security updates"),
    "DATA": (
        "has not been checked recently, so we cannot vouch for it",
        "have not been checked recently, so we cannot vouch for them",
    ),
}


def risk_sentence(check_id: str, title: str, n: int) -> str:
    """One plain sentence for a group of findings of one check."""
    phrase = _PLAIN.get(check_id) or _PLAIN.get(check_id.split("-")[0])
    if phrase is None:
        # Lower-case the first letter unless it starts an acronym ("SNMP answers ...").
        what = title[:1].lower() + title[1:] if title[1:2].islower() else (title or check_id)
        phrase = (f"has a weakness: {what}", f"have a weakness: {what}")
    return f"{plural(n, 'device')} {phrase[0] if n == 1 else phrase[1]}."


def _top_risks(city: Any, open_rows: list[dict[str, Any]], limit: int = 5) -> list[Risk]:
    by_check: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in open_rows:
        by_check[r["check_id"]].append(r)
    risks = []
    for check_id, rows in by_check.items():
        worst = max(rows, key=lambda r: SEVERITY_RANK.get(r["severity"], 0))
        cost = sum(r["cost_amount"] or 0.0 for r in rows)
        lines = Counter()
        for r in rows:
            lines[r["budget_line"] or r.get("device_budget_line")] += r["cost_amount"] or 0.0
        risks.append(
            Risk(
                check_id=check_id,
                title=worst["title"] or check_id,
                sentence=risk_sentence(check_id, worst["title"] or check_id, len({r["device_id"] for r in rows})),
                severity=worst["severity"],
                devices=len({r["device_id"] for r in rows}),
                cost=cost,
                cost_kind=" + ".join(sorted({r["cost_kind"] for r in rows if r["cost_kind"] and r["cost_amount"]}))
                or "operating",
                budget_lines=[budget_line_label(city, a) for a, _ in lines.most_common() if a] or [],
                examples=sorted({device_label(r) for r in rows})[:3],
            )
        )
    # Worst severity first (an exploited flaw outranks old PCs), then how many devices, then cost.
    risks.sort(key=lambda k: (-SEVERITY_RANK.get(k.severity, 0), -k.devices, -k.cost, k.check_id))
    risks = [r for r in risks if r.severity != "info"]
    return risks[:limit]


def _score_words(score: float | None, prev: float | None, prev_label: str | None) -> str:
    if score is None:
        return ""
    if prev is None:
        return "This is the first month with a score, so there is no change to report yet."
    delta = round(score - prev)
    if delta == 0:
        return f"The city is neither safer nor less safe than in {prev_label} ({prev:.0f})."
    if delta > 0:
        return f"The city is safer than in {prev_label}, when the score was {prev:.0f}."
    return f"The city is less safe than in {prev_label}, when the score was {prev:.0f}."


def _changes(rows: list[dict[str, Any]]) -> list[Change]:
    rows = sorted(rows, key=lambda r: (-SEVERITY_RANK.get(r["severity"], 0), r["check_id"], device_label(r)))
    return [Change(device=device_label(r), title=r["title"] or r["check_id"], severity=r["severity"]) for r in rows]


def build_monthly(
    city: Any, store: Store, *, as_of: dt.date, month: str | None = None, history: int = 12
) -> MonthlyReport:
    """Build the monthly summary's model for ``month`` (default: the month of ``as_of``)."""
    month = month or as_of.strftime("%Y-%m")
    _, month_last = month_bounds(month)
    as_of = min(as_of, month_last) if month < as_of.strftime("%Y-%m") else as_of
    scans = store.report_scans()
    rep = MonthlyReport(
        city_id=city.id,
        city_name=city.name,
        month=month,
        month_label=month_label(month),
        as_of=as_of.isoformat(),
        has_data=False,
        data_dates=data_dates(),
    )
    scan = report_scan(scans, month, as_of)
    if scan is None:
        before = [s for s in scans if s.as_of[:10] < month + "-01"]
        rep.last_scan_date = before[-1].as_of[:10] if before else None
        rep.headline = f"No scan was run in {rep.month_label}, so this report has no figures for it." + (
            f" The last scan was on {rep.last_scan_date}." if rep.last_scan_date else " No scan has been run yet."
        )
        return rep

    weights = score_weights(getattr(city, "policy", None))
    rep.has_data = True
    rep.scan_date, rep.scan_status = scan.as_of[:10], scan.status
    months = [shift_month(month, -i) for i in range(history - 1, -1, -1)]
    picked = {m: scan if m == month else report_scan(scans, m, as_of) for m in months}
    prev_scan = report_scan(scans, shift_month(month, -1), as_of)
    if prev_scan is None:
        earlier = [s for s in scans if s.id < scan.id and s.as_of[:10] < month + "-01"]
        prev_scan = earlier[-1] if earlier else None
    ids = {s.id for s in picked.values() if s} | ({prev_scan.id} if prev_scan else set())
    freshness = store.inventory_freshness(sorted(ids))
    policy = policy_of(city)
    dweights: dict[int, float] = {}
    for device_id, crit in store.db.execute("select id, criticality from devices where criticality is not null"):
        dweights[int(device_id)] = policy.criticality_weight(json.loads(crit) if crit else [])
    per_device = store.scan_device_measures(sorted(ids), KPI_CHECKS, weights)

    def measures(s: ScanInfo) -> dict[str, Any]:
        m = _measures(s, per_device[s.id], freshness[s.id], dweights)
        managed, unmanaged = store.inventory_completeness(dt.date.fromisoformat(s.as_of[:10]))
        # Without a discovery sweep nothing is known to be missing: the measure is n/a, not 100%.
        m["completeness"] = _pct(managed, managed + unmanaged) if unmanaged or _swept(store) else None
        m["unmanaged"] = unmanaged
        return m

    trend = {m: measures(s) if s else None for m, s in picked.items()}
    now = trend[month]
    assert now is not None
    prev = measures(prev_scan) if prev_scan else None

    # Devices we collected facts from in the report scan (a failed target may still get verdicts).
    rep.devices_checked = int(scan.n_ok)
    rep.devices_total = int(now["devices_known"])
    rep.directory_only, rep.fully_audited, rep.audit_sentence = _audit_split(store, scan.id)
    rep.score = now["score"]
    rep.prev_score = prev["score"] if prev else None
    rep.prev_label = month_label(prev_scan.as_of[:7]) if prev_scan else None
    rep.score_words = _score_words(rep.score, rep.prev_score, rep.prev_label)
    rep.score_trend = [t["score"] if t else None for t in trend.values()]

    open_rows = store.findings_open_at(scan.id)
    rep.top_risks = _top_risks(city, open_rows)
    lines: Counter[tuple[str, str]] = Counter()
    for r in open_rows:
        if r["cost_amount"]:
            account = r["budget_line"] or r.get("device_budget_line")
            known = getattr(city, "budget_lines", {}).get(account)
            kind = known.kind if known else (r["cost_kind"] or "operating")
            lines[(budget_line_label(city, account), kind)] += r["cost_amount"]
    rep.cost_by_line = [(label, kind, amount) for (label, kind), amount in lines.most_common()]
    rep.total_cost = sum(lines.values())
    sev = Counter(r["severity"] for r in open_rows)
    rep.score_why = [f"{plural(sev[s], s + ' finding')} open" for s in ("critical", "high", "medium", "low") if sev[s]]

    targets = _kpi_targets(city)
    labels = [month_label(m)[:3] for m in months]
    for key, label, target, unit, better in KPI_DEFS:
        target = targets.get(key, target)
        actual = now[key]
        amber = AMBER_BAND
        if unit == "":
            amber = max(1.0, rep.devices_total * AMBER_BAND / 100.0 / 2)
        rep.kpis.append(
            Kpi(
                key=key,
                label=label,
                target=target,
                actual=actual,
                unit=unit,
                better=better,
                rag=_rag(actual, target, better, amber),
                trend=[t[key] if t else None for t in trend.values()],
                trend_labels=labels,
            )
        )

    changed = store.findings_changed(prev_scan.id if prev_scan else 0, scan.id)
    rep.first_month = prev_scan is None
    rep.new = _changes(changed["new"])
    rep.resolved = _changes(changed["resolved"])
    rep.new_count, rep.resolved_count = len(rep.new), len(rep.resolved)
    rep.still_open_count = sum(1 for r in open_rows if prev_scan and r["first_scan_id"] <= prev_scan.id)

    rep.unknown_age = int(now["unknown_age"])
    rep.not_checked = [(device_label(r), _reason(r)) for r in store.unreachable_devices(scan.id)]
    parts = []
    if rep.not_checked:
        parts.append(f"we could not check {plural(len(rep.not_checked), 'device')} this month")
    if rep.unknown_age:
        parts.append(f"the age of {plural(rep.unknown_age, 'device')} is unknown")
    if now.get("unmanaged"):
        parts.append(f"{plural(now['unmanaged'], 'device')} found on the city's networks "
                     f"{'is' if now['unmanaged'] == 1 else 'are'} not managed by anyone (see the worklist)")
    if scan.status != "complete":
        parts.append("the last scan of the month did not finish")
    text = "; ".join(parts)
    rep.gaps_sentence = (text[:1].upper() + text[1:] + ".") if parts else _ALL_CHECKED
    rep.headline = _headline(rep)
    from reports.plan import build_plan  # the plan module renders too; import it only when needed

    plan = build_plan(city, store, as_of=as_of)
    rep.plan = [(f"FY{fy}", plan.total.devices[i], plan.total.cost[i]) for i, fy in enumerate(plan.fiscal_years)]
    rep.plan_note = plan.headline
    return rep


def _audit_split(store: Store, scan_id: int) -> tuple[int, int, str]:
    """How many devices of the scan were fully audited and how many judged from the directory only."""
    src = store.audit_sources(scan_id)
    directory, full = src.get("directory", 0), src.get("scan", 0) + src.get("scan+directory", 0)
    if not directory:
        return 0, full, ""
    return directory, full, (
        f"{plural(full, 'device')} {'was' if full == 1 else 'were'} fully audited; "
        f"{plural(directory, 'computer')} {'was' if directory == 1 else 'were'} judged from the directory only "
        "(operating system, age estimate, logon, LAPS and BitLocker escrow; no patch or security settings).")


def _swept(store: Store) -> bool:
    """Has a discovery sweep of this city ever finished?"""
    return "discoveries" in store.db.table_names() and store.db.execute(
        "select 1 from discoveries where status = 'complete' limit 1").fetchone() is not None


def _short_month(label: str | None, current: str) -> str:
    """'September' when the year is the report's own, else 'September 2025'."""
    if not label:
        return "last month"
    return label.split()[0] if label.split()[-1] == current.split()[-1] else label


def _reason(row: dict[str, Any]) -> str:
    kind = (row.get("error_kind") or "").replace("_", " ")
    err = row.get("error") or ""
    return f"{kind}: {err}" if kind and err else (err or kind or "no answer")


def _headline(rep: MonthlyReport) -> str:
    score = f"{rep.score:.0f} out of 100" if rep.score is not None else "not available"
    text = f"{rep.city_name}'s IT risk score is {score}"
    if rep.prev_score is not None and rep.score is not None:
        delta = round(rep.score - rep.prev_score)
        text += (
            ", unchanged since last month"
            if delta == 0
            else f", {'up' if delta > 0 else 'down'} {abs(delta)} point{'s' if abs(delta) != 1 else ''} "
            f"since {_short_month(rep.prev_label, rep.month_label)}"
        )
    return text + "."
