"""A generated city with 24 months of history whose verdicts come from the real checks.

Each device carries the facts parsed from a recording of a real system (the
``expected.json`` beside each case under ``tests/fixtures/``), an asset-register purchase
date and a department. Every month the city is "scanned": the registered checks run on
those facts at that month's as-of date (``run_checks``, as ``itaudit.scan`` does) and the
result is recorded through the real store API. Some Windows 10 PCs are replaced over the
months (their facts become a Windows 11 recording's, with a new purchase date), so the
history shows replacements and their cost.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from itaudit.checking import CheckContext, run_checks
from itaudit.cohort import COLUMNS, FORMAT
from itaudit.knowledge import Knowledge
from itaudit.measures import default_measures
from itaudit.model import CollectResult, DeviceFacts, ResultStatus, Target
from itaudit.plugins import load_checks
from itaudit.store import Store
from tests.report_city import CRITICALITY, city_config

FIXTURES = Path(__file__).parent / "fixtures"
# (fixture case, kind, share of the fleet)
CASES = [
    ("windows/win10-22h2", "workstation", 0.35),
    ("windows/win11-24h2", "workstation", 0.2),
    ("windows/win11-23h2", "laptop", 0.1),
    ("windows/winserver-2016", "server", 0.06),
    ("windows/winserver-2019", "server", 0.05),
    ("windows/winserver-2012r2", "server", 0.03),
    ("linux/ubuntu-22.04", "server", 0.06),
    ("linux/ubuntu-20.04", "server", 0.04),
    ("linux/debian-12", "server", 0.05),
    ("linux/centos-7", "server", 0.02),
    ("linux/rhel-9", "server", 0.04),
]
DEPTS = ["City Hall", "Police", "Fire", "Water", "Library", "Finance", "Public Works"]


def fixture_facts(case: str) -> DeviceFacts:
    """A recorded system's expected facts (dotted keys) as DeviceFacts."""
    flat = json.loads((FIXTURES / case / "expected.json").read_text(encoding="utf-8"))
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        if "." not in key or key.startswith(("posture.", "identity.")) and key != "identity.kind":
            continue  # listening services and posture are not what a history needs; keep it lean
        section, name = key.split(".", 1)
        nested.setdefault(section, {})[name] = value
    facts = DeviceFacts.from_dict(nested)
    facts.sources = {"fixture": case}
    return facts


def _month(end: dt.date, back: int) -> dt.date:
    idx = end.year * 12 + end.month - 1 - back
    return dt.date(idx // 12, idx % 12 + 1, min(end.day, 28))


def build(db: Path, *, n: int = 60, months: int = 24, end: dt.date = dt.date(2026, 11, 20),
          seed: int = 11, city_id: str = "springfield", name: str = "Springfield") -> tuple[Any, Store]:
    """Create ``db`` with ``months`` monthly scans ending at ``end``; return (city, store)."""
    city = city_config(db, city_id=city_id, name=name)
    store = Store(db)
    rng = random.Random(seed)
    knowledge = Knowledge.load()
    specs = sorted(load_checks().values(), key=lambda s: s.id)
    devs = []
    for i in range(n):
        case, kind, _ = rng.choices(CASES, [c[2] for c in CASES])[0]
        dept = rng.choice(DEPTS)
        purchase = end - dt.timedelta(days=rng.randint(300, 365 * 7))
        replaced = rng.randint(3, max(3, months - 2)) if "win10" in case and rng.random() < 0.5 else None
        devs.append({"i": i, "case": case, "kind": kind, "dept": dept, "purchase": purchase, "replaced": replaced})
    for m in range(months):
        day = _month(end, months - 1 - m)
        now = f"{day.isoformat()}T09:00:00+00:00"
        scan_id = store.begin_scan(city.id, day, n, now=now)
        for d in devs:
            case, purchase = d["case"], d["purchase"]
            if d["replaced"] is not None and m >= d["replaced"]:
                case = "windows/win11-24h2"
                purchase = _month(end, months - 1 - d["replaced"]) - dt.timedelta(days=10)
            net = 31 if case != d["case"] else 30  # a replacement PC comes up on a new address (DHCP)
            target = Target(address=f"10.{net}.{d['i'] // 250}.{d['i'] % 250 + 1}", protocol="ssh", city_id=city.id,
                            department=d["dept"], kind=d["kind"], purchase_date=purchase,
                            criticality=CRITICALITY.get(d["dept"], []))
            facts = fixture_facts(case)
            facts.identity.hostname = f"{d['dept'].split()[0].lower()}-{d['kind'][:3]}-{d['i']:03d}"
            facts.identity.serial = f"HC{d['i']:05d}" + ("R" if case != d["case"] else "")
            facts.collected_at = now
            res = CollectResult(target, ResultStatus.OK, facts=facts)
            record = store.device_record(res, now=now)
            findings = run_checks(facts, CheckContext(as_of=day, device=record, policy=city.policy,
                                                      knowledge=knowledge), specs)
            store.record_result(scan_id, res, findings, now=now)
        store.finish_scan(scan_id, now=now)
    return city, store


def write_open_data(path: Path | str, city: str, rows: Iterable[dict[str, Any]]) -> Path:
    """A peer city's open-data file with format and city columns (tests of itaudit.cohort)."""
    defaults = default_measures()
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in rows:
            spec = defaults.get(r["measure"])
            w.writerow([FORMAT, city, r["period"], r["measure"], spec.label if spec else r["measure"],
                        _cell(r.get("target")), spec.better if spec else "", _cell(r.get("actual")), "",
                        _cell(r.get("numerator")), _cell(r.get("denominator")), r.get("unit", ""), ""])
    return path


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)
