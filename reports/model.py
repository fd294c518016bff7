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
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from itaudit import rules, score
from itaudit.config import CityConfig
from itaudit.store import ScanInfo, Store
from reports.common import (
    KPI_CHECKS,
    SEVERITY_RANK,
    budget_line_label,
    data_dates,
    data_warnings,
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
    # For open data (reports/opendata.py): each trend month and the counts behind its value.
    trend_months: list[str] = field(default_factory=list)  # YYYY-MM of each trend value
    trend_counts: list[tuple[float | None, float | None] | None] = field(default_factory=list)
    trend_rag: list[str] = field(default_factory=list)
    count: int | None = None  # N of ...
    of: int | None = None  # ... M devices: the denominator, the same wherever the KPI appears

    @property
    def numerator(self) -> float | None:
        """Open data's name for ``count``."""
        return self.count

    @property
    def denominator(self) -> float | None:
        """Open data's name for ``of``."""
        return self.of

    @property
    def actual_text(self) -> str:
        if self.actual is None:
            return "n/a"
        return shown_value(self.actual, self.target, self.better) + self.unit

    @property
    def count_text(self) -> str:
        """ "3 of 25 devices" (empty for a count measure or without a denominator)."""
        if self.count is None or self.of is None or not self.unit:
            return ""
        return f"{self.count:,} of {plural(self.of, 'device')}"

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
    """One check's open findings in the city's words, with what fixing them costs.

    Each device's remedy (``itaudit.rules.remedies``) is counted under one risk only: the one
    whose finding priced it. A replacement counts under the finding that priced it and covers
    the device's other fixes this year (``covered``), so no dollar appears under two risks;
    the risks' ``cost`` adds up to the summary's total for the fiscal year, their
    ``later_cost`` to what is due in later years."""

    check_id: str
    title: str
    sentence: str
    severity: str
    devices: int
    cost: float  # this fiscal year
    cost_kind: str
    budget_lines: list[str]
    examples: list[str]
    later_cost: float = 0.0  # in later fiscal years (``later_years``)
    later_years: list[str] = field(default_factory=list)
    covered: int = 0  # devices whose fix for this risk is part of their replacement, priced under another risk


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
    # Of the devices checked: judged from the directory alone, or fully audited by a scan.
    directory_only: int = 0
    fully_audited: int = 0
    audit_sentence: str = ""
    score: float | None = None
    prev_score: float | None = None
    prev_label: str | None = None
    headline: str = ""
    score_words: str = ""
    score_trend: list[float | None] = field(default_factory=list)
    score_why: list[str] = field(default_factory=list)  # itaudit.score's "why this score", biggest first
    score_devices: int = 0  # devices in the score's denominator
    score_carried: int = 0  # of them: not checked this month, scored on their last known findings
    score_left_out: int = 0  # never checked: left out of the score
    score_coverage: str = ""
    top_risks: list[Risk] = field(default_factory=list)
    # What fixing the open findings costs, each device's remedy counted once (itaudit.rules.remedies):
    # due this fiscal year ("now"), and items the checks place in later fiscal years.
    fiscal_year: int = 0
    total_cost: float = 0.0  # now
    capital_cost: float = 0.0  # now, capital
    operating_cost: float = 0.0  # now, operating
    cost_by_line: list[tuple[str, str, float]] = field(default_factory=list)  # now: (line, kind, amount)
    later_cost: float = 0.0
    later_by_year: list[tuple[str, float, float]] = field(default_factory=list)  # (FY, capital, operating)
    replaced_devices: int = 0  # devices whose replacement this year subsumes their other fixes
    replacement_cost: float = 0.0  # of total_cost: those replacements (the rest is staff time, upgrades, services)
    # Of this year's overdue replacements, what the capital plan spreads into later fiscal years
    # (the city's ``backlog_spread_years``), and over which years ("FY2028" or "FY2028–FY2029").
    backlog_later: float = 0.0
    backlog_years: str = ""
    kpis: list[Kpi] = field(default_factory=list)
    new: list[Change] = field(default_factory=list)
    resolved: list[Change] = field(default_factory=list)
    new_count: int = 0
    resolved_count: int = 0
    # Closed only because a worse finding of the same kind replaced it (support ending -> ended):
    # not "fixed".
    worse: list[Change] = field(default_factory=list)
    worse_count: int = 0
    still_open_count: int = 0
    first_month: bool = False
    unknown_age: int = 0
    not_checked: list[tuple[str, str]] = field(default_factory=list)  # (device, reason)
    returned: list[tuple[str, str]] = field(default_factory=list)  # retired devices seen again: (device, note)
    gaps_sentence: str = ""
    data_dates: dict[str, str] = field(default_factory=dict)
    data_warnings: list[str] = field(default_factory=list)  # exploited-vulnerability data too old
    plan: list[tuple[str, int, float]] = field(default_factory=list)  # (FY, devices due, cost)
    plan_note: str = ""
    # The same measures (score and KPI keys) a quarter and a year before the report month.
    quarter_ago: dict[str, float | None] = field(default_factory=dict)
    year_ago: dict[str, float | None] = field(default_factory=dict)
    council: Any = None  # reports.council.CouncilPage: projection, performance table, cohort, decision

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


def _kpi_targets(city: CityConfig) -> dict[str, float]:
    from itaudit.measures import measures_of  # defaults, [policy.kpi_targets], then [policy.measures]

    return {k: m.target for k, m in measures_of(policy_of(city)).items()}


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
    scored: dict[str, Any],
) -> dict[str, Any]:
    """One month's scorecard figures: the check groups' per-device rows of its report scan, the
    inventory freshness, and the score and exposure from ``_score_scan`` (the same devices)."""
    m: dict[str, int] = {}
    for g, name in enumerate(KPI_CHECKS):
        m[f"{name}_known"] = sum(r[3 + 2 * g] for r in rows)
        m[f"{name}_fail"] = sum(r[4 + 2 * g] for r in rows)
    fresh, known = freshness
    n = scored["devices"]
    out: dict[str, Any] = {
        "score": scored["score"],
        "breakdown": scored["breakdown"],
        "carried": scored["carried"],
        "left_out": scored["left_out"],
        "exposure": _pct(n - scored["exposed"], n),
        "freshness": _pct(fresh, known),
        "uncheckable": float(scored["unchecked"]),
        "checked": len(rows),
        "checked_ok": scored["checked_ok"],
        "devices_known": known,
        "counts": {
            "exposure": (n - scored["exposed"], n),
            "freshness": (fresh, known),
            "uncheckable": (float(scored["unchecked"]), None),
        },
    }
    for name in KPI_CHECKS:
        ok, den = m[f"{name}_known"] - m[f"{name}_fail"], m[f"{name}_known"]
        out[name] = _pct(ok, den)
        out["counts"][name] = (ok, den)
    return out


