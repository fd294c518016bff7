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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from itaudit.store import Store
from reports import export
from reports.common import (
    ESU_PRICES,
    ESU_START,
    FIRMWARE_BOUND_KINDS,
    PULL_NOW,
    PULL_SOON,
    budget_line_label,
    data_dates,
    device_label,
    fiscal_year_of,
    fy_start_month,
    is_virtual_platform,
    money,
    parse_day,
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


@dataclass
class PlanRow:
    label: str
    kind: str = ""
    devices: list[int] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    budgeted: list[float] | None = None

    @property
    def gap(self) -> list[float] | None:
        if self.budgeted is None:
            return None
        return [max(0.0, c - b) for c, b in zip(self.cost, self.budgeted, strict=True)]


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
    virtual: int = 0  # virtual machines left out: no hardware of their own

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def _add_years(day: dt.date, years: float) -> dt.date:
    return day + dt.timedelta(days=round(365.25 * years))


def _basis(row: dict[str, Any]) -> tuple[dt.date | None, str]:
    for key, words in (
        ("purchase_date", "purchase date"),
        ("manufacture_date", "manufacture date"),
        ("bios_date", "BIOS date"),
        # The directory's creation date: an estimate and a lower bound, flagged as such in the plan.
        ("directory_created", "in the directory since (estimate)"),
    ):
        day = parse_day(row.get(key))
        if day:
            return day, words
    return None, ""


def _virtual_devices(store: Store) -> set[int]:
    """Devices whose latest facts say they are virtual machines (the same facts as device_inventory)."""
    rows = store.db.execute(
        """select d.id, json_extract(o.facts, '$.software.virtualization') from devices d
           join observations o on o.id =
             (select id from observations where device_id = d.id and facts is not null
              order by scan_id desc limit 1)
           where json_extract(o.facts, '$.software.virtualization') is not null"""
    )
    return {int(device_id) for device_id, virt in rows if is_virtual_platform(virt)}


def _budgeted_for(city: Any, budgeted: Mapping[str, Mapping[Any, float]] | None) -> dict[str, dict[int, float]]:
    """Amounts already budgeted, account -> fiscal year -> amount (argument first, then the policy)."""
    source = budgeted if budgeted is not None else getattr(getattr(city, "policy", None), "budgeted", None)
    out: dict[str, dict[int, float]] = {}
    for account, years in dict(source or {}).items():
        for fy, amount in dict(years).items():
            key = int(str(fy).upper().removeprefix("FY"))
            out.setdefault(str(account), {})[key] = float(amount)
    return out


def build_plan(
    city: Any, store: Store, *, as_of: dt.date, budgeted: Mapping[str, Mapping[Any, float]] | None = None
) -> PlanReport:
    """Build the refresh plan model for the five fiscal years starting with the one containing ``as_of``."""
    policy = policy_of(city)
    start_month = fy_start_month(policy)
    current = fiscal_year_of(as_of, start_month)
    years = list(range(current, current + HORIZON))
    # device id -> [(fiscal year, reason, check id)]: the risks that could pull it forward.
    pulls: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    soon_fy = fiscal_year_of(as_of + dt.timedelta(days=182), start_month)
    for f in store.open_findings():
        if f["check_id"] in PULL_NOW:
            pulls[f["device_id"]].append((current, PULL_NOW[f["check_id"]], f["check_id"]))
        elif f["check_id"] in PULL_SOON:
            pulls[f["device_id"]].append((soon_fy, PULL_SOON[f["check_id"]], f["check_id"]))
    virtual = _virtual_devices(store)

    items: list[PlanItem] = []
    unknown: list[tuple[str, str]] = []
    later_n, later_cost, n_pulled, n_overdue = 0, 0.0, 0, 0
    win10: list[tuple[dict[str, Any], Any]] = []
    for row in store.device_inventory():
        if row["id"] in virtual:
            continue  # no hardware of its own to replace (HW-001 passes it for the same reason)
        kind = row["kind"] or "other"
        tags = json.loads(row["criticality"]) if row["criticality"] else []
        rule = policy.refresh_for(kind, row["department"], tags=tags)
        # Who pays: Policy.pay_line, the precedence the checks' costs use too (asset register first).
        rule = replace(rule, budget_line=policy.pay_line("replacement", rule=rule, device_line=row["budget_line"]))
        if "windows 10" in (row["os_name"] or "").lower():
            win10.append((row, rule))
        basis, source = _basis(row)
        # Unsupported software means new hardware only where the firmware is tied to it.
        firmware_bound = policy.refresh_class(kind, tags) in FIRMWARE_BOUND_KINDS
        eligible = [(fy, why) for fy, why, cid in pulls.get(row["id"], []) if cid == "HW-004" or firmware_bound]
        pull = min(eligible) if eligible else None
        if basis is None and pull is None:
            unknown.append((device_label(row), kind))
            continue
        due = _add_years(basis, rule.years) if basis else as_of
        age_fy = fiscal_year_of(due, start_month)
        fy, reason = age_fy, "refresh age"
        if age_fy < current:
            fy, reason = current, f"overdue since FY{age_fy}"
            n_overdue += 1
        if pull and pull[0] < fy:
            fy, reason = pull[0], f"pulled forward: {pull[1]}"
            n_pulled += 1
        if fy > years[-1]:
            later_n += 1
            later_cost += rule.cost
            continue
        line = rule.budget_line or ""
        items.append(
            PlanItem(
                device=device_label(row),
                address=row["address"] or "",
                kind=kind,
                department=row["department"] or "",
                os=" ".join(x for x in (row["os_name"], row["os_version"]) if x) or "",
                basis=basis.isoformat() if basis else "",
                basis_source=source,
                due=due.isoformat(),
                fiscal_year=fy,
                age_fiscal_year=age_fy,
                reason=reason,
                cost=rule.cost,
                budget_line=line,
                capital=rule.capital,
            )
        )
    items.sort(key=lambda i: (i.fiscal_year, i.budget_line, i.department, i.device))

    bud = _budgeted_for(city, budgeted)
    by_line = _rows(
        items,
        years,
        lambda i: i.budget_line,
        lambda k: budget_line_label(city, k) if k else "no budget line set",
    )
    for row_ in by_line:
        account = row_.kind  # _rows keeps the raw key in .kind until here
        known = getattr(city, "budget_lines", {}).get(account)
        row_.budgeted = [bud.get(account, {}).get(fy, 0.0) for fy in years] if bud else None
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
        virtual=len(virtual),
    )
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


