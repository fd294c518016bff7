"""Issue 9 in the reports: inventory completeness is a scorecard measure, and the worklist
lists what discovery found that nobody manages."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from itaudit.config import CityConfig
from itaudit.model import CollectResult, DeviceFacts, ResultStatus, Target
from itaudit.policy import Policy
from itaudit.store import Store
from reports.model import build_monthly
from reports.worklist import build_worklist

AS_OF = dt.date(2026, 11, 20)
NOW = "2026-11-20T02:00:00+00:00"


def city(tmp_path: Path) -> CityConfig:
    return CityConfig(id="c", name="Testville", database=tmp_path / "c.db", known_hosts=tmp_path / "kh",
                      policy=Policy())


def seeded(tmp_path: Path, *, sweep: bool) -> Store:
    store = Store(tmp_path / "c.db")
    scan = store.begin_scan("c", AS_OF, 1, now=NOW)
    facts = DeviceFacts()
    facts.identity.serial = "S1"
    store.record_result(scan, CollectResult(Target("10.0.0.1", "ssh", "c"), ResultStatus.OK, facts=facts), [],
                        now=NOW)
    store.finish_scan(scan, now=NOW)
    if sweep:
        d = store.begin_discovery("c", ["10.0.0.0/24"], 256, now=NOW)
        store.record_sighting(d, {"address": "10.0.0.1", "open_ports": [22], "managed": True, "device_id": 1}, now=NOW)
        store.record_sighting(d, {"address": "10.0.0.50", "open_ports": [9100, 80], "guess": "printer"}, now=NOW)
        store.record_sighting(d, {"address": "10.0.0.51", "open_ports": [23]}, now=NOW)
        store.finish_discovery(d, now=NOW)
    return store


def test_completeness_kpi_counts_found_but_unmanaged(tmp_path: Path) -> None:
    rep = build_monthly(city(tmp_path), seeded(tmp_path, sweep=True), as_of=AS_OF)
    kpi = {k.key: k for k in rep.kpis}["completeness"]
    assert round(kpi.actual) == 33  # 1 managed of 3 found
    assert kpi.rag == "red"
    assert "2 devices found on the city's networks are not managed" in rep.gaps_sentence


def test_without_a_sweep_completeness_is_not_claimed(tmp_path: Path) -> None:
    rep = build_monthly(city(tmp_path), seeded(tmp_path, sweep=False), as_of=AS_OF)
    kpi = {k.key: k for k in rep.kpis}["completeness"]
    assert kpi.actual is None and kpi.actual_text == "n/a"


def test_worklist_lists_unmanaged_devices(tmp_path: Path) -> None:
    w = build_worklist(city(tmp_path), seeded(tmp_path, sweep=True), as_of=AS_OF)
    assert [a for a, _, _ in w.unmanaged] == ["10.0.0.50", "10.0.0.51"]
    assert w.unmanaged[0][1] == "printer" and w.unmanaged[0][2] == "80, 9100"