def _score_scan(policy: Any, verdicts: list[tuple[Any, ...]], devices: list[dict[str, Any]],
                memo: dict[Any, Any] | None = None) -> dict[str, Any]:
    """The city score of one scan with ``itaudit.score`` (the one implementation).

    ``verdicts``: the scan's open findings, ``Store.open_verdicts_by_scan``'s rows. A device
    checked in the scan is scored on its open findings. A device that could not be checked
    but was checked before carries its last known findings (still open: only a successful check
    resolves one); a device never checked leaves the denominator. Exposure (devices with an open
    critical finding) uses the same devices.

    ``score.device_score`` is a pure function of a device's open findings and criticality: it
    runs once per distinct pair (``memo``, shared by the months of one report), and devices with
    the same findings and tags share its result. The device's name is left out of the
    breakdown: the city score's items count devices, they do not name them."""
    grouped: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    critical: set[int] = set()
    for device_id, check_id, severity, title in verdicts:
        grouped[int(device_id)].append((check_id, severity, title))
        if severity == "critical":
            critical.add(int(device_id))
    open_by_device = {d: tuple(found) for d, found in grouped.items()}
    weights = score_weights()
    memo = {} if memo is None else memo
    breakdowns = []
    carried = left_out = exposed = 0
    for d in devices:
        device_id = int(d["device_id"])
        if not d["ok"] and not d["checked_before"]:
            left_out += 1
            continue
        carried += not d["ok"]
        found = open_by_device.get(device_id, ())
        exposed += device_id in critical
        key = (found, tuple(d["criticality"]) if found else ())
        got = memo.get(key)
        if got is None:
            tags = key[1]
            got = memo[key] = score.device_score(
                [{"check_id": c, "severity": s, "title": t, "status": "fail"} for c, s, t in found], tags,
                severity_points=weights, weight=policy.criticality_weight(tags) if found else 1.0)
        breakdowns.append(got)
    city = score.city_score(breakdowns) if breakdowns else None
    return {
        "score": city.score if city else None,
        "breakdown": city,
        "devices": len(breakdowns),
        "carried": carried,
        "left_out": left_out,
        "exposed": exposed,
        "checked_ok": sum(1 for d in devices if d["ok"]),
        "unchecked": sum(1 for d in devices if not d["ok"]),
    }


