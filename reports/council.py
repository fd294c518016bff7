"""The page a council acts on: measures with targets and owners, doing nothing, the decision.

Built beside the monthly summary's model (``reports.model.build_monthly`` calls
``council_page`` last) from figures the other modules already computed: the scorecard
(``MonthlyReport.kpis``, its quarter-ago and year-ago values), the refresh plan
(``reports.plan``), the do-nothing projection (``reports.projection``) and the cohort of
peer cities (``itaudit.cohort``). Nothing here prices, scores or judges a device.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from itaudit.measures import measures_of
from itaudit.store import Store
from reports.common import KPI_CHECKS, money, plural, policy_of, score_weights


@dataclass
class PerfRow:
    """One measure, performance-report style: why, target, actual (N of M), trend, owner, action."""

    key: str
    label: str
    why: str
    target_text: str
    actual_text: str
    n_of_m: str
    rag: str
    actual: float | None
    better: str
    unit: str
    trend: list[float | None]
    target: float
    quarter_ago: str
    year_ago: str
    owner: str
    action: str
    cohort: str = ""  # "median 92%, city in the top quartile (2nd of 5)" when the cohort allows


@dataclass
class DecisionLine:
    budget_line: str
    kind: str  # capital / operating / ""
    devices: int
    amount: float
    budgeted: float | None
    gap: float | None


@dataclass
class Decision:
    """What the council is asked to approve: this fiscal year's plan items, by budget line."""

    fiscal_year: int
    lines: list[DecisionLine]
    total: float
    devices: int
    budgeted: float | None
    gap: float | None
    alternative: str  # the deferral the plan offers instead, in a sentence ("" when none)
    sentence: str


@dataclass
class CouncilPage:
    performance: list[PerfRow] = field(default_factory=list)
    projection: Any = None  # reports.projection.Projection
    decision: Decision | None = None
    cohort: Any = None  # itaudit.cohort.CohortView


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "%":
        return f"{value:.0f}%"
    return f"{value:,.0f}"


def kpi_counts(store: Store, city: Any, scan: Any) -> dict[str, tuple[int, int]]:
    """Per measure, (devices meeting it, devices it was judged on) for the report scan."""
    rows = store.scan_device_measures([scan.id], KPI_CHECKS, score_weights(policy_of(city)))[scan.id]
    out: dict[str, tuple[int, int]] = {}
    for g, name in enumerate(KPI_CHECKS):
        known = sum(r[3 + 2 * g] for r in rows)
        out[name] = (known - sum(r[4 + 2 * g] for r in rows), known)
    out["exposure"] = (len(rows) - sum(r[2] for r in rows), len(rows))
    out["freshness"] = store.inventory_freshness([scan.id])[scan.id]
    out["uncheckable"] = (int(scan.n_failed), int(scan.n_targets or 0))
    managed, unmanaged = store.inventory_completeness(dt.date.fromisoformat(scan.as_of[:10]))
    out["completeness"] = (managed, managed + unmanaged)
    return out


def performance(city: Any, store: Store, rep: Any) -> list[PerfRow]:
    """The scorecard as a performance report: the score first, then every KPI."""
    from reports.model import AMBER_BAND, _rag, report_scan, shown_value

    specs = measures_of(policy_of(city))
    scan = report_scan(store.report_scans(), rep.month, dt.date.fromisoformat(rep.as_of))
    counts = kpi_counts(store, city, scan) if scan else {}
    score = specs["score"]
    rows = [PerfRow(
        key="score", label=score.label, why=score.why,
        target_text=f"≥ {score.target:.0f}", actual_text=(shown_value(rep.score, score.target, "higher")
                                                         if rep.score is not None else "n/a"),
        n_of_m=f"{plural(rep.devices_checked, 'device')}",
        rag=_rag(rep.score, score.target, "higher", AMBER_BAND), actual=rep.score, better="higher", unit="",
        trend=list(rep.score_trend), target=score.target,
        quarter_ago=_fmt(rep.quarter_ago.get("score"), ""), year_ago=_fmt(rep.year_ago.get("score"), ""),
        owner=score.owner, action=score.action)]
    for k in rep.kpis:
        spec = specs.get(k.key)
        # The scorecard's own counts when it carries them (Kpi.numerator/denominator), else ours.
        n, m = counts.get(k.key, (0, 0))
        if getattr(k, "numerator", None) is not None and getattr(k, "denominator", None) is not None:
            n, m = int(k.numerator), int(k.denominator)
        if k.key == "uncheckable":
            n_of_m = f"{n:,} of {m:,} targets"
        elif k.actual is None:
            n_of_m = "no data"
        else:
            n_of_m = f"{n:,} of {m:,}"
        rows.append(PerfRow(
            key=k.key, label=k.label, why=spec.why if spec else "", target_text=k.target_text,
            actual_text=k.actual_text, n_of_m=n_of_m, rag=k.rag, actual=k.actual, better=k.better, unit=k.unit,
            trend=list(k.trend), target=k.target,
            quarter_ago=_fmt(rep.quarter_ago.get(k.key), k.unit), year_ago=_fmt(rep.year_ago.get(k.key), k.unit),
            owner=spec.owner if spec else "", action=spec.action if spec else ""))
    return rows


def decision(city: Any, plan: Any) -> Decision:
    """This fiscal year's items of the refresh plan, by budget line: what the council approves."""
    fy = plan.fiscal_years[0]
    lines = []
    for row in plan.by_line:
        if not row.cost[0]:
            continue
        budgeted = row.budgeted[0] if row.budgeted is not None else None
        lines.append(DecisionLine(row.label, row.kind, row.devices[0], row.cost[0], budgeted,
                                  (row.gap or [None])[0]))
    total = plan.total.cost[0]
    budgeted = plan.total.budgeted[0] if plan.total.budgeted is not None else None
    gap = (plan.total.gap or [None])[0]
    alt = ""
    d = plan.deferral
    if d is not None and d.esu_year:
        alt = (f"Instead of replacing its {plural(d.devices, 'Windows 10 PC')} ({money(d.replace_total)}), the city "
               f"could buy a year of extended security updates for {money(d.esu_total)} from {d.esu_line}; "
               f"the replacement then moves to FY{fy + 1}.")
    if not total:
        sentence = f"No replacement falls due in FY{fy}: nothing needs approving from the refresh plan this year."
    else:
        sentence = (f"Approve {money(total)} in FY{fy} to replace {plural(plan.total.devices[0], 'device')}"
                    f" from {plural(len(lines), 'budget line')}")
        if budgeted is not None:
            sentence += f"; {money(budgeted)} is budgeted, so {money(gap or 0.0)} is new money"
        sentence += "."
    return Decision(fy, lines, total, plan.total.devices[0], budgeted, gap, alt, sentence)


def council_page(city: Any, store: Store, rep: Any, *, plan: Any, as_of: dt.date) -> CouncilPage:
    """Everything the council page adds to a monthly report that has data."""
    page = CouncilPage()
    if not rep.has_data:
        return page
    from reports.projection import build_projection

    page.performance = performance(city, store, rep)
    page.projection = build_projection(city, store, as_of=as_of, plan=plan)
    page.decision = decision(city, plan)
    try:
        from itaudit.cohort import cohort_view
    except ImportError:  # the cohort module is optional at this layer
        return page
    page.cohort = cohort_view(city, page.performance, as_of=as_of, devices=rep.devices_total)
    for row in page.performance:
        row.cohort = page.cohort.by_measure.get(row.key, "") if page.cohort else ""
    return page
