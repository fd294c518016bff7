"""The capital refresh plan: the next five fiscal years by budget line and department.

Each device is due in the fiscal year its refresh age runs out (purchase date, else the
manufacture or BIOS date from its facts, plus the policy's years for its class). Risk pulls
a replacement forward: hardware that cannot run a supported operating system (HW-004), or,
on network gear and appliances whose firmware is tied to the hardware, software that no
longer receives security fixes, puts the device in the current fiscal year (fixes ending
within a year: no later than the fiscal year six months ahead). A server or PC on old
software gets a new operating system, not new hardware. Items already overdue land in the
current fiscal year. Virtual machines have no hardware of their own and are left out.
Devices of unknown age are listed, not guessed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from itaudit import rules
from itaudit.config import CityConfig
from itaudit.store import Store
from reports import export
from reports.common import (
    ESU_START,
    WINDOWS10_ESU,
    budget_line_label,
    data_dates,
    data_warnings,
    device_label,
    fy_start_month,
    money,
    plural,
    policy_of,
)
from reports.pdf import html_to_pdf
from reports.render import render

HORIZON = 5
FORMATS = ("html", "csv", "xlsx", "json", "pdf")
HTML_ITEM_LIMIT = 150


@dataclass
class PlanItem:
    device: str
    address: str
    kind: str
    department: str
    os: str
    basis: str  # ISO date the age is counted from
    basis_source: str  # "purchase date", "manufacture date", "BIOS date"
    due: str  # ISO date the refresh age runs out
    fiscal_year: int
    age_fiscal_year: int
    reason: str
    cost: float
    budget_line: str
    capital: bool
    cost_source: str = ""  # "asset register", "Police department policy", "city policy", "shipped default"
    line_source: str = ""  # where the budget line came from, in words
    device_id: int = 0


@dataclass
class PlanRow:
    label: str
    kind: str = ""
    devices: list[int] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    budgeted: list[float] | None = None
    # Per fiscal year: need not covered by the budget (gap), budget beyond the need (surplus).
    # A total row sums its lines' gaps and surpluses: a surplus on one line never hides a gap on another.
    gap: list[float] | None = None
    surplus: list[float] | None = None

    def set_budget(self, budgeted: list[float]) -> None:
        self.budgeted = budgeted
        self.gap = [max(0.0, c - b) for c, b in zip(self.cost, budgeted, strict=True)]
        self.surplus = [max(0.0, b - c) for c, b in zip(self.cost, budgeted, strict=True)]


@dataclass
class Deferral:
    devices: int
    esu_year: int  # 1, 2 or 3; 0 when no ESU can be bought any more
    esu_price: float
    esu_total: float
    esu_line: str
    replace_total: float
    replace_line: str
    fiscal_year: int
    sentences: list[str]


@dataclass
class PlanReport:
    city_id: str
    city_name: str
    as_of: str
    start_month: int
    fiscal_years: list[int]
    by_line: list[PlanRow]
    by_department: list[PlanRow]
    total: PlanRow
    items: list[PlanItem]
    unknown_age: list[tuple[str, str]]  # (device, kind)
    later_devices: int
    later_cost: float
    pulled_forward: int
    overdue: int
    deferral: Deferral | None
    headline: str
    data_dates: dict[str, str] = field(default_factory=dict)
    data_warnings: list[str] = field(default_factory=list)
    virtual: int = 0  # virtual machines left out: no hardware of their own
    disabled: int = 0  # known only from a disabled computer object in the directory: left out
    spread_years: int = 1  # overdue replacements spread over this many fiscal years (policy)
    capital: list[float] = field(default_factory=list)  # per fiscal year: the capital items' cost

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def _spread_backlog(items: list[PlanItem], years: list[int], spread: int) -> int:
    """Spread the overdue replacements (oldest due first) over the first ``spread`` fiscal years,
    about the same amount each year (``backlog_spread_years``); return the years used."""
    spread = max(1, min(spread, len(years)))
    backlog = sorted((i for i in items if i.reason.startswith("overdue")), key=lambda i: (i.due, i.device))
    if spread == 1 or not backlog:
        return 1
    share = sum(i.cost for i in backlog) / spread
    year, spent = 0, 0.0
    for item in backlog:
        if spent >= share * (year + 1) - 1e-6 and year < spread - 1:
            year += 1
        spent += item.cost
        if year:
            item.fiscal_year = years[year]
            item.reason += f"; backlog spread over FY{years[0]}-FY{years[spread - 1]}"
    return spread


def _budgeted_for(city: CityConfig, budgeted: Mapping[str, Mapping[Any, float]] | None) -> dict[str, dict[int, float]]:
    """Amounts already budgeted, account -> fiscal year -> amount (argument first, then the policy)."""
    source = budgeted if budgeted is not None else getattr(getattr(city, "policy", None), "budgeted", None)
    out: dict[str, dict[int, float]] = {}
    for account, years in dict(source or {}).items():
        for fy, amount in dict(years).items():
            key = int(str(fy).upper().removeprefix("FY"))
            out.setdefault(str(account), {})[key] = float(amount)
    return out


def build_plan(
    city: CityConfig, store: Store, *, as_of: dt.date, budgeted: Mapping[str, Mapping[Any, float]] | None = None
) -> PlanReport:
    """Build the refresh plan model for the five fiscal years starting with the one containing ``as_of``."""
    policy = policy_of(city)
    start_month = fy_start_month(policy)
    current = policy.fiscal_year(as_of)
    years = list(range(current, current + HORIZON))
    # device id -> the checks of its open findings: risks that can pull a replacement forward.
    risks = store.open_checks()

    items: list[PlanItem] = []
    unknown: list[tuple[str, str]] = []
    later_n, later_cost, n_pulled, n_overdue, n_virtual, n_disabled = 0, 0.0, 0, 0, 0, 0
    win10: list[tuple[dict[str, Any], rules.Price]] = []
    for row in store.device_inventory():
        if rules.is_virtual(row["virtualization"]):
            n_virtual += 1
            continue  # no hardware of its own to replace (HW-001 passes it for the same reason)
        if rules.disabled_directory_object(row["directory_disabled"], row["sources"]):
            n_disabled += 1
            continue  # out of use until someone enables it (the scan runs only AD-001 on it)
        kind = row["kind"] or "other"
        tags = [*row["criticality"], *row["tags"]]
        # The one pricing rule the checks use too: tags, department, threshold, asset register.
        price = rules.replacement_price(
            policy,
            kind=kind,
            department=row["department"],
            tags=tags,
            register_cost=row["register_cost"],
            register_line=row["budget_line"],
        )
        if "windows 10" in (row["os_name"] or "").lower():
            win10.append((row, price))
        found = rules.age_basis(row["purchase_date"], row["manufacture_date"], row["bios_date"],
                                row.get("directory_created"))
        basis, source = found if found else (None, "")
        if source == rules.DIRECTORY_SINCE:
            source += " (estimate)"  # a lower bound: the machine is at least as old as its computer object
        due = rules.refresh_due(basis, price.years) if basis else None
        when = rules.replacement_year(
            policy, as_of=as_of, due=due, device_class=price.device_class, risks=risks.get(row["id"], ())
        )
        if when is None:
            unknown.append((device_label(row), kind))
            continue
        n_overdue += when.overdue
        n_pulled += when.pulled
        if when.fiscal_year > years[-1]:
            later_n += 1
            later_cost += price.amount
            continue
        items.append(
            PlanItem(
                device=device_label(row),
                address=row["address"] or "",
                kind=kind,
                department=row["department"] or "",
                os=" ".join(x for x in (row["os_name"], row["os_version"]) if x) or "",
                basis=basis.isoformat() if basis else "",
                basis_source=source,
                due=(due or as_of).isoformat(),
                fiscal_year=when.fiscal_year,
                age_fiscal_year=when.age_fiscal_year or when.fiscal_year,
                reason=when.reason,
                cost=price.amount,
                budget_line=price.budget_line or "",
                capital=price.capital,
                cost_source=price.amount_source,
                line_source=price.line_source,
                device_id=int(row["id"]),
            )
        )
    spread = _spread_backlog(items, years, policy.backlog_spread_years)
    items.sort(key=lambda i: (i.fiscal_year, i.budget_line, i.department, i.device))

    bud = _budgeted_for(city, budgeted)
    by_line = _rows(
        items,
        years,
        lambda i: i.budget_line,
        lambda k: budget_line_label(city, k) if k else "no budget line set",
    )
    # Budgeted lines with nothing due still show: all of their budget is surplus.
    for account in sorted(set(bud) - {r.kind for r in by_line}):
        by_line.append(PlanRow(budget_line_label(city, account), kind=account, devices=[0] * HORIZON,
                               cost=[0.0] * HORIZON))
    for row_ in by_line:
        account = row_.kind  # _rows keeps the raw key in .kind until here
        known = getattr(city, "budget_lines", {}).get(account)
        if bud:
            row_.set_budget([bud.get(account, {}).get(fy, 0.0) for fy in years])
        row_.kind = known.kind if known else ""
    by_dept = _rows(items, years, lambda i: i.department or "", lambda k: k or "no department")
    for row_ in by_dept:
        row_.kind = ""
    total = PlanRow(
        "All budget lines",
        devices=[sum(r.devices[i] for r in by_line) for i in range(HORIZON)],
        cost=[sum(r.cost[i] for r in by_line) for i in range(HORIZON)],
    )
    if bud:
        total.budgeted = [sum((r.budgeted or [0.0] * HORIZON)[i] for r in by_line) for i in range(HORIZON)]
        total.gap = [sum((r.gap or [0.0] * HORIZON)[i] for r in by_line) for i in range(HORIZON)]
        total.surplus = [sum((r.surplus or [0.0] * HORIZON)[i] for r in by_line) for i in range(HORIZON)]
    rep = PlanReport(
        city_id=city.id,
        city_name=city.name,
        as_of=as_of.isoformat(),
        start_month=start_month,
        fiscal_years=years,
        by_line=by_line,
        by_department=by_dept,
        total=total,
        items=items,
        unknown_age=sorted(unknown),
        later_devices=later_n,
        later_cost=later_cost,
        pulled_forward=n_pulled,
        overdue=n_overdue,
        deferral=_deferral(city, win10, as_of, current),
        headline="",
        data_dates=data_dates(),
        data_warnings=data_warnings(city, as_of),
        virtual=n_virtual,
        disabled=n_disabled,
        spread_years=spread,
    )
    rep.capital = [sum(i.cost for i in items if i.capital and i.fiscal_year == fy) for fy in years]
    rep.headline = _plan_headline(rep)
    return rep


def _rows(items: list[PlanItem], years: list[int], key: Any, label: Any) -> list[PlanRow]:
    groups: dict[str, PlanRow] = {}
    for it in items:
        k = key(it)
        row = groups.get(k)
        if row is None:
            row = groups[k] = PlanRow(label=label(k), kind=k, devices=[0] * len(years), cost=[0.0] * len(years))
        idx = years.index(it.fiscal_year)
        row.devices[idx] += 1
        row.cost[idx] += it.cost
    return sorted(groups.values(), key=lambda r: (-sum(r.cost), r.label))


def windows10_esu(policy: Any, as_of: dt.date) -> rules.DeferralPrice:
    """A year of Windows 10 Extended Security Updates for a PC on ``as_of`` (``rules.deferral_price``)."""
    return rules.deferral_price(policy, WINDOWS10_ESU, ESU_START, as_of)


def esu_year(as_of: dt.date, policy: Any = None) -> int:
    """Which paid year of Windows 10 Extended Security Updates ``as_of`` falls in (0: none left)."""
    found = windows10_esu(policy, as_of)
    return found.year if found.available else 0


def _deferral(
    city: CityConfig, win10: list[tuple[dict[str, Any], rules.Price]], as_of: dt.date, fy: int
) -> Deferral | None:
    """Keep the Windows 10 PCs on paid extended updates for a year, or replace them now."""
    if not win10:
        return None
    policy = policy_of(city)
    n = len(win10)
    esu = windows10_esu(policy, as_of)
    year = esu.year if esu.available else 0
    replace_total = sum(p.amount for _, p in win10)
    replace_lines: dict[str, float] = defaultdict(float)
    for _, p in win10:
        replace_lines[p.budget_line or ""] += p.amount
    replace_line = budget_line_label(city, max(replace_lines, key=lambda k: replace_lines[k]) or None)
    esu_line = budget_line_label(city, policy.operating_line())
    pcs = plural(n, "Windows 10 PC")
    replace_now = (
        f"Replace now: {pcs} cost {money(replace_total)} in FY{fy}, paid from {replace_line}. "
        f"They then run a supported system for their whole life."
    )
    if year == 0:
        return Deferral(
            n,
            0,
            0.0,
            0.0,
            esu_line,
            replace_total,
            replace_line,
            fy,
            [
                replace_now,
                "Deferring is no longer possible: Microsoft sells no extended security updates for "
                "Windows 10 after October 2028, so these PCs no longer receive security fixes at any price.",
            ],
        )
    price = esu.price or 0.0
    esu_total = price * n
    following = (
        f" A further year would cost {money(esu.next_price)} a PC, since the price rises each year"
        if esu.next_price is not None
        else " This is the last year such updates can be bought"
    )
    return Deferral(
        n,
        year,
        price,
        esu_total,
        esu_line,
        replace_total,
        replace_line,
        fy,
        [
            replace_now,
            f"Defer one year: paid extended security updates (year {year}) cost {money(price)} a PC, "
            f"{money(esu_total)} in all, paid from {esu_line}. The replacement, {money(replace_total)}, "
            f"moves to FY{fy + 1}.{following}.",
            f"Deferring frees {money(replace_total - esu_total)} this year but spends {money(esu_total)} "
            f"on updates that leave nothing behind; PCs that cannot run Windows 11 must be replaced "
            f"either way.",
        ],
    )


def _plan_headline(rep: PlanReport) -> str:
    first, last = rep.fiscal_years[0], rep.fiscal_years[-1]
    n = sum(rep.total.devices)
    cost = sum(rep.total.cost)
    text = (
        f"From FY{first} to FY{last} the city needs to replace {plural(n, 'device')} for {money(cost)}"
        f" ({money(sum(rep.capital))} of it capital)"
    )
    if rep.total.budgeted is not None:
        budgeted = sum(rep.total.budgeted)
        gap = sum(rep.total.gap or [])
        surplus = sum(rep.total.surplus or [])
        short = [r for r in rep.by_line if sum(r.gap or []) > 0]
        text += f"; {money(budgeted)} is budgeted"
        if gap:
            text += (
                f", leaving a funding gap of {money(gap)} on {plural(len(short), 'budget line')}"
                " (counted per line and fiscal year: a surplus on one line does not cover another)"
            )
        else:
            text += ", which covers the need on every line in every year"
        if surplus:
            text += f"; {money(surplus)} budgeted beyond the need is a surplus"
    text += "."
    if rep.total.devices[0]:
        text += (
            f" {plural(rep.total.devices[0], 'device')} ({money(rep.total.cost[0])}) "
            f"{'falls' if rep.total.devices[0] == 1 else 'fall'} in FY{first}, "
            f"including {rep.overdue:,} already overdue and {rep.pulled_forward:,} brought forward by risk."
        )
    return text


def write_plan(
    city: CityConfig,
    store: Store,
    *,
    as_of: dt.date,
    out_dir: Path,
    formats: tuple[str, ...] = ("html", "csv", "xlsx"),
    budgeted: Mapping[str, Mapping[Any, float]] | None = None,
) -> list[Path]:
    """Write the 5-year capital refresh plan (HTML, CSV, XLSX, JSON, PDF as asked); return the paths.

    ``budgeted`` maps an account to {fiscal year: amount already budgeted} (e.g.
    ``{"101-1410-5740": {2027: 40000}}``), which turns the plan into a funding gap.
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown plan format {', '.join(bad)} (choose from {', '.join(FORMATS)})")
    rep = build_plan(city, store, as_of=as_of, budgeted=budgeted)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{city.id}-plan-{as_of.isoformat()}"
    paths: list[Path] = []
    html = stem.with_suffix(".html")
    if "html" in formats or "pdf" in formats:
        from reports.projection import build_projection  # the do-nothing path beside the plan

        proj = build_projection(city, store, as_of=as_of, plan=rep)
        export.write_text(html, render("plan.html.j2", p=rep, limit=HTML_ITEM_LIMIT, proj=proj))
        paths.append(html)
    if "pdf" in formats:
        paths.append(html_to_pdf(html, stem.with_suffix(".pdf")))
    if "csv" in formats:
        paths.append(export.write_csv(stem.with_suffix(".csv"), ITEM_HEADER, _item_rows(rep)))
    if "xlsx" in formats:
        paths.append(write_plan_xlsx(rep, stem.with_suffix(".xlsx")))
    if "json" in formats:
        paths.append(export.write_text(stem.with_suffix(".json"), rep.to_json()))
    return paths


