"""The technician worklist: every open finding, sorted by risk, grouped by device, with the fix.

Risk of a finding = its severity weight times the device's criticality weight (public
safety, water, finance … from the city's policy). Devices are ordered by their worst
finding, then by the sum; inside a device, findings by risk.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from itaudit import rules
from itaudit.config import CityConfig
from itaudit.store import Store
from reports import export
from reports.common import (
    budget_line_label,
    data_dates,
    data_warnings,
    device_label,
    parse_day,
    policy_of,
    score_weights,
)
from reports.pdf import html_to_pdf
from reports.render import render

FORMATS = ("html", "csv", "xlsx", "json", "pdf")


@dataclass
class WorkItem:
    check_id: str
    severity: str
    risk: float
    title: str
    summary: str
    detail: str
    evidence: str
    remediation: str
    cost: float | None
    cost_kind: str
    budget_line: str
    first_seen: str
    days_open: int | None
    references: list[str]
    fiscal_year: int | None = None  # the fiscal year its cost falls in (the plan's, for a replacement)
    # How the cost counts in "what fixing costs": "" (on its own), "replacement" (the device's one
    # replacement), "covered by the replacement" (a fix the replacement makes moot), "same replacement".
    cost_note: str = ""
    cost_basis: str = ""  # how the amount was worked out, with the source of each figure


@dataclass
class WorkDevice:
    device_id: int
    name: str
    address: str
    kind: str
    department: str
    os: str
    criticality: list[str]
    risk: float
    items: list[WorkItem] = field(default_factory=list)
    # Not checked in the last scan: its findings are the last known ones (as of last_checked).
    last_known: bool = False
    last_checked: str = ""


@dataclass
class Worklist:
    city_id: str
    city_name: str
    as_of: str
    devices: list[WorkDevice]
    total_findings: int
    unreachable: list[tuple[str, str]]
    # Found on the city's networks by discovery, not managed: (address, what its ports suggest, open ports)
    unmanaged: list[tuple[str, str, str]] = field(default_factory=list)
    data_dates: dict[str, str] = field(default_factory=dict)
    data_warnings: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def build_worklist(city: CityConfig, store: Store, *, as_of: dt.date) -> Worklist:
    """Every finding open now, grouped by device, riskiest first."""
    policy = policy_of(city)
    weights = score_weights(policy)
    current = policy.fiscal_year(as_of)
    rows = store.open_findings()
    # How each finding's cost counts: the one rule the summary's "what fixing costs" uses.
    counted: dict[tuple[int, str], str] = {}
    for r in rules.remedies(rows, current):
        for n, check_id in enumerate(r.check_ids):
            label = ("replacement" if n == 0 else "same replacement") if r.replacement else ""
            counted[(r.device_id, check_id)] = label
    latest = store.latest_scan()
    unreachable_rows = store.unreachable_devices(latest.id) if latest else []
    down = {int(r["device_id"]): r for r in unreachable_rows}
    devices: dict[int, WorkDevice] = {}
    weight_of: dict[str, tuple[list[str], float]] = {}  # criticality as stored -> (tags, weight), once each
    for f in rows:
        raw_tags = f["criticality"] or ""
        if raw_tags not in weight_of:
            decoded = json.loads(raw_tags) if raw_tags else []
            weight_of[raw_tags] = (decoded, policy.criticality_weight(decoded))
        tags, weight = weight_of[raw_tags]
        dev = devices.get(f["device_id"])
        if dev is None:
            gone = down.get(int(f["device_id"]))
            dev = devices[f["device_id"]] = WorkDevice(
                device_id=f["device_id"],
                name=device_label(f),
                address=f["address"] or "",
                kind=f["kind"] or "",
                department=f["department"] or "",
                os=" ".join(x for x in (f["os_name"], f["os_version"]) if x),
                criticality=list(tags),
                risk=0.0,
                last_known=gone is not None,
                last_checked=((gone or {}).get("last_success") or "")[:10],
            )
        first = parse_day(f["first_seen"])
        risk = weights.get(f["severity"], 0.0) * weight
        note = counted.get((int(f["device_id"]), f["check_id"]), "covered by the replacement")
        if not f["cost_amount"]:
            note = ""
        dev.items.append(
            WorkItem(
                check_id=f["check_id"],
                severity=f["severity"],
                risk=round(risk, 1),
                title=f["title"] or f["check_id"],
                summary=f["summary"] or "",
                detail=f["detail"] or "",
                evidence=f["evidence"] or "",
                remediation=f["remediation"] or "",
                cost=f["cost_amount"],
                cost_kind=f["cost_kind"] or "",
                budget_line=budget_line_label(city, f["budget_line"]) if f["budget_line"] else "",
                first_seen=(f["first_seen"] or "")[:10],
                days_open=(as_of - first).days if first else None,
                references=json.loads(f["refs"]) if f["refs"] else [],
                fiscal_year=max(current, int(f["cost_fiscal_year"] or current)) if f["cost_amount"] else None,
                cost_note=note,
                cost_basis=f["cost_basis"] or "",
            )
        )
    for dev in devices.values():
        dev.items.sort(key=lambda i: (-i.risk, i.check_id))
        dev.risk = round(sum(i.risk for i in dev.items), 1)
    ordered = sorted(devices.values(), key=lambda d: (-d.items[0].risk, -d.risk, d.name))
    unreachable = [
        (device_label(r), f"{r['error_kind'] or 'error'}: {r['error'] or ''}".strip(": "))
        for r in unreachable_rows
    ]
    unmanaged = [(r["address"], r["guess"] or "unknown device", ", ".join(str(p) for p in r["open_ports"]))
                 for r in store.unmanaged_sightings()]
    return Worklist(
        city_id=city.id,
        unmanaged=unmanaged,
        city_name=city.name,
        as_of=as_of.isoformat(),
        devices=ordered,
        total_findings=sum(len(d.items) for d in ordered),
        unreachable=unreachable,
        data_dates=data_dates(),
        data_warnings=data_warnings(city, as_of),
    )


HEADER = [
    "rank",
    "device",
    "address",
    "kind",
    "department",
    "check_id",
    "severity",
    "risk",
    "title",
    "summary",
    "evidence",
    "remediation",
    "cost",
    "cost_kind",
    "budget_line",
    "fiscal_year",
    "cost_counts_as",
    "cost_basis",
    "first_seen",
    "days_open",
    "references",
    "last_known",
]


def _rows(wl: Worklist) -> list[list[Any]]:
    rows = []
    for rank, d in enumerate(wl.devices, 1):
        for i in d.items:
            rows.append(
                [
                    rank,
                    d.name,
                    d.address,
                    d.kind,
                    d.department,
                    i.check_id,
                    i.severity,
                    i.risk,
                    i.title,
                    i.summary,
                    i.evidence,
                    i.remediation,
                    i.cost,
                    i.cost_kind,
                    i.budget_line,
                    f"FY{i.fiscal_year}" if i.fiscal_year else "",
                    i.cost_note,
                    i.cost_basis,
                    i.first_seen,
                    i.days_open,
                    "; ".join(i.references),
                    f"not checked in the last scan; last checked {d.last_checked or 'never'}" if d.last_known else "",
                ]
            )
    return rows


def write_worklist(
    city: CityConfig, store: Store, *, as_of: dt.date, out_dir: Path, formats: tuple[str, ...] = ("html", "csv")
) -> list[Path]:
    """Write the technician worklist (HTML, CSV, XLSX, JSON, PDF as asked); return the paths."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown worklist format {', '.join(bad)} (choose from {', '.join(FORMATS)})")
    wl = build_worklist(city, store, as_of=as_of)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{city.id}-worklist-{as_of.isoformat()}"
    paths: list[Path] = []
    html = stem.with_suffix(".html")
    if "html" in formats or "pdf" in formats:
        paths.append(export.write_text(html, render("worklist.html.j2", w=wl)))
    if "pdf" in formats:
        paths.append(html_to_pdf(html, stem.with_suffix(".pdf")))
    if "csv" in formats:
        paths.append(export.write_csv(stem.with_suffix(".csv"), HEADER, _rows(wl)))
    if "xlsx" in formats:
        paths.append(
            export.write_xlsx(
                stem.with_suffix(".xlsx"), [("Worklist", HEADER, _rows(wl))], money_columns={"Worklist": {12}}
            )
        )
    if "json" in formats:
        paths.append(export.write_text(stem.with_suffix(".json"), wl.to_json()))
    return paths
