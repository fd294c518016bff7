"""SSH peers for the tests: a real OpenSSH ``sshd`` and the simulated fleet, on loopback.

Star-imported by ``conftest.py``. Addresses: 127.0.2.0/24 for the real sshd,
127.0.3.0/24 for the simulated fleet.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["SSHD", "SSH_FLEET_CASES", "SimFleetPeer", "SSHDPeer", "sshd", "ssh_fleet", "write_ed25519"]

SSHD = "/usr/sbin/sshd"
SSHD_ADDRESS = "127.0.2.1"
SSHD_PORT = 2222
SIM_BASE = "127.0.3."
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Cases the ssh_fleet fixture serves, one address each (127.0.3.1, .2, ...).
SSH_FLEET_CASES = ("linux/debian-12", "linux/rocky-8", "linux/ubuntu-18.04", "windows/win11-23h2",
                   "windows/winserver-2012r2")


def write_ed25519(path: Path, comment: str = "itaudit-test") -> str:
    """Write a fresh Ed25519 private key in OpenSSH format (0600); return the public key line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    line = f"{pub.decode()} {comment}"
    path.with_suffix(".pub").write_text(line + "\n")
    return line


@dataclass
class SSHDPeer:
    """A running real sshd: where it listens and how to log in (key only)."""

    address: str
    port: int
    username: str
    client_key: Path
    host_key_pub: str  # "ssh-ed25519 AAAA…"
    log_path: Path
    workdir: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_banner(address: str, port: int, proc: subprocess.Popen, log: Path, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection((address, port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-2.0-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not answer on {address}:{port}: {log.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real OpenSSH sshd on 127.0.2.1:2222 with its own host key; key-only login as the test user."""
    from conftest import need_peer  # conftest is loaded by now; imported late to avoid a cycle

    need_peer(os.path.exists(SSHD) and shutil.which("ssh-keygen") is not None,
              f"{SSHD} not installed (apt-get install openssh-server)")
    work = tmp_path_factory.mktemp("sshd")
    host_key = work / "ssh_host_ed25519_key"
    host_pub = write_ed25519(host_key, "sshd-host")
    client_key = work / "client_ed25519"
    client_pub = write_ed25519(client_key, "itaudit-client")
    auth_keys = work / "authorized_keys"
    auth_keys.write_text(client_pub + "\n")
    auth_keys.chmod(0o600)
    user = getpass.getuser()
    conf = work / "sshd_config"
    conf.write_text(
        f"ListenAddress {SSHD_ADDRESS}:{SSHD_PORT}\n"
        f"HostKey {host_key}\n"
        "PidFile none\nStrictModes no\nUsePAM no\n"
        # Root may log in here with the test key only (the test user is root on CI).
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication yes\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        f"AuthorizedKeysFile {auth_keys}\n"
        "LogLevel VERBOSE\nMaxStartups 50\nUseDNS no\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    log = work / "sshd.log"
    with open(log, "wb") as logfh:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(conf)], stdout=logfh, stderr=subprocess.STDOUT)
    try:
        _wait_banner(SSHD_ADDRESS, SSHD_PORT, proc, log)
        yield SSHDPeer(SSHD_ADDRESS, SSHD_PORT, user, client_key, host_pub.rsplit(" ", 1)[0], log, work)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class SimFleetPeer:
    """The running simulated fleet: the fleet object, its hosts by case name, and the login."""

    fleet: object  # itaudit.sim.sshfleet.SSHFleet
    hosts: dict[str, object]  # case name -> SimHost
    username: str
    password_env: str
    workdir: Path

    def address(self, case: str) -> str:
        return self.hosts[case].address  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def ssh_fleet(tmp_path_factory):
    """The simulated fleet on 127.0.3.x:2222 serving ``SSH_FLEET_CASES`` (plus fault hosts)."""
    from itaudit.sim.sshfleet import SimHost, SSHFleet

    work = tmp_path_factory.mktemp("sshfleet")
    env = "ITAUDIT_TEST_SIM_PASSWORD"
    os.environ[env] = "sim-" + os.urandom(6).hex()
    hosts: dict[str, SimHost] = {}
    for i, case in enumerate(SSH_FLEET_CASES, start=1):
        hosts[case.split("/")[1]] = SimHost(f"{SIM_BASE}{i}", FIXTURES / case)
    for j, fault in enumerate(("tarpit", "drop", "stall", "flood"), start=100):
        hosts[fault] = SimHost(f"{SIM_BASE}{j}", FIXTURES / "linux" / "debian-12", fault=fault)
    fleet = SSHFleet(hosts.values(), username="auditor", password=os.environ[env], key_dir=work / "keys")
    with fleet:
        yield SimFleetPeer(fleet, hosts, "auditor", env, work)
