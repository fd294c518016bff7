"""The MSP portfolio: six cities side by side, and a peer comparison that names no peer."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
from agentkit import city_block, write_config
from click.testing import CliRunner

from itaudit.cli import cli
from itaudit.config import Config, load
from itaudit.model import CollectResult, DeviceFacts, Finding, ResultStatus, Severity, Status, Target
from itaudit.store import Store
from reports.portfolio import build_portfolio, write_portfolio

CITIES = ["ashford", "brookville", "cedar-falls", "dunmore", "elkton", "fairview"]
N_DEVICES = 10


def _finding(check_id: str, fail: bool) -> Finding:
    return Finding(check_id=check_id, status=Status.FAIL if fail else Status.PASS, severity=Severity.HIGH,
                   title=check_id, summary=f"{check_id} {'fails' if fail else 'passes'}")


def _history(cfg: Config, cid: str, unpatched: int) -> None:
    """Two monthly scans; in November ``unpatched`` of the city's devices miss updates."""
    city = cfg.cities[cid]
    store = Store(city.database)
    for as_of, bad in ((dt.date(2026, 10, 28), unpatched + 1), (dt.date(2026, 11, 28), unpatched)):
        now = f"{as_of.isoformat()}T03:00:00+00:00"
        scan = store.begin_scan(cid, as_of, N_DEVICES, now=now)
        for i in range(N_DEVICES):
            t = Target(address=f"192.168.1.{10 + i}", protocol="ssh", city_id=cid, name=f"{cid}-pc-{i}",
                       kind="workstation", purchase_date=dt.date(2019 + i % 6, 3, 1))
            facts = DeviceFacts(collected_at=now)
            facts.identity.serial = f"{cid}-SN{i}"
            store.record_result(scan, CollectResult(t, ResultStatus.OK, facts=facts),
                                [_finding("PATCH-001", i < bad), _finding("EOL-001", False),
                                 _finding("HW-001", i < 2)], now=now)
        store.finish_scan(scan, now=now)
    store.close()


@pytest.fixture
def portfolio_cfg(tmp_path: Path) -> Config:
    path = write_config(tmp_path / "c.toml", [city_block(cid, targets=[]) for cid in CITIES])
    cfg = load(path)
    for i, cid in enumerate(CITIES):
        _history(cfg, cid, unpatched=i)  # ashford patches everything, fairview misses 5 of 10
    return cfg


def test_portfolio_puts_cities_side_by_side(portfolio_cfg: Config) -> None:
    p = build_portfolio(portfolio_cfg, as_of=dt.date(2026, 11, 30))
    assert [c.city_id for c in p.cities] == CITIES
    patched = {c.city_id: next(k.actual for k in c.kpis if k.key == "patched") for c in p.cities}
    assert patched == {cid: 100.0 - 10 * i for i, cid in enumerate(CITIES)}
    for c in p.cities:
        assert c.has_data and c.scan_date == "2026-11-28" and c.devices_total == N_DEVICES
        assert c.score is not None and c.prev_score is not None and c.score > c.prev_score  # one more patched
        assert c.score_trend[-1] == c.score and c.score_trend[-2] == c.prev_score
    assert p.total_devices == N_DEVICES * len(CITIES)
    # Scores fall as more devices miss their updates.
    scores = [c.score for c in p.cities]
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]


def test_peer_comparison_counts_peers_and_names_none(portfolio_cfg: Config, tmp_path: Path) -> None:
    p = build_portfolio(portfolio_cfg, as_of=dt.date(2026, 11, 30))
    cedar = next(c for c in p.cities if c.city_id == "cedar-falls")  # 80% patched
    line = next(x for x in cedar.peers if x.key == "patched")
    assert (line.better_than, line.of) == (3, 5)
    assert line.sentence == "Your patch currency is better than 3 of 5 similar cities; second quarter, median 70."
    assert line.median == 70.0
    ashford = next(c for c in p.cities if c.city_id == "ashford")
    assert next(x for x in ashford.peers if x.key == "patched").better_than == 5

    paths = write_portfolio(portfolio_cfg, as_of=dt.date(2026, 11, 30), out_dir=tmp_path / "out",
                            formats=("html", "json", "csv", "md", "peers"))
    peer_md = tmp_path / "out" / "peers" / "cedar-falls" / "cedar-falls-peers-2026-11.md"
    assert peer_md in paths
    text = peer_md.read_text()
    assert "Your patch currency is better than 3 of 5 similar cities; second quarter, median 70." in text
    assert "City of Cedar-Falls" in text
    peer_json = json.loads(peer_md.with_suffix(".json").read_text())
    for other in CITIES:
        if other != "cedar-falls":
            assert other not in text.lower() and other not in json.dumps(peer_json).lower()
            assert other.replace("-", " ") not in text.lower()

    html = (tmp_path / "out" / "portfolio-2026-11.html").read_text()
    assert all(f"City of {cid.title()}" in html for cid in CITIES)
    with (tmp_path / "out" / "portfolio-2026-11.csv").open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["city"] for r in rows] == CITIES and rows[0]["patched"] == "100.0"


@pytest.mark.parametrize("n_cities", [2, 3])
def test_fewer_than_three_peers_are_not_compared(portfolio_cfg: Config, tmp_path: Path, n_cities: int) -> None:
    """"Better than 0 of 1 other client city" hands over that city's figure: with one or two
    peers no measure is compared at all (count or median), and the peer file says why."""
    chosen = CITIES[:n_cities]
    p = build_portfolio(portfolio_cfg, as_of=dt.date(2026, 11, 30), cities=chosen)
    for col in p.cities:
        assert col.has_data and col.peers == []
    write_portfolio(portfolio_cfg, as_of=dt.date(2026, 11, 30), out_dir=tmp_path / "out", formats=("peers",),
                    cities=chosen)
    text = (tmp_path / "out" / "peers" / chosen[-1] / f"{chosen[-1]}-peers-2026-11.md").read_text()
    assert "not yet enough" in text and "better than" not in text


def test_three_peers_are_compared_with_a_median(portfolio_cfg: Config) -> None:
    p = build_portfolio(portfolio_cfg, as_of=dt.date(2026, 11, 30), cities=CITIES[:4])
    dunmore = next(c for c in p.cities if c.city_id == "dunmore")  # 70% patched; peers 100, 90, 80
    line = next(x for x in dunmore.peers if x.key == "patched")
    assert line.sentence == "Your patch currency is better than 0 of 3 similar cities; bottom quarter, median 90."
    assert line.median == 90.0


def test_a_city_without_scans_is_shown_not_compared(portfolio_cfg: Config, tmp_path: Path) -> None:
    path = write_config(tmp_path / "c2.toml", [city_block("newtown", targets=[])])
    cfg = load(path)
    (col,) = build_portfolio(cfg, as_of=dt.date(2026, 11, 30)).cities
    assert not col.has_data and col.peers == [] and "No scan" in col.headline


def test_cli_report_portfolio(portfolio_cfg: Config, tmp_path: Path) -> None:
    out = tmp_path / "cli-out"
    res = CliRunner().invoke(cli, ["report", "portfolio", "-c", str(portfolio_cfg.path), "--as-of", "2026-11-30",
                                   "--out", str(out), "--format", "json,md"])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "portfolio-2026-11.json").read_text())
    assert [c["city_id"] for c in doc["cities"]] == CITIES
    assert "| City of Ashford |" in (out / "portfolio-2026-11.md").read_text()
