"""Helpers shared by the resilience tests and the scale benchmarks (issue 8).

- ``write_city_config``: a real config file for one city whose targets are simulated
  SSH hosts and/or SNMP devices (secrets only through environment variable names);
- ``FleetProcess``: the simulated SSH fleet in a *separate* process
  (``python -m itaudit.sim.sshfleet``), so a benchmark counts only the scanner's CPU;
- ``run_measured``: run a command and return its wall time, CPU seconds (user + sys) and
  peak RSS from the kernel's own accounting of that child (``os.wait4``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
CITY = "scaleton"
SSH_PASSWORD_ENV = "ITAUDIT_SCALE_SSH_PASSWORD"  # noqa: S105 - a variable name
SNMP_COMMUNITY_ENV = "ITAUDIT_SCALE_SNMP_COMMUNITY"


def write_city_config(path: Path, *, ssh: Iterable[tuple[str, int]] = (), snmp: Iterable[tuple[str, int]] = (),
                      username: str = "itaudit", timeout: float = 15, concurrency: int = 16,
                      data_dir: str = "data", mode: int = 0o600, ssh_tags: Sequence[str] = ()) -> Path:
    """Write a one-city config whose targets are ``ssh`` and ``snmp`` (address, port) pairs."""
    lines = ["[settings]", f'data_dir = "{data_dir}"', f"concurrency = {concurrency}", f"timeout = {timeout}", "",
             f"[cities.{CITY}]", 'name = "City of Scaleton"', "",
             f"[cities.{CITY}.credentials.servers]", 'type = "ssh"', f'username = "{username}"',
             f'password_env = "{SSH_PASSWORD_ENV}"', "",
             f"[cities.{CITY}.credentials.network]", 'type = "snmp"', 'version = "v2c"',
             f'community_env = "{SNMP_COMMUNITY_ENV}"', ""]
    tags = "[" + ", ".join(f'"{t}"' for t in ssh_tags) + "]"
    for i, (address, port) in enumerate(ssh):
        lines += [f"[[cities.{CITY}.targets]]", f'address = "{address}"', f"port = {port}", 'protocol = "ssh"',
                  'credential = "servers"', f'name = "srv-{i:04d}"', 'department = "Information Technology"']
        if ssh_tags:
            lines.append(f"tags = {tags}")
        lines.append("")
    for i, (address, port) in enumerate(snmp):
        lines += [f"[[cities.{CITY}.targets]]", f'address = "{address}"', f"port = {port}", 'protocol = "snmp"',
                  'credential = "network"', f'name = "net-{i:04d}"', 'department = "Information Technology"', ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(mode)
    return path


def database(config_path: Path) -> Path:
    """Where the city of a ``write_city_config`` file keeps its database (as the config says)."""
    from itaudit.config import load

    return load(config_path, env={}).city(CITY).database


class FleetProcess:
    """``python -m itaudit.sim.sshfleet`` serving ``count`` hosts from ``base`` until stopped."""

    def __init__(self, cases: Sequence[Path], count: int, base: str, key_dir: Path, *, password: str,
                 username: str = "itaudit", port: int = 2222):
        self.cmd = [sys.executable, "-m", "itaudit.sim.sshfleet", "--count", str(count), "--base", base,
                    "--port", str(port), "--key-dir", str(key_dir), "--username", username,
                    "--password-env", SSH_PASSWORD_ENV]
        for c in cases:
            self.cmd += ["--case", str(c)]
        self.env = dict(os.environ, **{SSH_PASSWORD_ENV: password})
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> FleetProcess:
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("READY"):
            self.__exit__()
            raise RuntimeError(f"simulated fleet did not start: {self.cmd}")
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        if self.proc.stdin:
            self.proc.stdin.close()  # the fleet runs until its stdin closes
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None


@dataclass
class Measured:
    """What the kernel says one child process used."""

    returncode: int
    wall: float
    cpu: float  # user + system seconds, all threads
    max_rss_mb: float
    stdout: str
    stderr: str


def run_measured(cmd: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT,
                 out_dir: Path | None = None) -> Measured:
    """Run ``cmd``; wall, CPU and peak RSS come from ``os.wait4`` on that very child."""
    out_dir = out_dir or Path(os.environ.get("TMPDIR", "/tmp"))
    out_path, err_path = out_dir / f"measured-{os.getpid()}.out", out_dir / f"measured-{os.getpid()}.err"
    with open(out_path, "w+b") as out, open(err_path, "w+b") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    out_path.unlink()
    err_path.unlink()
    return Measured(proc.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout, stderr)


def itaudit_cmd(*args: str) -> list[str]:
    """The real CLI, as a user runs it (``main`` sets the umask and maps errors)."""
    return [sys.executable, "-m", "itaudit.cli", *args]
