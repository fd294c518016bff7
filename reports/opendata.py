"""The city's IT performance measures as open data, ready for a Socrata or CKAN portal.

Three files: a long-format CSV (one row per month and measure: period, measure, target,
actual, status, numerator, denominator, unit, data date), a Frictionless
``datapackage.json`` describing it, and a DCAT (JSON-LD) catalogue entry.

Only the city-wide figures of the monthly scorecard (``reports.model``: the one place they
are computed) leave in these files. No device name, address, serial, vulnerability or finding
text is read into them: they are built from the scorecard's numbers and fixed labels, so
nothing a device says can reach a resident. ``tests/test_report_opendata.py`` proves it on a
city with hostile device names.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

from itaudit.store import Store
from reports import export
from reports.model import KPI_DEFS, build_monthly
from reports.render import RAG_WORDS

FORMATS = ("csv",)  # the three files belong together: the CSV, datapackage.json and the DCAT entry
COLUMNS = [
    ("period", "string", "Month the measure is for (YYYY-MM)."),
    ("measure_id", "string", "Stable identifier of the measure."),
    ("measure", "string", "What is measured, in plain words."),
    ("target", "number", "The city's target."),
    ("better", "string", "'higher' or 'lower': which way is better."),
    ("actual", "number", "The month's value (blank when there was no scan that month)."),
    ("status", "string", "On target, Near target, Off target or No data."),
    ("numerator", "number", "Devices meeting the measure (or counted, for a count measure)."),
    ("denominator", "number", "Devices the measure is taken over (blank for a count measure)."),
    ("unit", "string", "'percent' or 'devices'."),
    ("data_date", "date", "Date of the scan the value comes from."),
]
_SLUG = re.compile(r"[^a-z0-9]+")


def opendata_rows(city: Any, store: Store, *, as_of: dt.date) -> list[dict[str, Any]]:
    """One row per month (last 12) and measure, from the monthly scorecard; months without a scan
    appear with status "No data"."""
    rep = build_monthly(city, store, as_of=as_of)
    scan_dates = {s.as_of[:7]: s.as_of[:10] for s in store.report_scans() if s.as_of[:10] <= as_of.isoformat()}
    ids = {key for key, *_ in KPI_DEFS}
    rows: list[dict[str, Any]] = []
    for k in rep.kpis:
        assert k.key in ids  # the measure list is fixed: labels never come from device data
        for i, month in enumerate(k.trend_months):
            value = k.trend[i] if i < len(k.trend) else None
            num, den = (k.trend_counts[i] if i < len(k.trend_counts) and k.trend_counts[i] else (None, None))
            rows.append({
                "period": month,
                "measure_id": k.key,
                "measure": k.label,
                "target": k.target,
                "better": k.better,
                "actual": None if value is None else round(float(value), 2),
                "status": RAG_WORDS[k.trend_rag[i] if i < len(k.trend_rag) else "none"],
                "numerator": None if value is None or num is None else num,
                "denominator": None if value is None or den is None else den,
                "unit": "percent" if k.unit == "%" else "devices",
                "data_date": scan_dates.get(month) if value is not None else None,
            })
    # Months before the city's first scan are not "no data" months: they are before the series.
    first = min((r["period"] for r in rows if r["actual"] is not None), default=None)
    rows = [r for r in rows if first is not None and r["period"] >= first]
    return sorted(rows, key=lambda r: (r["period"], r["measure_id"]))


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([c for c, _, _ in COLUMNS])
    for r in rows:
        w.writerow([export.safe_cell("" if r[c] is None else _num(r[c])) for c, _, _ in COLUMNS])
    return buf.getvalue()


def _num(v: Any) -> Any:
    return int(v) if isinstance(v, float) and v.is_integer() else v


def datapackage(city: Any, csv_name: str, rows: list[dict[str, Any]], as_of: dt.date) -> dict[str, Any]:
    """A Frictionless Tabular Data Package descriptor for the CSV."""
    name = _SLUG.sub("-", f"{city.id}-it-performance-measures".lower()).strip("-")
    periods = [r["period"] for r in rows]
    return {
        "profile": "tabular-data-package",
        "name": name,
        "title": f"{city.name}: IT security and hardware performance measures",
        "description": ("Monthly city-wide measures of the city's IT: devices within refresh age, on supported "
                        "software, patched within policy, without critical exposure, checked in the last 30 "
                        "days, and devices that could not be checked. Counts and shares only; no device details."),
        "created": as_of.isoformat(),
        "temporal": {"start": min(periods, default=None), "end": max(periods, default=None)},
        "keywords": ["information technology", "cybersecurity", "performance measures", "KPI"],
        "contributors": [{"title": city.name, "role": "publisher"}],
        "resources": [{
            "name": "measures",
            "path": csv_name,
            "profile": "tabular-data-resource",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "schema": {
                "fields": [{"name": c, "type": t, "description": d} for c, t, d in COLUMNS],
                "primaryKey": ["period", "measure_id"],
                "missingValues": [""],
            },
        }],
    }


def dcat_entry(city: Any, csv_name: str, package: dict[str, Any], as_of: dt.date) -> dict[str, Any]:
    """A DCAT catalogue entry (JSON-LD) for the data set: what CKAN's DCAT harvester and
    Socrata's metadata import read."""
    return {
        "@context": {"dcat": "http://www.w3.org/ns/dcat#", "dct": "http://purl.org/dc/terms/",
                     "foaf": "http://xmlns.com/foaf/0.1/"},
        "@type": "dcat:Dataset",
        "dct:identifier": package["name"],
        "dct:title": package["title"],
        "dct:description": package["description"],
        "dct:publisher": {"@type": "foaf:Organization", "foaf:name": city.name},
        "dct:modified": as_of.isoformat(),
        "dct:temporal": {"@type": "dct:PeriodOfTime", "dcat:startDate": package["temporal"]["start"],
                         "dcat:endDate": package["temporal"]["end"]},
        "dct:accrualPeriodicity": {"@id": "http://purl.org/cld/freq/monthly"},
        "dcat:keyword": package["keywords"],
        "dcat:distribution": [{
            "@type": "dcat:Distribution",
            "dct:title": f"{package['title']} (CSV)",
            "dcat:downloadURL": csv_name,
            "dcat:mediaType": "text/csv",
            "dct:format": "CSV",
            "dct:conformsTo": "datapackage.json",
        }],
    }


def write_opendata(
    city: Any,
    store: Store,
    *,
    as_of: dt.date,
    out_dir: Path,
    formats: tuple[str, ...] = FORMATS,
) -> list[Path]:
    """Write the CSV, ``datapackage.json`` and ``dcat.jsonld`` into ``out_dir``."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown report format {', '.join(bad)} (choose from {', '.join(FORMATS)})")
    rows = opendata_rows(city, store, as_of=as_of)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_name = f"{city.id}-it-measures-{as_of.strftime('%Y-%m')}.csv"
    package = datapackage(city, csv_name, rows, as_of)
    return [
        export.write_text(out_dir / csv_name, _csv_text(rows)),
        export.write_text(out_dir / "datapackage.json", json.dumps(package, indent=2) + "\n"),
        export.write_text(out_dir / "dcat.jsonld", json.dumps(dcat_entry(city, csv_name, package, as_of),
                                                             indent=2) + "\n"),
    ]
