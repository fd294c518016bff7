"""The technician worklist: order by risk, grouping, evidence, and safe CSV/XLSX cells."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import report_city

from itaudit.model import CollectResult, Cost, DeviceFacts, Finding, ResultStatus, Severity, Status, Target
from itaudit.store import Store
from reports.export import md_text, safe_cell
from reports.worklist import build_worklist, write_worklist

AS_OF = dt.date(2026, 10, 1)


def _store(tmp_path: Path):
    city = report_city.city_config(tmp_path / "w.db")
    store = Store(tmp_path / "w.db")
    scan = store.begin_scan("springfield", AS_OF, 3, now="2026-09-01T10:00:00")

    def dev(n: int, hostname: str, findings: list[Finding], crit: list[str] | None = None) -> None:
        f = DeviceFacts()
        f.identity.serial, f.identity.hostname = f"W{n}", hostname
        t = Target(
            address=f"10.8.0.{n}",
            protocol="ssh",
            city_id="springfield",
            kind="server",
            criticality=crit or [],
        )
        store.record_result(
            scan, CollectResult(t, ResultStatus.OK, facts=f), findings, now="2026-09-01T10:00:00"
        )

    def fnd(cid: str, sev: Severity) -> Finding:
        return Finding(
            cid,
            Status.FAIL,
            sev,
            f"title {cid}",
            f"summary {cid}",
            evidence=f"evidence {cid}",
            remediation=f"fix {cid}",
            cost=Cost(100, "operating", "101-1410-5310"),
        )

    dev(1, "low-risk", [fnd("PATCH-001", Severity.MEDIUM)])
    dev(2, '=HYPERLINK("http://x")', [fnd("VULN-001", Severity.CRITICAL), fnd("PATCH-001", Severity.MEDIUM)])
    dev(3, "police-cad", [fnd("SEC-001", Severity.HIGH)], crit=["public-safety"])
    store.finish_scan(scan, now="2026-09-01T11:00:00")
    return city, store


def test_worklist_sorted_by_risk_and_grouped(tmp_path: Path):
    city, store = _store(tmp_path)
    wl = build_worklist(city, store, as_of=AS_OF)
    names = [d.name for d in wl.devices]
    assert names[0].startswith("=HYPERLINK") and names[-1] == "low-risk"
    first = wl.devices[0]
    assert [i.check_id for i in first.items] == ["VULN-001", "PATCH-001"]
    assert first.items[0].evidence == "evidence VULN-001" and first.items[0].remediation == "fix VULN-001"
    assert first.items[0].days_open == 30 and wl.total_findings == 4


def test_worklist_csv_and_xlsx_are_safe(tmp_path: Path):
    from openpyxl import load_workbook

    city, store = _store(tmp_path)
    paths = write_worklist(city, store, as_of=AS_OF, out_dir=tmp_path / "o", formats=("html", "csv", "xlsx"))
    page = paths[0].read_text()
    assert "fix VULN-001" in page and "evidence VULN-001" in page
    with paths[1].open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and rows[0]["device"].startswith("'=HYPERLINK")
    ws = load_workbook(paths[2])["Worklist"]
    assert ws.max_row == 5 and ws["B2"].data_type == "s"


def test_cell_and_markdown_guards():
    assert safe_cell("=1+1") == "'=1+1" and safe_cell("ok") == "ok" and safe_cell(3) == 3
    assert md_text("<b>|x|</b>") == "&lt;b&gt;\\|x\\|&lt;/b&gt;"


def test_sparkline_copes_with_gaps_and_no_data():
    from reports.render import sparkline

    assert "no data" in sparkline([None] * 12, target=90.0)
    one = sparkline([None] * 11 + [50.0], target=90.0)
    assert one.count("<circle") == 2 and "polyline" not in one  # the lone point, and the latest-value dot
    gap = sparkline([10.0, 20.0, None, 30.0, 40.0])
    assert gap.count("<polyline") == 2  # a month without data breaks the line
    assert "<script" not in sparkline([1.0, 2.0])
