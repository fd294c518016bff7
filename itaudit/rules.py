"""Domain rules written once and shared by the checks, the store and every report.

- a device's age: which date it is counted from (``age_basis``) and when it is due (``refresh_due``);
- whether a device is a virtual machine (``is_virtual``);
- the order of severities (``SEVERITY_RANK``);
- what replacing a device costs, which budget line pays, whether it is capital, and in which
  fiscal year it falls (``replacement_price``, ``replacement_year``);
- what fixing a device's open findings costs, each device's remedy counted once (``remedies``);
- what a year of paid extended support costs (``deferral_price``, over ``extended_support.json``).

The checks put the price and fiscal year on their findings; the capital plan prices every
device with the same functions, so a device's plan row and its findings agree on amount,
budget line, fiscal year and capital flag.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from itaudit.model import Severity
from itaudit.policy import KIND_CLASS, Policy, shipped_refresh

# The severity order is ``itaudit.model.Severity.rank``; this is it keyed by the stored text.
SEVERITY_RANK = {s.value: s.rank for s in Severity}
SEVERITIES = tuple(sorted(SEVERITY_RANK, key=lambda s: -SEVERITY_RANK[s]))  # worst first

# ``software.virtualization`` values that mean "runs on its own hardware"; any other value
# means a virtual machine or container, which has no hardware of its own to replace.
PHYSICAL_PLATFORMS = frozenset({"", "none", "physical", "bare-metal", "baremetal"})

# Unsupported software pulls a replacement forward only on these classes: their firmware is tied
# to the hardware, so only new hardware brings a supported release. A server or PC gets a new
# operating system instead (staff time); a PC whose hardware cannot run a supported one is HW-004,
# which pulls forward on any class.
FIRMWARE_BOUND_CLASSES = frozenset(
    {"switch", "core-switch", "router", "firewall", "wireless", "ups", "printer", "storage", "camera"}
)
# Open findings that pull a replacement into the current fiscal year, or into the fiscal year
# six months ahead; the reason in words.
PULL_NOW = {
    "EOL-001": "its software no longer receives security fixes",
    "HW-004": "it cannot run a supported operating system",
}
PULL_SOON = {"EOL-002": "its software stops receiving security fixes within a year"}
# Checks whose cost is the device's replacement (the remedy that subsumes the device's other fixes).
REPLACEMENT_CHECKS = frozenset({"HW-001", "HW-002", "HW-004", "EOL-001", "EOL-002"})


def severity_rank(severity: str | None) -> int:
    return SEVERITY_RANK.get((severity or "").lower(), 0)


def is_virtual(virtualization: Any) -> bool:
    """Does a ``software.virtualization`` fact say the device is a virtual machine or container?"""
    return str(virtualization or "").lower().replace(" ", "") not in PHYSICAL_PLATFORMS


def disabled_directory_object(disabled: Any, sources: Any) -> bool:
    """Is the device known only from a computer object that is disabled in the directory?

    Such a machine cannot log on to the domain: it is gone, or out of use, until someone
    enables it. The scan judges only whether its object lingers (AD-001), so it has no age
    findings, and the refresh plan does not budget its replacement. ``sources`` is the facts'
    ``sources`` (a dict of section to collector, or its JSON text)."""
    if not disabled or str(disabled).lower() in ("0", "false"):
        return False
    if isinstance(sources, str):
        try:
            sources = json.loads(sources)
        except ValueError:
            return False
    return isinstance(sources, dict) and bool(sources) and set(sources) <= {"directory"}


def _day(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value if not isinstance(value, dt.datetime) else value.date()
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


DIRECTORY_SINCE = "in the directory since"  # an age from a computer object's creation: a lower bound


def age_basis(purchase_date: Any, manufacture_date: Any, bios_date: Any,
              directory_created: Any = None) -> tuple[dt.date, str] | None:
    """The date a device's age is counted from and its source in words, or None when unknown.

    The purchase date (asset register or config) first, then the manufacture date the device
    reports, then its BIOS date (an estimate: a BIOS update makes a machine look younger), then
    when its computer object was created in the directory (a lower bound: at least this old).
    """
    for value, words in (
        (purchase_date, "purchase date"),
        (manufacture_date, "manufacture date"),
        (bios_date, "BIOS date"),
        (directory_created, DIRECTORY_SINCE),
    ):
        day = _day(value)
        if day:
            return day, words
    return None


def age_years(basis: dt.date, as_of: dt.date) -> float:
    """A device's age in years on ``as_of``, counted from ``basis`` (``age_basis``)."""
    return (as_of - basis).days / 365.25


