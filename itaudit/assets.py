"""Import a city's asset register (CSV) and match it to the devices itaudit has seen.

The register is the better source for purchase date, cost, department, budget line and
criticality than anything a device says about itself. Rows are checked one by one: a bad
row is skipped with its reason and never touches the database; a good row is stored in the
``assets`` table and, when it matches a device (serial, then address, then host name),
fills that device's register fields — all in one transaction per row.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itaudit.store import Store, host_key, utcnow

COLUMNS = ("address", "serial", "hostname", "purchase_date", "cost", "department", "budget_line", "criticality")
ALIASES = {"ip": "address", "ip_address": "address", "serial_number": "serial", "host": "hostname",
           "name": "hostname", "purchased": "purchase_date", "purchase": "purchase_date", "dept": "department",
           "account": "budget_line", "price": "cost"}
_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y", "%d.%m.%Y")


@dataclass
class ImportResult:
    imported: int = 0
    matched: int = 0
    unmatched: list[tuple[int, str]] = field(default_factory=list)  # (row number, what identifies it)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)
    ignored_columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"imported": self.imported, "matched": self.matched,
                "unmatched": [{"row": r, "asset": a} for r, a in self.unmatched],
                "skipped": [{"row": r, "reason": why} for r, why in self.skipped],
                "ignored_columns": self.ignored_columns}


def _norm(header: str) -> str:
    key = re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")
    return ALIASES.get(key, key)


def _date(text: str) -> dt.date:
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"purchase_date {text!r} is not a date (use YYYY-MM-DD)")


def _clean_row(raw: dict[str, str], budget_lines: set[str], today: dt.date) -> dict[str, Any]:
    """Validate one row; raise ValueError with the reason."""
    row = {k: (v or "").strip() for k, v in raw.items() if k in COLUMNS}
    if not (row.get("address") or row.get("serial") or row.get("hostname")):
        raise ValueError("no address, serial or hostname to identify the device")
    out: dict[str, Any] = {k: row.get(k) or None for k in ("address", "serial", "hostname", "department")}
    if row.get("purchase_date"):
        day = _date(row["purchase_date"])
        if day > today or day.year < 1980:
            raise ValueError(f"purchase_date {day} is not plausible")
        out["purchase_date"] = day.isoformat()
    if row.get("cost"):
        try:
            out["cost"] = float(row["cost"].replace("$", "").replace(",", ""))
        except ValueError:
            raise ValueError(f"cost {row['cost']!r} is not a number") from None
        if out["cost"] < 0:
            raise ValueError("cost is negative")
    if row.get("budget_line"):
        if budget_lines and row["budget_line"] not in budget_lines:
            raise ValueError(f"budget line {row['budget_line']} is not defined for this city")
        out["budget_line"] = row["budget_line"]
    if row.get("criticality"):
        out["criticality"] = [t.strip().lower() for t in re.split(r"[;|,]", row["criticality"]) if t.strip()]
    return out


def _match(store: Store, row: dict[str, Any]) -> int | None:
    for column, value in (("serial", row.get("serial")), ("address", row.get("address")),
                          ("hostname", row.get("hostname")), ("name", row.get("hostname")),
                          ("host_key", host_key(row.get("hostname")))):
        if value:
            hit = store.db.execute(f"select id from devices where lower({column}) = lower(?) "  # noqa: S608
                                   "order by last_seen desc limit 1", [value]).fetchone()
            if hit:
                return int(hit[0])
    return None


REGISTER_FIELDS = ("purchase_date", "department", "budget_line", "criticality")


def _apply(store: Store, device_id: int, values: dict[str, Any]) -> None:
    register = {k: values[k] for k in REGISTER_FIELDS if values.get(k) is not None}
    if register:
        store._update("devices", device_id, register)


def apply_pending(store: Store) -> int:
    """Register rows not matched at import ("not yet seen") that now match a device: tie them
    to it and fill its register fields. Called after each scan; returns how many matched."""
    if "assets" not in store.db.table_names():
        return 0
    matched = 0
    pending = store.db.execute("select key, address, serial, hostname, purchase_date, department, budget_line, "
                               "criticality from assets where device_id is null").fetchall()
    for key, address, serial, hostname, *fields in pending:
        with store.tx():
            device_id = _match(store, {"address": address, "serial": serial, "hostname": hostname})
            if device_id is None:
                continue
            store.db.execute("update assets set device_id = ? where key = ?", [device_id, key])
            _apply(store, device_id, dict(zip(REGISTER_FIELDS, fields, strict=True)))
        matched += 1
    return matched


def import_register(store: Store, path: Path, *, budget_lines: set[str] | None = None,
                    today: dt.date | None = None) -> ImportResult:
    """Import a CSV asset register row by row; return what was imported, matched and skipped."""
    today = today or dt.date.today()
    result = ImportResult()
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            result.skipped.append((1, "the file has no header row"))
            return result
        headers = [_norm(h or "") for h in reader.fieldnames]
        result.ignored_columns = [h for h, n in zip(reader.fieldnames, headers, strict=True) if n not in COLUMNS]
        reader.fieldnames = headers
        seen: dict[str, int] = {}
        for number, raw in enumerate(reader, start=2):  # row 1 is the header
            try:
                row = _clean_row(raw, budget_lines or set(), today)
            except ValueError as exc:
                result.skipped.append((number, str(exc)))
                continue
            key = (f"serial:{row['serial'].lower()}" if row.get("serial")
                   else f"address:{row['address']}" if row.get("address") else f"host:{row['hostname'].lower()}")
            if key in seen:
                result.skipped.append((number, f"duplicate of row {seen[key]}"))
                continue
            seen[key] = number
            with store.tx():
                device_id = _match(store, row)
                values = {**row, "criticality": json.dumps(row["criticality"]) if row.get("criticality") else None,
                          "key": key, "device_id": device_id, "source": path.name, "source_row": number,
                          "imported_at": utcnow()}
                store.db.execute("delete from assets where key = ?", [key])
                store._insert("assets", values)
                if device_id is not None:
                    _apply(store, device_id, values)
            result.imported += 1
            if device_id is None:
                result.unmatched.append((number, row.get("serial") or row.get("address") or row.get("hostname") or ""))
            else:
                result.matched += 1
    return result
