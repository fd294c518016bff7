"""What happens if the city does nothing: the next 12 and 24 months, beside "fund the plan".

The projection re-runs the city's own checks (``itaudit.checking.run_checks``, the same pure
functions a scan runs) on the facts stored by the latest scan, at later as-of dates. Only the
checks whose verdict moves with the calendar alone are re-run: the hardware family (refresh
age, Windows 11 eligibility, UPS batteries) and the lifecycle family (end of security
support). Every other verdict (patching, exposure, exploited flaws, configuration) is carried
as it stands today: "do nothing" means no replacements and no upgrades are bought, not that
staff stop patching. The score and the scorecard measures at each date are computed from
those verdicts by the monthly report's own rules (``reports.model._measures``), so the
projection's "today" equals the scorecard's figure for the same scan.

What deferring costs: devices kept running past their end of support need paid extended
support where the vendor sells it (Windows 10 PCs: Extended Security Updates whose price
doubles each year; Windows Server and SQL Server ESU, RHEL ELS, Ubuntu Pro), priced by
``itaudit.rules.deferral_price`` over ``itaudit/data/extended_support.json`` (the plan and the
budget request use the same function). Where no public price exists the projection says so
("no public price: ask the vendor") and adds nothing to the totals. Risk carried has no dollar
figure: it is the devices past their dates, the findings and the score below. The "fund it"
path is the refresh plan's own figures.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from itaudit import rules
from itaudit.checking import CheckContext, DeviceRecord, run_checks
from itaudit.knowledge import windows_build
from itaudit.model import DeviceFacts, Status
from itaudit.store import ScanInfo, Store
from reports.common import (
    ESU_START,
    KPI_CHECKS,
    WINDOWS10_ESU,
    budget_line_label,
    device_label,
    money,
    parse_day,
    plural,
    policy_of,
    score_weights,
)

# Check families whose verdict changes with the as-of date alone (no new facts needed).
PROJECTED_FAMILIES = ("HW", "EOL")
HORIZONS = (12, 24)
# The measures a projection can move (the others need new scans: freshness, uncheckable, completeness).
PROJECTED_MEASURES = ("score", "refresh", "supported", "patched", "exposure")
# What crossing a check means, in the city's words.
CROSSING_WORDS = {
    "HW-001": "passes its refresh age",
    "HW-004": "cannot run a supported operating system",
    "HW-005": "UPS battery falls due",
    "EOL-001": "software stops receiving security fixes",
}
ASSUMPTION = (
    "Doing nothing means buying no replacements, upgrades or extended support; patching and "
    "other fixes are assumed to carry on as today."
)


@dataclass
class Crossing:
    """One device that crosses a line (refresh age, end of support) inside the horizon."""

    device: str
    kind: str
    department: str
    check_id: str
    what: str
    by_months: int  # 12 or 24: the first horizon at which it fails
    cost: float  # the check's own cost estimate (replacement or upgrade)
    budget_line: str


@dataclass
class Point:
    """The city as it would stand at one date if nothing were done."""

    months: int
    date: str
    score: float | None
    measures: dict[str, float | None]
    counts: dict[str, tuple[int, int]]  # measure -> (failing devices, devices judged)
    unsupported: int  # devices on software that no longer receives security fixes
    past_refresh: int  # devices past their refresh age


@dataclass
class EsuYear:
    label: str  # "next 12 months"
    devices: int
    price: float  # per device; 0 when none can be bought any more
    total: float
    available: bool


@dataclass
class OfferYear:
    """One extended-support offer for one period of the projection (``rules.deferral_price``)."""

    offer: str
    name: str
    unit: str
    label: str  # "next 12 months"
    months: int  # the horizon the period ends at (12 or 24)
    devices: int
    price: float | None  # per unit; None: not sold any more, or no public price
    total: float | None  # None when the price is unknown
    available: bool
    source: str
    words: str


@dataclass
class Projection:
    as_of: str
    scan_date: str | None
    has_data: bool
    points: list[Point] = field(default_factory=list)
    crossings: list[Crossing] = field(default_factory=list)
    crossing_counts: dict[int, dict[str, int]] = field(default_factory=dict)  # months -> check -> devices
    crossing_cost: dict[int, float] = field(default_factory=dict)  # months -> cost of what crosses by then
    esu: list[EsuYear] = field(default_factory=list)  # Windows 10 PCs (the plan's deferral box)
    offers: list[OfferYear] = field(default_factory=list)  # every offer the city's devices meet, per period
    unpriced: list[str] = field(default_factory=list)  # offers the city meets with no public price
    esu_line: str = ""
    deferral_cost: dict[int, float] = field(default_factory=dict)  # months -> priced extended support by then
    fund_it: list[tuple[str, int, float]] = field(default_factory=list)  # (FY, devices, cost) of the plan
    sentences: list[str] = field(default_factory=list)  # two sentences for the monthly summary
    assumption: str = ASSUMPTION
    not_projected: int = 0  # devices with no stored facts (could not be checked): carried unchanged

    def point(self, months: int) -> Point | None:
        """The projection at ``months`` ahead (0 = today)."""
        return next((p for p in self.points if p.months == months), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved ``months`` later (the 31st becomes the month's last day)."""
    import calendar

    idx = day.year * 12 + day.month - 1 + months
    year, month = idx // 12, idx % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def projected_specs() -> list[Any]:
    """The registered checks the projection re-runs (hardware and lifecycle families)."""
    from itaudit.plugins import load_checks

    return sorted((s for s in load_checks().values() if s.family in PROJECTED_FAMILIES), key=lambda s: s.id)


