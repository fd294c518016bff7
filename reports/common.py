"""Small shared pieces of the reports: check groups, fiscal years, the city's policy, money.

The reports read the city's policy (``itaudit.policy``: refresh rules, budget lines,
criticality weights, fiscal years), the score (``itaudit.score``) and the knowledge dates
(``itaudit.knowledge``) through the adapters here; a city object without a policy gets the
shipped defaults (``Policy()``), never a second copy of them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from itaudit import score
from itaudit.policy import Policy, fiscal_year_of
from itaudit.rules import SEVERITY_RANK

# Re-exported: the reports' fiscal-year rule is the policy's, their severity order the model's.
__all__ = ["SEVERITY_RANK", "fiscal_year_of"]

# Which checks answer which scorecard question. IDs are the stable catalogue IDs
# (docs/checks.md); a KPI counts a device as "known" when any of its checks passed or failed.
KPI_CHECKS: dict[str, list[str]] = {
    "refresh": ["HW-001"],  # past refresh age
    "supported": ["EOL-001"],  # OS or firmware past end of security support
    "patched": ["PATCH-001", "PATCH-002"],  # security updates pending; days since last patch
}
# Windows 10 22H2 left support on 2025-10-14: paid Extended Security Updates start then (their
# prices: the offer below in itaudit/data/extended_support.json, read by ``rules.deferral_price``).
ESU_START = dt.date(2025, 10, 14)
WINDOWS10_ESU = "windows-10-esu"


def policy_of(city: Any) -> Policy:
    """The city's ``Policy`` (``city.policy``), else the shipped defaults."""
    pol = getattr(city, "policy", None)
    return pol if isinstance(pol, Policy) else Policy()


def fy_start_month(policy: Any) -> int:
    """The month the city's fiscal year starts (default July)."""
    month = getattr(policy, "fiscal_year_start_month", None)
    return int(month) if isinstance(month, int) and 1 <= month <= 12 else 7


def score_weights(policy: Any = None) -> dict[str, float]:
    """Severity points per failed check: ``itaudit.score``'s shipped table (one copy of it)."""
    points = score.default_weights()["severity_points"]
    return {str(k): float(v) for k, v in dict(points).items()}


def data_dates() -> dict[str, str]:
    """Dates of the shipped knowledge (lifecycle, KEV), or an empty dict when unavailable."""
    try:
        from itaudit.knowledge import Knowledge

        dates = Knowledge.load().data_dates()
        return {str(k): str(v) for k, v in dict(dates).items()}
    except Exception:  # noqa: BLE001 - a report must render even when knowledge is broken
        return {}


# Data sets whose age a report must warn about: name in the warning -> key of data_dates().
VULN_DATA = {"CISA KEV catalog": "kev", "vulnerability version data (CVE records)": "vulns"}


def data_age_warnings(dates: dict[str, str], as_of: dt.date, max_age_days: int = 30) -> list[str]:
    """One plain sentence per exploited-vulnerability data set older than ``max_age_days``.

    ``dates`` is ``data_dates()``; a missing or unreadable date is a warning too, since a
    report must not look current on data nobody can date.
    """
    out = []
    for name, key in VULN_DATA.items():
        day = parse_day(dates.get(key))
        if day is None:
            out.append(f"The {name} has no date: findings about exploited flaws may be out of date.")
            continue
        age = (as_of - day).days
        if age > max_age_days:
            missing = ("flaws added since are missing" if key == "kev"
                       else "version ranges and fixes published since are missing")
            out.append(f"The {name} is dated {day.isoformat()} ({age} days old, over {max_age_days}): "
                       f"{missing}; run `itaudit data update`.")
    return out


def data_warnings(city: Any, as_of: dt.date) -> list[str]:
    """The data-age warnings every report prints (the city's ``vuln_data_max_age_days``)."""
    return data_age_warnings(data_dates(), as_of, policy_of(city).vuln_data_max_age_days)


def money_cents(amount: float | None, currency: str = "USD") -> str:
    """Money as recorded, to the cent: $1,234.56 (a recorded cost, not an estimate)."""
    if amount is None:
        return "—"
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}" if currency == "USD" else f"{sign}{abs(amount):,.2f} {currency}"


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