def esu_year(as_of: dt.date) -> int:
    """Which paid year of Windows 10 Extended Security Updates ``as_of`` falls in (0: none left)."""
    if as_of < ESU_START:
        return 1
    k = (as_of - ESU_START).days // 365 + 1
    return k if k <= len(ESU_PRICES) else 0


def _deferral(city: Any, win10: list[tuple[dict[str, Any], Any]], as_of: dt.date, fy: int) -> Deferral | None:
    """Keep the Windows 10 PCs on paid extended updates for a year, or replace them now."""
    if not win10:
        return None
    policy = policy_of(city)
    n = len(win10)
    year = esu_year(as_of)
    replace_total = sum(rule.cost for _, rule in win10)
    replace_lines = defaultdict(float)
    for _, rule in win10:
        replace_lines[rule.budget_line or ""] += rule.cost
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
    price = ESU_PRICES[year - 1]
    esu_total = price * n
    following = (
        f" A further year would cost {money(ESU_PRICES[year])} a PC, since the price doubles each year"
        if year < len(ESU_PRICES)
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
    text = f"From FY{first} to FY{last} the city needs to replace {plural(n, 'device')} for {money(cost)}"
    if rep.total.budgeted is not None:
        budgeted = sum(rep.total.budgeted)
        gap = sum(rep.total.gap or [])
        text += f"; {money(budgeted)} is budgeted, leaving a funding gap of {money(gap)}"
    text += "."
    if rep.total.devices[0]:
        text += (
            f" {plural(rep.total.devices[0], 'device')} ({money(rep.total.cost[0])}) "
            f"{'falls' if rep.total.devices[0] == 1 else 'fall'} in FY{first}, "
            f"including {rep.overdue:,} already overdue and {rep.pulled_forward:,} brought forward by risk."
        )
    return text


def write_plan(
    city: Any,
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
        export.write_text(html, render("plan.html.j2", p=rep, limit=HTML_ITEM_LIMIT))
        paths.append(html)
    if "pdf" in formats:
        paths.append(html_to_pdf(html, stem.with_suffix(".pdf")))
    if "csv" in formats:
        paths.append(export.write_csv(stem.with_suffix(".csv"), ITEM_HEADER, _item_rows(rep)))
    if "xlsx" in formats:
        paths.append(
            export.write_xlsx(
                stem.with_suffix(".xlsx"),
                [
                    ("By budget line", _summary_header(rep), _summary_rows(rep, rep.by_line + [rep.total])),
                    ("By department", _summary_header(rep), _summary_rows(rep, rep.by_department)),
                    ("Devices", ITEM_HEADER, _item_rows(rep)),
                ],
                money_columns={
                    "Devices": {ITEM_HEADER.index("cost")},
                    "By budget line": _summary_money_columns(rep),
                    "By department": _summary_money_columns(rep),
                },
            )
        )
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
        ]
        for i in rep.items
    ]


def _summary_header(rep: PlanReport) -> list[str]:
    head = ["group", "type"]
    for fy in rep.fiscal_years:
        head += [f"FY{fy} devices", f"FY{fy} cost", f"FY{fy} budgeted", f"FY{fy} gap"]
    return head


def _summary_money_columns(rep: PlanReport) -> set[int]:
    """Cost, budgeted and gap columns of the summary sheets (not the device counts)."""
    head = _summary_header(rep)
    return {i for i, name in enumerate(head) if name.endswith((" cost", " budgeted", " gap"))}


def _summary_rows(rep: PlanReport, rows: list[PlanRow]) -> list[list[Any]]:
    out = []
    for r in rows:
        line: list[Any] = [r.label, r.kind]
        for i in range(len(rep.fiscal_years)):
            line += [
                r.devices[i],
                r.cost[i],
                r.budgeted[i] if r.budgeted else None,
                r.gap[i] if r.gap else None,
            ]
        out.append(line)
    return out
