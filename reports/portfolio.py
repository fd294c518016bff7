"""The MSP portfolio: every client city side by side, and an anonymised peer comparison.

Each city's figures come from the same report models the city's own reports use
(``reports.model.build_monthly`` for score, KPIs, trend and cost to fix;
``reports.plan.build_plan`` for the capital refresh plan), read from that city's own
database, so the portfolio never disagrees with a city's monthly summary.

The peer comparison is meant to be sent to one city: it names that city only and counts
the others ("your patch currency is better than 4 of 6 similar cities"). A measure is
compared (count and median) only when at least three peers have a value: "better than 0 of
1 other city" would hand over that one city's figure.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from itaudit.config import CityConfig
from itaudit.store import Store
from reports import export
from reports.common import money
from reports.model import KPI_DEFS, build_monthly, month_label
from reports.render import render

FORMATS = ("html", "json", "csv", "md", "peers")
# What each measure is called when a city is compared with its peers.
PEER_WORDS = {
    "score": "overall IT risk score",
    "refresh": "hardware refresh (devices within refresh age)",
    "supported": "software support (devices on supported software)",
    "patched": "patch currency",
    "exposure": "freedom from critical exposure",
    "freshness": "inventory freshness",
    "uncheckable": "coverage (devices we could not check)",
}
# Size bands for "similar cities": devices known to the audit.
SIZE_BANDS = (
    (0, 99, "under 100 devices"),
    (100, 499, "100–499 devices"),
    (500, 10**9, "500 devices or more"),
)
MIN_PEERS = 3  # peers with a value needed before a measure is compared at all (count and median)
MIN_BAND = MIN_PEERS + 1  # a band with fewer cities (itself included) compares with every city instead


@dataclass
class KpiCell:
    key: str
    label: str
    actual: float | None
    text: str
    target_text: str
    rag: str
    count_text: str = ""  # "3 of 25 devices": the same denominator as the city's summary


@dataclass
class PeerLine:
    key: str
    measure: str
    better_than: int
    of: int
    sentence: str
    median: float | None = None
    level: int = 0  # peers with the same value


@dataclass
class CityColumn:
    city_id: str
    city_name: str
    has_data: bool
    headline: str
    scan_date: str | None = None
    scan_status: str | None = None
    score: float | None = None
    prev_score: float | None = None
    score_trend: list[float | None] = field(default_factory=list)
    devices_total: int = 0
    devices_checked: int = 0
    not_checked: int = 0
    kpis: list[KpiCell] = field(default_factory=list)
    fix_cost: float = 0.0
    top_risk: str | None = None
    capital_years: list[str] = field(default_factory=list)  # "FY2027"
    capital: list[float] = field(default_factory=list)
    capital_total: float = 0.0
    overdue: int = 0
    size_band: str = ""
    peer_group: int = 0
    peers: list[PeerLine] = field(default_factory=list)
    # An MSP's centre ([central]): when this city's site collector last delivered, and whether
    # that is longer ago than central.stale_after_hours (None: not a site-collector city).
    site_last_contact: str | None = None
    site_age_hours: float | None = None
    site_stale: bool | None = None


@dataclass
class Portfolio:
    as_of: str
    month: str
    month_label: str
    cities: list[CityColumn]
    kpi_labels: list[tuple[str, str]]
    trend_labels: list[str]
    total_devices: int = 0
    total_fix_cost: float = 0.0
    total_capital: float = 0.0
    data_dates: dict[str, str] = field(default_factory=dict)
    data_warnings: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """The portfolio model as JSON."""
        return json.dumps(asdict(self), indent=2, default=str)


# --- building -------------------------------------------------------------------------


def _capital(city: CityConfig, store: Store, as_of: dt.date) -> tuple[list[str], list[float], int]:
    """Capital needs by fiscal year: the capital items of the city's refresh plan (the same
    figures as the plan's capital row), overdue devices."""
    from reports.plan import build_plan

    plan = build_plan(city, store, as_of=as_of)
    years = [f"FY{y}" for y in plan.fiscal_years]
    return years, [float(c) for c in plan.capital], int(plan.overdue)


