"""`itaudit devices retire DEVICE`: a decommissioned device leaves KPIs, score, plan and worklist,
keeps its history, and comes back with a note if it answers a scan again."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner

from itaudit.cli import cli
from itaudit.model import CollectResult, DeviceFacts, Finding, ResultStatus, Severity, Status, Target
from itaudit.store import Store
from reports.model import build_monthly
from reports.plan import build_plan
from reports.worklist import build_worklist

CONFIG = """
[settings]
data_dir = "{data}"
[cities.town]
name = "Town"
[cities.town.credentials.ssh]
type = "ssh"
username = "audit"
password_env = "TOWN_SSH_PASSWORD"
[[cities.town.targets]]
address = "10.0.0.1"
protocol = "ssh"
credential = "ssh"
name = "old-pc"
kind = "workstation"
purchase_date = 2015-01-01
[[cities.town.targets]]
address = "10.0.0.2"
protocol = "ssh"
credential = "ssh"
name = "new-pc"
kind = "workstation"
purchase_date = 2025-01-01
"""


def _scan(store: Store, day: str, names: list[str]) -> None:
    sid = store.begin_scan("town", dt.date.fromisoformat(day), len(names), now=f"{day}T02:00:00")
    for n, name in enumerate(names, 1):
        facts = DeviceFacts()
        facts.identity.serial = f"S{name}"
        t = Target(address=f"10.0.0.{n if name == 'old-pc' else 2}", protocol="ssh", city_id="town", name=name,
                   kind="workstation", purchase_date=dt.date(2015 if name == "old-pc" else 2025, 1, 1))
        found = [Finding("HW-001", Status.FAIL if name == "old-pc" else Status.PASS, Severity.MEDIUM,
                         "Hardware past its refresh age", f"{name} is old")]
        store.record_result(sid, CollectResult(t, ResultStatus.OK, facts=facts), found, now=f"{day}T02:00:00")
    store.finish_scan(sid, now=f"{day}T02:00:00")


def test_retire_takes_a_device_out_and_a_return_brings_it_back(tmp_path: Path) -> None:
    from itaudit import config

    path = tmp_path / "c.toml"
    path.write_text(CONFIG.format(data=tmp_path / "data"))
    city = config.load(path).city("town")
    store = Store(city.database)
    _scan(store, "2026-10-20", ["old-pc", "new-pc"])
    store.close()
    as_of = dt.date(2026, 10, 25)

    res = CliRunner().invoke(cli, ["devices", "retire", "old-pc", "-c", str(path), "--note", "sent to recycling"])
    assert res.exit_code == 0, res.output
    assert "old-pc is retired" in res.output
    assert CliRunner().invoke(cli, ["devices", "retire", "nope", "-c", str(path)]).exit_code != 0

    store = Store(city.database)
    plan = build_plan(city, store, as_of=as_of)
    assert [i.device for i in plan.items] == ["new-pc"] and not plan.unknown_age and plan.overdue == 0
    assert [d.name for d in build_worklist(city, store, as_of=as_of).devices] == []
    rep = build_monthly(city, store, as_of=as_of)
    assert rep.devices_total == 1 and rep.score_devices == 1 and rep.score == 100.0
    refresh = next(k for k in rep.kpis if k.key == "refresh")
    assert (refresh.count, refresh.of) == (1, 1)
    # History is kept: the device and its finding are still in the database.
    assert len(store.devices()) == 2 and store.find_devices("old-pc")[0]["retired_at"]

    # It answers again: back in every count, with a note.
    _scan(store, "2026-11-20", ["old-pc", "new-pc"])
    back = store.find_devices("old-pc")[0]
    assert back["retired_at"] is None and "answered again 2026-11-20" in back["retired_note"]
    assert "sent to recycling" in back["retired_note"]
    rep = build_monthly(city, store, as_of=dt.date(2026, 11, 25))
    assert rep.devices_total == 2 and rep.returned and "back in the counts" in rep.gaps_sentence
    assert [d.name for d in build_worklist(city, store, as_of=dt.date(2026, 11, 25)).devices] == ["old-pc"]
    store.close()