def refresh_due(basis: dt.date, years: float) -> dt.date:
    """The day a device reaches its refresh age."""
    return basis + dt.timedelta(days=round(365.25 * years))


@dataclass(frozen=True)
class Price:
    """What replacing one device (or one part) costs, who pays and whether it is capital."""

    amount: float
    capital: bool
    budget_line: str | None
    device_class: str
    years: float
    amount_source: str  # "asset register", "Police department policy", "city policy", "shipped default"
    line_source: str  # where the budget line came from, in words

    @property
    def kind(self) -> str:
        return "capital" if self.capital else "operating"

    @property
    def source(self) -> str:
        """The source of each figure, for a report or a finding's basis."""
        return f"cost from {self.amount_source}; line from {self.line_source}"


def _amount_source(policy: Policy, cls: str, department: str | None) -> str:
    dept = policy.departments.get(department or "") if department else None
    if dept is not None and cls in dept.refresh:
        return f"{department} department policy"
    if cls in policy.refresh and policy.refresh[cls] != shipped_refresh().get(cls):
        return "city policy"
    return "shipped default"


def replacement_price(
    policy: Policy,
    *,
    kind: str | None,
    department: str | None = None,
    tags: Iterable[str] = (),
    register_cost: float | None = None,
    register_line: str | None = None,
) -> Price:
    """The price of replacing one device: the one rule the checks, the plan and the reports use.

    Amount: the asset register's cost where present, else the refresh rule of the device's
    class (tags refine it: a ``core`` switch, a ``rugged`` laptop) and department. Capital: the
    rule's own flag for a policy price; a register cost is capital when it reaches the city's
    capitalization threshold. Budget line: ``Policy.line_for`` (the register's account first,
    as long as its kind fits: a capital item never lands on an operating line).
    """
    tags = tuple(tags)
    cls = policy.refresh_class(kind, tags)
    rule = policy.refresh_for(kind, department, tags=tags)
    if register_cost is not None:
        amount, amount_source = float(register_cost), "asset register"
        capital = amount >= policy.capitalization_threshold
    else:
        amount, amount_source = rule.cost, _amount_source(policy, cls, department)
        capital = bool(rule.capital)
    line, line_source = policy.line_for(capital, cls=cls, department=department, device_line=register_line)
    return Price(amount, capital, line, cls, rule.years, amount_source, line_source)


def part_price(policy: Policy, part: str, *, department: str | None = None, register_line: str | None = None) -> Price:
    """The price of a part with its own refresh rule (``ups-battery``): policy price, line by ``line_for``."""
    rule = policy.refresh_for(part, department)
    capital = bool(rule.capital)
    line, line_source = policy.line_for(capital, cls=part, department=department, device_line=register_line)
    return Price(rule.cost, capital, line, part, rule.years, _amount_source(policy, part, department), line_source)


@dataclass(frozen=True)
class Due:
    """The fiscal year a device's replacement falls in, and why."""

    fiscal_year: int
    age_fiscal_year: int | None  # the fiscal year its refresh age runs out (None: age unknown)
    reason: str
    overdue: bool = False
    pulled: bool = False
    risk_check: str | None = None  # the check whose finding pulled it forward


