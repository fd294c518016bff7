"""CPU that exploited-vulnerability matching adds per Linux host (the goal: at most 2 ms/host).

1,000 Ubuntu 18.04 hosts, each with the ~1,500 packages of the recorded probe
(tests/fixtures/linux/ubuntu-18.04) and a different installed sudo version. Baseline, in the
same run: parsing the probe output and running every other check (what a scan spends per
host on the same data). Measured: VULN-001 + VULN-002 (KEV family, CVE records, the
distribution's fixed versions against the installed packages) and keeping the package list
in the store (zlib + one row), as process CPU time.

    python bench/vuln_match_cpu.py [N_HOSTS]
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collectors.linux import parse_linux  # noqa: E402
from itaudit.checking import CheckContext, DeviceRecord, run_checks  # noqa: E402
from itaudit.knowledge import Knowledge  # noqa: E402
from itaudit.plugins import load_checks  # noqa: E402
from itaudit.policy import Policy  # noqa: E402
from itaudit.store import Store  # noqa: E402

SUDO = ["1.8.21p2-3ubuntu1.2", "1.8.21p2-3ubuntu1.4", "1.8.21p2-3ubuntu1.6"]


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    probe = (ROOT / "tests" / "fixtures" / "linux" / "ubuntu-18.04" / "probe.txt").read_text(encoding="utf-8")
    kn = Knowledge.load()
    kn.vulns()  # loaded once per process, like a scan
    specs = load_checks()
    vuln = [s for k, s in sorted(specs.items()) if k.startswith("VULN-")]
    other = [s for k, s in sorted(specs.items()) if not k.startswith("VULN-")]
    ctx = CheckContext(as_of=dt.date(2026, 11, 23), device=DeviceRecord(kind="server"), policy=Policy(), knowledge=kn)

    t0 = time.process_time()
    hosts = []
    for i in range(n):
        f = parse_linux(probe)
        f.software.product = "ubuntu"
        for p in f.patching.packages:
            if p.name == "sudo":
                p.version = SUDO[i % len(SUDO)]
        hosts.append(f)
    for f in hosts:
        run_checks(f, ctx, other)
    base = time.process_time() - t0

    t0 = time.process_time()
    affected = 0
    for f in hosts:
        out = run_checks(f, ctx, vuln)
        affected += out[0].status.value == "fail"
    match = time.process_time() - t0

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "city.db")
        scan = store.begin_scan("c", dt.date(2026, 11, 23), n)
        store.db.conn.execute("pragma foreign_keys = off")  # no device rows: only the package write is timed
        t0 = time.process_time()
        with store.tx():
            for i, f in enumerate(hosts):
                store._keep_packages(i + 1, scan, "2026-11-23T00:00:00+00:00", f)
        keep = time.process_time() - t0
        rows = store.db.execute("select count(*), sum(length(packages)) from device_packages").fetchone()
    pkgs = len(hosts[0].patching.packages)
    print(f"{n} hosts x {pkgs} packages; VULN-001 fails on {affected} (sudo older than the Ubuntu fix)")
    print(f"baseline (parse + other checks): {base / n * 1000:.2f} ms CPU/host")
    print(f"matching (VULN-001 + VULN-002): {match / n * 1000:.2f} ms CPU/host")
    size = rows[1] / rows[0] / 1024
    print(f"keeping the package list:        {keep / n * 1000:.2f} ms CPU/host ({size:.1f} KiB/host)")
    added = (match + keep) / n * 1000
    print(f"added: {added:.2f} ms CPU/host = {(match + keep) / base:.2f} x baseline (target <= 2 ms/host)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
