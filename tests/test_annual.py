"""`itaudit report annual`: the fiscal year's measures month by month, replacements against the plan."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from reports.annual import build_annual, write_annual
from reports.model import build_monthly
from reports.plan import build_plan
from tests import history_city

FY_END = dt.date(2026, 6, 30)
ROOT = Path(__file__).resolve().parents[1]


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


# --- recorded replacements (`itaudit devices retire --replaced-by --cost --date`) -----------------


@pytest.fixture(scope="module")
def recorded_city(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("recorded") / "city.db"
    c, store = history_city.build(db, n=60, months=24)
    yield c, store
    store.close()


def _left_in_fy2026(store) -> list[dict]:
    latest = store.report_scans()[-1].id
    return [d for d in store.devices() if d["address"].startswith("10.30.") and d["last_scan_id"] < latest
            and "2025-07-01" <= d["last_seen"][:10] <= "2026-06-30"]


def test_recorded_replacements_come_first_at_their_cost_to_the_cent(recorded_city):
    from itaudit import rules
    from reports.annual import INFERRED, RECORDED

    c, store = recorded_city
    left = _left_in_fy2026(store)
    assert len(left) >= 3, "the history replaces Windows 10 PCs during FY2026"
    rng = random.Random(22)
    recorded = left[: len(left) // 2 + 1]
    costs = {}
    for d in recorded:
        new = "10.31." + d["address"].split(".", 2)[2]
        cost = round(rng.uniform(700, 1900), 2)  # cents that do not add up to whole dollars
        costs[d["id"]] = cost
        store.record_replacement(int(d["id"]), cost=cost, replaced_on=d["last_seen"][:10], replaced_by=new)
    # A replacement recorded in the next fiscal year is neither counted nor inferred in this one.
    later = left[-1]
    store.record_replacement(int(later["id"]), cost=999.99, replaced_on="2026-07-02", replaced_by="x")

    a = build_annual(c, store, as_of=FY_END)
    rec = [r for r in a.replaced if r.basis == RECORDED]
    inf = [r for r in a.replaced if r.basis == INFERRED]
    assert a.replaced[: len(rec)] == rec  # recorded first
    assert len(rec) == a.recorded == len(recorded)
    # The annual total equals the recorded costs to the cent.
    assert Decimal(str(a.recorded_cost)) == sum(Decimal(str(v)) for v in costs.values())
    assert sorted(r.cost for r in rec) == sorted(costs.values())
    assert all(r.replaced_by.startswith("10.31.") for r in rec)
    # The rest left service without a record: inferred, at the policy's estimate.
    recorded_names = {(d["hostname"] or d["name"]) for d in [*recorded, later]}
    assert {r.device for r in inf}.isdisjoint(recorded_names)
    assert len(inf) == len(left) - len(recorded) - 1
    rule = c.policy.refresh_for("workstation", None)
    assert a.inferred_cost == pytest.approx(rule.cost * len(inf))
    assert a.replaced_cost == pytest.approx(a.recorded_cost + a.inferred_cost)
    # The plan's amounts are the plan's: its item at the start of the year, else its price rule.
    plan = build_plan(c, store, as_of=dt.date(2025, 7, 1))
    items = {i.device: i for i in plan.items if i.fiscal_year == 2026}
    rows = {(d["hostname"] or d["name"]): d for d in store.devices()}
    for r in a.replaced:
        if r.planned:
            assert r.plan_cost == items[r.device].cost
        else:
            d = rows[r.device]
            assert r.plan_cost == rules.replacement_price(c.policy, kind=d["kind"], department=d["department"],
                                                          register_cost=d["register_cost"]).amount
    assert "recorded" in a.headline and f"${a.recorded_cost:,.2f}" in a.headline


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ITAUDIT_")}
    return subprocess.run([sys.executable, "-m", "itaudit.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**env, "PYTHONPATH": str(ROOT)}, timeout=120, stdin=subprocess.DEVNULL)


def test_cli_records_a_replacement_and_refuses_bad_input(recorded_city, tmp_path: Path):
    c, store = recorded_city
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[cities.springfield]\nname = "Springfield"\ndatabase = "{c.database}"\n')
    latest = store.report_scans()[-1].id
    old = next(d for d in store.devices() if d["last_scan_id"] == latest and d["kind"] == "server")
    name = old["hostname"] or old["name"]
    for args, words in (
        (["--cost", "abc"], "is not an amount"),
        (["--cost", "-5"], "cannot be negative"),
        (["--date", "2099-01-01"], "in the future"),
        (["--date", "31/12/2025"], "is not a date"),
        (["--undo", "--cost", "5"], "cannot be combined"),
    ):
        r = _run("devices", "retire", name, "-c", str(cfg), *args, cwd=tmp_path)
        assert r.returncode != 0 and words in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    r = _run("devices", "retire", name, "-c", str(cfg), "--replaced-by", "new-pc-17", "--cost", "$1,249.37",
             "--date", "2026-03-02", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["cost"] == 1249.37 and out["replaced_on"] == "2026-03-02"
    got = [x for x in store.replacements("2026-03-02", "2026-03-02") if x["device_id"] == old["id"]]
    assert got and got[0]["cost"] == 1249.37 and got[0]["replaced_by"] == "new-pc-17"
    a = build_annual(c, store, as_of=FY_END)
    assert any(x.device == name and x.cost == 1249.37 for x in a.replaced)
    r = _run("devices", "retire", name, "-c", str(cfg), "--undo", cwd=tmp_path)
    assert r.returncode == 0 and not [x for x in store.replacements("2026-03-02", "2026-03-02")
                                      if x["device_id"] == old["id"]]