def build_city(city: CityConfig, *, as_of: dt.date, month: str) -> CityColumn:
    """One city's column, from its own database (opened read-only)."""
    if not Path(city.database).exists():
        return CityColumn(city.id, city.name, False, "No scan has been run yet.")
    store = Store(city.database, readonly=True)
    try:
        r = build_monthly(city, store, as_of=as_of, month=month)
        col = CityColumn(
            city.id,
            city.name,
            r.has_data,
            r.headline,
            scan_date=r.scan_date,
            scan_status=r.scan_status,
            score=r.score,
            prev_score=r.prev_score,
            score_trend=list(r.score_trend),
            devices_total=r.devices_total,
            devices_checked=r.devices_checked,
            not_checked=len(r.not_checked),
            fix_cost=r.total_cost,
            top_risk=r.top_risks[0].sentence if r.top_risks else None,
        )
        col.kpis = [
            KpiCell(k.key, k.label, k.actual, k.actual_text, k.target_text, k.rag, k.count_text) for k in r.kpis
        ]
        if r.has_data:
            col.capital_years, col.capital, col.overdue = _capital(city, store, as_of)
            col.capital_total = sum(col.capital)
    finally:
        store.close()
    return col


def _band(devices: int) -> str:
    for lo, hi, label in SIZE_BANDS:
        if lo <= devices <= hi:
            return label
    return SIZE_BANDS[-1][2]


def _value(col: CityColumn, key: str) -> float | None:
    if key == "score":
        return col.score
    for k in col.kpis:
        if k.key == key:
            return k.actual
    return None


def peer_lines(col: CityColumn, peers: list[CityColumn], *, similar: str) -> list[PeerLine]:
    """How ``col`` compares with ``peers`` (other cities), measure by measure, naming none of them."""
    better_lower = {key for key, _, _, _, better in KPI_DEFS if better == "lower"}
    lines = []
    for key, words in PEER_WORDS.items():
        mine = _value(col, key)
        theirs = [v for v in (_value(p, key) for p in peers) if v is not None]
        if mine is None or len(theirs) < MIN_PEERS:
            continue  # with one or two peers, a count or a median gives their figures away
        lower = key in better_lower
        beaten = sum(1 for v in theirs if (mine < v if lower else mine > v))
        level = sum(1 for v in theirs if abs(mine - v) < 1e-9)
        n = len(theirs)  # at least MIN_PEERS, so always "cities"
        if level == n:
            sentence = f"Your {words} is level with all {n} {similar} cities."
        else:
            sentence = f"Your {words} is better than {beaten} of {n} {similar} cities"
            sentence += f" (level with {level})." if level else "."
        median = statistics.median(theirs)
        lines.append(PeerLine(key, words, beaten, n, sentence, median, level))
    return lines


def build_portfolio(
    cfg: Any, *, as_of: dt.date, cities: list[str] | None = None, month: str | None = None
) -> Portfolio:
    """The portfolio across ``cities`` (default: every city in the config)."""
    from reports.common import data_age_warnings, data_dates
    from reports.model import shift_month

    month = month or as_of.strftime("%Y-%m")
    chosen = [cfg.cities[c] for c in cities] if cities else list(cfg.cities.values())
    cols = [build_city(c, as_of=as_of, month=month) for c in chosen]
    if getattr(cfg, "central", None) is not None:
        from itaudit.sitelink import staleness

        sites = staleness(cfg)
        for col in cols:
            s = sites.get(col.city_id, {})
            col.site_last_contact, col.site_age_hours, col.site_stale = (s.get("last_contact"), s.get("age_hours"),
                                                                        s.get("stale"))
    with_data = [c for c in cols if c.has_data]
    for col in with_data:
        col.size_band = _band(col.devices_total)
    for col in with_data:
        band = [p for p in with_data if p is not col and p.size_band == col.size_band]
        if len(band) + 1 >= MIN_BAND:
            peers, similar = band, "similar"
        else:
            peers, similar = [p for p in with_data if p is not col], "other client"
        col.peer_group = len(peers)
        col.peers = peer_lines(col, peers, similar=similar)
    months = [shift_month(month, -i) for i in range(11, -1, -1)]
    return Portfolio(
        as_of=as_of.isoformat(),
        month=month,
        month_label=month_label(month),
        cities=cols,
        kpi_labels=[(key, label) for key, label, *_ in KPI_DEFS],
        trend_labels=[month_label(m)[:3] for m in months],
        total_devices=sum(c.devices_total for c in cols),
        total_fix_cost=sum(c.fix_cost for c in cols),
        total_capital=sum(c.capital_total for c in cols),
        data_dates=data_dates(),
        data_warnings=data_age_warnings(data_dates(), as_of),
    )


# --- writing --------------------------------------------------------------------------


