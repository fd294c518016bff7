"""Status board speed: each page for a 5,000-device city with 24 months of history.

Builds the history through the real store API (once; pass --db to reuse it), then times each
board page through Starlette's test client (in process: routing, store open, model, template,
headers; no network) against a raw SQL read of the rows the page shows, in the same run.
Goal: every page at most 300 ms.

    .venv/bin/python bench/board_speed.py [--devices 5000] [--months 24] [--db PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import best, city_db  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from itaudit.store import Store  # noqa: E402
from reports.board import create_app  # noqa: E402

END = dt.date(2026, 10, 20)
GOAL = 0.300



def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=5000)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--db", type=Path, default=None, help="reuse (or create) this database")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="itaudit-bench-")
    db = args.db or Path(tmp.name) / "city.db"
    city = city_db(db, devices=args.devices, months=args.months, end=END)
    store = Store(db, readonly=True)
    device_id = store.db.execute("select device_id from findings group by device_id "
                                 "order by count(*) desc limit 1").fetchone()[0]

    def raw_status() -> None:  # what the status page aggregates: 12 months of verdicts, open findings
        for (sid,) in store.db.execute("select id from scans order by id desc limit 12").fetchall():
            store.db.execute("select device_id, check_id, status, severity from check_results "
                             "where scan_id = ?", [sid]).fetchall()
        store.db.execute("select * from findings where resolved_at is null").fetchall()

    def raw_devices() -> None:  # every device and its open findings by severity
        store.db.execute("select * from devices").fetchall()
        store.db.execute("select device_id, severity, count(*) from findings where resolved_at is null "
                         "group by device_id, severity").fetchall()

    def raw_device() -> None:  # one device, its findings, its latest facts
        store.db.execute("select * from devices where id = ?", [device_id]).fetchall()
        store.db.execute("select * from findings where device_id = ?", [device_id]).fetchall()
        store.db.execute("select facts from observations where device_id = ? and facts is not null "
                         "order by scan_id desc limit 1", [device_id]).fetchall()

    def app() -> TestClient:
        return TestClient(create_app(city, today=lambda: END + dt.timedelta(days=5)), base_url="http://127.0.0.1")

    client = app()
    ok = True
    # The status page keeps the month's model until the database changes: its first view
    # after a change (a new app each time) and a view with nothing changed.
    base = best(raw_status)
    took = best(lambda: app().get("/"))
    print(f"{'status, first view':18s} {took * 1000:7.0f} ms   raw SQL read of the same rows {base * 1000:7.1f} ms   "
          f"ratio {took / base:6.1f}x   {'OK' if took <= GOAL else 'SLOW'} (goal <= 300 ms)")
    ok = ok and took <= GOAL
    for name, url, raw in (
        ("status, unchanged", "/", raw_status),
        ("devices (50)", "/devices", raw_devices),
        ("devices filtered", "/devices?department=Police&severity=high&sort=findings&order=desc", raw_devices),
        ("devices CSV (all)", "/devices.csv", raw_devices),
        ("device page", f"/devices/{device_id}", raw_device),
    ):
        assert client.get(url).status_code == 200
        base = best(raw)
        took = best(lambda u=url: client.get(u))
        ok = ok and took <= GOAL
        print(f"{name:18s} {took * 1000:7.0f} ms   raw SQL read of the same rows {base * 1000:7.1f} ms   "
              f"ratio {took / base:6.1f}x   {'OK' if took <= GOAL else 'SLOW'} (goal <= 300 ms)")
    store.close()
    tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
