"""1,000 simulated SSH hosts, full audit (collect, check, store), and the scanner's peak memory.

The simulated fleet runs in separate processes (``python -m itaudit.sim.sshfleet``); the
scanner is the real CLI, ``itaudit scan``, in a child process whose wall time, CPU
(user + system, every thread) and peak RSS come from the kernel (``os.wait4``), so none
of the fleet's CPU is counted. Two scans run: the first contact (host keys pinned, every
device and finding new) and a steady-state rescan (finding episodes refreshed).

Baseline, measured in the same run against the same hosts at the same concurrency: a bare
paramiko session per host (TCP_NODELAY connect, key exchange, password auth, one exec of
``true``) — the least any SSH client library can do. Targets: under 30 s wall,
under 10 ms client CPU per host, peak RSS under 300 MB.

    .venv/bin/python bench/scale_ssh.py [--hosts 1000] [--concurrency 16] [--fleets 2]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import secrets
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

import psutil  # noqa: E402
from fleetkit import CITY, SSH_PASSWORD_ENV, FleetProcess, itaudit_cmd, run_measured, write_city_config  # noqa: E402
from ssh_cpu import bare_exec  # noqa: E402  (the bare-paramiko baseline)

from itaudit.demo import ssh_cases  # noqa: E402

USER = "bench"  # ssh_cpu.bare_exec logs in as this user


def fleet_cpu(pids: list[int]) -> float:
    return sum(sum(psutil.Process(p).cpu_times()[:2]) for p in pids)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--base", default="127.1.0.1", help="first loopback address (127.1.x.y)")
    ap.add_argument("--concurrency", type=int, default=16, help="settings.concurrency (the default is 16)")
    ap.add_argument("--fleets", type=int, default=2, help="simulator processes sharing the hosts")
    ap.add_argument("--linux-only", action="store_true", help="serve Linux cases only (default: every case)")
    args = ap.parse_args()

    cases = [c for c in ssh_cases() if not args.linux_only or c.parent.name == "linux"]
    password = secrets.token_urlsafe(12)
    os.environ[SSH_PASSWORD_ENV] = password
    work = Path(tempfile.mkdtemp(prefix="itaudit-scale-ssh-"))
    start = ipaddress.IPv4Address(args.base)
    per = -(-args.hosts // args.fleets)
    fleets = []
    try:
        t = time.perf_counter()
        for i in range(args.fleets):
            n = min(per, args.hosts - i * per)
            # Each process serves every case in turn, so the city is a mix of Linux and Windows.
            rotated = cases[(i * per) % len(cases):] + cases[:(i * per) % len(cases)]
            fleet = FleetProcess(rotated, n, str(start + i * per), work / "keys", password=password, username=USER)
            fleet.cmd.append("--unique-serials")  # 1,000 distinct machines, not 20 cases seen 50 times
            fleets.append(fleet.__enter__())
        print(f"fleet: {args.hosts} hosts in {args.fleets} processes, {len(cases)} recorded cases, "
              f"up in {time.perf_counter() - t:.1f} s")
        hosts = [str(start + i) for i in range(args.hosts)]
        cfg = write_city_config(work / "city.toml", ssh=[(h, 2222) for h in hosts], username=USER,
                                concurrency=args.concurrency, timeout=20)
        pids = [f.pid for f in fleets]

        # Baseline: bare paramiko on the same hosts at the same concurrency (CPU of this process).
        bare_exec(hosts[0], 2222, password)  # warm-up: imports
        c0, w0 = time.process_time(), time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            list(pool.map(lambda h: bare_exec(h, 2222, password), hosts))
        base_cpu, base_wall = time.process_time() - c0, time.perf_counter() - w0
        base_ms = base_cpu * 1000 / args.hosts

        runs = {}
        for label in ("first contact", "steady state"):
            s0 = fleet_cpu(pids)
            m = run_measured(itaudit_cmd("scan", "-c", str(cfg), "--json"), env=dict(os.environ), out_dir=work)
            sim_ms = (fleet_cpu(pids) - s0) * 1000 / args.hosts
            if m.returncode not in (0, 1, 3):
                print(m.stderr[-3000:], file=sys.stderr)
                return 1
            summary = json.loads(m.stdout)[0]
            runs[label] = (m, summary, sim_ms)

        # The scanner's fixed cost (interpreter, imports, config, knowledge): a scan of no targets.
        empty = write_city_config(work / "empty.toml", ssh=[], username=USER)
        idle = run_measured(itaudit_cmd("scan", "-c", str(empty), "--json"), env=dict(os.environ), out_dir=work)

        print(f"\n{args.hosts} SSH hosts, concurrency {args.concurrency}, machine: {os.cpu_count()} CPUs")
        print(f"baseline  bare paramiko exec 'true'    : {base_ms:6.2f} ms CPU/host   wall {base_wall:6.2f} s")
        for label, (m, s, sim_ms) in runs.items():
            cpu_ms = m.cpu * 1000 / args.hosts
            print(f"itaudit scan, {label:14s}         : {cpu_ms:6.2f} ms CPU/host   wall {m.wall:6.2f} s   "
                  f"x{cpu_ms / base_ms:4.2f} CPU of baseline   peak RSS {m.max_rss_mb:6.1f} MB   "
                  f"ok {s['ok']} partial {s['partial']} failed {s['failed']}   (simulator {sim_ms:.1f} ms/host)")
        print(f"  fixed cost of one 'itaudit scan' (0 targets): {idle.cpu:.2f} s CPU, {idle.wall:.2f} s wall, "
              f"peak RSS {idle.max_rss_mb:.1f} MB")
        steady, s, _ = runs["steady state"]
        db = work / "data" / CITY / "itaudit.db"
        size = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
        print(f"  database after two scans: {size / 1e6:.1f} MB")
        cpu_ms = steady.cpu * 1000 / args.hosts
        worst_wall = max(m.wall for m, _, _ in runs.values())
        worst_rss = max(m.max_rss_mb for m, _, _ in runs.values())
        print(f"targets: wall < 30 s: {'met' if worst_wall < 30 else 'NOT met'} ({worst_wall:.1f} s); "
              f"CPU < 10 ms/host: {'met' if cpu_ms < 10 else 'NOT met'} ({cpu_ms:.2f}); "
              f"peak RSS < 300 MB: {'met' if worst_rss < 300 else 'NOT met'} ({worst_rss:.0f} MB)")
        return 0 if s["failed"] == 0 else 1
    finally:
        for f in fleets:
            f.__exit__()


if __name__ == "__main__":
    raise SystemExit(main())
