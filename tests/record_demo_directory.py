"""Record the demo city's directory: a real read of a real Samba AD DC (tests/peers_samba.py)
holding 150 computers of the test mix, saved as itaudit/data/demo_directory.json.

    sudo .venv/bin/python tests/record_demo_directory.py   (root and Debian's samba needed)

Read over LDAPS as the domain's administrator, so the BitLocker recovery objects are
visible; only the attributes the collector asks for (``search_attributes``), never a
password. ``itaudit demo`` replays it (``collectors.directory.recorded_read``).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from directory_fleet import fleet  # noqa: E402
from peers_samba import running_dc  # noqa: E402

from collectors.directory import RECORDING_FORMAT, _close, _paged, _schema_laps, connect, search_attributes  # noqa: E402
from itaudit.config import DirectoryConfig  # noqa: E402


def main() -> None:
    as_of = dt.date.today()
    with tempfile.TemporaryDirectory() as tmp, running_dc(Path(tmp), fleet(as_of, n=150), as_of) as dc:
        cfg = DirectoryConfig(server=dc.address, port=dc.port, base_dn=dc.base_dn, bind_dn=dc.admin_dn,
                              password_env="UNUSED", tls_name=dc.tls_name, ca_file=str(dc.ca_file))
        conn = connect(cfg, dc.admin_password)
        try:
            laps = _schema_laps(conn)
            flt = f"(|{cfg.search_filter}(objectClass=msFVE-RecoveryInformation))"
            entries = [{"dn": e["dn"], "attributes": {k: [v.decode("utf-8") for v in vals]
                                                      for k, vals in (e.get("raw_attributes") or {}).items() if vals}}
                       for e in _paged(conn, cfg.base_dn, flt, search_attributes(laps), 500)
                       if e.get("type") == "searchResEntry"]
        finally:
            _close(conn)
    doc = {"format": RECORDING_FORMAT,
           "source": "a real read over LDAPS of a Samba 4.17 AD DC provisioned by tests/peers_samba.py and "
                     "populated with tests/directory_fleet.fleet(n=150); recorded by tests/record_demo_directory.py",
           "recorded_on": as_of.isoformat(), "server": "demo directory (recorded)", "laps_source": laps,
           "entries": sorted(entries, key=lambda e: e["dn"])}
    out = ROOT / "itaudit" / "data" / "demo_directory.json"
    out.write_text(json.dumps(doc, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}: {len(entries)} entries")


if __name__ == "__main__":
    main()
