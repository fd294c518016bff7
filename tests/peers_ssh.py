"""SSH peers for the tests: a real OpenSSH ``sshd`` and the simulated fleet, on loopback.

Star-imported by ``conftest.py``. Addresses: 127.0.2.0/24 for the real sshd,
127.0.3.0/24 for the simulated fleet.
"""

from __future__ import annotations

import getpass
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["SSHD", "SSH_FLEET_CASES", "SimFleetPeer", "SSHDPeer", "sshd", "ssh_fleet", "write_ed25519",
           "SSHDMatrix", "SSHDInstance", "sshd_matrix", "sudo_users"]

SSHD = "/usr/sbin/sshd"
SSHD_PREFIX = "127.0.2."
SSHD_PORT = 2222
SIM_PREFIX = "127.0.3."
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


def free_address(prefix: str, port: int, count: int = 1) -> str:
    """A random run of ``count`` addresses ``prefix.N`` whose ``port`` is free on all, so two
    test runs on one machine (a developer's and CI's, say) do not answer each other."""
    rng = random.Random()
    for _ in range(200):
        first = rng.randrange(1, 255 - count)
        socks = []
        try:
            for i in range(count):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((f"{prefix}{first + i}", port))
            return f"{prefix}{first}"
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no free address in {prefix}0/24 for port {port}")


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
    """A real OpenSSH sshd on 127.0.2.N:2222 (N random, free) with its own host key; key-only
    login as the test user (root here: PermitRootLogin prohibit-password, this sshd only)."""
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
    address = free_address(SSHD_PREFIX, SSHD_PORT)
    conf = work / "sshd_config"
    conf.write_text(
        f"ListenAddress {address}:{SSHD_PORT}\n"
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
        _wait_banner(address, SSHD_PORT, proc, log)
        time.sleep(0.1)
        if proc.poll() is not None:  # lost a race for the address: someone else answered
            raise RuntimeError(f"sshd exited: {log.read_text(errors='replace')[-2000:]}")
        yield SSHDPeer(address, SSHD_PORT, user, client_key, host_pub.rsplit(" ", 1)[0], log, work)
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
    """The simulated fleet on a free run of 127.0.3.x:2222 serving ``SSH_FLEET_CASES``, plus one
    host per fault (``tarpit``, ``drop``, ``stall``, ``flood``, all debian-12)."""
    from itaudit.sim.sshfleet import SimHost, SSHFleet

    work = tmp_path_factory.mktemp("sshfleet")
    env = "ITAUDIT_TEST_SIM_PASSWORD"
    os.environ[env] = "sim-" + os.urandom(6).hex()
    names = [c.split("/")[1] for c in SSH_FLEET_CASES] + ["tarpit", "drop", "stall", "flood"]
    for _attempt in range(5):
        first = int(free_address(SIM_PREFIX, 2222, len(names)).rsplit(".", 1)[1])
        hosts: dict[str, SimHost] = {}
        for i, name in enumerate(names):
            case = FIXTURES / SSH_FLEET_CASES[i] if i < len(SSH_FLEET_CASES) else FIXTURES / "linux/debian-12"
            fault = None if i < len(SSH_FLEET_CASES) else name
            hosts[name] = SimHost(f"{SIM_PREFIX}{first + i}", case, fault=fault)
        fleet = SSHFleet(hosts.values(), username="auditor", password=os.environ[env], key_dir=work / "keys")
        try:
            fleet.start()
        except OSError:  # another run took an address in between: pick again
            continue
        try:
            yield SimFleetPeer(fleet, hosts, "auditor", env, work)
        finally:
            fleet.stop()
        return
    raise RuntimeError("could not bind the simulated fleet")


# --- many real sshd configurations (issue 16's matrix) -------------------------------------


@dataclass
class SSHDInstance:
    """One running sshd of the matrix."""

    name: str
    address: str
    port: int
    conf: Path
    proc: subprocess.Popen
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


class SSHDMatrix:
    """Starts real sshd processes, each with its own configuration file, address and options.

    The folder is world-readable (0755) so non-root test users can read their
    authorized_keys; a configuration can be made unreadable to them with ``private=True``.
    """

    def __init__(self, work: Path):
        self.work = work
        work.chmod(0o755)
        self.host_key = work / "ssh_host_ed25519_key"
        write_ed25519(self.host_key, "matrix-host")
        self.client_key = work / "client_ed25519"
        pub = write_ed25519(self.client_key, "itaudit-client")
        self.auth_keys = work / "authorized_keys"
        self.auth_keys.write_text(pub + "\n")
        self.auth_keys.chmod(0o644)
        self.rsa_key = work / "ssh_host_rsa_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(self.rsa_key)],
                       check=True, capture_output=True)
        self.running: list[SSHDInstance] = []

    def start(self, name: str, extra: str = "", *, args: tuple[str, ...] = (), private: bool = False,
              binary: str = SSHD, host_keys: tuple[Path, ...] | None = None) -> SSHDInstance:
        """Start ``binary -D -e -f CONF *args`` with the common lines plus ``extra``."""
        address = free_address(SSHD_PREFIX, SSHD_PORT)
        conf = self.work / f"{name}.conf"
        keys = "".join(f"HostKey {k}\n" for k in (host_keys or (self.host_key,)))
        conf.write_text(
            f"ListenAddress {address}:{SSHD_PORT}\n{keys}"
            "PidFile none\nStrictModes no\nUsePAM no\nUseDNS no\nLogLevel VERBOSE\nMaxStartups 50\n"
            f"AuthorizedKeysFile {self.auth_keys}\n" + extra
        )
        conf.chmod(0o600 if private else 0o644)
        log = self.work / f"{name}.log"
        with open(log, "wb") as logfh:
            proc = subprocess.Popen([binary, "-D", "-e", "-f", str(conf), *args], stdout=logfh,
                                    stderr=subprocess.STDOUT)
        inst = SSHDInstance(name, address, SSHD_PORT, conf, proc, log)
        self.running.append(inst)
        _wait_banner(address, SSHD_PORT, proc, log)
        return inst

    def stop(self) -> None:
        for inst in self.running:
            inst.proc.terminate()
            try:
                inst.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                inst.proc.kill()
                inst.proc.wait()
        self.running.clear()


