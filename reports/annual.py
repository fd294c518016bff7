"""The annual report for the budget cycle: the fiscal year's measures month by month, and what
was replaced and what it cost against the plan.

Measures come from the monthly summary's model (``reports.model.build_monthly``: its 12-month
trends), so a month here shows the same figure as that month's summary. Replacements are what
the store can see: a device replaced is one that stopped appearing in scans during the year (it
is in no later scan), and a new device is one first seen during the year. What they cost is the
refresh policy's estimate for the class (``Policy.refresh_for``, the plan's price), not the
invoice; the report says so. "Planned" is the plan's first fiscal year as built at the start of
the year (``reports.plan.build_plan`` with that as-of date).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from itaudit.policy import fiscal_year_bounds
from itaudit.store import Store
from reports import export
from reports.common import device_label, fiscal_year_of, fy_start_month, money, plural, policy_of
from reports.model import build_monthly, month_label, shift_month
from reports.render import render

FORMATS = ("html", "pdf", "json")


@dataclass
class MeasureYear:
    key: str
    label: str
    target_text: str
    unit: str
    values: list[float | None]  # one per month of the fiscal year so far
    owner: str = ""


@dataclass
class Replaced:
    device: str
    kind: str
    department: str
    last_seen: str
    cost: float
    planned: bool  # in the plan's first fiscal year at the start of the year


@dataclass
class AnnualReport:
    city_id: str
    city_name: str
    fiscal_year: int
    start: str
    end: str
    as_of: str
    months: list[str] = field(default_factory=list)  # YYYY-MM, the fiscal year's months up to as_of
    month_labels: list[str] = field(default_factory=list)
    measures: list[MeasureYear] = field(default_factory=list)
    replaced: list[Replaced] = field(default_factory=list)
    new_devices: int = 0
    replaced_cost: float = 0.0
    planned_devices: int = 0
    planned_cost: float = 0.0
    planned_done: int = 0
    budgeted: float | None = None
    headline: str = ""
    has_data: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def _month_of(day: dt.date) -> str:
    return day.strftime("%Y-%m")


def build_annual(city: Any, store: Store, *, as_of: dt.date, fiscal_year: int | None = None) -> AnnualReport:
    """The fiscal year containing ``as_of`` (or ``fiscal_year``), up to ``as_of``."""
    from reports.plan import build_plan

    policy = policy_of(city)
    start_month = fy_start_month(policy)
    fy = fiscal_year or fiscal_year_of(as_of, start_month)
    start, end = fiscal_year_bounds(fy, start_month)
    upto = min(end, as_of)
    rep = AnnualReport(city.id, city.name, fy, start.isoformat(), end.isoformat(), as_of.isoformat())
    if upto < start:
        rep.headline = f"FY{fy} has not started yet (it starts on {start.isoformat()})."
        return rep
    last = _month_of(upto)
    monthly: Any
    n = (upto.year * 12 + upto.month) - (start.year * 12 + start.month) + 1
    rep.months = [shift_month(last, -i) for i in range(n - 1, -1, -1)]
    rep.month_labels = [month_label(m)[:3] for m in rep.months]  # 12 months at most: the name is enough
    # The last month of the year so far that has a scan carries the year's trends.
    monthly, shown = None, 0
    for i in range(n - 1, -1, -1):
        monthly = build_monthly(city, store, as_of=upto, month=rep.months[i], history=12)
        if monthly.has_data:
            shown = i + 1
            break
    if monthly is None or not monthly.has_data:
        rep.headline = f"No scan was run in FY{fy} up to {upto.isoformat()}, so this report has no figures."
        return rep
    rep.has_data = True
    pad = [None] * (n - shown)  # months after the last scanned one

    def tail(values: list[float | None]) -> list[float | None]:
        return list(values[12 - shown:]) + pad

    perf = {r.key: r for r in (monthly.council.performance if monthly.council else [])}
    score = perf.get("score")
    rep.measures.append(MeasureYear("score", "IT risk score", score.target_text if score else "", "",
                                    tail(monthly.score_trend), score.owner if score else ""))
    for k in monthly.kpis:
        rep.measures.append(MeasureYear(k.key, k.label, k.target_text, k.unit, tail(k.trend),
                                        perf[k.key].owner if k.key in perf else ""))

    # What was replaced: devices that left the scans during the year, priced by the refresh policy.
    scans = [s for s in store.report_scans() if s.as_of[:10] <= upto.isoformat()]
    latest = scans[-1].id if scans else 0
    plan_start = build_plan(city, store, as_of=start)
    planned = {(i.device, i.address) for i in plan_start.items if i.fiscal_year == fy}
    rep.planned_devices = plan_start.total.devices[0]
    rep.planned_cost = plan_start.total.cost[0]
    rep.budgeted = plan_start.total.budgeted[0] if plan_start.total.budgeted is not None else None
    lo, hi = start.isoformat(), (upto + dt.timedelta(days=1)).isoformat()
    for d in store.devices():
        first, seen = d["first_seen"] or "", d["last_seen"] or ""
        if lo <= first < hi and first[:10] > (scans[0].as_of[:10] if scans else ""):
            rep.new_devices += 1
        if d["last_scan_id"] and d["last_scan_id"] < latest and lo <= seen < hi:
            tags = json.loads(d["criticality"]) if d["criticality"] else []
            rule = policy.refresh_for(d["kind"], d["department"], tags=tags)
            rep.replaced.append(Replaced(device_label(d), d["kind"] or "other", d["department"] or "", seen[:10],
                                         rule.cost, (device_label(d), d["address"] or "") in planned))
    rep.replaced.sort(key=lambda r: (r.last_seen, r.device))
    rep.replaced_cost = sum(r.cost for r in rep.replaced)
    rep.planned_done = sum(1 for r in rep.replaced if r.planned)
    rep.headline = (
        f"In FY{fy} up to {upto.isoformat()}, {plural(len(rep.replaced), 'device')} left service "
        f"(an estimated {money(rep.replaced_cost)} to replace), against {plural(rep.planned_devices, 'device')} "
        f"({money(rep.planned_cost)}) the plan put in FY{fy} at the start of the year; "
        f"{rep.planned_done:,} of those planned are done."
    )
    return rep


def write_annual(city: Any, store: Store, *, as_of: dt.date, out_dir: Path,
                 formats: tuple[str, ...] = ("html",)) -> list[Path]:
    """Write the annual report (HTML always; PDF and JSON on request); return the paths."""
    export.check_formats(formats, FORMATS)
    rep = build_annual(city, store, as_of=as_of)
    stem = Path(out_dir) / f"{city.id}-annual-FY{rep.fiscal_year}"
    return export.write_html_report(stem, render("annual.html.j2", a=rep), rep.to_json, formats)