def portfolio_markdown(p: Portfolio) -> str:
    """The portfolio as a Markdown table per topic."""
    out = [
        f"# Portfolio — {p.month_label}",
        "",
        f"{len(p.cities)} cities, {p.total_devices:,} devices. Cost to fix open findings this fiscal year: "
        f"{money(p.total_fix_cost)}. Five-year capital refresh need: {money(p.total_capital)}.",
        "",
        "| City | Score | Change | Checked | Could not check | Cost to fix | 5-year capital |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in p.cities:
        if not c.has_data:
            out.append(f"| {export.md_text(c.city_name)} | — | — | — | — | — | — |")
            continue
        change = "—" if c.prev_score is None or c.score is None else f"{c.score - c.prev_score:+.0f}"
        score = "n/a" if c.score is None else f"{c.score:.0f}"
        out.append(
            f"| {export.md_text(c.city_name)} | {score} | {change} | {c.devices_checked} of "
            f"{c.devices_total} | {c.not_checked} | {money(c.fix_cost)} | {money(c.capital_total)} |"
        )
    out += [
        "",
        "## Scorecard",
        "",
        "| City | " + " | ".join(label for _, label in p.kpi_labels) + " |",
        "|---|" + "---|" * len(p.kpi_labels),
    ]
    for c in p.cities:
        cells = {k.key: f"{k.text} ({k.count_text})" if k.count_text else k.text for k in c.kpis}
        out.append(
            f"| {export.md_text(c.city_name)} | " + " | ".join(cells.get(key, "—") for key, _ in p.kpi_labels) + " |"
        )
    return "\n".join(out) + "\n"


def peer_markdown(p: Portfolio, col: CityColumn) -> str:
    """One city's anonymised peer comparison: its own name and figures, counts of the others."""
    out = [f"# {export.md_text(col.city_name)} — how you compare, {p.month_label}", ""]
    if not col.peers:
        out.append("There are not yet enough other cities with data to compare with.")
        return "\n".join(out) + "\n"
    out.append(
        f"Compared with {col.peer_group} other {'city' if col.peer_group == 1 else 'cities'} "
        f"audited the same way ({col.size_band or 'all sizes'}); no city is named."
    )
    out.append("")
    for line in col.peers:
        median = f" Peer median: {line.median:.0f}." if line.median is not None else ""
        out.append(f"- {line.sentence}{median}")
    return "\n".join(out) + "\n"


def _csv_rows(p: Portfolio) -> list[list[Any]]:
    rows = []
    for c in p.cities:
        kpis = {k.key: k.actual for k in c.kpis}
        rows.append(
            [
                c.city_id,
                c.city_name,
                c.scan_date or "",
                c.scan_status or "",
                "" if c.score is None else round(c.score, 1),
                c.devices_total,
                c.devices_checked,
                c.not_checked,
                round(c.fix_cost, 2),
                round(c.capital_total, 2),
                c.overdue,
            ]
            + ["" if (v := kpis.get(k)) is None else round(v, 1) for k, _ in p.kpi_labels]
        )
    return rows


def write_portfolio(
    cfg: Any,
    *,
    as_of: dt.date,
    out_dir: Path,
    formats: tuple[str, ...] = ("html", "json"),
    cities: list[str] | None = None,
    month: str | None = None,
) -> list[Path]:
    """Write the portfolio (and, with "peers", one anonymised comparison per city); return the paths."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown report format {', '.join(bad)} (choose from {', '.join(FORMATS)})")
    p = build_portfolio(cfg, as_of=as_of, cities=cities, month=month)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"portfolio-{p.month}"
    paths = []
    if "html" in formats:
        paths.append(export.write_text(stem.with_suffix(".html"), render("portfolio.html.j2", p=p)))
    if "json" in formats:
        paths.append(export.write_text(stem.with_suffix(".json"), p.to_json()))
    if "md" in formats:
        paths.append(export.write_text(stem.with_suffix(".md"), portfolio_markdown(p)))
    if "csv" in formats:
        header = [
            "city",
            "name",
            "scan_date",
            "scan_status",
            "score",
            "devices",
            "checked",
            "could_not_check",
            "cost_to_fix",
            "capital_5y",
            "overdue",
        ] + [k for k, _ in p.kpi_labels]
        paths.append(export.write_csv(stem.with_suffix(".csv"), header, _csv_rows(p)))
    if "peers" in formats:
        for col in p.cities:
            # One file per city, in its own folder, so each can be handed over as it is.
            folder = out_dir / "peers" / col.city_id
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{col.city_id}-peers-{p.month}"
            paths.append(export.write_text(folder / f"{name}.md", peer_markdown(p, col)))
            paths.append(
                export.write_json(
                    folder / f"{name}.json",
                    {
                        "city": col.city_id,
                        "name": col.city_name,
                        "month": p.month,
                        "peer_group": col.peer_group,
                        "size_band": col.size_band,
                        "comparisons": [asdict(x) for x in col.peers],
                    },
                )
            )
    return paths