@pytest.fixture(scope="module")
def sshd_matrix(tmp_path_factory):
    """A factory of real sshd processes (see ``SSHDMatrix``); all stopped after the module."""
    from conftest import need_peer

    need_peer(os.path.exists(SSHD) and shutil.which("ssh-keygen") is not None,
              f"{SSHD} not installed (apt-get install openssh-server)")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="itaudit-sshd-matrix-"))
    matrix = SSHDMatrix(work)
    try:
        yield matrix
    finally:
        matrix.stop()
        shutil.rmtree(work, ignore_errors=True)


SUDO_USERS = {"itaudit16s": "NOPASSWD: ALL", "itaudit16p": "ALL", "itaudit16n": None}


@pytest.fixture(scope="module")
def sudo_users():
    """Non-root login users for the sudo tests (needs root and sudo; removed afterwards):
    ``itaudit16s`` may ``sudo -n`` anything, ``itaudit16p``'s sudo asks for a password (so
    ``sudo -n`` refuses), ``itaudit16n`` has no sudo rule at all.

    The users and the sudoers rule are machine-wide, so test runs in several checkouts share
    them: each run holds a shared lock on ``/run/lock/itaudit-test16.lock`` while it uses them,
    and only a run that finds no other holder (an exclusive lock succeeds) removes them."""
    import fcntl

    from conftest import need_peer

    need_peer(os.geteuid() == 0 and shutil.which("useradd") is not None,
              "creating test users needs root and useradd")
    need_peer(shutil.which("sudo") is not None, "sudo not installed (apt-get install sudo)")
    rules = Path("/etc/sudoers.d/itaudit-test16")
    lock_dir = Path("/run/lock") if Path("/run/lock").is_dir() else Path(tempfile.gettempdir())
    with open(lock_dir / "itaudit-test16.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)  # waits while another run removes them
        for user in SUDO_USERS:
            if subprocess.run(["id", user], capture_output=True).returncode != 0:
                # Another run may create it at the same moment: its "already exists" is fine.
                subprocess.run(["useradd", "-m", "-s", "/bin/sh", user], capture_output=True)
            # "*": no password, but not a locked account (sshd refuses locked ones without PAM)
            subprocess.run(["usermod", "-p", "*", user], check=True, capture_output=True)
        staged = rules.with_name(f".itaudit-test16.{os.getpid()}")
        staged.write_text("".join(f"{u} ALL=(ALL) {r}\n" for u, r in SUDO_USERS.items() if r))
        staged.chmod(0o440)
        staged.replace(rules)
        try:
            yield dict(SUDO_USERS)
        finally:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # another run still uses them: the last one out removes them
            else:
                rules.unlink(missing_ok=True)
                for user in SUDO_USERS:
                    subprocess.run(["userdel", "-r", user], capture_output=True)
