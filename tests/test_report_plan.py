"""The capital refresh plan: fiscal years, due years, pull-forward, funding gap, deferral, files."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
import report_city
import xlsxeval

from itaudit.model import CollectResult, Cost, DeviceFacts, Finding, ResultStatus, Severity, Status, Target
from itaudit.store import Store
from reports.common import fiscal_year_of
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


def _device(
    store: Store,
    scan: int,
    n: int,
    kind: str,
    purchase: dt.date | None,
    findings: list[Finding],
    os_name: str = "Debian 12",
    dept: str = "City Hall",
    *,
    hostname: str | None = None,
    virtualization: str | None = None,
    bios_date: dt.date | None = None,
) -> None:
    facts = DeviceFacts()
    facts.identity.serial = f"P{n:04d}"
    facts.identity.hostname = hostname or f"dev-{n}"
    facts.software.os_name = os_name
    facts.software.virtualization = virtualization
    facts.hardware.bios_date = bios_date
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


def _eol(check_id: str = "EOL-001") -> Finding:
    return Finding(
        check_id,
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
    _device(store, scan, 3, "firewall", dt.date(2024, 1, 10), [_eol()], os_name="FortiOS 6.0")  # pulled
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
    fw = city.policy.refresh_for("firewall", "City Hall")
    assert by_dev["dev-1"].fiscal_year == 2027 and by_dev["dev-1"].reason == "refresh age"
    assert by_dev["dev-2"].fiscal_year == 2030
    assert by_dev["dev-3"].fiscal_year == 2027 and by_dev["dev-3"].age_fiscal_year == 2029
    assert by_dev["dev-3"].reason.startswith("pulled forward")
    assert by_dev["dev-4"].fiscal_year == 2027 and by_dev["dev-4"].reason == "overdue since FY2020"
    assert [name for name, _ in plan.unknown_age] == ["dev-5"]
    assert plan.total.devices == [3, 0, 0, 1, 0]
    assert plan.total.cost[0] == pytest.approx(2 * ws.cost + fw.cost)
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
    # Four devices and a total row, plain headers, a filter and print setup.
    dev = wb["Devices"]
    assert dev.max_row == 6 and dev["B1"].value == "Device" and dev.auto_filter.ref == "A1:P5"
    assert dev.page_setup.orientation == "landscape" and dev.print_title_rows == "$1:$1"
    assert xlsxeval.value(dev, "M6") == pytest.approx(sum(i.cost for i in build_plan(city, store, as_of=AS_OF).items))
    assert (csv_path.stat().st_mode & 0o077) == 0  # owner-only: reports describe weak spots


def test_synthetic_city_plan_totals_add_up(tmp_path: Path):
    city, store = report_city.build(tmp_path / "c.db", n=30, months=3)
    plan = build_plan(city, store, as_of=dt.date(2026, 10, 25))
    assert sum(plan.total.cost) == pytest.approx(sum(i.cost for i in plan.items))
    for i, _ in enumerate(plan.fiscal_years):
        assert plan.total.devices[i] == sum(r.devices[i] for r in plan.by_department)
    assert len(plan.items) + len(plan.unknown_age) + plan.later_devices == 30
    store.close()


def test_virtual_machines_and_os_only_problems_buy_no_hardware(tmp_path: Path):
    """A VMware VM with a 2016 BIOS date is not a $9,000 server overdue since FY2022, and an old
    OS on a server (or a VM) is an upgrade, not new hardware; firmware-bound gear is pulled forward."""
    city = report_city.city_config(tmp_path / "v.db")
    store = Store(tmp_path / "v.db")
    scan = store.begin_scan("springfield", AS_OF, 5, now="2026-09-30T10:00:00")
    old_bios = dt.date(2016, 5, 1)
    _device(store, scan, 1, "server", None, [], virtualization="vmware", bios_date=old_bios)
    _device(store, scan, 2, "server", None, [_eol()], os_name="Ubuntu 18.04", virtualization="kvm")
    _device(store, scan, 3, "server", dt.date(2024, 1, 10), [_eol()], os_name="Ubuntu 18.04")  # new hardware
    _device(store, scan, 4, "switch", dt.date(2024, 1, 10), [_eol("EOL-002")], os_name="Cisco IOS 15.2")
    _device(store, scan, 5, "workstation", dt.date(2024, 1, 10), [_eol("HW-004")], os_name="Windows 10 Pro",
            virtualization="none")
    store.finish_scan(scan, now="2026-09-30T11:00:00")
    plan = build_plan(city, store, as_of=AS_OF)
    (html,) = write_plan(city, store, as_of=AS_OF, out_dir=tmp_path / "out", formats=("html",))
    store.close()
    assert "known age. 2 virtual machines are left out: they have no hardware of their own" in html.read_text()
    by_dev = {i.device: i for i in plan.items}
    assert "dev-1" not in by_dev and "dev-2" not in by_dev and plan.virtual == 2
    assert "dev-1" not in [name for name, _ in plan.unknown_age]
    assert by_dev["dev-3"].fiscal_year == 2030 and by_dev["dev-3"].reason == "refresh age"
    assert by_dev["dev-4"].fiscal_year == 2027 and by_dev["dev-4"].reason.startswith("pulled forward")
    assert by_dev["dev-5"].fiscal_year == 2027 and "cannot run a supported" in by_dev["dev-5"].reason
    assert plan.pulled_forward == 2 and plan.overdue == 0


def test_plan_and_checks_bill_the_asset_register_line(tmp_path: Path):
    """One precedence (Policy.pay_line): a device on the water fund in the asset register is
    billed to the water fund by the plan and by the checks' replacement cost alike."""
    from checks._common import replacement
    from itaudit.assets import import_register
    from itaudit.checking import CheckContext, DeviceRecord

    city = report_city.city_config(tmp_path / "r.db")
    store = Store(tmp_path / "r.db")
    scan = store.begin_scan("springfield", AS_OF, 2, now="2026-09-30T10:00:00")
    _device(store, scan, 1, "server", dt.date(2018, 3, 1), [], dept="Water")
    _device(store, scan, 2, "server", dt.date(2018, 3, 1), [], dept="Water")
    store.finish_scan(scan, now="2026-09-30T11:00:00")
    register = tmp_path / "register.csv"
    register.write_text("address,budget_line\n10.9.0.1,601-4410-5740\n", encoding="utf-8")
    res = import_register(store, register, budget_lines=set(city.budget_lines))
    assert res.imported == 1
    plan = build_plan(city, store, as_of=AS_OF)
    store.close()
    by_dev = {i.device: i for i in plan.items}
    facts = DeviceFacts()
    facts.identity.kind = "server"
    for dev, register_line in (("dev-1", "601-4410-5740"), ("dev-2", None)):
        ctx = CheckContext(
            as_of=AS_OF,
            device=DeviceRecord(kind="server", department="Water", budget_line=register_line),
            policy=city.policy,
        )
        assert by_dev[dev].budget_line == replacement(facts, ctx, "test").budget_line
    assert by_dev["dev-1"].budget_line == "601-4410-5740"
    assert by_dev["dev-2"].budget_line == "101-1410-5740"