def firmware_bound(device_class: str) -> bool:
    return device_class in FIRMWARE_BOUND_CLASSES or KIND_CLASS.get(device_class) in FIRMWARE_BOUND_CLASSES


def pull_year(policy: Policy, check_id: str, device_class: str, as_of: dt.date) -> tuple[int, str] | None:
    """The fiscal year an open finding of ``check_id`` pulls a replacement into, or None."""
    if check_id == "HW-004" or (check_id in PULL_NOW and firmware_bound(device_class)):
        return policy.fiscal_year(as_of), PULL_NOW[check_id]
    if check_id in PULL_SOON and firmware_bound(device_class):
        return policy.fiscal_year(as_of + dt.timedelta(days=182)), PULL_SOON[check_id]
    return None


def replacement_year(
    policy: Policy, *, as_of: dt.date, due: dt.date | None, device_class: str,
    risks: Iterable[str] | Mapping[str, int | None] = (),
) -> Due | None:
    """When the device is replaced: its refresh age (overdue -> this fiscal year), pulled forward
    by risk (``pull_year``); None when neither its age nor a risk says so.

    ``risks`` are the checks of the device's open findings, optionally with the fiscal year each
    finding put its cost in: a finding carried from an earlier check (the device did not answer
    since) keeps the year it was judged to fall in, never before this one, so the plan and the
    finding name the same year."""
    current = policy.fiscal_year(as_of)
    recorded: Mapping[str, int | None] = risks if isinstance(risks, Mapping) else {}
    best: Due | None = None
    if due is not None:
        age_fy = policy.fiscal_year(due)
        best = (
            Due(current, age_fy, f"overdue since FY{age_fy}", overdue=True)
            if age_fy < current
            else Due(age_fy, age_fy, "refresh age")
        )
    for check_id in sorted(set(risks)):
        pull = pull_year(policy, check_id, device_class, as_of)
        if pull and recorded.get(check_id) is not None:
            pull = (max(current, int(recorded[check_id] or current)), pull[1])
        if pull and (best is None or pull[0] < best.fiscal_year):
            best = Due(pull[0], best.age_fiscal_year if best else None, f"pulled forward: {pull[1]}",
                       pulled=True, risk_check=check_id)
    return best


NO_PUBLIC_PRICE = "no public price: ask the vendor"


@dataclass(frozen=True)
class DeferralPrice:
    """What one more year of paid extended support costs a unit (a PC, a server) on ``as_of``."""

    offer: str  # offer id in extended_support.json
    name: str
    unit: str  # "PC", "server", "machine"
    year: int  # the paid year ``as_of`` falls in (1 = the first year after the end of support)
    available: bool  # can that year still be bought?
    price: float | None  # per unit for that year; None when no public price exists
    source: str  # the vendor page or article, or "city policy"
    checked: str  # when the shipped price was last checked against its source
    next_price: float | None = None  # the year after, when there is one and it is known

    @property
    def known(self) -> bool:
        return self.available and self.price is not None

    def words(self) -> str:
        """The price in a manager's words, or why there is none."""
        if not self.available:
            return f"{self.name}: none can be bought any more"
        if self.price is None:
            return f"{self.name}: {NO_PUBLIC_PRICE}"
        return f"{self.name}, year {self.year}: {self.price:,.0f} a {self.unit}"


def offer_for(product: str | None, cycle: str | None) -> str | None:
    """The extended-support offer covering a lifecycle product and release cycle, or None."""
    from itaudit.policy import extended_offers

    if not product or not cycle:
        return None
    for oid, row in extended_offers().items():
        if product in row["products"] and row["pattern"].search(cycle):
            return oid
    return None


