"""Client CPU per host for the SSH collector against the simulated fleet.

The fleet runs in a separate process, so only the client's CPU (all its threads:
``time.process_time``) is counted. Printed per host, next to a baseline measured in the
same run: a bare paramiko session doing the same connect + key exchange + password auth
+ one exec of ``true``. Target: under 10 ms client CPU per host for the Linux
probe, transport and parsing included.

    .venv/bin/python bench/ssh_cpu.py [--hosts 60] [--case tests/fixtures/linux/ubuntu-22.04]
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paramiko  # noqa: E402  (bench only: the baseline is bare paramiko)
import psutil  # noqa: E402

from collectors.base import CollectContext  # noqa: E402
from collectors.linux import parse_linux  # noqa: E402
from collectors.ssh import SSHCollector  # noqa: E402
from itaudit.credentials import SSHCredential  # noqa: E402
from itaudit.model import ResultStatus, Target  # noqa: E402
from itaudit.sim.sshfleet import addresses  # noqa: E402

USER = "bench"
ENV = "ITAUDIT_BENCH_SSH_PASSWORD"


def bare_exec(address: str, port: int, password: str) -> None:
    """The baseline: the least a client can do to run one command over SSH."""
    sock = socket.create_connection((address, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = paramiko.Transport(sock)
    try:
        t.start_client(timeout=10)
        t.auth_password(USER, password)
        ch = t.open_session(timeout=10)
        ch.exec_command("true")
        ch.shutdown_write()
        while ch.recv(65536):
            pass
        ch.close()
    finally:
        t.close()


def cpu_per_host(fn, items, workers: int) -> tuple[float, float]:
    """(client CPU ms per item, wall seconds) for running fn over items on a thread pool."""
    c0, w0 = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fn, items))
    return (time.process_time() - c0) * 1000 / len(items), time.perf_counter() - w0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=60)
    ap.add_argument("--case", type=Path, default=ROOT / "tests/fixtures/linux/ubuntu-22.04")
    ap.add_argument("--base", default="127.0.3.130", help="first loopback address of the fleet")
    ap.add_argument("--port", type=int, default=2222)
    ap.add_argument("--workers", type=int, default=8)
    args = ap.parse_args()

    password = secrets.token_urlsafe(12)
    work = Path(tempfile.mkdtemp(prefix="itaudit-bench-"))
    env = dict(os.environ, **{ENV: password})
    fleet = subprocess.Popen(
        [sys.executable, "-m", "itaudit.sim.sshfleet", "--case", str(args.case), "--count", str(args.hosts),
         "--base", args.base, "--port", str(args.port), "--key-dir", str(work / "keys"), "--username", USER,
         "--password-env", ENV],
        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = fleet.stdout.readline() if fleet.stdout else ""
        if not line.startswith("READY"):
            print("fleet did not start", file=sys.stderr)
            return 1
        hosts = addresses(args.base, args.hosts)
        os.environ[ENV] = password
        cred = SSHCredential("bench", USER, password_env=ENV)
        ctx = CollectContext("bench", credentials={"bench": cred}, known_hosts=work / "known_hosts",
                             timeout=30, concurrency=args.workers)
        targets = [Target(a, "ssh", port=args.port, credential="bench") for a in hosts]
        collector = SSHCollector()

        bare_exec(hosts[0], args.port, password)  # warm-up: imports, first key loads
        base_ms, base_wall = cpu_per_host(lambda a: bare_exec(a, args.port, password), hosts, args.workers)
        results: list = []

        def collect(t: Target) -> None:
            results.append(collector.safe_collect(t, ctx))

        first_ms, first_wall = cpu_per_host(collect, targets, args.workers)  # pins host keys (TOFU)
        results.clear()
        server = psutil.Process(fleet.pid)
        s0 = sum(server.cpu_times()[:2])
        coll_ms, coll_wall = cpu_per_host(collect, targets, args.workers)
        server_ms = (sum(server.cpu_times()[:2]) - s0) * 1000 / len(targets)
        ok = sum(r.status is ResultStatus.OK for r in results)
        probe = (args.case / "probe.txt").read_bytes()
        parse_ms, _ = cpu_per_host(lambda _: parse_linux(probe), range(args.hosts), 1)

        print(f"hosts: {args.hosts}  case: {args.case.name} ({len(probe)} bytes of probe output)  "
              f"workers: {args.workers}  ok: {ok}/{len(results)}")
        print(f"baseline  bare paramiko exec 'true' : {base_ms:6.2f} ms CPU/host  ({base_wall:.2f} s wall)")
        print(f"collector first contact (TOFU pin)  : {first_ms:6.2f} ms CPU/host  ({first_wall:.2f} s wall)")
        print(f"collector steady state              : {coll_ms:6.2f} ms CPU/host  ({coll_wall:.2f} s wall)")
        print(f"  of which parse_linux alone        : {parse_ms:6.2f} ms CPU/host")
        print(f"ratio collector / baseline          : {coll_ms / base_ms:6.2f}x")
        print(f"simulator CPU (other process)       : {server_ms:6.2f} ms CPU/host")
        print(f"target < 10 ms CPU/host             : {'met' if coll_ms < 10 else 'NOT met'}")
        return 0 if ok == len(results) else 1
    finally:
        if fleet.stdin:
            fleet.stdin.close()
        try:
            fleet.wait(timeout=10)
        except subprocess.TimeoutExpired:
            fleet.kill()


if __name__ == "__main__":
    raise SystemExit(main())
