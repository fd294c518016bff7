"""Many cities under one MSP: two cities with the same address ranges never share a
database, a report, an email or a credential."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from agentkit import REFUSED_SSH_HOST, city_block, local_target, write_config

from itaudit.agent import Agent, ManualClock
from itaudit.config import load
from itaudit.credentials import SSHCredential
from itaudit.errors import ConfigError
from itaudit.scan import _context

CHI = ZoneInfo("America/Chicago")


def _city(cid: str, *, credential: str | None = None) -> str:
    """Both cities audit 127.0.6.40 (as every site has its 192.168.1.0/24) and this host."""
    cred = credential or f"{cid}-servers"
    return city_block(
        cid, name=f"City of {cid.title()}",
        credentials={f"{cid}-servers": {"type": "ssh", "username": f"{cid}-audit",
                                        "password_env": f"{cid.upper()}_SSH_PW"}},
        delivery={"recipients": [f"manager@{cid}.example.org"], "attach": ["xlsx", "json"]},
        schedule={"scan": "daily", "report_day": 1},
        targets=[local_target(f"{cid}-city-hall"),
                 {"address": REFUSED_SSH_HOST, "port": 2222, "protocol": "ssh", "credential": cred,
                  "name": f"{cid}-fileserver", "department": f"{cid.title()} Police"},
                 {"address": "127.0.6.41", "port": 2222, "protocol": "ssh", "credential": cred,
                  "name": f"{cid}-clerk-pc"}])


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_two_cities_with_overlapping_ranges_stay_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("NORTH_SSH_PW", "SOUTH_SSH_PW"):  # (a missing secret is a config error before any device)
        monkeypatch.setenv(var, "not-the-real-one")
    path = write_config(tmp_path / "c.toml", [_city("north"), _city("south")])
    clock = ManualClock(dt.datetime(2026, 12, 1, 8, 0, tzinfo=CHI))
    agent = Agent(path, clock=clock, poll=None, dry_run=True)
    assert agent.run_once(report=True) == 3  # the SSH hosts are switched off: exit 3, as for scan
    for cid in ("north", "south"):
        agent.monthly(cid, month="2026-12")  # this month's report, which lists devices by name

    north, south = agent.cfg.cities["north"], agent.cfg.cities["south"]
    assert north.database != south.database and north.known_hosts != south.known_hosts
    for me, other in ((north, south), (south, north)):
        devices = _rows(me.database, "select city_id, name, address from devices order by name")
        assert {d[0] for d in devices} == {me.id}
        assert sorted(d[1] for d in devices) == sorted([f"{me.id}-city-hall", f"{me.id}-clerk-pc",
                                                        f"{me.id}-fileserver"])
        assert (me.id, f"{me.id}-fileserver", REFUSED_SSH_HOST) in devices  # same address, own device
        # Nothing of the other city in this city's files: database, reports, email.
        city_files = [p for p in (tmp_path / "data" / me.id).rglob("*") if p.is_file()]
        assert any(p.suffix == ".eml" for p in city_files) and any(p.suffix == ".html" for p in city_files)
        for p in city_files:
            data = p.read_bytes()
            assert other.id.encode() not in data.lower(), f"{other.id} found in {p}"
        eml = next(p for p in city_files if p.suffix == ".eml").read_text()
        assert f"manager@{me.id}.example.org" in eml
        report = (tmp_path / "data" / me.id / "reports" / "2026-12" / f"{me.id}-monthly-2026-12.json").read_text()
        assert f"{me.id}-fileserver" in report and f"{me.id}-clerk-pc" in report  # could not be checked


def test_a_credential_of_one_city_is_a_config_error_in_another(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.toml", [_city("north"), _city("south", credential="north-servers")])
    with pytest.raises(ConfigError) as exc:
        load(path)
    assert exc.value.key == "cities.south.targets[1].credential"
    assert "no credential 'north-servers' in this city" in str(exc.value)


def test_collectors_get_only_their_own_city_credentials(tmp_path: Path) -> None:
    cfg = load(write_config(tmp_path / "c.toml", [_city("north"), _city("south")]))
    for cid in ("north", "south"):
        ctx = _context(cfg, cfg.cities[cid])
        assert ctx.city_id == cid
        assert list(ctx.credentials) == [f"{cid}-servers"]
        cred = ctx.credentials[f"{cid}-servers"]
        assert isinstance(cred, SSHCredential) and cred.username == f"{cid}-audit"


def test_two_cities_cannot_share_a_database(tmp_path: Path) -> None:
    shared = tmp_path / "shared.db"
    text = _city("north").replace('timezone = "America/Chicago"',
                                  f'timezone = "America/Chicago"\ndatabase = "{shared}"', 1)
    text2 = _city("south").replace('timezone = "America/Chicago"',
                                   f'timezone = "America/Chicago"\ndatabase = "{shared}"', 1)
    with pytest.raises(ConfigError) as exc:
        load(write_config(tmp_path / "c.toml", [text, text2]))
    assert exc.value.key == "cities.south.database"