def score_verdicts(policy: Any, verdicts: dict[int, list[dict[str, Any]]],
                   criticality: dict[int, tuple[str, ...]]) -> dict[str, Any]:
    """The city score of a set of per-device verdicts (``reports/projection.py``: the stored
    facts judged at a later date) with ``itaudit.score``, in ``_score_scan``'s shape. Every
    device was judged, so none is carried or left out."""
    weights = score_weights()
    breakdowns = [score.device_score([v for v in vs if v["status"] == "fail"], criticality.get(d, ()),
                                     severity_points=weights, weight=policy.criticality_weight(criticality.get(d, ())))
                  for d, vs in verdicts.items()]
    city = score.city_score(breakdowns) if breakdowns else None
    exposed = sum(1 for vs in verdicts.values() if any(v["status"] == "fail" and v["severity"] == "critical"
                                                        for v in vs))
    return {"score": city.score if city else None, "breakdown": city, "devices": len(breakdowns), "carried": 0,
            "left_out": 0, "exposed": exposed, "checked_ok": len(breakdowns), "unchecked": 0}


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
    # Free (Debian LTS) or paid (Windows ESU, Ubuntu Pro): the finding says which.
    "EOL-003": (
        "runs on extended support, which only buys time before fixes stop for good",
        "run on extended support, which only buys time before fixes stop for good",
    ),
    "DATA-001": (
        "has not been checked successfully in 30 days, so we cannot vouch for it",
        "have not been checked successfully in 30 days, so we cannot vouch for them",
    ),
    "DATA-002": (
        "could not be checked several times in a row, so we cannot vouch for it",
        "could not be checked several times in a row, so we cannot vouch for them",
    ),
    "DATA-003": (
        "was checked, but key facts (such as its age or software version) are missing, so some checks "
        "could not judge it",
        "were checked, but key facts (such as their age or software version) are missing, so some checks "
        "could not judge them",
    ),
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
    # VULN-001 is confirmed by version data; VULN-002 is not, and must never read as a fact.
    "VULN-001": (
        "runs a software version with flaws that criminals are actively exploiting",
        "run software versions with flaws that criminals are actively exploiting",
    ),
    "VULN-002": (
        "may be affected by flaws that criminals exploit — IT to confirm",
        "may be affected by flaws that criminals exploit — IT to confirm",
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


def all_risks(city: CityConfig, open_rows: list[dict[str, Any]], remedies: list[rules.Remedy],
              current_fy: int) -> list[Risk]:
    """Every check with open findings as a risk, worst first; each device's remedy under one risk
    (the summary shows the first few that are not merely informational)."""
    by_check: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in open_rows:
        by_check[r["check_id"]].append(r)
    priced: dict[str, list[rules.Remedy]] = defaultdict(list)
    for rem in remedies:
        priced[rem.check_ids[0]].append(rem)
    risks = []
    for check_id, rows in by_check.items():
        worst = max(rows, key=lambda r: SEVERITY_RANK.get(r["severity"], 0))
        mine = priced.get(check_id, [])
        counted = {(rem.device_id, rem.check_ids[0]) for rem in mine}
        lines: dict[str | None, float] = defaultdict(float)
        for rem in mine:
            lines[rem.budget_line] += rem.amount
        devices = {r["device_id"] for r in rows}
        risks.append(
            Risk(
                check_id=check_id,
                title=worst["title"] or check_id,
                sentence=risk_sentence(check_id, worst["title"] or check_id, len(devices)),
                severity=worst["severity"],
                devices=len(devices),
                cost=sum(rem.amount for rem in mine if rem.fiscal_year == current_fy),
                cost_kind=" + ".join(sorted({rem.kind for rem in mine if rem.amount})) or "operating",
                budget_lines=[budget_line_label(city, a) for a, _ in sorted(lines.items(), key=lambda x: -x[1]) if a],
                examples=sorted({device_label(r) for r in rows})[:3],
                later_cost=sum(rem.amount for rem in mine if rem.fiscal_year > current_fy),
                later_years=sorted({f"FY{rem.fiscal_year}" for rem in mine if rem.fiscal_year > current_fy}),
                covered=sum(1 for r in rows if r["cost_amount"] and (int(r["device_id"]), check_id) not in counted),
            )
        )
    # Worst severity first (an exploited flaw outranks old PCs), then how many devices, then cost.
    risks.sort(key=lambda k: (-SEVERITY_RANK.get(k.severity, 0), -k.devices, -k.cost, k.check_id))
    return risks


def _top_risks(city: CityConfig, open_rows: list[dict[str, Any]], remedies: list[rules.Remedy], current_fy: int,
               limit: int = 5) -> list[Risk]:
    return [r for r in all_risks(city, open_rows, remedies, current_fy) if r.severity != "info"][:limit]


def _fix_costs(rep: MonthlyReport, city: CityConfig, rem: list[rules.Remedy], current_fy: int) -> None:
    """Fill the cost-to-fix figures from the devices' remedies, each counted once."""
    now = [r for r in rem if r.fiscal_year == current_fy]
    lines: dict[tuple[str, str], float] = defaultdict(float)
    for r in now:
        lines[(budget_line_label(city, r.budget_line), r.kind)] += r.amount
    rep.fiscal_year = current_fy
    rep.cost_by_line = sorted(((label, kind, amount) for (label, kind), amount in lines.items()),
                              key=lambda x: (-x[2], x[0], x[1]))
    rep.total_cost = sum(r.amount for r in now)
    rep.capital_cost = sum(r.amount for r in now if r.capital)
    rep.operating_cost = rep.total_cost - rep.capital_cost
    later: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in rem:
        if r.fiscal_year > current_fy:
            later[r.fiscal_year][0 if r.capital else 1] += r.amount
    rep.later_by_year = [(f"FY{fy}", c, o) for fy, (c, o) in sorted(later.items())]
    rep.later_cost = sum(c + o for _, c, o in rep.later_by_year)
    rep.replaced_devices = len({r.device_id for r in now if r.replacement})
    rep.replacement_cost = sum(r.amount for r in now if r.replacement)


def _coverage_sentence(rep: MonthlyReport) -> str:
    """Which devices the score covers, in words (a device that could not be checked never counts as clean)."""
    text = f"The score covers {plural(rep.score_devices, 'device')}"
    if rep.score_carried:
        text += (
            f", including {rep.score_carried:,} we could not check this month: "
            f"{'it counts' if rep.score_carried == 1 else 'they count'} with the findings last seen on "
            f"{'it' if rep.score_carried == 1 else 'them'} (marked as last known in the worklist)"
        )
    if rep.score_left_out:
        text += (
            f"; {plural(rep.score_left_out, 'device')} never checked successfully "
            f"{'is' if rep.score_left_out == 1 else 'are'} left out"
        )
    return text + "."


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


def _fixed_or_worse(
    resolved: list[dict[str, Any]], open_rows: list[dict[str, Any]], after_scan_id: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split closed findings into fixed ones and ones replaced by a worse finding: the device has a
    finding of the same family (EOL, HW, PATCH...) opened since, at least as severe."""
    opened: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in open_rows:
        if r["first_scan_id"] > after_scan_id:
            opened[int(r["device_id"])].append(r)
    fixed: list[dict[str, Any]] = []
    worse: list[dict[str, Any]] = []
    for r in resolved:
        family = r["check_id"].split("-")[0]
        successor = [
            o for o in opened.get(int(r["device_id"]), [])
            if o["check_id"] != r["check_id"] and o["check_id"].split("-")[0] == family
            and rules.severity_rank(o["severity"]) >= rules.severity_rank(r["severity"])
        ]
        (worse if successor else fixed).append(r)
    return fixed, worse


def _changes(rows: list[dict[str, Any]]) -> list[Change]:
    rows = sorted(rows, key=lambda r: (-SEVERITY_RANK.get(r["severity"], 0), r["check_id"], device_label(r)))
    return [Change(device=device_label(r), title=r["title"] or r["check_id"], severity=r["severity"]) for r in rows]


def build_monthly(
    city: CityConfig, store: Store, *, as_of: dt.date, month: str | None = None, history: int = 12,
    council: bool = True,
) -> MonthlyReport:
    """Build the monthly summary's model for ``month`` (default: the month of ``as_of``).

    ``council=False`` leaves out the council page (``rep.council`` stays None: its projection
    re-judges every device's facts) for a caller that does not show it, the status board;
    every other figure is built the same way."""
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
        data_warnings=data_warnings(city, as_of),
    )
    scan = report_scan(scans, month, as_of)
    if scan is None:
        before = [s for s in scans if s.as_of[:10] < month + "-01"]
        rep.last_scan_date = before[-1].as_of[:10] if before else None
        first = min((s.as_of[:10] for s in scans), default=None)
        if rep.last_scan_date:
            since = f" The last scan was on {rep.last_scan_date}."
        elif first:  # scans exist, all after this month: never "no scan has been run"
            since = f" The first scan was on {first}, after this month."
        else:
            since = " No scan has been run yet."
        rep.headline = f"No scan was run in {rep.month_label}, so this report has no figures for it." + since
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
    ago = {n: report_scan(scans, shift_month(month, -n), as_of) for n in (3, 12)}
    ids = {s.id for s in picked.values() if s} | ({prev_scan.id} if prev_scan else set())
    ids |= {s.id for s in ago.values() if s}
    freshness = store.inventory_freshness(sorted(ids))
    policy = policy_of(city)
    per_device = store.scan_device_measures(sorted(ids), KPI_CHECKS, weights)
    scan_devices = store.scan_devices(sorted(ids))
    verdicts = store.open_verdicts_by_scan(sorted(ids))
    scored: dict[Any, Any] = {}  # device_score results, shared by the months
    measured: dict[int, dict[str, Any]] = {}  # a scan's figures, once (the previous month is also in the trend)

    def measures(s: ScanInfo) -> dict[str, Any]:
        if s.id in measured:
            return measured[s.id]
        m = _measures(s, per_device[s.id], freshness[s.id],
                      _score_scan(policy, verdicts[s.id], scan_devices[s.id], scored))
        managed, unmanaged = store.inventory_completeness(dt.date.fromisoformat(s.as_of[:10]))
        # Without a discovery sweep nothing is known to be missing: the measure is n/a, not 100%.
        m["completeness"] = _pct(managed, managed + unmanaged) if unmanaged or _swept(store) else None
        m["counts"]["completeness"] = (managed, managed + unmanaged) if m["completeness"] is not None else (None, None)
        m["unmanaged"] = unmanaged
        measured[s.id] = m
        return m

    trend = {m: measures(s) if s else None for m, s in picked.items()}
    now = trend[month]
    assert now is not None
    prev = measures(prev_scan) if prev_scan else None
    for n, attr in ((3, "quarter_ago"), (12, "year_ago")):
        past = ago[n]
        then = measures(past) if past else None
        setattr(rep, attr, {k: then[k] for k in ("score", *(d[0] for d in KPI_DEFS))} if then else {})

    # Devices we collected facts from in the report scan (a failed target may still get verdicts).
    rep.devices_checked = int(now["checked_ok"])
    rep.devices_total = int(now["devices_known"])
    rep.directory_only, rep.fully_audited, rep.audit_sentence = _audit_split(store, scan.id)
    rep.score = now["score"]
    rep.prev_score = prev["score"] if prev else None
    rep.prev_label = month_label(prev_scan.as_of[:7]) if prev_scan else None
    rep.score_words = _score_words(rep.score, rep.prev_score, rep.prev_label)
    rep.score_trend = [t["score"] if t else None for t in trend.values()]

    open_rows = store.findings_open_at(scan.id)
    current_fy = policy.fiscal_year(as_of)
    remedies = rules.remedies(open_rows, current_fy)
    rep.top_risks = _top_risks(city, open_rows, remedies, current_fy)
    _fix_costs(rep, city, remedies, current_fy)
    breakdown = now["breakdown"]
    rep.score_why = breakdown.why(limit=5) if breakdown else []
    rep.score_devices = breakdown.devices if breakdown else 0
    rep.score_carried, rep.score_left_out = int(now["carried"]), int(now["left_out"])
    rep.score_coverage = _coverage_sentence(rep)

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
                trend_months=months,
                trend_counts=[t["counts"][key] if t else None for t in trend.values()],
                trend_rag=[_rag(t[key], target, better, amber) if t else "none" for t in trend.values()],
                count=now["counts"][key][0] if key in now["counts"] else None,
                of=now["counts"][key][1] if key in now["counts"] else None,
            )
        )

    changed = store.findings_changed(prev_scan.id if prev_scan else 0, scan.id)
    rep.first_month = prev_scan is None
    rep.new = _changes(changed["new"])
    fixed, worse = _fixed_or_worse(changed["resolved"], open_rows, prev_scan.id if prev_scan else 0)
    rep.resolved, rep.worse = _changes(fixed), _changes(worse)
    rep.new_count, rep.resolved_count, rep.worse_count = len(rep.new), len(rep.resolved), len(rep.worse)
    rep.still_open_count = sum(1 for r in open_rows if prev_scan and r["first_scan_id"] <= prev_scan.id)

    from reports.plan import build_plan  # the plan module renders too; import it only when needed

    plan = build_plan(city, store, as_of=as_of)
    # One count of devices of unknown age: the plan's (devices it cannot place), never a second rule.
    rep.unknown_age = len(plan.unknown_age)
    rep.not_checked = [(device_label(r), _reason(r)) for r in store.unreachable_devices(scan.id)]
    parts = []
    if rep.not_checked:
        parts.append(f"we could not check {plural(len(rep.not_checked), 'device')} this month")
    if rep.unknown_age:
        parts.append(f"the age of {plural(rep.unknown_age, 'device')} is unknown, so the refresh plan "
                     f"cannot place {'it' if rep.unknown_age == 1 else 'them'}")
    if now.get("unmanaged"):
        parts.append(f"{plural(now['unmanaged'], 'device')} found on the city's networks "
                     f"{'is' if now['unmanaged'] == 1 else 'are'} not managed by anyone (see the worklist)")
    if scan.status != "complete":
        parts.append("the last scan of the month did not finish")
    first_day, _ = month_bounds(month)
    rep.returned = [(device_label(r), r["retired_note"] or "") for r in store.returned_devices(first_day.isoformat())]
    if rep.returned:
        names = ", ".join(n for n, _ in rep.returned[:5])
        parts.append(f"{plural(len(rep.returned), 'retired device')} answered again and "
                     f"{'is' if len(rep.returned) == 1 else 'are'} back in the counts ({names})")
    text = "; ".join(parts)
    rep.gaps_sentence = (text[:1].upper() + text[1:] + ".") if parts else _ALL_CHECKED
    rep.headline = _headline(rep)
    rep.plan = [(f"FY{fy}", plan.total.devices[i], plan.total.cost[i]) for i, fy in enumerate(plan.fiscal_years)]
    spread = [i for i in plan.items if i.reason.startswith("overdue") and i.fiscal_year > plan.fiscal_years[0]]
    if spread:
        rep.backlog_later = sum(i.cost for i in spread)
        last = max(i.fiscal_year for i in spread)
        rep.backlog_years = f"FY{last}" if last == plan.fiscal_years[1] else f"FY{plan.fiscal_years[1]}–FY{last}"
    rep.plan_note = plan.headline
    if council:
        from reports.council import council_page

        rep.council = council_page(city, store, rep, plan=plan, as_of=as_of)
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
    return store.has_swept()


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
