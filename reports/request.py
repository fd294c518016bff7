"""The one-page budget request for the coming fiscal year, ready to attach to a council memo.

For each budget line: the amount to approve (the refresh plan's items in that fiscal year, to
the cent), what it buys (devices by kind, the open findings those devices carry, which come
off the worklist when they are replaced, and how the scorecard's measures move), and what
deferring it a year costs (paid extended updates for Windows 10 PCs at the plan's prices;
for the rest, the risk carried, in devices past their refresh age or on unsupported software).
The coming fiscal year is the one after the fiscal year containing the as-of date: budgets
are adopted months ahead.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from itaudit import rules
from itaudit.policy import fiscal_year_bounds
from itaudit.store import Store
from reports import export
from reports.common import ESU_START, budget_line_label, fy_start_month, money, plural, policy_of
from reports.render import render

FORMATS = ("html", "pdf", "json")


@dataclass
class RequestLine:
    account: str
    label: str
    kind: str  # capital / operating / ""
    amount: float
    devices: int
    buys: str  # "40 workstations and 3 servers"
    findings_closed: int
    moves: list[str]  # "devices within refresh age: 82% → 88%"
    defer_cost: float  # extended updates for a year of deferral
    defer_words: str
    budgeted: float | None = None


@dataclass
class BudgetRequest:
    city_id: str
    city_name: str
    as_of: str
    fiscal_year: int
    start: str
    end: str
    lines: list[RequestLine] = field(default_factory=list)
    total: float = 0.0
    devices: int = 0
    budgeted: float | None = None
    summary: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def _kinds(kinds: Counter[str]) -> str:
    parts = [plural(n, k) for k, n in kinds.most_common()]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1] if parts else "nothing"


def build_request(city: Any, store: Store, *, as_of: dt.date) -> BudgetRequest:
    """The budget request for the fiscal year after the one containing ``as_of``."""
    from reports.council import kpi_counts
    from reports.model import report_scan
    from reports.plan import build_plan
    from reports.projection import _windows10_pc

    policy = policy_of(city)
    plan = build_plan(city, store, as_of=as_of)
    fy = plan.fiscal_years[1]
    idx = 1
    start, end = fiscal_year_bounds(fy, fy_start_month(policy))
    req = BudgetRequest(city.id, city.name, as_of.isoformat(), fy, start.isoformat(), end.isoformat())
    scans = store.report_scans()
    scan = scans[-1] if scans else None
    if scan is not None:
        scan = report_scan(scans, scan.as_of[:7], as_of) or scan
    counts = kpi_counts(store, city, scan) if scan else {}
    rows_by_address = {d["address"]: d for d in store.devices()}
    open_by_device: dict[int, list[str]] = {}
    for f in store.open_findings():
        open_by_device.setdefault(int(f["device_id"]), []).append(f["check_id"])
    found = rules.extended_support_year("windows", ESU_START, start)
    esu_price = found[1] if found else 0.0
    for row in plan.by_line:
        if not row.cost[idx]:
            continue
        account = next((i.budget_line for i in plan.items if i.fiscal_year == fy and
                        budget_line_label(city, i.budget_line or None) == row.label), "")
        items = [i for i in plan.items if i.fiscal_year == fy and i.budget_line == account]
        kinds: Counter[str] = Counter(i.kind for i in items)
        ids = [int(rows_by_address[i.address]["id"]) for i in items if i.address in rows_by_address]
        checks = [c for d in ids for c in open_by_device.get(d, [])]
        past = sum(1 for d in ids if "HW-001" in open_by_device.get(d, []))
        unsupported = sum(1 for d in ids if "EOL-001" in open_by_device.get(d, []))
        moves = []
        for key, n, what in (("refresh", past, "devices within refresh age"),
                             ("supported", unsupported, "devices on supported software")):
            good, total = counts.get(key, (0, 0))
            if n and total:
                moves.append(f"{what}: {100 * good / total:.0f}% → {100 * min(total, good + n) / total:.0f}%")
        win10 = 0
        for d in ids:
            latest = store.latest_facts(d)
            facts = latest[1] if latest else None
            device_row = next((r for r in rows_by_address.values() if int(r["id"]) == d), None)
            if device_row is not None and _windows10_pc(facts, device_row):
                win10 += 1
        defer_cost = win10 * esu_price
        due = len(items) - win10
        words: list[str] = []
        if win10:
            words.append(f"{plural(win10, 'Windows 10 PC')} need a year of extended updates: "
                         f"{money(defer_cost)} from {budget_line_label(city, policy.operating_line())}, "
                         f"which buys nothing that lasts" if esu_price else
                         f"{plural(win10, 'Windows 10 PC')} get no security fixes at any price")
        if due:
            words.append(f"{plural(due, 'device')} stay in service past the city's refresh age, "
                         f"carrying their risk another year")
        req.lines.append(RequestLine(
            account=account, label=row.label, kind=row.kind, amount=row.cost[idx], devices=row.devices[idx],
            buys=_kinds(kinds), findings_closed=len(checks), moves=moves, defer_cost=defer_cost,
            defer_words="; ".join(words) + "." if words else "",
            budgeted=row.budgeted[idx] if row.budgeted is not None else None))
    req.total = plan.total.cost[idx]
    req.devices = plan.total.devices[idx]
    req.budgeted = plan.total.budgeted[idx] if plan.total.budgeted is not None else None
    if req.total:
        req.summary = (f"{city.name} asks the council to approve {money(req.total)} in FY{fy} to replace "
                       f"{plural(req.devices, 'device')}, from {plural(len(req.lines), 'budget line')}.")
    else:
        req.summary = f"The refresh plan puts no replacement in FY{fy}: nothing to request for it."
    return req


def write_request(city: Any, store: Store, *, as_of: dt.date, out_dir: Path,
                  formats: tuple[str, ...] = ("html",)) -> list[Path]:
    """Write the budget request (HTML always; PDF and JSON on request); return the paths."""
    export.check_formats(formats, FORMATS)
    req = build_request(city, store, as_of=as_of)
    stem = Path(out_dir) / f"{city.id}-request-FY{req.fiscal_year}"
    return export.write_html_report(stem, render("request.html.j2", q=req), req.to_json, formats)
