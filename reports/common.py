"""Small shared pieces of the reports: check groups, fiscal years, refresh rules, money.

The reports read the city's policy (``itaudit.policy``), the score (``itaudit.score``)
and the knowledge dates (``itaudit.knowledge``) through the adapters here, so a report
still renders, with the documented defaults, where one of those is missing or older.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

# Which checks answer which scorecard question. IDs are the stable catalogue IDs
# (docs/checks.md); a KPI counts a device as "known" when any of its checks passed or failed.
KPI_CHECKS: dict[str, list[str]] = {
    "refresh": ["HW-001"],  # past refresh age
    "supported": ["EOL-001"],  # OS or firmware past end of security support
    "patched": ["PATCH-001", "PATCH-002"],  # security updates pending; days since last patch
}
# Open findings of these checks pull a replacement forward in the refresh plan.
PULL_NOW = {
    "EOL-001": "its operating system no longer receives security fixes",
    "HW-004": "it cannot run a supported operating system",
}
PULL_SOON = {"EOL-002": "its operating system stops receiving security fixes within a year"}

# Penalty points per failed check, by severity: the fallback device score is 100 minus these.
SEVERITY_WEIGHT = {"critical": 40.0, "high": 20.0, "medium": 8.0, "low": 3.0, "info": 0.0}
SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}

# CITY.md's rules of thumb: years, replacement cost (USD). Every city overrides them.
DEFAULT_REFRESH: dict[str, tuple[float, float]] = {
    "workstation": (5, 1200),
    "laptop": (4, 1600),
    "server": (6, 9000),
    "switch": (7, 3500),
    "router": (7, 6000),
    "firewall": (5, 6000),
    "wireless": (6, 700),
    "ups": (10, 2500),
    "printer": (6, 2000),
    "storage": (5, 6000),
    "camera": (7, 600),
    "other": (6, 1000),
}

# Windows 10 Extended Security Updates: per device, doubling each year from 2025-10-14.
ESU_START = dt.date(2025, 10, 14)
ESU_PRICES = (61.0, 122.0, 244.0)


@dataclass(frozen=True)
class RefreshRule:
    """How long a device class lasts, what replacing one costs and which line pays."""

    years: float
    cost: float
    budget_line: str | None = None
    capital: bool = False


def fy_start_month(policy: Any) -> int:
    """The month the city's fiscal year starts (default July)."""
    month = getattr(policy, "fiscal_year_start_month", None)
    return int(month) if isinstance(month, int) and 1 <= month <= 12 else 7


def fiscal_year_of(day: dt.date, start_month: int) -> int:
    """The fiscal year a date falls in, named by the year it ends (FY2027 = Jul 2026–Jun 2027)."""
    try:
        from itaudit.policy import fiscal_year_of as policy_fy

        return int(policy_fy(day, start_month))
    except (ImportError, AttributeError, TypeError):
        if start_month == 1:
            return day.year
        return day.year + 1 if day.month >= start_month else day.year


def fiscal_year_bounds(fy: int, start_month: int) -> tuple[dt.date, dt.date]:
    """First and last day of fiscal year ``fy``."""
    start_year = fy if start_month == 1 else fy - 1
    start = dt.date(start_year, start_month, 1)
    end = dt.date(start_year + 1, start_month, 1) - dt.timedelta(days=1)
    return start, end


def refresh_rule(
    policy: Any, kind: str | None, department: str | None, tags: list[str] | tuple[str, ...] = ()
) -> RefreshRule:
    """The refresh rule for a device (``Policy.refresh_for``: department first), else the defaults."""
    kind = kind or "other"
    fn = getattr(policy, "refresh_for", None)
    if callable(fn):
        try:
            r = fn(kind, department, tags=tuple(tags))
        except (KeyError, TypeError, ValueError):
            r = None
        if r is not None and getattr(r, "years", None):
            return RefreshRule(
                float(r.years),
                float(r.cost),
                getattr(r, "budget_line", None),
                bool(getattr(r, "capital", False)),
            )
    years, cost = DEFAULT_REFRESH.get(kind, DEFAULT_REFRESH["other"])
    return RefreshRule(years, cost, None, cost >= 5000)


def score_weights(policy: Any = None) -> dict[str, float]:
    """Severity points per failed check: ``itaudit.score``'s shipped table when present, else ours."""
    try:
        from itaudit import score as score_mod

        points = score_mod.default_weights()["severity_points"]
        return {str(k): float(v) for k, v in dict(points).items()}
    except Exception:  # noqa: BLE001 - missing or broken weights: fall back to the documented defaults
        return dict(SEVERITY_WEIGHT)


def criticality_weight(policy: Any, tags: list[str]) -> float:
    """A device's criticality weight (``Policy.criticality_weight``; 1.0 without a policy)."""
    fn = getattr(policy, "criticality_weight", None)
    if callable(fn):
        try:
            return float(fn(tags))
        except (TypeError, ValueError, KeyError):
            pass
    return 1.0


def data_dates() -> dict[str, str]:
    """Dates of the shipped knowledge (lifecycle, KEV), or an empty dict when unavailable."""
    try:
        from itaudit.knowledge import Knowledge

        dates = Knowledge.load().data_dates()
        return {str(k): str(v) for k, v in dict(dates).items()}
    except Exception:  # noqa: BLE001 - a report must render even when knowledge is broken
        return {}


def money(amount: float | None, currency: str = "USD") -> str:
    """Format money for a manager: $1,234 (no cents)."""
    if amount is None:
        return "—"
    sign = "-" if amount < 0 else ""
    symbol = "$" if currency == "USD" else ""
    text = f"{sign}{symbol}{abs(amount):,.0f}"
    return text if symbol else f"{text} {currency}"


def budget_line_label(city: Any, account: str | None) -> str:
    """'101-1410-5740 IT capital equipment' for a known line; the account alone otherwise."""
    if not account:
        return "no budget line set"
    line = getattr(city, "budget_lines", {}).get(account)
    return f"{account} {line.name}" if line else account


def parse_day(value: Any) -> dt.date | None:
    """A date from an ISO string (or date), None when missing or malformed."""
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def device_label(row: dict[str, Any]) -> str:
    """How a person names a device: config name, else hostname, else address."""
    return str(row.get("device_name") or row.get("name") or row.get("hostname") or row.get("address") or "?")


def plural(n: int, one: str, many: str | None = None) -> str:
    """'1 device', '3 devices'."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"
