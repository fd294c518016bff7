"""A city's policy: refresh periods and costs, patch targets, fiscal year, budget lines.

Defaults come from ``itaudit/data/refresh_policies.json``; a city overrides them in its
``[cities.<id>.policy]`` TOML table, which ``parse_policy`` validates, naming the exact
key on any error. Departments may override refresh rules (a police laptop is rugged and
paid from the police department's line).

TOML shape (every key optional)::

    [cities.springfield.policy]
    fiscal_year_start_month = 7        # 1 = calendar year, 10 = October
    currency = "USD"
    capitalization_threshold = 5000
    labour_rate = 85                   # per hour, for effort estimates
    capital_budget_line = "101-1410-5740"
    operating_budget_line = "101-1410-5310"
    patch_max_days = 30
    reboot_max_days = 7
    av_signature_max_days = 7
    max_local_admins = 2
    esu_purchased = false              # Windows 10 Extended Security Updates bought
    extended_support = ["ubuntu"]      # other products whose paid extended support is bought
    [cities.springfield.policy.extended_support_prices]
    windows-10-esu = [61, 122, 244]    # the price per unit the city pays, each paid year
    scan_max_age_days = 30
    scan_failure_threshold = 3
    backlog_spread_years = 1           # spread overdue replacements over this many fiscal years (1-5)
    stale_computer_days = 90           # directory computer objects without a logon this long (AD-001)
    [cities.springfield.policy.refresh.laptop]
    years = 4
    cost = 1600
    budget_line = "101-1410-5310"
    capital = false                    # default: cost >= the city's capitalization_threshold
    [cities.springfield.policy.criticality_weights]
    public-safety = 1.5
    [cities.springfield.policy.departments.police]
    budget_line = "101-2110-5740"            # the department's equipment (replacements)
    operating_budget_line = "101-2110-5310"  # its staff time and subscriptions
    [cities.springfield.policy.departments.police.refresh.laptop]
    years = 3
    cost = 4500
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from itaudit import score
from itaudit.errors import ConfigError, KnowledgeError
from itaudit.knowledge import shipped_data_dir
from itaudit.measures import parse_measures

# Kind values and the refresh class they fall under when no tag says otherwise.
KIND_CLASS = {
    "desktop": "workstation",
    "workstation": "workstation",
    "laptop": "laptop",
    "server": "server",
    "switch": "switch",
    "router": "router",
    "firewall": "firewall",
    "wireless": "wireless",
    "ups": "ups",
    "printer": "printer",
    "storage": "storage",
    "camera": "camera",
    "other": "other",
}


@cache
def defaults() -> dict[str, Any]:
    """The shipped refresh_policies.json (validated)."""
    return _shipped("refresh_policies.json", "itaudit-policy-defaults/1", "refresh policy defaults")


def _shipped(name: str, fmt: str, what: str) -> dict[str, Any]:
    """A shipped JSON document of the given format, or a KnowledgeError naming the file."""
    path = shipped_data_dir() / name
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KnowledgeError(f"{path}: cannot read {what} ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise KnowledgeError(f"{path}: unknown format (expected {fmt})")
    return doc


@cache
def extended_offers() -> dict[str, dict[str, Any]]:
    """The shipped extended-support offers (``extended_support.json``), validated: offer id ->
    name, products, cycles (a compiled pattern), unit, years, per-unit prices by year (None
    where no public price exists), source and the date it was checked."""
    path = shipped_data_dir() / "extended_support.json"
    doc = _shipped("extended_support.json", "itaudit-extended-support/1", "extended-support offers")
    out: dict[str, dict[str, Any]] = {}
    for oid, row in (doc.get("offers") or {}).items():
        prices = row.get("per_unit_by_year") or []
        years = int(row.get("years") or 0)
        if years < 1 or len(prices) != years or any(p is not None and (not isinstance(p, int | float) or p < 0)
                                                     for p in prices):
            raise KnowledgeError(f"{path}: offers.{oid}: per_unit_by_year needs one price (or null) per paid year")
        products = row["product"] if isinstance(row["product"], list) else [row["product"]]
        out[oid] = {**row, "products": tuple(products), "pattern": re.compile(row["cycles"]),
                    "prices": tuple(None if p is None else float(p) for p in prices), "years": years}
    return out


def windows11_requirements() -> dict[str, Any]:
    """Windows 11 hardware requirements (TPM, Secure Boot, CPU generations), with source."""
    return dict(defaults()["windows11"])


@dataclass
class RefreshRule:
    """How often a device class is replaced, what it costs and which line pays.

    ``capital`` None means "by the city's capitalization threshold": ``Policy.refresh_for``
    decides it against the city's own threshold, not the shipped one.
    """

    years: float
    cost: float
    budget_line: str | None = None
    capital: bool | None = None


@cache
def shipped_refresh() -> dict[str, RefreshRule]:
    """The shipped refresh rules (a city's own rules differ from these)."""
    return _default_refresh()


def _default_refresh() -> dict[str, RefreshRule]:
    return {
        name: RefreshRule(
            years=float(row["years"]),
            cost=float(row["cost"]),
            capital=bool(row["capital"]) if "capital" in row else None,
        )
        for name, row in defaults()["classes"].items()
    }


def _default_weights() -> dict[str, float]:
    try:
        return {k.lower(): float(v) for k, v in score.default_weights()["criticality"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise KnowledgeError(f"score_weights.json: cannot read criticality weights ({exc})") from exc


@dataclass
class Department:
    """A department's overrides: its own budget lines and refresh rules."""

    budget_line: str | None = None  # its equipment: replacements of its devices
    operating_budget_line: str | None = None  # its staff time and subscriptions (an operating line)
    refresh: dict[str, RefreshRule] = field(default_factory=dict)


@dataclass
class Policy:
    """Everything a check or report needs to know about one city's rules."""

    refresh: dict[str, RefreshRule] = field(default_factory=_default_refresh)
    departments: dict[str, Department] = field(default_factory=dict)
    fiscal_year_start_month: int = 7
    currency: str = "USD"
    capitalization_threshold: float = field(default_factory=lambda: float(defaults()["capitalization_threshold"]))
    labour_rate: float = field(default_factory=lambda: float(defaults()["labour_rate"]))
    capital_budget_line: str | None = None
    operating_budget_line: str | None = None
    patch_max_days: int = 30
    reboot_max_days: int = 7
    av_signature_max_days: int = 7
    max_local_admins: int = 2
    esu_purchased: bool = False
    extended_support: tuple[str, ...] = ()
    # Extended-support prices the city pays: offer id -> price per unit for each paid year
    # (overrides the shipped table, ``extended_offers``; read through ``rules.deferral_price``).
    extended_support_prices: dict[str, tuple[float, ...]] = field(default_factory=dict)
    scan_max_age_days: int = 30
    scan_failure_threshold: int = 3
    # Reports warn when the exploited-vulnerability data (KEV, CVE version ranges) is older.
    vuln_data_max_age_days: int = 30
    # Overdue replacements (the backlog) spread over this many fiscal years in the plan; 1 = all now.
    backlog_spread_years: int = 1
    # A directory computer object with no logon for this many days is stale (check AD-001).
    stale_computer_days: int = 90
    criticality_weights: dict[str, float] = field(default_factory=_default_weights)
    # KPI targets of the monthly scorecard (percent, or a count for "uncheckable").
    kpi_targets: dict[str, float] = field(default_factory=dict)
    # Measures the city set in [policy.measures.<key>] (target, owner, why, action); the others
    # keep itaudit.measures' defaults: read them all through ``itaudit.measures.measures_of``.
    measures: dict[str, Any] = field(default_factory=dict)
    # Amounts already budgeted: account -> fiscal year -> amount (the plan shows the gap).
    budgeted: dict[str, dict[int, float]] = field(default_factory=dict)
    # Kind ("capital" or "operating") of each account of the city's [budget_lines], set by the
    # config loader; ``pay_line`` keeps operating money off a capital line with it.
    line_kinds: dict[str, str] = field(default_factory=dict)

    def refresh_class(self, kind: str | None, tags: list[str] | tuple[str, ...] = ()) -> str:
        """The refresh class of a device: its kind, refined by tags ("core", "rugged")."""
        cls = KIND_CLASS.get((kind or "other").lower(), "other")
        low = {t.lower() for t in tags}
        if cls == "switch" and low & {"core", "core-switch", "distribution"}:
            cls = "core-switch"
        if cls == "laptop" and low & {"rugged", "rugged-laptop", "mdt"}:
            cls = "rugged-laptop"
        return cls

    def refresh_for(
        self, kind: str | None, department: str | None = None, *, tags: list[str] | tuple[str, ...] = ()
    ) -> RefreshRule:
        """The refresh rule for a device class: department override, else city rule, else default.

        ``capital`` is decided here (the rule's own flag, else cost >= the city's threshold), and
        ``budget_line`` is the policy's line for the class (``line_for``), not yet the device's own
        line: ``itaudit.rules.replacement_price`` prices one device, asset register included.
        """
        cls = kind if kind in self.refresh and kind not in KIND_CLASS else self.refresh_class(kind, tags)
        base = self.refresh.get(cls) or self.refresh.get("other") or RefreshRule(6, 1000)
        dept = self.departments.get(department or "") if department else None
        rule = dept.refresh[cls] if dept is not None and cls in dept.refresh else base
        capital = rule.capital if rule.capital is not None else rule.cost >= self.capitalization_threshold
        line, _ = self.line_for(capital, cls=cls, department=department)
        return replace(rule, budget_line=line, capital=capital)

    def budget_line_refs(self) -> list[tuple[str, str]]:
        """Every budget line the policy names, as (key relative to the policy table, account)."""
        refs = [(k, v) for k in ("capital_budget_line", "operating_budget_line") if (v := getattr(self, k))]
        refs += [
            (f"refresh.{c}.budget_line", r.budget_line) for c, r in self.refresh.items() if r.budget_line
        ]
        refs += [(f'budgeted."{account}"', account) for account in self.budgeted]
        for name, dept in self.departments.items():
            if dept.budget_line:
                refs.append((f"departments.{name}.budget_line", dept.budget_line))
            if dept.operating_budget_line:
                refs.append((f"departments.{name}.operating_budget_line", dept.operating_budget_line))
            refs += [
                (f"departments.{name}.refresh.{c}.budget_line", r.budget_line)
                for c, r in dept.refresh.items()
                if r.budget_line
            ]
        return refs

    def line_for(
        self,
        capital: bool,
        *,
        cls: str | None = None,
        department: str | None = None,
        device_line: str | None = None,
    ) -> tuple[str | None, str]:
        """The budget line that pays one device's ``capital`` or operating cost, and its source in words.

        The one precedence every cost uses (replacements, parts, staff time, subscriptions):

        1. the device's own line from the asset register (the fund that owns the device);
        2. the department's refresh rule line for the class (a replacement only);
        3. the department's line: its ``budget_line`` for capital, its ``operating_budget_line``
           for operating money;
        4. the city's line for the class (a replacement only);
        5. the city's ``capital_budget_line`` or ``operating_budget_line``.

        A line whose kind in the city's ``[budget_lines]`` does not fit is skipped, saying so: a
        capital item never lands on an operating line, nor operating money on a capital line.
        """
        want = "capital" if capital else "operating"
        dept = self.departments.get(department or "") if department else None
        candidates: list[tuple[str | None, str]] = [(device_line, "the asset register")]
        if cls is not None and dept is not None and cls in dept.refresh:
            candidates.append((dept.refresh[cls].budget_line, f"the {department} department's rule for {cls}"))
        if dept is not None:
            candidates.append(
                (dept.budget_line, f"the {department} department's line")
                if capital
                else (dept.operating_budget_line, f"the {department} department's operating line")
            )
            if not capital and cls is not None:
                candidates.append((dept.budget_line, f"the {department} department's line"))
        if cls is not None and cls in self.refresh:
            candidates.append((self.refresh[cls].budget_line, f"the city's rule for {cls}"))
        candidates.append(
            (self.capital_budget_line, "the city's capital line")
            if capital
            else (self.operating_budget_line, "the city's operating line")
        )
        skipped: list[str] = []
        for line, source in candidates:
            if not line:
                continue
            kind = self.line_kinds.get(line)
            if kind is not None and kind != want:
                skipped.append(f"{source} ({line}) is {'an' if kind[:1] in 'aeiou' else 'a'} {kind} line")
                continue
            note = f" ({'; '.join(skipped)}, not used for a {want} cost)" if skipped else ""
            return line, source + note
        note = f" ({'; '.join(skipped)})" if skipped else ""
        return None, f"no {want} budget line set{note}"

    def pay_line(
        self,
        cost: str,
        *,
        department: str | None = None,
        device_line: str | None = None,
        rule: RefreshRule | None = None,
    ) -> str | None:
        """The budget line that pays ``cost`` ("replacement" with its ``rule``, or "operating") for one
        device: ``line_for`` with the cost's capital flag."""
        if cost == "replacement":
            if rule is None:
                raise ValueError("a replacement needs the refresh rule of the device's class")
            want = "capital" if rule.capital else "operating"
            if device_line and self.line_kinds.get(device_line, want) == want:
                return device_line
            return rule.budget_line
        if cost != "operating":
            raise ValueError(f"unknown cost {cost!r} (replacement or operating)")
        return self.line_for(False, department=department, device_line=device_line)[0]

    def operating_line(self, department: str | None = None, device_line: str | None = None) -> str | None:
        """Budget line for labour and subscriptions (operating money): ``pay_line("operating", ...)``."""
        return self.pay_line("operating", department=department, device_line=device_line)

    def paid_extended(self, product: str | None) -> bool:
        """Did the city buy paid extended support for this lifecycle product?"""
        if not product:
            return False
        if product == "windows" and self.esu_purchased:
            return True
        return product in self.extended_support

    def criticality_weight(self, tags: list[str] | tuple[str, ...]) -> float:
        """The highest weight among a device's criticality tags (``itaudit.score.criticality_weight``)."""
        return score.criticality_weight(tags, self.criticality_weights)

    def fiscal_year(self, day: dt.date) -> int:
        """Fiscal year (named by the year it ends) that contains ``day``."""
        return fiscal_year_of(day, self.fiscal_year_start_month)


def fiscal_year_of(day: dt.date, start_month: int) -> int:
    """Fiscal year containing ``day``, named by the year it ends.

    With a July start, FY2027 runs July 2026 – June 2027; with a January start the
    fiscal year is the calendar year.
    """
    if not 1 <= start_month <= 12:
        raise ValueError(f"start month must be 1-12, got {start_month}")
    if start_month == 1:
        return day.year
    return day.year + 1 if day.month >= start_month else day.year


def fiscal_year_bounds(fiscal_year: int, start_month: int) -> tuple[dt.date, dt.date]:
    """First and last day of a fiscal year (named by the year it ends)."""
    if start_month == 1:
        return dt.date(fiscal_year, 1, 1), dt.date(fiscal_year, 12, 31)
    start = dt.date(fiscal_year - 1, start_month, 1)
    end = dt.date(fiscal_year, start_month, 1) - dt.timedelta(days=1)
    return start, end


# --- parsing a city's TOML table ------------------------------------------------------------

_SCALARS: dict[str, type] = {
    "fiscal_year_start_month": int,
    "currency": str,
    "capitalization_threshold": float,
    "labour_rate": float,
    "capital_budget_line": str,
    "operating_budget_line": str,
    "patch_max_days": int,
    "reboot_max_days": int,
    "av_signature_max_days": int,
    "max_local_admins": int,
    "esu_purchased": bool,
    "scan_max_age_days": int,
    "scan_failure_threshold": int,
    "vuln_data_max_age_days": int,
    "backlog_spread_years": int,
    "stale_computer_days": int,
}
_TABLES = ("refresh", "departments", "criticality_weights", "extended_support", "kpi_targets", "budgeted",
           "measures", "extended_support_prices")
KPI_KEYS = ("refresh", "supported", "patched", "exposure", "freshness", "uncheckable", "completeness")
_RULE_KEYS = {"years": float, "cost": float, "budget_line": str, "capital": bool}


def _typed(value: Any, want: type, key: str) -> Any:
    ok = (
        isinstance(value, bool)
        if want is bool
        else isinstance(value, int) and not isinstance(value, bool)
        if want is int
        else isinstance(value, int | float) and not isinstance(value, bool)
        if want is float
        else isinstance(value, want)
    )
    if not ok:
        raise ConfigError(f"expected {want.__name__}, got {type(value).__name__} {value!r}", key=key)
    return float(value) if want is float else value


def _parse_rule(table: Any, key: str, base: RefreshRule | None) -> RefreshRule:
    if not isinstance(table, dict):
        raise ConfigError("expected a table with years, cost, budget_line, capital", key=key)
    vals: dict[str, Any] = {}
    for k, v in table.items():
        if k not in _RULE_KEYS:
            raise ConfigError(f"unknown key (allowed: {', '.join(_RULE_KEYS)})", key=f"{key}.{k}")
        vals[k] = _typed(v, _RULE_KEYS[k], f"{key}.{k}")
    if "years" in vals and vals["years"] <= 0:
        raise ConfigError("must be more than 0", key=f"{key}.years")
    if "cost" in vals and vals["cost"] < 0:
        raise ConfigError("must not be negative", key=f"{key}.cost")
    if base is None and not {"years", "cost"} <= vals.keys():
        raise ConfigError("a new device class needs both years and cost", key=key)
    years = vals.get("years", base.years if base else 0.0)
    cost = vals.get("cost", base.cost if base else 0.0)
    # Without an explicit flag, refresh_for decides capital against the city's threshold.
    capital = vals.get("capital", base.capital if base and "cost" not in vals else None)
    return RefreshRule(years=years, cost=cost, budget_line=vals.get("budget_line"), capital=capital)


def _parse_extended_prices(table: Any, key: str) -> dict[str, tuple[float, ...]]:
    """``offer-id = [price year 1, year 2, ...]``: one non-negative price per paid year of a known offer."""
    if not isinstance(table, dict):
        raise ConfigError("expected a table of offer = [price per year]", key=key)
    offers = extended_offers()
    out: dict[str, tuple[float, ...]] = {}
    for oid, prices in table.items():
        okey = f"{key}.{oid}"
        if oid not in offers:
            raise ConfigError(f"unknown offer (one of {', '.join(sorted(offers))})", key=okey)
        years = offers[oid]["years"]
        if not isinstance(prices, list) or len(prices) != years:
            raise ConfigError(f"expected a list of {years} prices, one per paid year", key=okey)
        vals = tuple(_typed(p, float, f"{okey}[{i}]") for i, p in enumerate(prices))
        if any(v < 0 for v in vals):
            raise ConfigError("prices must not be negative", key=okey)
        out[oid] = vals
    return out


def parse_policy(table: dict[str, Any] | None, key_prefix: str) -> Policy:
    """Build a ``Policy`` from a city's ``policy`` TOML table; errors name the exact key."""
    pol = Policy()
    table = table or {}
    if not isinstance(table, dict):
        raise ConfigError("expected a table", key=key_prefix)
    for k, v in table.items():
        if k not in _SCALARS and k not in _TABLES:
            allowed = ", ".join(sorted([*_SCALARS, *_TABLES]))
            raise ConfigError(f"unknown key (allowed: {allowed})", key=f"{key_prefix}.{k}")
        if k in _SCALARS:
            setattr(pol, k, _typed(v, _SCALARS[k], f"{key_prefix}.{k}"))
    if not 1 <= pol.fiscal_year_start_month <= 12:
        raise ConfigError("must be a month number 1-12", key=f"{key_prefix}.fiscal_year_start_month")
    if not 1 <= pol.backlog_spread_years <= 5:
        raise ConfigError("must be 1-5 (fiscal years of the plan)", key=f"{key_prefix}.backlog_spread_years")
    for k in ("patch_max_days", "reboot_max_days", "av_signature_max_days", "scan_max_age_days",
              "vuln_data_max_age_days", "stale_computer_days"):
        if getattr(pol, k) < 0:
            raise ConfigError("must not be negative", key=f"{key_prefix}.{k}")
    ext = table.get("extended_support", [])
    if not isinstance(ext, list) or not all(isinstance(x, str) for x in ext):
        raise ConfigError("expected a list of product names", key=f"{key_prefix}.extended_support")
    pol.extended_support = tuple(x.lower() for x in ext)
    pol.extended_support_prices = _parse_extended_prices(table.get("extended_support_prices", {}),
                                                         f"{key_prefix}.extended_support_prices")
    weights = table.get("criticality_weights", {})
    if not isinstance(weights, dict):
        raise ConfigError("expected a table of tag = weight", key=f"{key_prefix}.criticality_weights")
    for tag, w in weights.items():
        pol.criticality_weights[tag.lower()] = _typed(w, float, f"{key_prefix}.criticality_weights.{tag}")
    kpis = table.get("kpi_targets", {})
    if not isinstance(kpis, dict):
        raise ConfigError("expected a table of measure = target", key=f"{key_prefix}.kpi_targets")
    for name, target in kpis.items():
        if name not in KPI_KEYS:
            raise ConfigError(f"unknown measure (one of {', '.join(KPI_KEYS)})", key=f"{key_prefix}.kpi_targets.{name}")
        pol.kpi_targets[name] = _typed(target, float, f"{key_prefix}.kpi_targets.{name}")
    pol.measures = parse_measures(table.get("measures"), pol.kpi_targets, key_prefix)
    budgeted = table.get("budgeted", {})
    if not isinstance(budgeted, dict):
        raise ConfigError('expected a table of account = { FY2027 = amount }', key=f"{key_prefix}.budgeted")
    for account, years in budgeted.items():
        bkey = f'{key_prefix}.budgeted."{account}"'
        if not isinstance(years, dict):
            raise ConfigError('expected a table like { FY2027 = 60000 }', key=bkey)
        for fy, amount in years.items():
            digits = fy.upper().removeprefix("FY")
            if not (digits.isdigit() and len(digits) == 4):
                raise ConfigError("fiscal years are written FY2027", key=f"{bkey}.{fy}")
            pol.budgeted.setdefault(account, {})[int(digits)] = _typed(amount, float, f"{bkey}.{fy}")
    refresh = table.get("refresh", {})
    if not isinstance(refresh, dict):
        raise ConfigError("expected a table of device classes", key=f"{key_prefix}.refresh")
    for cls, rule in refresh.items():
        pol.refresh[cls] = _parse_rule(rule, f"{key_prefix}.refresh.{cls}", pol.refresh.get(cls))
    depts = table.get("departments", {})
    if not isinstance(depts, dict):
        raise ConfigError("expected a table of departments", key=f"{key_prefix}.departments")
    for name, dtable in depts.items():
        dkey = f"{key_prefix}.departments.{name}"
        if not isinstance(dtable, dict):
            raise ConfigError("expected a table", key=dkey)
        dept = Department()
        for k, v in dtable.items():
            if k == "budget_line":
                dept.budget_line = _typed(v, str, f"{dkey}.budget_line")
            elif k == "refresh":
                if not isinstance(v, dict):
                    raise ConfigError("expected a table of device classes", key=f"{dkey}.refresh")
                for cls, rule in v.items():
                    dept.refresh[cls] = _parse_rule(rule, f"{dkey}.refresh.{cls}", pol.refresh.get(cls))
            elif k == "operating_budget_line":
                dept.operating_budget_line = _typed(v, str, f"{dkey}.operating_budget_line")
            else:
                raise ConfigError(
                    "unknown key (allowed: budget_line, operating_budget_line, refresh)", key=f"{dkey}.{k}"
                )
        pol.departments[name] = dept
    return pol