ITEM_HEADER = [
    "fiscal_year",
    "device",
    "address",
    "kind",
    "department",
    "os",
    "age_from",
    "age_source",
    "refresh_due",
    "age_fiscal_year",
    "reason",
    "budget_line",
    "cost",
    "capital",
    "cost_source",
    "line_source",
]


def _item_rows(rep: PlanReport) -> list[list[Any]]:
    return [
        [
            f"FY{i.fiscal_year}",
            i.device,
            i.address,
            i.kind,
            i.department,
            i.os,
            i.basis,
            i.basis_source,
            i.due,
            f"FY{i.age_fiscal_year}",
            i.reason,
            i.budget_line,
            i.cost,
            "yes" if i.capital else "no",
            i.cost_source,
            i.line_source,
        ]
        for i in rep.items
    ]


# Plain column names for people (the CSV keeps ITEM_HEADER's machine names).
ITEM_TITLES = [
    "Fiscal year",
    "Device",
    "Address",
    "Kind",
    "Department",
    "Operating system",
    "Age counted from",
    "Date source",
    "Refresh due",
    "Refresh age ends in",
    "Why this year",
    "Budget line",
    "Cost",
    "Capital",
    "Cost from",
    "Budget line from",
]


def _col(i: int) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(i + 1))


def _summary_sheet(
    rep: PlanReport, rows: list[PlanRow], first: str, total_label: str
) -> tuple[list[str], list[list[Any]]]:
    """A summary sheet: per fiscal year devices, cost (and budgeted, gap, surplus), a 5-year column
    group, and a total row. Gaps, surpluses, 5-year columns and totals are formulas."""
    budgets = any(r.budgeted is not None for r in rows)
    per = ["devices", "cost"] + (["budgeted", "gap", "surplus"] if budgets else [])
    head = [first, "Type"]
    for fy in rep.fiscal_years:
        head += [f"FY{fy} {m}" for m in per]
    head += [f"5 years {m}" for m in per]
    out: list[list[Any]] = []
    for n, r in enumerate(rows, start=2):
        line: list[Any] = [r.label, r.kind]
        for i in range(len(rep.fiscal_years)):
            base = len(line)
            line += [r.devices[i], r.cost[i]]
            if budgets:
                c, b = _col(base + 1), _col(base + 2)
                line += [
                    (r.budgeted or [0.0] * HORIZON)[i],
                    export.Formula(f"=MAX(0,{c}{n}-{b}{n})"),
                    export.Formula(f"=MAX(0,{b}{n}-{c}{n})"),
                ]
        for k in range(len(per)):
            cells = [f"{_col(2 + i * len(per) + k)}{n}" for i in range(len(rep.fiscal_years))]
            line.append(export.Formula("=" + "+".join(cells)))
        out.append(line)
    last = len(rows) + 1
    total: list[Any] = [total_label, ""]
    for k in range(2, len(head)):
        total.append(export.Formula(f"=SUBTOTAL(9,{_col(k)}2:{_col(k)}{last})") if rows else 0)
    out.append(total)
    return head, out


