"""The capital refresh plan: fiscal years, due years, pull-forward, funding gap, deferral, files."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
import report_city

from itaudit.model import CollectResult, Cost, DeviceFacts, Finding, ResultStatus, Severity, Status, Target
from itaudit.store import Store
from reports.common import fiscal_year_bounds, fiscal_year_of
from reports.plan import build_plan, esu_year, write_plan

AS_OF = dt.date(2026, 10, 1)  # FY2027 for a July start


@pytest.mark.parametrize(
    ("day", "start", "fy"),
    [
        (dt.date(2026, 7, 1), 7, 2027),
        (dt.date(2027, 6, 30), 7, 2027),
        (dt.date(2026, 6, 30), 7, 2026),
        (dt.date(2026, 10, 1), 10, 2027),
        (dt.date(2026, 9, 30), 10, 2026),
        (dt.date(2026, 12, 31), 1, 2026),
    ],
)
def test_fiscal_year_is_named_by_the_year_it_ends(day, start, fy):
    assert fiscal_year_of(day, start) == fy


def test_fiscal_year_bounds():
    assert fiscal_year_bounds(2027, 7) == (dt.date(2026, 7, 1), dt.date(2027, 6, 30))
    assert fiscal_year_bounds(2027, 1) == (dt.date(2027, 1, 1), dt.date(2027, 12, 31))


def _device(
    store: Store,
    scan: int,
    n: int,
    kind: str,
    purchase: dt.date | None,
    findings: list[Finding],
    os_name: str = "Debian 12",
    dept: str = "City Hall",
) -> None:
    facts = DeviceFacts()
    facts.identity.serial = f"P{n:04d}"
    facts.identity.hostname = f"dev-{n}"
    facts.software.os_name = os_name
    t = Target(
        address=f"10.9.0.{n}",
        protocol="ssh",
        city_id="springfield",
        kind=kind,
        department=dept,
        purchase_date=purchase,
    )
    store.record_result(
        scan, CollectResult(t, ResultStatus.OK, facts=facts), findings, now="2026-09-30T10:00:00"
    )


def _eol() -> Finding:
    return Finding(
        "EOL-001",
        Status.FAIL,
        Severity.HIGH,
        "OS past end of support",
        "no fixes",
        cost=Cost(1200, "capital", "101-1410-5740"),
    )


@pytest.fixture()
def small(tmp_path: Path):
    city = report_city.city_config(tmp_path / "p.db")
    store = Store(tmp_path / "p.db")
    scan = store.begin_scan("springfield", AS_OF, 5, now="2026-09-30T10:00:00")
    _device(store, scan, 1, "workstation", dt.date(2022, 3, 1), [])  # 5 y -> 2027-03 -> FY2027
    _device(store, scan, 2, "server", dt.date(2024, 1, 10), [])  # 6 y -> 2030-01 -> FY2030
    _device(store, scan, 3, "server", dt.date(2024, 1, 10), [_eol()], os_name="CentOS Linux 7")  # pulled
    _device(store, scan, 4, "workstation", dt.date(2015, 1, 1), [], os_name="Windows 10 Pro")  # overdue
    _device(store, scan, 5, "switch", None, [])  # unknown age
    store.finish_scan(scan, now="2026-09-30T11:00:00")
    yield city, store
    store.close()


def test_plan_years_pull_forward_and_gap(small):
    city, store = small
    plan = build_plan(city, store, as_of=AS_OF, budgeted={"101-1410-5740": {"FY2027": 5000, 2030: 20000}})
    assert plan.fiscal_years == [2027, 2028, 2029, 2030, 2031]
    by_dev = {i.device: i for i in plan.items}
    ws = city.policy.refresh_for("workstation", "City Hall")
    srv = city.policy.refresh_for("server", "City Hall")
    assert by_dev["dev-1"].fiscal_year == 2027 and by_dev["dev-1"].reason == "refresh age"
    assert by_dev["dev-2"].fiscal_year == 2030
    assert by_dev["dev-3"].fiscal_year == 2027 and by_dev["dev-3"].age_fiscal_year == 2030
    assert by_dev["dev-3"].reason.startswith("pulled forward")
    assert by_dev["dev-4"].fiscal_year == 2027 and by_dev["dev-4"].reason == "overdue since FY2020"
    assert [name for name, _ in plan.unknown_age] == ["dev-5"]
    assert plan.total.devices == [3, 0, 0, 1, 0]
    assert plan.total.cost[0] == pytest.approx(2 * ws.cost + srv.cost)
    assert plan.total.cost[3] == pytest.approx(srv.cost)
    assert plan.pulled_forward == 1 and plan.overdue == 1
    # Budgeted amounts sit on their line; the gap never goes negative.
    line = next(r for r in plan.by_line if r.kind == "capital" or "5740" in r.label)
    assert line.budgeted is not None and plan.total.gap is not None
    assert plan.total.budgeted[0] == 5000 and plan.total.budgeted[3] == 20000
    assert plan.total.gap[3] == max(0.0, plan.total.cost[3] - 20000)
    assert "funding gap" in plan.headline


def test_deferral_prices_windows_10_esu(small):
    city, store = small
    plan = build_plan(city, store, as_of=AS_OF)
    d = plan.deferral
    assert d is not None and d.devices == 1
    assert d.esu_year == 1 and d.esu_price == 61 and d.esu_total == 61
    assert "$61" in d.sentences[1] and "$122" in d.sentences[1] and "FY2028" in d.sentences[1]
    assert esu_year(dt.date(2026, 10, 14)) == 2 and esu_year(dt.date(2027, 11, 1)) == 3
    assert esu_year(dt.date(2028, 10, 14)) == 0
    late = build_plan(city, store, as_of=dt.date(2029, 1, 1)).deferral
    assert late is not None and late.esu_year == 0 and "no longer" in late.sentences[1]


def test_plan_files_open_and_have_rows(small, tmp_path: Path):
    from openpyxl import load_workbook

    city, store = small
    paths = write_plan(
        city, store, as_of=AS_OF, out_dir=tmp_path / "out", formats=("html", "csv", "xlsx", "json")
    )
    html, csv_path, xlsx = paths[0], paths[1], paths[2]
    page = html.read_text()
    assert "FY2027" in page and "Deferral scenario" in page and "dev-5" in page
    with csv_path.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["device"] for r in rows} == {"dev-1", "dev-2", "dev-3", "dev-4"}
    wb = load_workbook(xlsx)
    assert wb.sheetnames == ["By budget line", "By department", "Devices"]
    assert wb["Devices"].max_row == 5 and wb["Devices"]["B1"].value == "device"
    assert (csv_path.stat().st_mode & 0o077) == 0  # owner-only: reports describe weak spots


def test_synthetic_city_plan_totals_add_up(tmp_path: Path):
    city, store = report_city.build(tmp_path / "c.db", n=30, months=3)
    plan = build_plan(city, store, as_of=dt.date(2026, 10, 25))
    assert sum(plan.total.cost) == pytest.approx(sum(i.cost for i in plan.items))
    for i, _ in enumerate(plan.fiscal_years):
        assert plan.total.devices[i] == sum(r.devices[i] for r in plan.by_department)
    assert len(plan.items) + len(plan.unknown_age) + plan.later_devices == 30
    store.close()
