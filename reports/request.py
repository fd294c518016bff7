"""The one-page budget request for the coming fiscal year, ready to attach to a council memo.

For each budget line: the amount to approve (the refresh plan's items in that fiscal year, to
the cent), what it buys (devices by kind, the open findings those devices carry, which come
off the worklist when they are replaced, and how the scorecard's measures move), and what
deferring it a year costs (paid extended support where the vendor sells it, priced by
``itaudit.rules.deferral_price`` like the plan and the projection, or "no public price: ask
the vendor"; for the rest, the risk carried, in devices past their refresh age).
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
from reports.common import budget_line_label, fy_start_month, money, plural, policy_of
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
    from itaudit.knowledge import load_preferred
    from reports.council import kpi_counts
    from reports.model import report_scan
    from reports.plan import build_plan
    from reports.projection import _deferral_units

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
    knowledge = load_preferred()[0]
    ids_rows = {int(r["id"]): r for r in rows_by_address.values()}
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
        # A year of deferral: paid extended support where the vendor sells it (one price rule,
        # ``rules.deferral_price``, at the start of the fiscal year), the rest carry their risk.
        units: Counter[tuple[str, dt.date, dt.date | None]] = Counter()
        for d in ids:
            latest = store.latest_facts(d)
            facts = latest[1] if latest else None
            units.update(_deferral_units(policy, {d: facts} if facts else {}, ids_rows, [d], knowledge, as_of))
        defer_cost = 0.0
        covered = 0
        words: list[str] = []
        for (offer, eol, eoes), n in sorted(units.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            if eol > end:
                continue  # still supported through the fiscal year
            price = rules.deferral_price(policy, offer, eol, max(start, eol), eoes)
            covered += n
            if price.known and price.price is not None:
                defer_cost += price.price * n
                words.append(f"{plural(n, 'device')} need a year of {price.name}: {money(price.price * n)} "
                             f"from {budget_line_label(city, policy.operating_line())}, which buys nothing that lasts")
            elif price.available:
                words.append(f"{plural(n, 'device')} need a year of {price.name}: no public price, ask the vendor")
            else:
                words.append(f"{plural(n, 'device')} {'gets' if n == 1 else 'get'} no security fixes at any price "
                             f"({price.name} is no longer sold)")
        due = len(items) - covered
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
