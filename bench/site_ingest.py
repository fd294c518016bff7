"""MSP centre speed: one round of snapshots from N sites of D devices each, ingested, then the
portfolio over every city.

One city of D devices x M months is built through the real store API; each site's snapshot
is made by the real site code (online backup, manifest, ssh-keygen signature) from a copy of
it, then dropped into that city's inbox as SFTP would leave it (the transport is OpenSSH's
and is measured by OpenSSH, not here). Baseline in the same run: copying the same files
into place with shutil (what any ingest must at least do). Goals: ingest of one
round and the portfolio within a minute for 200 sites x 500 devices; a site's snapshot
costs at most a few seconds of CPU.

    .venv/bin/python bench/site_ingest.py [--sites 200] [--devices 500] [--months 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import report_city  # noqa: E402

from itaudit import sitelink  # noqa: E402
from itaudit.config import load  # noqa: E402
from reports.portfolio import write_portfolio  # noqa: E402

END = dt.date(2026, 10, 20)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=200)
    ap.add_argument("--devices", type=int, default=500)
    ap.add_argument("--months", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="itaudit-bench-sites-"))
    try:
        t = time.perf_counter()
        seed_db = tmp / "seed.db"
        _, store = report_city.build(seed_db, n=args.devices, months=args.months, end=END)
        store.close()
        print(f"built one city of {args.devices} devices x {args.months} months in {time.perf_counter() - t:.1f} s "
              f"({seed_db.stat().st_size / 1e6:.1f} MB)")
        key = tmp / "site_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        pub = key.with_suffix(".pub").read_text().split()
        ids = [f"city{i:03d}" for i in range(args.sites)]
        inbox_root = tmp / "inbox"
        (tmp / "allowed_signers").write_text("".join(
            f'{c} namespaces="itaudit-site-snapshot" {pub[0]} {pub[1]}\n' for c in ids))
        central_cfg = tmp / "central.toml"
        central_cfg.write_text(f'[settings]\ndata_dir = "{tmp / "central-data"}"\n[central]\n'
                               f'inbox_root = "{inbox_root}"\nallowed_signers = "{tmp / "allowed_signers"}"\n'
                               + "".join(f'[cities.{c}]\nname = "{c}"\n' for c in ids))
        # The sites: each makes its snapshot with the real code.
        site_cpu = []
        for c in ids:
            site_dir = tmp / "sites" / c
            (site_dir / "data" / c).mkdir(parents=True)
            shutil.copyfile(seed_db, site_dir / "data" / c / "itaudit.db")
            cfg_path = site_dir / "site.toml"
            cfg_path.write_text(f'[settings]\ndata_dir = "{site_dir / "data"}"\n[cities.{c}]\nname = "{c}"\n'
                                f'[site]\nhost = "msp.example.net"\nuser = "{c}"\nidentity_file = "{key}"\n'
                                f'known_hosts = "{tmp / "known_hosts"}"\n')
            cfg = load(cfg_path)
            before = _cpu()
            stem = sitelink.make_snapshot(cfg, now=dt.datetime(2026, 10, 20, 2, 0, tzinfo=dt.UTC))
            site_cpu.append(_cpu() - before)
            box = sitelink.outbox_for(cfg, cfg.city(c))
            inbox = inbox_root / c / "inbox"
            inbox.mkdir(parents=True)
            for f in box.files(stem):
                shutil.move(str(f), inbox / f.name)  # as SFTP leaves them, renamed when whole
        site_cpu.sort()
        print(f"site snapshot CPU per site: median {site_cpu[len(site_cpu) // 2] * 1000:.0f} ms, "
              f"max {site_cpu[-1] * 1000:.0f} ms   (goal: a few seconds)")

        # Baseline: copy the same databases into place, nothing verified.
        dbs = sorted(inbox_root.glob("*/inbox/*.db"))
        base_dir = tmp / "baseline"
        base_dir.mkdir()
        t = time.perf_counter()
        for i, db in enumerate(dbs):
            shutil.copyfile(db, base_dir / f"{i}.db")
        base = time.perf_counter() - t

        central = load(central_cfg)
        t = time.perf_counter()
        results = sitelink.ingest(central)
        took = time.perf_counter() - t
        ok = sum(r.ok for r in results)
        t = time.perf_counter()
        write_portfolio(central, as_of=END + dt.timedelta(days=5), out_dir=tmp / "portfolio", formats=("html", "json"))
        portfolio = time.perf_counter() - t
        total = took + portfolio
        print(f"ingest of {args.sites} sites x {args.devices} devices: {took:6.2f} s ({ok} ingested)   "
              f"plain copy of the same files {base:6.2f} s   ratio {took / base:5.1f}x")
        print(f"portfolio over {args.sites} cities: {portfolio:6.2f} s")
        print(f"round total {total:6.2f} s   {'OK' if total < 60 and ok == args.sites else 'SLOW'} (goal < 60 s)")
        return 0 if total < 60 and ok == args.sites else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
