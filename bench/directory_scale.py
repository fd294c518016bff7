"""Directory scale: 10,000 computer objects read, merged and stored.

Provisions a real Samba AD DC (tests/peers_samba.py: needs root and Debian's samba), fills
it with N computers of the test mix (directory_fleet.fleet), then measures in the same run:

- baseline: a raw ldap3 paged search of the same computer attributes over the same verified
  LDAPS connection setup (read only, nothing parsed or stored);
- itaudit: ``itaudit scan`` of a city whose only source is that directory, on a fresh
  database (read + facts + checks + one transaction per device), as a child process whose
  wall time and CPU come from ``os.wait4``.

Goal: itaudit at most 10 s for 10,000 objects.

    .venv/bin/python bench/directory_scale.py [--computers 10000] [--page-size 1000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from directory_fleet import fleet  # noqa: E402
from fleetkit import itaudit_cmd, run_measured  # noqa: E402
from peers_samba import running_dc  # noqa: E402

from collectors.directory import COMPUTER_ATTRIBUTES, _close, _paged, connect  # noqa: E402
from itaudit.config import DirectoryConfig  # noqa: E402


def _raw_read(cfg: DirectoryConfig, password: str) -> tuple[float, int]:
    t = time.perf_counter()
    conn = connect(cfg, password)
    try:
        n = sum(1 for e in _paged(conn, cfg.base_dn, cfg.search_filter, list(COMPUTER_ATTRIBUTES), cfg.page_size)
                if e.get("type") == "searchResEntry")
    finally:
        _close(conn)
    return time.perf_counter() - t, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--computers", type=int, default=10_000)
    ap.add_argument("--page-size", type=int, default=1000)
    args = ap.parse_args()
    as_of = dt.date.today()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t = time.perf_counter()
        computers = fleet(as_of, n=args.computers)
        with running_dc(tmp, computers, as_of) as dc:
            print(f"DC provisioned and populated with {len(computers)} computers in {time.perf_counter() - t:.0f} s")
            cfg = DirectoryConfig(server=dc.address, port=dc.port, base_dn=dc.base_dn, bind_dn=dc.reader_dn,
                                  password_env="BENCH_AD_PW", tls_name=dc.tls_name, ca_file=str(dc.ca_file),
                                  page_size=args.page_size, timeout=60)
            config = tmp / "config.toml"
            config.write_text(f"""
[settings]
data_dir = "{tmp / 'data'}"
[cities.bench.directory]
server = "{dc.address}"
tls_name = "{dc.tls_name}"
ca_file = "{dc.ca_file}"
base_dn = "{dc.base_dn}"
bind_dn = "{dc.reader_dn}"
password_env = "BENCH_AD_PW"
page_size = {args.page_size}
timeout = 60
""", encoding="utf-8")
            config.chmod(0o600)
            env = {**os.environ, "BENCH_AD_PW": dc.reader_password}
            raw = [_raw_read(cfg, dc.reader_password) for _ in range(3)]
            base_s, n = min(raw)
            print(f"baseline  raw ldap3 paged search: {n} objects in {base_s:.2f} s (best of 3)")
            for label in ("first scan (new devices)", "second scan (known devices)"):
                m = run_measured(itaudit_cmd("scan", "-c", str(config), "--as-of", as_of.isoformat(), "--json"),
                                 env=env, out_dir=tmp)
                if m.returncode not in (0,):
                    print(m.stderr[-2000:])
                    raise SystemExit(f"itaudit scan exited {m.returncode}")
                print(f"itaudit   {label}: {m.wall:.2f} s wall, {m.cpu:.2f} s CPU, {m.max_rss_mb:.0f} MB peak "
                      f"({m.wall / base_s:.1f}x the raw read; goal <= 10 s: {'met' if m.wall <= 10 else 'MISSED'})")


if __name__ == "__main__":
    main()
