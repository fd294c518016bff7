"""The sweep on loopback 127.0.7.0/24: finds exactly the listeners, keeps its pace, never strays.

Every connect goes through a recording wrapper around the real ``tcp_connect`` (and the
real SNMP probe), so the test sees each target and when it was touched.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from collectors import sweep as sw
from itaudit.config import load
from itaudit.discover import discovered_targets, plan_sweep, run_discovery
from itaudit.store import Store

ROOT_USER = os.geteuid() == 0
HTTP, PRINTER, TELNET = (80 if ROOT_USER else 8080), 9100, (23 if ROOT_USER else 2323)
LISTENERS = {"127.0.7.2": HTTP, "127.0.7.3": PRINTER, "127.0.7.4": TELNET}


@pytest.fixture(scope="module")
def listeners() -> Iterator[dict[str, int]]:
    """Plain TCP listeners: the kernel completes connects from the backlog, no accept needed."""
    socks = []
    try:
        for addr, port in LISTENERS.items():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((addr, port))  # fails loudly if a wildcard listener already holds the port
            s.listen(256)
            socks.append(s)
        yield LISTENERS
    finally:
        for s in socks:
            s.close()


class Recorder:
    """Wraps the real probes; keeps (time, kind, address, port) of every probe sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str, str, int]] = []

    async def tcp(self, address: str, port: int, timeout: float, banner: bool) -> tuple[bool, str | None]:
        self.calls.append((time.monotonic(), "tcp", address, port))
        return await sw.tcp_connect(address, port, timeout, banner)


def _assert_paced(times: list[float], rate: float) -> None:
    times = sorted(times)
    assert times[-1] - times[0] >= (len(times) - 1) / rate * 0.9
    window = 10 / rate  # any window of 10 slots holds at most 10 probes (+1 for the edge)
    for i, t in enumerate(times):
        n = sum(1 for u in times[i:] if u - t < window)
        assert n <= 11, f"{n} probes within {window:.3f}s at rate {rate}"


def _city(tmp_path: Path, extra: str = "", discovery: str = "") -> Path:
    p = tmp_path / "city.toml"
    p.write_text(f"""
[settings]
data_dir = "{tmp_path / 'data'}"
[cities.testville]
{extra}
[cities.testville.discovery]
ranges = ["127.0.7.0/28"]
ports = [{HTTP}, {PRINTER}, {TELNET}, 2222]
rate = 200
concurrency = 8
timeout = 0.5
{discovery}
""", encoding="utf-8")
    return p


def test_sweep_finds_exactly_the_listeners_paced_and_in_range(tmp_path: Path, listeners: dict[str, int]) -> None:
    cfg = load(_city(tmp_path))
    city = cfg.city("testville")
    plan = plan_sweep(city)
    rec = Recorder()
    result = run_discovery(cfg, city, plan, tcp=rec.tcp, verify_ssh=False)
    found = {s["address"]: s["open_ports"] for s in result.sightings}
    assert found == {a: [p] for a, p in listeners.items()}
    assert all(not s["managed"] for s in result.sightings)
    assert next(s for s in result.sightings if s["address"] == "127.0.7.3")["guess"].startswith("printer")
    # Every probe stayed inside the plan, and every planned address/port was tried once.
    targets = [(a, p) for _, _, a, p in rec.calls]
    assert all(plan.allows(a) for a, _ in targets)
    assert sorted(targets) == sorted((a, p) for a in plan.addresses for p in city.discovery.ports)
    _assert_paced([t for t, *_ in rec.calls], city.discovery.rate)
    store = Store(city.database, readonly=True)
    assert [r["address"] for r in store.sightings(result.discovery_id)] == sorted(listeners)
    assert store.inventory_completeness(dt.date.today()) == (0, 3)


def test_sweep_refuses_an_address_outside_the_predicate() -> None:
    with pytest.raises(sw.OutsideRange):
        sw.sweep(["127.0.7.1", "127.0.8.1"], lambda a: a.startswith("127.0.7."), sw.SweepOptions(ports=(9,)))


def test_pacer_spaces_slots() -> None:
    async def run() -> list[float]:
        pacer = sw.Pacer(100)
        out = []

        async def one() -> None:
            await pacer.slot()
            out.append(time.monotonic())

        await asyncio.gather(*(one() for _ in range(30)))
        return out

    _assert_paced(asyncio.run(run()), 100)