def _latest_scan(store: Store, as_of: dt.date) -> ScanInfo | None:
    scans = [s for s in store.report_scans() if s.as_of[:10] <= as_of.isoformat()]
    complete = [s for s in scans if s.status == "complete"]
    pick = complete or scans
    return pick[-1] if pick else None


def _record(row: dict[str, Any], tags: list[str]) -> DeviceRecord:
    """What the checks know about a stored device beyond its facts (as ``Store.device_record``)."""
    return DeviceRecord(
        id=row["id"],
        kind=row["kind"],
        department=row["department"],
        criticality=json.loads(row["criticality"]) if row["criticality"] else [],
        purchase_date=parse_day(row["purchase_date"]),
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        budget_line=row["budget_line"],
        tags=tags,
    )


def _target_tags(city: Any) -> dict[str, list[str]]:
    """Config tags by address ("internet-facing", "core", "rugged"): the store does not keep them."""
    out: dict[str, list[str]] = {}
    for t in getattr(city, "targets", None) or []:
        address = getattr(t, "address", None)
        if address:
            out[str(address)] = list(getattr(t, "tags", []) or [])
    return out


def project_verdicts(
    city: Any, store: Store, scan: ScanInfo, dates: list[dt.date], knowledge: Any = None
) -> tuple[dict[dt.date, dict[int, list[dict[str, Any]]]], dict[int, DeviceFacts], dict[int, dict[str, Any]]]:
    """Per date, per device of ``scan``: its verdicts (check_id, status, severity, cost, line).

    At the scan's own date the stored verdicts are used (what the scorecard shows). At later
    dates, verdicts of checks outside the projected families are carried unchanged and the
    projected families are re-run on the facts that scan stored; where a re-run cannot judge
    (``unknown``: facts or lifecycle data it lacks), the scan's verdict is kept.
    Returns (verdicts, the facts each device had in that scan, device rows by id).
    """
    if knowledge is None:
        from itaudit.knowledge import load_preferred

        knowledge = load_preferred()[0]
    policy = policy_of(city)
    specs = projected_specs()
    projected_ids = {s.id for s in specs}
    stored: dict[int, list[dict[str, Any]]] = {}
    projected_stored: dict[int, list[dict[str, Any]]] = {}
    scan_day = dt.date.fromisoformat(scan.as_of[:10])
    costs = {(int(f["device_id"]), f["check_id"]): f for f in store.findings_open_at(scan.id)}
    for r in store.check_results(scan.id):
        key = (int(r["device_id"]), r["check_id"])
        cost = costs.get(key)
        verdict = {"check_id": r["check_id"], "status": r["status"], "severity": r["severity"],
                   "cost": float(cost["cost_amount"] or 0.0) if cost else 0.0,
                   "line": (cost["budget_line"] or None) if cost else None}
        family = r["check_id"].split("-")[0]
        (projected_stored if family in PROJECTED_FAMILIES else stored).setdefault(key[0], []).append(verdict)
    facts_of: dict[int, DeviceFacts] = {}
    devices_in_scan: set[int] = set(stored) | set(projected_stored)
    for o in store.observations(scan.id):
        devices_in_scan.add(int(o["device_id"]))
        if o["status"] != "error" and o["facts"]:
            facts_of[int(o["device_id"])] = DeviceFacts.from_dict(json.loads(o["facts"]))
    rows = {int(r["id"]): r for r in store.devices()}
    tags = _target_tags(city)
    out: dict[dt.date, dict[int, list[dict[str, Any]]]] = {d: {} for d in dates}
    for device_id in sorted(devices_in_scan):
        base = stored.get(device_id, [])
        facts = facts_of.get(device_id)
        row = rows.get(device_id)
        stored_projected = {r["check_id"]: r for r in projected_stored.get(device_id, [])}
        for day in dates:
            verdicts = list(base)
            if day == scan_day or facts is None or row is None:
                verdicts += stored_projected.values()  # the scan's own verdicts, as the scorecard shows them
            else:
                ctx = CheckContext(as_of=day, device=_record(row, tags.get(row["address"] or "", [])),
                                   policy=policy, knowledge=knowledge)
                for f in run_checks(facts, ctx, specs):
                    if f.check_id not in projected_ids:
                        continue
                    status = f.status.value if isinstance(f.status, Status) else str(f.status)
                    if status not in ("pass", "fail") and f.check_id in stored_projected:
                        # The re-run cannot judge (facts or data it lacks): keep what the scan found.
                        verdicts.append(stored_projected[f.check_id])
                        continue
                    verdicts.append({
                        "check_id": f.check_id,
                        "status": status,
                        "severity": getattr(f.severity, "value", str(f.severity)),
                        "cost": float(f.cost.amount) if f.cost and f.cost.amount else 0.0,
                        "line": f.cost.budget_line if f.cost else None,
                    })
            out[day][device_id] = verdicts
    return out, facts_of, rows