def test_plan_without_a_city_policy_uses_the_shipped_defaults(tmp_path: Path):
    """One table of defaults: a city object without a policy prices a router from
    itaudit/data/refresh_policies.json, as Policy() does (no second copy in the reports)."""
    from types import SimpleNamespace

    from itaudit.policy import Policy

    store = Store(tmp_path / "d.db")
    scan = store.begin_scan("springfield", AS_OF, 1, now="2026-09-30T10:00:00")
    _device(store, scan, 1, "router", dt.date(2015, 3, 1), [])
    store.finish_scan(scan, now="2026-09-30T11:00:00")
    bare = SimpleNamespace(id="springfield", name="Springfield", budget_lines={})
    plan = build_plan(bare, store, as_of=AS_OF)
    store.close()
    (item,) = plan.items
    shipped = Policy().refresh_for("router")
    assert (item.cost, item.capital) == (shipped.cost, shipped.capital)
    assert item.reason.startswith("overdue since")


def test_plan_xlsx_formats_money_not_device_counts(small, tmp_path: Path):
    from openpyxl import load_workbook

    city, store = small
    paths = write_plan(city, store, as_of=AS_OF, out_dir=tmp_path / "out", formats=("xlsx",))
    wb = load_workbook(paths[0])
    for sheet in ("By budget line", "By department"):
        ws = wb[sheet]
        head = [c.value for c in ws[1]]
        for row in ws.iter_rows(min_row=2):
            for name, cell in zip(head, row, strict=True):
                if name.endswith(" devices"):
                    # A count, or a formula adding counts (5-year column, total row).
                    assert cell.number_format == "General", (sheet, name)
                    assert isinstance(xlsxeval.value(ws, cell.coordinate), int | float), (sheet, name)
                elif name.endswith(" cost") and cell.value is not None:
                    assert "$" in cell.number_format, (sheet, name)
    ws = wb["Devices"]
    cost_col = [c.value for c in ws[1]].index("Cost")
    assert all("$" in row[cost_col].number_format for row in ws.iter_rows(min_row=2))


def test_plan_xlsx_survives_control_characters_and_keeps_formulas_out(tmp_path: Path):
    """An SSH hostname or PRETTY_NAME with control characters must not kill the workbook
    (openpyxl raises IllegalCharacterError), and text starting with = stays text."""
    import openpyxl

    city = report_city.city_config(tmp_path / "x.db")
    store = Store(tmp_path / "x.db")
    scan = store.begin_scan("springfield", AS_OF, 2, now="2026-09-30T10:00:00")
    _device(store, scan, 1, "server", dt.date(2018, 3, 1), [], os_name="Ubuntu\x1b[31m 22.04\x00",
            hostname="bell\x07host\x0bname")
    _device(store, scan, 2, "server", dt.date(2018, 3, 1), [], hostname='=HYPERLINK("http://x","y")')
    store.finish_scan(scan, now="2026-09-30T11:00:00")
    paths = write_plan(city, store, as_of=AS_OF, out_dir=tmp_path / "out", formats=("csv", "xlsx"))
    store.close()
    ws = openpyxl.load_workbook(paths[1])["Devices"]
    head = [c.value for c in ws[1]]
    cells = {row[head.index("Address")].value: row for row in ws.iter_rows(min_row=2)}
    assert cells["10.9.0.1"][head.index("Device")].value == "bellhostname"
    assert cells["10.9.0.1"][head.index("Operating system")].value == "Ubuntu[31m 22.04"
    formula = cells["10.9.0.2"][head.index("Device")]
    assert formula.value == '=HYPERLINK("http://x","y")' and formula.data_type == "s" and formula.quotePrefix
    assert "'=HYPERLINK" in paths[0].read_text(encoding="utf-8-sig")