def deferral_price(policy: Policy | None, offer: str, eol: dt.date, as_of: dt.date,
                   eoes: dt.date | None = None) -> DeferralPrice:
    """The price of keeping one unit on ``offer``'s paid extended support for the year ``as_of``
    falls in: the one rule the checks (EOL-003), the plan, the projection and the budget request use.

    Paid years run from ``eol`` (the end of security support in the lifecycle data) in steps of
    365 days, for the offer's number of years and never past ``eoes`` when known. The price is
    the city's (``[policy.extended_support_prices]``) where set, else the shipped table's; None
    where no public price exists. Before ``eol`` the first year's price is given (what deferring
    will cost once support ends).
    """
    from itaudit.policy import extended_offers

    row = extended_offers()[offer]
    year = max(0, (as_of - eol).days) // 365 + 1
    city = (policy.extended_support_prices.get(offer) if policy is not None else None)
    prices: tuple[float | None, ...] = city if city is not None else row["prices"]
    source = "city policy" if city is not None else str(row.get("source", ""))
    available = year <= row["years"] and (eoes is None or as_of <= eoes)
    price = prices[year - 1] if available else None
    following = prices[year] if available and year < len(prices) else None
    return DeferralPrice(offer, str(row["name"]), str(row["unit"]), year, available, price, source,
                         str(row.get("checked", "")), following)


# --- what fixing costs ------------------------------------------------------------------


@dataclass(frozen=True)
class Remedy:
    """One device's remedy for one or more findings: counted once in every cost total."""

    device_id: int
    check_ids: tuple[str, ...]  # the findings it fixes (a replacement: the one priced first, then the rest)
    amount: float
    kind: str  # "capital" or "operating"
    budget_line: str | None
    fiscal_year: int
    replacement: bool

    @property
    def capital(self) -> bool:
        return self.kind == "capital"


def remedies(rows: Iterable[Mapping[str, Any]], current_fy: int) -> list[Remedy]:
    """Each device's remedies from its open findings, each counted once.

    A device's replacements are one purchase, in the earliest fiscal year any finding gives it.
    A replacement this fiscal year subsumes the device's other fixes (staff time on a PC that is
    being replaced, a battery of a UPS that is being replaced); a replacement in a later year
    leaves this year's fixes in place. Rows are findings as the store returns them (``device_id``,
    ``check_id``, ``cost_amount``, ``cost_kind``, ``budget_line``, ``cost_fiscal_year``).
    """
    by_device: dict[int, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_device.setdefault(int(r["device_id"]), []).append(r)
    out: list[Remedy] = []
    for device_id, found in sorted(by_device.items()):
        repl = [r for r in found if r["check_id"] in REPLACEMENT_CHECKS and (r.get("cost_kind") or "") and
                r.get("cost_amount") is not None and _is_replacement_cost(r)]
        chosen = None
        if repl:
            chosen = min(repl, key=lambda r: (int(r.get("cost_fiscal_year") or current_fy), r["check_id"]))
            fy = max(current_fy, int(chosen.get("cost_fiscal_year") or current_fy))
            others = sorted(r["check_id"] for r in repl if r is not chosen)
            out.append(Remedy(device_id, (chosen["check_id"], *others), float(chosen["cost_amount"]),
                              chosen["cost_kind"], chosen.get("budget_line"), fy, True))
        if chosen is not None and max(current_fy, int(chosen.get("cost_fiscal_year") or current_fy)) == current_fy:
            continue  # replaced this year: its other fixes are moot
        for r in found:
            if r in repl or not r.get("cost_amount"):
                continue
            fy = max(current_fy, int(r.get("cost_fiscal_year") or current_fy))
            out.append(Remedy(device_id, (r["check_id"],), float(r["cost_amount"]), r.get("cost_kind") or "operating",
                              r.get("budget_line"), fy, False))
    return out


def _is_replacement_cost(row: Mapping[str, Any]) -> bool:
    """A finding whose cost is the device's replacement (EOL on a PC costs staff time instead)."""
    return str(row.get("cost_basis") or "").startswith("replacement ")
