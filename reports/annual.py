"""The annual report for the budget cycle: the fiscal year's measures month by month, and what
was replaced and what it cost against the plan.

Measures come from the monthly summary's model (``reports.model.build_monthly``: its 12-month
trends), so a month here shows the same figure as that month's summary. Replacements come
first from what the city recorded (``itaudit devices retire --replaced-by --cost --date``, the
store's ``replacements``): the device, what replaced it, the date and the cost paid. Only
devices that stopped appearing in scans during the year without such a record are inferred,
labelled "inferred (device no longer seen)" and priced at the refresh policy's estimate for
their class, not an invoice. Beside each, the plan's amount for that device: its item in the
plan built at the start of the year (``reports.plan.build_plan`` with that as-of date) when it
was planned, else ``rules.replacement_price`` (the rule the plan prices every device with).
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
from reports.common import device_label, fiscal_year_of, fy_start_month, money, money_cents, plural, policy_of
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


RECORDED = "recorded"
INFERRED = "inferred (device no longer seen)"


@dataclass
class Replaced:
    device: str
    kind: str
    department: str
    last_seen: str  # the recorded replacement date, or the day it was last seen
    cost: float | None  # recorded: what the city paid (None: not given); inferred: the policy's estimate
    planned: bool  # in the plan's first fiscal year at the start of the year
    basis: str = INFERRED  # RECORDED or INFERRED
    replaced_by: str = ""
    plan_cost: float = 0.0  # the plan's amount for this device (its item, else rules.replacement_price)


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
    replaced_cost: float = 0.0  # recorded costs plus the estimates of inferred replacements
    recorded: int = 0
    recorded_cost: float = 0.0  # what the city recorded paying, to the cent
    inferred_cost: float = 0.0  # the policy's estimate for replacements inferred from scans
    plan_cost_of_replaced: float = 0.0  # the plan's amounts for the same devices
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

    # What was replaced: first what the city recorded, then devices that left the scans during
    # the year without a record (inferred, priced by the refresh policy).
    from itaudit import rules

    scans = [s for s in store.report_scans() if s.as_of[:10] <= upto.isoformat()]
    latest = scans[-1].id if scans else 0
    plan_start = build_plan(city, store, as_of=start)
    plan_items = {(i.device, i.address): i for i in plan_start.items if i.fiscal_year == fy}
    rep.planned_devices = plan_start.total.devices[0]
    rep.planned_cost = plan_start.total.cost[0]
    rep.budgeted = plan_start.total.budgeted[0] if plan_start.total.budgeted is not None else None

    def plan_cost(d: Any) -> tuple[bool, float]:
        item = plan_items.get((device_label(d), d["address"] or ""))
        if item is not None:
            return True, item.cost
        tags = json.loads(d["criticality"]) if d["criticality"] else []
        price = rules.replacement_price(policy, kind=d["kind"], department=d["department"], tags=tags,
                                        register_cost=d["register_cost"], register_line=d["budget_line"])
        return False, price.amount

    for r in store.replacements(start.isoformat(), upto.isoformat()):
        planned, amount = plan_cost(r)
        rep.replaced.append(Replaced(device_label(r), r["kind"] or "other", r["department"] or "", r["replaced_on"],
                                     r["cost"], planned, RECORDED, r["replaced_by"] or "", amount))
    ever_recorded = {int(r["device_id"]) for r in store.replacements("0001-01-01", "9999-12-31")}
    lo, hi = start.isoformat(), (upto + dt.timedelta(days=1)).isoformat()
    for d in store.devices():
        first, seen = d["first_seen"] or "", d["last_seen"] or ""
        if lo <= first < hi and first[:10] > (scans[0].as_of[:10] if scans else ""):
            rep.new_devices += 1
        if int(d["id"]) in ever_recorded:
            continue  # its replacement is recorded (in this year or another): never inferred
        if d["last_scan_id"] and d["last_scan_id"] < latest and lo <= seen < hi:
            tags = json.loads(d["criticality"]) if d["criticality"] else []
            rule = policy.refresh_for(d["kind"], d["department"], tags=tags)
            planned, amount = plan_cost(d)
            rep.replaced.append(Replaced(device_label(d), d["kind"] or "other", d["department"] or "", seen[:10],
                                         rule.cost, planned, INFERRED, "", amount))
    rep.replaced.sort(key=lambda r: (r.basis != RECORDED, r.last_seen, r.device))
    rep.recorded = sum(1 for r in rep.replaced if r.basis == RECORDED)
    rep.recorded_cost = round(sum(r.cost or 0.0 for r in rep.replaced if r.basis == RECORDED), 2)
    rep.inferred_cost = sum(r.cost or 0.0 for r in rep.replaced if r.basis == INFERRED)
    rep.replaced_cost = rep.recorded_cost + rep.inferred_cost
    rep.plan_cost_of_replaced = sum(r.plan_cost for r in rep.replaced)
    rep.planned_done = sum(1 for r in rep.replaced if r.planned)
    inferred = len(rep.replaced) - rep.recorded
    parts = []
    if rep.recorded:
        parts.append(f"the city recorded {plural(rep.recorded, 'replacement')} "
                     f"costing {money_cents(rep.recorded_cost)}")
    if inferred:
        parts.append(f"{plural(inferred, 'more device')} left service without a record (inferred; an estimated "
                     f"{money(rep.inferred_cost)} to replace)")
    done = "; ".join(parts) if parts else "no device was replaced or left service"
    rep.headline = (
        f"In FY{fy} up to {upto.isoformat()}, {done}, against {plural(rep.planned_devices, 'device')} "
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
