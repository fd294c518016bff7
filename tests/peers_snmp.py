"""Real SNMP peers for the tests: Net-SNMP ``snmpd`` and snmpsim, on 127.0.4.0/24.

- ``snmpd``: real snmpd on 127.0.4.1:1161 (or .3/.5/.7 when another test run holds it),
  a v2c community and a v3 user with SHA + AES-128 that is refused without privacy.
- ``snmpd_v1only``: real snmpd on 127.0.4.2:1161 (or .4/.6/.8) answering SNMPv1 only.
- ``snmpsim_fleet``: the project's recordings (tests/fixtures/snmp) served by snmpsim, one
  loopback address per recording from 127.0.4.10 (or .100, .200) on port 1161,
  community ``public``, v3 user ``itaudit`` (SHA/AES, keys in ``SimDevice``).
- ``snmpsim_slow_agent``: one simulated device on 127.0.4.9 (or .99, .199) port 1162 that
  takes ``SLOW_SYSDESCR_MS`` to answer any request for sysDescr, blocking in between, like
  a busy embedded agent that answers in order (snmpsim's ``delay`` variation module).
Readiness is polled with an SNMP GET, never a blind sleep.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from itaudit.sim.snmpfleet import SimDevice, SNMPFleet, probe

__all__ = ["SnmpdPeer", "snmpd", "snmpd_v1only", "snmpd_matrix", "SnmpdMatrix",
           "snmpsim_fleet", "snmpsim_slow_agent", "SNMP_FIXTURES",
           "SLOW_SYSDESCR_MS"]

SNMPD = "/usr/sbin/snmpd"
SNMP_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "snmp"
SLOW_SYSDESCR_MS = 400


@dataclass(frozen=True)
class SnmpdPeer:
    """How to reach a test snmpd (test-only secrets)."""

    address: str
    port: int
    community: str
    v3_user: str
    auth_key: str
    priv_key: str
    auth_protocol: str = "sha"
    priv_protocol: str = "aes128"


def _free(addresses: list[str], port: int) -> bool:
    """True when nothing listens on any of these UDP endpoints (another test run may)."""
    for address in addresses:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


def _pick(candidates: list[list[str]], port: int) -> list[str]:
    """The first group of addresses that is free, so parallel test runs do not collide."""
    for group in candidates:
        if _free(group, port):
            return group
    pytest.fail(f"no free address in 127.0.4.0/24 on UDP port {port}")


def _need_snmpd() -> None:
    from conftest import need_peer

    need_peer(os.path.exists(SNMPD) and os.access(SNMPD, os.X_OK), f"{SNMPD} is not installed")


def _start_snmpd(tmp: Path, conf: str, address: str, port: int, community: str,
                 version: int) -> subprocess.Popen[bytes]:
    (tmp / "persist").mkdir(parents=True, exist_ok=True)
    conf_file = tmp / "snmpd.conf"
    conf_file.write_text(conf, encoding="utf-8")
    # No MIB loading (-M/-m), no AgentX/smux, log to a file, persistent state in tmp.
    env = dict(os.environ, SNMP_PERSISTENT_DIR=str(tmp / "persist"), MIBS="", MIBDIRS=str(tmp))
    proc = subprocess.Popen(
        [SNMPD, "-f", "-C", "-I", "-smux", "-Lf", str(tmp / "snmpd.log"), "-c", str(conf_file),
         "-p", str(tmp / "snmpd.pid"), "-M", str(tmp), "-m", "", f"udp:{address}:{port}"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while not probe(address, port, community, timeout=0.2, version=version):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log = (tmp / "snmpd.log").read_text(errors="replace") if (tmp / "snmpd.log").exists() else ""
            pytest.fail(f"snmpd did not start on {address}:{port}: {log[-1500:]}")
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpdPeer]:
    """Real Net-SNMP snmpd: a v2c community; v3 users ``itaudit`` (SHA/AES-128, authPriv),
    ``itaudit256`` (SHA-256/AES-256, authPriv) and ``itaudit-np`` (SHA, authNoPriv)."""
    _need_snmpd()
    address = _pick([[f"127.0.4.{n}"] for n in (1, 3, 5, 7)], 1161)[0]
    peer = SnmpdPeer(address, 1161, "city-ro-7Qx", "itaudit", "auth-pass-7Qx", "priv-pass-7Qx")
    conf = (
        f"rocommunity {peer.community} 127.0.0.0/8\n"
        f'createUser {peer.v3_user} SHA "{peer.auth_key}" AES "{peer.priv_key}"\n'
        f"rouser {peer.v3_user} priv\n"
        # SHA-2 + AES-256 (Blumenthal key extension) and an authNoPriv-only user
        f'createUser {peer.v3_user}256 SHA-256 "{peer.auth_key}" AES-256 "{peer.priv_key}"\n'
        f"rouser {peer.v3_user}256 priv\n"
        f'createUser {peer.v3_user}-np SHA "{peer.auth_key}"\n'
        f"rouser {peer.v3_user}-np auth\n"
        "sysLocation City Hall server room <b>2</b>\n"
        "sysContact it@city.example\n"
        "sysName snmpd-test\n"
    )
    proc = _start_snmpd(tmp_path_factory.mktemp("snmpd"), conf, peer.address, peer.port, peer.community, 1)
    yield peer
    _stop(proc)


@pytest.fixture(scope="session")
def snmpd_v1only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpdPeer]:
    """Real snmpd whose VACM answers the community over SNMPv1 only (like an old printer)."""
    _need_snmpd()
    address = _pick([[f"127.0.4.{n}"] for n in (2, 4, 6, 8)], 1161)[0]
    peer = SnmpdPeer(address, 1161, "old-v1-only", "", "", "")
    conf = (
        f"com2sec oldsec 127.0.0.0/8 {peer.community}\n"
        "group oldgrp v1 oldsec\n"
        "view all included .1\n"
        'access oldgrp "" v1 noauth exact all none none\n'
        "sysName v1-only\n"
    )
    proc = _start_snmpd(tmp_path_factory.mktemp("snmpd_v1"), conf, peer.address, peer.port, peer.community, 0)
    yield peer
    _stop(proc)


class SnmpdMatrix:
    """Starts real snmpd processes with a given configuration on 127.0.4.31-127.0.4.90:1163."""

    PORT = 1163

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, conf: str, ready_community: str) -> str:
        """Start snmpd with ``conf`` (which must let ``ready_community`` read over v2c); its address."""
        address = _pick([[f"127.0.4.{n}"] for n in range(31, 91)], self.PORT)[0]
        self.procs.append(_start_snmpd(self.tmp / name, conf, address, self.PORT, ready_community, 1))
        return address

    def stop(self) -> None:
        for proc in self.procs:
            _stop(proc)
        self.procs.clear()


@pytest.fixture(scope="module")
def snmpd_matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpdMatrix]:
    """A factory of real snmpd processes (``SnmpdMatrix``), stopped after the module."""
    _need_snmpd()
    matrix = SnmpdMatrix(tmp_path_factory.mktemp("snmpd-matrix"))
    try:
        yield matrix
    finally:
        matrix.stop()


def _need_snmpsim() -> None:
    from conftest import need_peer

    need_peer(shutil.which("snmpsim-command-responder") is not None
              or Path(sys.executable).with_name("snmpsim-command-responder").exists(),
              "snmpsim-command-responder is not installed")


@pytest.fixture(scope="session")
def snmpsim_slow_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimDevice]:
    """One snmpsim device (the Linux recording) whose sysDescr costs ``SLOW_SYSDESCR_MS``."""
    _need_snmpsim()
    data = tmp_path_factory.mktemp("snmpsim-slow")
    lines = (SNMP_FIXTURES / "linux_ubuntu2204_netsnmp.snmprec").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("1.3.6.1.2.1.1.1.0|4|")
    lines[0] = f"1.3.6.1.2.1.1.1.0|4:delay|value=Slow agent Linux,wait={SLOW_SYSDESCR_MS}"
    (data / "slow_agent.snmprec").write_text("\n".join(lines) + "\n", encoding="utf-8")
    address = _pick([[f"127.0.4.{n}"] for n in (9, 99, 199)], 1162)[0]
    fleet = SNMPFleet(data, base_address=address, port=1162, cache_dir=data / "cache").start()
    try:
        # not wait_ready(): its 0.2 s polls would all time out (and each one block the agent)
        deadline = time.monotonic() + 60
        while not probe(address, 1162, "public", timeout=3 * SLOW_SYSDESCR_MS / 1000):
            if time.monotonic() > deadline:
                pytest.fail("the slow snmpsim agent did not start")
        yield fleet.devices["slow_agent"]
    finally:
        fleet.stop()


@pytest.fixture(scope="session")
def snmpsim_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SNMPFleet]:
    """snmpsim serving the project's recordings, one loopback address per device."""
    _need_snmpsim()
    count = len(list(SNMP_FIXTURES.glob("*.snmprec")))
    group = _pick([[f"127.0.4.{b + i}" for i in range(count)] for b in (10, 100, 200) if b + count <= 255], 1161)
    fleet = SNMPFleet(SNMP_FIXTURES, base_address=group[0], port=1161,
                      cache_dir=tmp_path_factory.mktemp("snmpsim-cache"))
    with fleet:
        yield fleet