def write_plan_xlsx(rep: PlanReport, path: Path) -> Path:
    """The plan as a workbook finance can audit: totals, gaps, surpluses and the 5-year columns are
    formulas over the rows (a gap per line and year, summed, never netted across lines)."""
    line_head, line_rows = _summary_sheet(rep, rep.by_line, "Budget line", "All budget lines")
    dept_head, dept_rows = _summary_sheet(rep, rep.by_department, "Department", "All departments")
    items = _item_rows(rep)
    cost_col = _col(ITEM_TITLES.index("Cost"))
    items.append(["Total"] + [""] * (ITEM_TITLES.index("Cost") - 1)
                 + [export.Formula(f"=SUBTOTAL(9,{cost_col}2:{cost_col}{len(items) + 1})")])

    def money_cols(head: list[str]) -> set[int]:
        return {i for i, h in enumerate(head) if h.endswith((" cost", " budgeted", " gap", " surplus"))}

    return export.write_xlsx(
        path,
        [("By budget line", line_head, line_rows), ("By department", dept_head, dept_rows),
         ("Devices", ITEM_TITLES, items)],
        money_columns={"Devices": {ITEM_TITLES.index("Cost")}, "By budget line": money_cols(line_head),
                       "By department": money_cols(dept_head)},
        total_rows={"By budget line": 1, "By department": 1, "Devices": 1},
    )