def _measure_rows(verdicts: dict[int, list[dict[str, Any]]], weights: dict[str, float]) -> list[tuple[Any, ...]]:
    """Per device, the row ``Store.scan_device_measures`` gives the scorecard for a stored scan."""
    out = []
    for device_id, vs in verdicts.items():
        failed = [v for v in vs if v["status"] == "fail"]
        row: list[Any] = [
            device_id,
            sum(weights.get(v["severity"], 0.0) for v in failed),
            1 if any(v["severity"] == "critical" for v in failed) else 0,
        ]
        for ids in KPI_CHECKS.values():
            mine = [v for v in vs if v["check_id"] in ids]
            row.append(1 if any(v["status"] in ("pass", "fail") for v in mine) else 0)
            row.append(1 if any(v["status"] == "fail" for v in mine) else 0)
        out.append(tuple(row))
    return out


def build_projection(city: Any, store: Store, *, as_of: dt.date, knowledge: Any = None,
                     plan: Any = None) -> Projection:
    """Project the latest scan at or before ``as_of`` 12 and 24 months ahead, if nothing is done."""
    from reports.model import _measures, score_verdicts  # the scorecard's own rules (score, shares)
    from reports.plan import build_plan

    scan = _latest_scan(store, as_of)
    proj = Projection(as_of=as_of.isoformat(), scan_date=scan.as_of[:10] if scan else None, has_data=scan is not None)
    if scan is None:
        return proj
    policy = policy_of(city)
    start = dt.date.fromisoformat(scan.as_of[:10])
    dates = {0: start, **{h: add_months(start, h) for h in HORIZONS}}
    verdicts, facts_of, rows = project_verdicts(city, store, scan, list(dates.values()), knowledge)
    proj.not_projected = sum(1 for d in verdicts[start] if d not in facts_of)
    weights = score_weights(policy)
    tags = {i: tuple(json.loads(r["criticality"])) if r["criticality"] else () for i, r in rows.items()}
    freshness = store.inventory_freshness([scan.id])[scan.id]
    for months, day in dates.items():
        m = _measures(scan, _measure_rows(verdicts[day], weights), freshness,
                      score_verdicts(policy, verdicts[day], tags))
        counts: dict[str, tuple[int, int]] = {}
        for key, ids in KPI_CHECKS.items():
            judged = [vs for vs in verdicts[day].values() if any(v["check_id"] in ids and v["status"] in
                                                                   ("pass", "fail") for v in vs)]
            failing = sum(1 for vs in judged if any(v["check_id"] in ids and v["status"] == "fail" for v in vs))
            counts[key] = (failing, len(judged))
        n = len(verdicts[day])
        critical = sum(1 for vs in verdicts[day].values() if any(v["status"] == "fail" and
                                                                  v["severity"] == "critical" for v in vs))
        counts["exposure"] = (critical, n)
        proj.points.append(Point(
            months=months,
            date=day.isoformat(),
            score=m["score"],
            measures={k: m[k] for k in PROJECTED_MEASURES if k != "score"},
            counts=counts,
            unsupported=_failing(verdicts[day], "EOL-001"),
            past_refresh=_failing(verdicts[day], "HW-001"),
        ))

    # Devices that cross a line: failing at a horizon, not failing today.
    now = verdicts[start]
    seen: set[tuple[int, str]] = set()
    for months in HORIZONS:
        day = dates[months]
        counter: Counter[str] = Counter()
        for device_id, vs in verdicts[day].items():
            before = {v["check_id"] for v in now.get(device_id, []) if v["status"] == "fail"}
            for v in vs:
                cid = v["check_id"]
                if cid not in CROSSING_WORDS or v["status"] != "fail" or cid in before:
                    continue
                counter[cid] += 1
                if (device_id, cid) in seen:
                    continue
                seen.add((device_id, cid))
                row = rows[device_id]
                proj.crossings.append(Crossing(
                    device=device_label(row), kind=row["kind"] or "other", department=row["department"] or "",
                    check_id=cid, what=CROSSING_WORDS[cid], by_months=months, cost=v["cost"],
                    budget_line=budget_line_label(city, v["line"] or row["budget_line"])))
        proj.crossing_counts[months] = dict(counter)
        proj.crossing_cost[months] = sum(c.cost for c in proj.crossings if c.by_months <= months)
    proj.crossings.sort(key=lambda c: (c.by_months, c.check_id, c.department, c.device))

    # Paid extended support for devices kept running past their end of support: Windows 10 PCs,
    # and every device whose software has an offer in extended_support.json. One price rule:
    # ``rules.deferral_price``; where no public price exists the row says so and adds nothing.
    proj.esu_line = budget_line_label(city, policy.operating_line())
    if knowledge is None:
        from itaudit.knowledge import load_preferred

        knowledge = load_preferred()[0]
    units = _deferral_units(policy, facts_of, rows, now, knowledge, start)
    paid = 0.0
    for k, months in enumerate(HORIZONS):
        begin, finish = add_months(start, 12 * k), add_months(start, 12 * (k + 1))
        label = "next 12 months" if k == 0 else f"months {12 * k + 1}–{12 * (k + 1)}"
        by_offer: Counter[tuple[str, dt.date, dt.date | None]] = Counter(
            u for u in units if u[1] < finish)  # out of support at some point of this year
        for (offer, eol, eoes), n in sorted(by_offer.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            price = rules.deferral_price(policy, offer, eol, max(begin, eol), eoes)
            total = price.price * n if price.known and price.price is not None else None
            proj.offers.append(OfferYear(offer, price.name, price.unit, label, months, n,
                                         price.price if price.available else None, total, price.available,
                                         price.source, price.words()))
            if offer == WINDOWS10_ESU:
                proj.esu.append(EsuYear(label, n, price.price or 0.0, total or 0.0, price.available))
            paid += total or 0.0
        if not any(o.offer == WINDOWS10_ESU and o.months == months for o in proj.offers):
            found_w = rules.deferral_price(policy, WINDOWS10_ESU, ESU_START, begin)
            proj.esu.append(EsuYear(label, 0, found_w.price or 0.0, 0.0, found_w.available))
        proj.deferral_cost[months] = paid
    proj.unpriced = sorted({o.name for o in proj.offers if o.devices and o.available and o.price is None})

    plan = plan or build_plan(city, store, as_of=as_of)
    proj.fund_it = [(f"FY{fy}", plan.total.devices[i], plan.total.cost[i])
                    for i, fy in enumerate(plan.fiscal_years[:2])]
    proj.sentences = summary_sentences(proj)
    return proj


def _deferral_units(policy: Any, facts_of: dict[int, DeviceFacts], rows: dict[int, dict[str, Any]],
                    devices: Any, knowledge: Any, as_of: dt.date) -> list[tuple[str, dt.date, dt.date | None]]:
    """Per device of the scan that paid extended support could keep running: (offer, end of
    support, end of extended support). Windows 10 PCs by ``_windows10_pc``; every other device by
    its software's lifecycle product and cycle (``rules.offer_for``). Offers the city already
    bought (``Policy.paid_extended``) are left out: they are paid, not a deferral."""
    from itaudit.knowledge import lifecycle_for_facts

    out: list[tuple[str, dt.date, dt.date | None]] = []
    for device_id in sorted(devices):
        facts, row = facts_of.get(device_id), rows.get(device_id)
        if row is None:
            continue
        if _windows10_pc(facts, row):
            if not policy.esu_purchased:
                out.append((WINDOWS10_ESU, ESU_START, None))
            continue
        if facts is None:
            continue
        ans = lifecycle_for_facts(knowledge, facts.software, as_of=as_of)
        offer = rules.offer_for(ans.product, ans.cycle)
        if offer is None or offer == WINDOWS10_ESU or policy.paid_extended(ans.product):
            continue
        if isinstance(ans.eol, dt.date):
            out.append((offer, ans.eol, ans.eoes if isinstance(ans.eoes, dt.date) else None))
    return out


def _windows10_pc(facts: DeviceFacts | None, row: dict[str, Any]) -> bool:
    """A PC on Windows 10 (by name, or by a build below Windows 11's 22000): the one that needs ESU."""
    if (row["kind"] or "") not in ("workstation", "laptop", "desktop"):
        return False
    if "windows 10" in (row["os_name"] or "").lower():
        return True
    sw = facts.software if facts else None
    if sw is None or (sw.product or "") != "windows":
        return False
    build = windows_build(sw.os_version) or windows_build(sw.os_build)
    return build is not None and 10240 <= build < 22000


def _failing(verdicts: dict[int, list[dict[str, Any]]], check_id: str) -> int:
    return sum(1 for vs in verdicts.values() if any(v["check_id"] == check_id and v["status"] == "fail" for v in vs))


def summary_sentences(p: Projection) -> list[str]:
    """The two sentences the monthly summary prints: what doing nothing does, and what it costs."""
    now, p12, p24 = p.point(0), p.point(12), p.point(24)
    if not (now and p12 and p24):
        return []
    first = (
        f"Within a year, {plural(p12.past_refresh, 'device')} will be past their refresh age "
        f"({now.past_refresh:,} today) and {p12.unsupported:,} on unsupported software ({now.unsupported:,} today); "
        f"within two years, {p24.past_refresh:,} and {p24.unsupported:,}"
    )
    if now.score is not None and p24.score is not None:
        falls = round(p24.score) < round(now.score)
        first += (f", and the score falls from {now.score:.0f} to {p24.score:.0f}" if falls
                  else f", and the score stays near {now.score:.0f}")
    first += "."
    fund = sum(c for _, _, c in p.fund_it)
    second = f"Funding the plan costs {money(fund)} over two fiscal years"
    if p.deferral_cost.get(24):
        second += (f"; deferring instead costs {money(p.deferral_cost[24])} in paid extended support "
                   f"that buys nothing lasting")
    second += "."
    if p.unpriced:
        second += (f" {' and '.join(p.unpriced)} {'has' if len(p.unpriced) == 1 else 'have'} "
                   f"no public price: ask the vendor.")
    return [first, second]
