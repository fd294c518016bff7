"""Asset register import: row by row, bad rows skipped with a reason, nothing overwritten by them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from itaudit.assets import apply_pending, import_register
from itaudit.model import CollectResult, DeviceFacts, ResultStatus, Target
from itaudit.store import Store

TODAY = dt.date(2026, 11, 23)


def seeded(tmp_path: Path) -> Store:
    store = Store(tmp_path / "city.db")
    scan = store.begin_scan("c", TODAY, 2)
    for address, serial in (("10.0.0.1", "CZC1234"), ("10.0.0.2", "MXQ999")):
        facts = DeviceFacts()
        facts.identity.serial = serial
        store.record_result(scan, CollectResult(Target(address, "ssh", "c"), ResultStatus.OK, facts=facts), [])
    store.finish_scan(scan)
    return store


def test_import_matches_skips_and_reports(tmp_path: Path) -> None:
    store = seeded(tmp_path)
    csv = tmp_path / "register.csv"
    csv.write_text(
        "Serial Number,IP,Purchased,Cost,Dept,Account,Criticality,Colour\n"
        "czc1234,,03/15/2017,\"$1,250.00\",Police,101-2110-5740,public-safety,red\n"  # matched by serial
        ",10.0.0.2,2019-13-01,9000,IT,101-1410-5740,,\n"  # bad date: skipped
        ",10.0.0.2,2019-06-01,9000,IT,101-1410-5740,,\n"  # matched by address
        "CZC1234,,2018-01-01,1,Police,,,\n"  # duplicate serial: skipped
        "NEVERSEEN,,2020-01-01,700,Library,,,\n"  # valid but not seen yet
        ",10.0.0.9,2020-01-01,700,Library,999-0000-0000,,\n"  # unknown budget line: skipped
        ",,,,,,,\n"  # nothing to identify: skipped
    )
    result = import_register(store, csv, budget_lines={"101-2110-5740", "101-1410-5740"}, today=TODAY)
    assert (result.imported, result.matched) == (3, 2)
    assert [r for r, _ in result.skipped] == [3, 5, 7, 8]
    reasons = dict(result.skipped)
    assert "not a date" in reasons[3] and "duplicate of row 2" in reasons[5] and "not defined" in reasons[7]
    assert result.unmatched == [(6, "NEVERSEEN")]
    assert result.ignored_columns == ["Colour"]
    dev = {d["serial"]: d for d in store.devices()}
    assert dev["CZC1234"]["purchase_date"] == "2017-03-15"
    assert dev["CZC1234"]["department"] == "Police"
    assert json.loads(dev["CZC1234"]["criticality"]) == ["public-safety"]
    assert dev["MXQ999"]["purchase_date"] == "2019-06-01"  # the bad row before it changed nothing
    assert store.db.execute("select count(*) from assets").fetchone()[0] == 3


def test_register_row_not_yet_seen_applies_when_the_device_appears(tmp_path: Path) -> None:
    store = seeded(tmp_path)
    csv = tmp_path / "register.csv"
    csv.write_text("serial,purchase_date,department,budget_line\nNEW777,2016-02-01,Water,601-4010-5740\n")
    assert import_register(store, csv, today=TODAY).unmatched == [(2, "NEW777")]
    assert apply_pending(store) == 0  # still not seen

    scan = store.begin_scan("c", TODAY, 1)
    facts = DeviceFacts()
    facts.identity.serial = "NEW777"
    store.record_result(scan, CollectResult(Target("10.0.0.7", "ssh", "c"), ResultStatus.OK, facts=facts), [])
    store.finish_scan(scan)
    assert apply_pending(store) == 1
    dev = {d["serial"]: d for d in store.devices()}["NEW777"]
    assert (dev["purchase_date"], dev["department"], dev["budget_line"]) == ("2016-02-01", "Water", "601-4010-5740")
    assert store.db.execute("select device_id from assets").fetchone()[0] == dev["id"]
    assert apply_pending(store) == 0  # applied once