@pytest.mark.peers
@pytest.mark.parametrize("passwords", [True, False], ids=["verify_with_passwords", "key_logins_only"])
def test_discover_cli_with_ssh_and_snmp_peers(tmp_path: Path, listeners: dict[str, int], passwords: bool) -> None:
    """SSH fleet host and snmpsim device are reachable with the city's credentials: managed;
    the printer-like listener is found, not managed; auto_add hands the managed ones to the scan.

    The fleet's credential is a password: without ``verify_with_passwords`` it is never sent
    to the unlisted SSH server (no connection at all: its host key is not even pinned)."""
    import shutil
    import sys

    from conftest import FIXTURES, need_peer

    from itaudit.cli import cli
    from itaudit.sim.snmpfleet import SNMPFleet
    from itaudit.sim.sshfleet import SimHost, SSHFleet

    need_peer(shutil.which("snmpsim-command-responder") is not None
              or Path(sys.executable).with_name("snmpsim-command-responder").exists(),
              "snmpsim-command-responder is not installed")
    os.environ["ITAUDIT_TEST_DISC_PW"] = pw = "disc-" + os.urandom(6).hex()
    os.environ["ITAUDIT_TEST_DISC_COMMUNITY"] = "public"
    extra = """
[cities.testville.credentials.fleet]
type = "ssh"
username = "auditor"
password_env = "ITAUDIT_TEST_DISC_PW"
[cities.testville.credentials.snmp]
type = "snmp"
version = "v2c"
community_env = "ITAUDIT_TEST_DISC_COMMUNITY"
"""
    opts = f"auto_add = true\nsnmp_port = 1161\nverify_with_passwords = {str(passwords).lower()}"
    path = _city(tmp_path, extra, opts)
    ssh_host = SimHost("127.0.7.10", FIXTURES / "linux" / "debian-12")
    fleet = SSHFleet([ssh_host], username="auditor", password=pw, key_dir=tmp_path / "keys")
    snmp = SNMPFleet(FIXTURES / "snmp", names=["cisco_c9300_iosxe"],
                     endpoints={"cisco_c9300_iosxe": ("127.0.7.12", 1161)}, cache_dir=tmp_path / "snmpcache")
    with fleet, snmp:
        res = CliRunner().invoke(cli, ["discover", "-c", str(path), "--json"], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        by = {s["address"]: s for s in doc["sightings"]}
        assert set(by) == {"127.0.7.2", "127.0.7.3", "127.0.7.4", "127.0.7.10", "127.0.7.12"}
        assert by["127.0.7.10"]["ssh_banner"].startswith("SSH-2.0-")
        known_hosts = load(path).city("testville").known_hosts
        if not passwords:
            assert not by["127.0.7.10"]["managed"] and by["127.0.7.12"]["managed"]
            assert not known_hosts.exists() or "127.0.7.10" not in known_hosts.read_text()
            return
        assert "127.0.7.10" in known_hosts.read_text()
        assert by["127.0.7.10"]["managed"] and by["127.0.7.10"]["protocol"] == "ssh"
        assert by["127.0.7.10"]["port"] == 2222
        assert by["127.0.7.12"]["managed"] and by["127.0.7.12"]["credential"] == "snmp"
        assert by["127.0.7.12"]["snmp_sysobjectid"].startswith("1.3.6.1.4.1.9.")
        assert not any(by[a]["managed"] for a in listeners)

        cfg = load(path)
        city = cfg.city("testville")
        store = Store(city.database)
        added = discovered_targets(city, store)
        assert {(t.address, t.protocol, t.port, t.credential) for t in added} == {
            ("127.0.7.10", "ssh", 2222, "fleet"), ("127.0.7.12", "snmp", 1161, "snmp")}
        # Scan them; a second sweep then ties the sightings to the stored devices.
        from itaudit.scan import run_scan

        summary = run_scan(cfg, city, targets=added, store=store)
        assert summary.failed == 0, summary.errors
        again = run_discovery(cfg, city, plan_sweep(city, ["127.0.7.8/29"]), store=store)
        linked = {s["address"]: s["device_id"] for s in again.sightings}
        assert linked["127.0.7.10"] and linked["127.0.7.12"]
        assert store.inventory_completeness(dt.date.today()) == (2, 0)
        store.close()


def test_failed_sweep_is_marked_incomplete_and_adds_nothing(tmp_path: Path) -> None:
    cfg = load(_city(tmp_path, discovery="auto_add = false"))
    city = cfg.city("testville")

    async def broken(address: str, port: int, timeout: float, banner: bool) -> tuple[bool, str | None]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        run_discovery(cfg, city, plan_sweep(city), tcp=broken, verify_ssh=False)
    store = Store(city.database)
    assert [d["status"] for d in store.discoveries()] == ["incomplete"]
    assert discovered_targets(city, store) == []
    assert store.inventory_completeness(dt.date.today()) == (0, 0)  # an incomplete run is not counted
    store.close()
