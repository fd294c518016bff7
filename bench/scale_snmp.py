"""1,000 snmpsim devices, identification and exposure, full audit (collect, check, store).

How the 1,000 devices are simulated (measured, see bench/HISTORY.md): snmpsim's usual
layout of one SNMP engine per device (``itaudit.sim.snmpfleet``) needs about 0.3 s of
start-up per engine (250 engines: 76 s), so here ONE snmpsim engine listens on 1,000
loopback addresses (127.1.8.1 ...) and serves 1,000 recordings, one community each (a
recording's file stem is its community). Each recording is a copy of a project recording
with its serial number made unique, so the store sees 1,000 distinct devices. The city's
config has one v2c credential per device (its community, through an environment
variable). Exposure probes run as in production: the default communities get no answer
here and cost their timeout in wall time, not CPU. The run then reads the stored facts:
every device must show SNMP v1, v2c and v3 answered and no default community (a scan
that got faster by missing answers fails).

The scanner is the real CLI (``itaudit scan``) in a child process; wall time, CPU
(user + system) and peak RSS come from ``os.wait4``. Baseline in the same run: one bare
GET of sysDescr per device (``collectors.snmp.ping_many``) on the same devices at the same
concurrency, CPU of this process. Targets: under 30 s wall and 10 ms CPU/device.

    .venv/bin/python bench/scale_snmp.py [--devices 1000] [--concurrency 64] [--sim-procs 2]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import psutil  # noqa: E402
from fleetkit import CITY, itaudit_cmd, run_measured  # noqa: E402

from collectors.base import CollectContext  # noqa: E402
from collectors.snmp import ping_many  # noqa: E402
from itaudit.credentials import SNMPCredential  # noqa: E402
from itaudit.model import Target  # noqa: E402
from itaudit.sim.snmpfleet import probe  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "snmp"
PORT = 1161


def make_recordings(data: Path, n: int) -> list[str]:
    """``n`` recordings named dNNNN (= their community), each a project recording with a unique serial."""
    expected = json.loads((FIXTURES / "expected.json").read_text())
    sources = [p for p in sorted(FIXTURES.glob("*.snmprec")) if p.stem != "hostile_values"]
    data.mkdir(parents=True)
    names = []
    for i in range(n):
        src = sources[i % len(sources)]
        text = src.read_text(encoding="utf-8")
        serial = (expected.get(src.stem) or {}).get("identity.serial")
        if serial:
            text = text.replace(serial, f"{serial}-{i:04d}")
        name = f"d{i:04d}"
        (data / f"{name}.snmprec").write_text(text, encoding="utf-8")
        names.append(name)
    return names


def write_config(path: Path, devices: list[tuple[str, str]], concurrency: int) -> dict[str, str]:
    """One credential per device (its community); return the environment holding the communities."""
    env, lines = {}, ["[settings]", 'data_dir = "data"', f"concurrency = {concurrency}", "timeout = 15", "",
                      f"[cities.{CITY}]", 'name = "City of Scaleton"', ""]
    for address, name in devices:
        var = f"ITAUDIT_SCALE_COMMUNITY_{name.upper()}"
        env[var] = name
        lines += [f"[cities.{CITY}.credentials.{name}]", 'type = "snmp"', 'version = "v2c"',
                  f'community_env = "{var}"', "",
                  f"[[cities.{CITY}.targets]]", f'address = "{address}"', f"port = {PORT}", 'protocol = "snmp"',
                  f'credential = "{name}"', f'name = "net-{name}"', ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return env


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--base", default="127.1.8.1", help="first loopback address")
    ap.add_argument("--sim-procs", type=int, default=2, help="snmpsim processes sharing the devices")
    ap.add_argument("--concurrency", type=int, default=64,
                    help="settings.concurrency: devices in flight on the one asyncio loop")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="itaudit-scale-snmp-"))
    names = make_recordings(work / "recordings", args.devices)
    start = ipaddress.IPv4Address(args.base)
    addresses = [str(start + i) for i in range(args.devices)]
    exe = shutil.which("snmpsim-command-responder") or str(Path(sys.executable).with_name("snmpsim-command-responder"))
    sims = []
    t = time.perf_counter()
    for k in range(args.sim_procs):
        # Each snmpsim process serves its share of the devices (snmpsim is single-threaded),
        # every sim_procs-th one: the scan goes through the targets in order, so blocks of
        # consecutive devices would have kept one process busy and the other idle.
        part = work / f"recordings-{k}"
        part.mkdir()
        for n in names[k::args.sim_procs]:
            (work / "recordings" / f"{n}.snmprec").rename(part / f"{n}.snmprec")
        cmd = [exe, f"--cache-dir={work / f'cache-{k}'}", "--logging-method=null", "--v3-engine-id=auto",
               f"--data-dir={part}"] + [f"--agent-udpv4-endpoint={a}:{PORT}" for a in addresses[k::args.sim_procs]]
        sims.append(subprocess.Popen(cmd, env=dict(os.environ, SNMPSIM_ALLOW_ROOT="true"), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        # snmpsim indexes a recording on its first query: touch every one before measuring.
        for a, n in zip(addresses, names, strict=True):
            while not probe(a, PORT, community=n, timeout=2.0):
                if any(p.poll() is not None for p in sims) or time.perf_counter() - t > 600:
                    print(f"snmpsim never answered {a} ({n})", file=sys.stderr)
                    return 1
        print(f"snmpsim: {args.sim_procs} processes, one engine each, {args.devices} endpoints and recordings, "
              f"ready (every recording indexed) in {time.perf_counter() - t:.1f} s")
        cfg = work / "city.toml"
        env = write_config(cfg, list(zip(addresses, names, strict=True)), args.concurrency)
        os.environ.update(env)

        # Baseline: one bare GET of sysDescr per device, same devices, same concurrency.
        creds = {n: SNMPCredential(n, version="v2c", community_env=f"ITAUDIT_SCALE_COMMUNITY_{n.upper()}")
                 for n in names}
        ctx = CollectContext("bench", creds, timeout=15, concurrency=args.concurrency)
        targets = [Target(a, "snmp", port=PORT, credential=n) for a, n in zip(addresses, names, strict=True)]
        ping_many(targets[:20], ctx)  # warm-up: imports, first engine
        c0, w0 = time.process_time(), time.perf_counter()
        answered = ping_many(targets, ctx)
        base_cpu, base_wall = time.process_time() - c0, time.perf_counter() - w0
        base_ms = base_cpu * 1000 / args.devices
        if sum(answered.values()) != args.devices:
            print(f"only {sum(answered.values())} devices answered the baseline GET", file=sys.stderr)

        servers = [psutil.Process(p.pid) for p in sims]
        runs = {}
        for label in ("first scan", "second scan"):
            s0 = sum(sum(p.cpu_times()[:2]) for p in servers)
            m = run_measured(itaudit_cmd("scan", "-c", str(cfg), "--json"), env=dict(os.environ), out_dir=work)
            sim_ms = (sum(sum(p.cpu_times()[:2]) for p in servers) - s0) * 1000 / args.devices
            if m.returncode not in (0, 1, 3):
                print(m.stderr[-3000:], file=sys.stderr)
                return 1
            runs[label] = (m, json.loads(m.stdout)[0], sim_ms)
        db = work / "data" / CITY / "itaudit.db"
        with sqlite3.connect(db) as conn:
            devices = conn.execute("select count(*) from devices").fetchone()[0]
            # Every simulated device answers v1 and v2c with its own community and SNMPv3
            # discovery, and no default community: a fast scan must still see exactly that.
            exposure = conn.execute(
                "select scan_id, sum(json_extract(facts, '$.posture.snmp_versions') = '[\"v1\",\"v2c\",\"v3\"]'"
                " and json_extract(facts, '$.posture.snmp_default_communities') = '[]') "
                "from observations group by scan_id order by scan_id").fetchall()

        print(f"\n{args.devices} SNMP devices, concurrency {args.concurrency}, machine: {os.cpu_count()} CPUs")
        print(f"baseline  one GET sysDescr (ping_many)  : {base_ms:6.2f} ms CPU/device   wall {base_wall:6.2f} s")
        for label, (m, s, sim_ms) in runs.items():
            cpu_ms = m.cpu * 1000 / args.devices
            print(f"itaudit scan, {label:12s}             : {cpu_ms:6.2f} ms CPU/device   wall {m.wall:6.2f} s   "
                  f"x{cpu_ms / base_ms:4.1f} CPU of baseline   peak RSS {m.max_rss_mb:6.1f} MB   "
                  f"ok {s['ok']} partial {s['partial']} failed {s['failed']}   (snmpsim {sim_ms:.1f} ms/device)")
        print(f"  distinct devices in the store: {devices}")
        print("  exposure facts as simulated (versions v1, v2c, v3; no default community), per scan: "
              + ", ".join(f"{n or 0}/{args.devices}" for _, n in exposure))
        m, s, _ = runs["second scan"]
        cpu_ms = m.cpu * 1000 / args.devices
        worst = max(r[0].wall for r in runs.values())
        print(f"targets: wall < 30 s: {'met' if worst < 30 else 'NOT met'} ({worst:.1f} s); "
              f"CPU < 10 ms/device: {'met' if cpu_ms < 10 else 'NOT met'} ({cpu_ms:.2f})")
        return 0 if s["failed"] == 0 and all(n == args.devices for _, n in exposure) else 1
    finally:
        for p in sims:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
