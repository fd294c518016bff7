"""Client CPU per device for SNMP identification (+ exposure) against snmpsim.

    .venv/bin/python bench/snmp_cpu.py [--data-dir DIR] [--runs 5]

Serves a folder of recordings (default: the project's tests/fixtures/snmp) with snmpsim,
one loopback address each, and measures this process's CPU time (time.process_time;
snmpsim's own CPU is not counted) for, in the same run:
  baseline  one bare GET of sysDescr per device (collectors.snmp.ping_many)
  identify  SNMPCollector(exposure=False): system group, vendor GETs, bounded walks
  full      SNMPCollector(): identification plus the exposure probes
and prints ms of CPU per device and the ratio to the baseline. Target: full < 10 ms.

Measured on the 2-core dev machine, the 13 original recordings x 8 (ms CPU per device):
  before the raw v1/v2c codec (pysnmp for every message): baseline 2.95, identify 11.16,
  + exposure 15.47, + IF-MIB 19.63; after (collectors/snmpwire.py): 0.29, 2.5, 4.2, 5.1.
The 39 recordings x 8, best of 3: exposure probes in two rounds, v3 discovery on a socket
of its own: 0.20, 1.38, 2.81, 3.21; all probes in one round on the run's one socket:
0.13, 1.30, 1.54, 1.88.
The baseline shrank with the codec too, so compare the absolute figures across versions.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collectors.base import CollectContext  # noqa: E402
from collectors.snmp import SNMPCollector, ping_many  # noqa: E402
from itaudit.credentials import SNMPCredential  # noqa: E402
from itaudit.model import Target  # noqa: E402
from itaudit.sim.snmpfleet import SNMPFleet  # noqa: E402


def measure(fn, runs: int) -> tuple[float, float]:
    """Best-of-runs CPU seconds and wall seconds of fn()."""
    cpu, wall = [], []
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return min(cpu), min(wall)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT / "tests" / "fixtures" / "snmp")
    ap.add_argument("--runs", type=int, default=5)
    # .60 upward: clear of the test fixtures (127.0.4.1-8, .10 and .200 upward)
    ap.add_argument("--base-address", default="127.0.4.60")
    ap.add_argument("--port", type=int, default=1165)
    ap.add_argument("--repeat", type=int, default=8,
                    help="collect each simulated device this many times per run, like a city of N x devices")
    args = ap.parse_args()

    os.environ["ITAUDIT_BENCH_COMMUNITY"] = "public"
    cred = SNMPCredential("bench", version="v2c", community_env="ITAUDIT_BENCH_COMMUNITY")
    ctx = CollectContext("bench", {"bench": cred}, timeout=15, concurrency=32)
    fleet = SNMPFleet(args.data_dir, base_address=args.base_address, port=args.port)
    fleet.start()
    fleet.wait_ready(timeout=120)
    with fleet:
        targets = [Target(d.address, "snmp", port=d.port, name=d.name, credential="bench")
                   for d in fleet.devices.values()] * args.repeat
        n = len(targets)
        ping_many(targets, ctx)  # warm-up: imports, first engine
        base_cpu, base_wall = measure(lambda: ping_many(targets, ctx), args.runs)
        modes = {
            "identify": SNMPCollector(exposure=False, interfaces=False),
            "identify + exposure": SNMPCollector(interfaces=False, exposure_timeout=0.5),
            "identify + exposure + IF-MIB": SNMPCollector(exposure_timeout=0.5),
        }
        measured = {name: measure(lambda c=c: list(c.collect_many(targets, ctx)), args.runs)
                    for name, c in modes.items()}
        trips = {name: sum(int(r.facts.evidence.get("snmp_round_trips", 0)) for r in c.collect_many(targets, ctx)) / n
                 for name, c in modes.items()}

    print(f"{n} collections ({n // args.repeat} devices x {args.repeat}), best of {args.runs} runs, client CPU only")
    print(f"  {'baseline (1 GET sysDescr)':30s} {1000 * base_cpu / n:6.2f} ms/device  wall {base_wall:5.2f}s")
    for name, (cpu, wall) in measured.items():
        print(f"  {name:30s} {1000 * cpu / n:6.2f} ms/device  wall {wall:5.2f}s  x{cpu / base_cpu:4.1f} baseline"
              f"  collection round trips/device {trips[name]:.1f}")
    full = 1000 * measured["identify + exposure + IF-MIB"][0] / n
    print(f"target: identification + exposure under 10 ms of client CPU per device: "
          f"{'met' if full < 10 else 'NOT met'} ({full:.2f} ms with IF-MIB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
