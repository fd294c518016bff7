"""`itaudit report annual`: the fiscal year's measures month by month, replacements against the plan."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from reports.annual import build_annual, write_annual
from reports.model import build_monthly
from reports.plan import build_plan
from tests import history_city

FY_END = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("annual") / "city.db"
    c, store = history_city.build(db, n=60, months=24)
    yield c, store
    store.close()


def test_each_month_shows_what_its_monthly_summary_showed(city):
    c, store = city
    a = build_annual(c, store, as_of=FY_END)
    assert a.fiscal_year == 2026 and a.months[0] == "2025-07" and a.months[-1] == "2026-06"
    assert [m.key for m in a.measures][:3] == ["score", "refresh", "supported"]
    for i in (0, 5, 11):
        rep = build_monthly(c, store, as_of=FY_END, month=a.months[i])
        assert a.measures[0].values[i] == rep.score
        for m in a.measures[1:]:
            assert m.values[i] == next(k.actual for k in rep.kpis if k.key == m.key)
    assert a.measures[0].target_text == "≥ 80" and a.measures[0].owner == "IT manager"


def test_replacements_are_the_devices_that_left_service(city):
    c, store = city
    a = build_annual(c, store, as_of=FY_END)
    devices = {d["address"]: d for d in store.devices()}
    assert a.replaced, "the history replaces Windows 10 PCs during the year"
    for r in a.replaced:
        old = next(d for d in devices.values() if (d["hostname"] or d["name"]) == r.device
                   and d["address"].startswith("10.30."))
        # The PC that replaced it came up on the new network the month after it was last seen.
        new = devices["10.31." + old["address"].split(".", 2)[2]]
        assert new["first_seen"][:7] > r.last_seen[:7] and r.kind == "workstation"
        assert "2025-07-01" <= r.last_seen <= "2026-06-30"
    rule = c.policy.refresh_for("workstation", None)
    assert a.replaced_cost == pytest.approx(rule.cost * len(a.replaced))
    plan = build_plan(c, store, as_of=dt.date(2025, 7, 1))
    assert a.planned_cost == plan.total.cost[0] and a.planned_devices == plan.total.devices[0]
    assert 0 <= a.planned_done <= len(a.replaced)


def test_a_year_without_scans_says_so(city, tmp_path: Path):
    c, store = city
    a = build_annual(c, store, as_of=dt.date(2024, 7, 15))
    assert not a.has_data and "No scan was run in FY2025" in a.headline


def test_html_pdf_and_bad_format(city, tmp_path: Path):
    c, store = city
    with pytest.raises(ValueError, match="unknown report format xlsx"):
        write_annual(c, store, as_of=FY_END, out_dir=tmp_path, formats=("xlsx",))
    paths = write_annual(c, store, as_of=FY_END, out_dir=tmp_path, formats=("html", "json", "pdf"))
    assert [p.suffix for p in paths] == [".html", ".json", ".pdf"]
    html = paths[0].read_text()
    assert "IT annual report, FY2026" in html and "Replaced against the plan" in html
    text = subprocess.run(["pdftotext", "-layout", str(paths[2]), "-"], capture_output=True, text=True,
                          check=True).stdout
    a = build_annual(c, store, as_of=FY_END)
    assert f"${a.replaced_cost:,.0f}" in text and "JUN" in text


# --- the budget request (`itaudit report request`) ------------------------------------------------


def test_budget_request_equals_the_plan_to_the_cent(city, tmp_path: Path):
    from reports.request import build_request, write_request

    c, store = city
    as_of = dt.date(2026, 11, 25)
    c.policy.budgeted = {"101-1410-5740": {2028: 1000.01}}
    try:
        q = build_request(c, store, as_of=as_of)
        plan = build_plan(c, store, as_of=as_of)
    finally:
        c.policy.budgeted = {}
    assert q.fiscal_year == plan.fiscal_years[1] == 2028  # the coming fiscal year
    assert round(q.total * 100) == round(plan.total.cost[1] * 100) == round(sum(x.amount for x in q.lines) * 100)
    assert q.devices == plan.total.devices[1] == sum(x.devices for x in q.lines)
    items = [i for i in plan.items if i.fiscal_year == 2028]
    by_address = {d["address"]: d["id"] for d in store.devices()}
    ids = {by_address[i.address] for i in items}
    open_on_them = [f for f in store.open_findings() if f["device_id"] in ids]
    assert sum(x.findings_closed for x in q.lines) == len(open_on_them)
    assert next(x for x in q.lines if x.account == "101-1410-5740").budgeted == 1000.01
    with pytest.raises(ValueError, match="unknown report format"):
        write_request(c, store, as_of=as_of, out_dir=tmp_path, formats=("csv",))
    paths = write_request(c, store, as_of=as_of, out_dir=tmp_path, formats=("html", "pdf"))
    text = subprocess.run(["pdftotext", "-layout", str(paths[1]), "-"], capture_output=True, text=True,
                          check=True).stdout
    pages = subprocess.run(["pdfinfo", str(paths[1])], capture_output=True, text=True, check=True).stdout
    assert "Pages:           1" in pages  # one page, to attach to a memo
    assert f"${q.total:,.0f}" in text and "If deferred a year" in text
