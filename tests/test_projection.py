"""The "do nothing" projection: re-running the checks at later dates on the stored facts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from itaudit.checking import CheckContext, run_checks
from itaudit.knowledge import Knowledge, windows_build
from itaudit.model import CollectResult, DeviceFacts, ResultStatus, Target
from itaudit.plugins import load_checks
from itaudit.store import Store
from reports.model import build_monthly
from reports.projection import add_months, build_projection
from tests import history_city, report_city

AS_OF = dt.date(2026, 11, 25)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("hist") / "city.db"
    city, store = history_city.build(db, n=50, months=24)
    yield city, store
    store.close()


def _direct(city, store: Store, day: dt.date) -> dict[str, set[int]]:
    """Failing devices (ids) per check when every check runs at ``day`` on the latest scan's facts."""
    scan = store.report_scans()[-1]
    knowledge = Knowledge.load()
    specs = sorted(load_checks().values(), key=lambda s: s.id)
    counts: dict[str, set[int]] = {}
    rows = {r["id"]: r for r in store.devices()}
    for o in store.observations(scan.id):
        facts = DeviceFacts.from_dict(json.loads(o["facts"]))
        row = rows[o["device_id"]]
        target = Target(address=row["address"], protocol="ssh", city_id=city.id, department=row["department"],
                        kind=row["kind"], purchase_date=dt.date.fromisoformat(row["purchase_date"]),
                        criticality=json.loads(row["criticality"] or "[]"))
        record = store.device_record(CollectResult(target, ResultStatus.OK, facts=facts))
        for f in run_checks(facts, CheckContext(as_of=day, device=record, policy=city.policy,
                                                knowledge=knowledge), specs):
            if f.status.value == "fail":
                counts.setdefault(f.check_id, set()).add(o["device_id"])
    return counts


def test_device_counts_equal_the_checks_run_at_the_projected_dates(city):
    c, store = city
    p = build_projection(c, store, as_of=AS_OF)
    scan_day = dt.date.fromisoformat(p.scan_date)
    for months in (0, 12, 24):
        direct = _direct(c, store, add_months(scan_day, months))
        point = p.point(months)
        assert point.past_refresh == len(direct.get("HW-001", ()))
        assert point.unsupported == len(direct.get("EOL-001", ()))
    # The story is not flat: time alone pushes devices past their dates.
    assert p.point(24).past_refresh > p.point(0).past_refresh
    assert p.point(24).unsupported >= p.point(12).unsupported >= p.point(0).unsupported
    # A crossing is a device failing at the horizon that does not fail today.
    today = _direct(c, store, scan_day)
    for months in (12, 24):
        later = _direct(c, store, add_months(scan_day, months))
        for cid in ("HW-001", "EOL-001"):
            assert p.crossing_counts[months].get(cid, 0) == len(later.get(cid, set()) - today.get(cid, set()))
    assert len(p.crossings) == sum(p.crossing_counts[24].values())  # 24 months include the first 12


def test_today_equals_the_scorecard(city):
    c, store = city
    p = build_projection(c, store, as_of=AS_OF)
    rep = build_monthly(c, store, as_of=AS_OF)
    now = p.point(0)
    assert now.score == rep.score
    for k in rep.kpis:
        if k.key in now.measures:
            assert now.measures[k.key] == pytest.approx(k.actual), k.key
    # The score falls as devices age and software support ends, with nothing else changed.
    assert p.point(24).score < now.score


def test_deferral_costs_rise_each_year(city):
    c, store = city
    p = build_projection(c, store, as_of=AS_OF)
    scan = store.report_scans()[-1]
    win10 = 0
    rows = {r["id"]: r for r in store.devices()}
    for o in store.observations(scan.id):
        sw = json.loads(o["facts"])["software"]
        build = windows_build(sw.get("os_version")) or windows_build(sw.get("os_build"))
        if rows[o["device_id"]]["kind"] in ("workstation", "laptop") and build and build < 22000:
            win10 += 1
    assert win10 > 0
    # November 2026 is in the second paid year (from 2025-10-14): $122 a PC, then $244.
    assert [e.price for e in p.esu] == [122.0, 244.0]
    assert p.deferral_cost[12] == 122.0 * win10
    assert p.deferral_cost[24] == (122.0 + 244.0) * win10
    assert len(p.sentences) == 2 and "$" in p.sentences[1]


def test_no_scan_means_no_projection(tmp_path: Path):
    store = Store(tmp_path / "empty.db")
    c = report_city.city_config(tmp_path / "empty.db")
    p = build_projection(c, store, as_of=AS_OF)
    assert not p.has_data and p.points == [] and p.sentences == []
    store.close()


def test_add_months_keeps_month_ends():
    assert add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2026, 11, 20), 24) == dt.date(2028, 11, 20)
