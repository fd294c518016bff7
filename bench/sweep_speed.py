"""How long a /24 discovery sweep takes at the default pace (the goal: within a minute).

Sweeps 127.0.7.0/24 (loopback only) with the default ports and rate, a few plain TCP
listeners standing in for devices, and prints the wall time, the probes sent and the
achieved probe rate. Nothing is asserted: the number is for people.

    .venv/bin/python bench/sweep_speed.py [--rate 50] [--snmp]

``--snmp`` adds one SNMPv2c GET per address (community ``public``, port 1161, no agent:
every request times out), as a city with an SNMP credential would.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors import sweep as sw  # noqa: E402
from itaudit.credentials import SNMPCredential  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=sw.SweepOptions.rate)
    ap.add_argument("--concurrency", type=int, default=sw.SweepOptions.concurrency)
    ap.add_argument("--snmp", action="store_true")
    args = ap.parse_args()

    ports = sw.DEFAULT_PORTS if os.geteuid() == 0 else (8080, 9100, 2323)
    listeners = []
    for i, port in enumerate(ports[:3], start=1):  # three "devices"
        s = socket.socket()
        s.bind((f"127.0.7.{200 + i}", port))
        s.listen(64)
        listeners.append(s)
    creds = []
    if args.snmp:
        os.environ["ITAUDIT_BENCH_COMMUNITY"] = "public"
        creds = [SNMPCredential(name="bench", version="v2c", community_env="ITAUDIT_BENCH_COMMUNITY")]
    opts = sw.SweepOptions(ports=tuple(ports), rate=args.rate, concurrency=args.concurrency, snmp_port=1161,
                           snmp_credentials=creds)
    addresses = [f"127.0.7.{i}" for i in range(1, 255)]
    probes = len(addresses) * (len(ports) + (1 if creds else 0))
    t0 = time.monotonic()
    c0 = time.process_time()
    found = sw.sweep(addresses, lambda a: a.startswith("127.0.7."), opts)
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    for s in listeners:
        s.close()
    print(f"/24 sweep: {len(addresses)} addresses x {len(ports)} ports{' + SNMP' if creds else ''} "
          f"= {probes} probes at rate {args.rate:g}/s, concurrency {args.concurrency}")
    print(f"wall {wall:.1f} s (ideal {probes / args.rate:.1f} s), achieved {probes / wall:.1f} probes/s, "
          f"client CPU {cpu:.2f} s, found {len(found)} responding addresses")
    return 0


if __name__ == "__main__":
    sys.exit(main())
