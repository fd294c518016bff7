"""Report speed: a 5,000-device city with 24 months of monthly scans.

Builds the history through the real store API (once; pass --db to reuse it), then times
the monthly summary and the capital plan (model + HTML) against a baseline in the same
process: a raw SQL read of the rows each report needs. Goal: each report under 3 s.

    .venv/bin/python bench/report_speed.py [--devices 5000] [--months 24] [--db PATH]
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import best, city_from_args  # noqa: E402

from itaudit.store import Store  # noqa: E402
from reports.monthly import write_monthly  # noqa: E402
from reports.plan import write_plan  # noqa: E402

END = dt.date(2026, 10, 20)



def _baseline_monthly(store: Store) -> None:
    """Raw read of what the summary aggregates: 12 months of verdicts and the open findings."""
    scans = [r[0] for r in store.db.execute("select id from scans order by id desc limit 12")]
    for sid in scans:
        store.db.execute(
            "select device_id, check_id, status, severity from check_results where scan_id = ?", [sid]
        ).fetchall()
    store.db.execute("select * from findings where resolved_at is null").fetchall()


def _baseline_plan(store: Store) -> None:
    """Raw read of what the plan needs: every device and its latest facts."""
    store.db.execute("select * from devices").fetchall()
    store.db.execute(
        "select device_id, facts from observations where id in "
        "(select max(id) from observations where facts is not null group by device_id)"
    ).fetchall()


def main() -> int:
    city, db, tmp = city_from_args(__doc__, devices=5000, months=24, end=END)
    store = Store(db, readonly=True)
    n_obs = store.db.execute("select count(*) from observations").fetchone()[0]
    n_cr = store.db.execute("select count(*) from check_results").fetchone()[0]
    size = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    print(f"database: {size / 1e6:.1f} MB ({n_obs:,} observations, {n_cr:,} check verdicts)")
    out = Path(tmp.name) / "out"
    as_of = END + dt.timedelta(days=5)
    results = []
    for name, report, baseline in (
        (
            "monthly",
            lambda: write_monthly(city, store, as_of=as_of, out_dir=out),
            lambda: _baseline_monthly(store),
        ),
        (
            "plan",
            lambda: write_plan(city, store, as_of=as_of, out_dir=out, formats=("html",)),
            lambda: _baseline_plan(store),
        ),
    ):
        base = best(baseline)
        took = best(report)
        results.append((name, took))
        print(
            f"{name:8s} {took:6.2f} s   raw SQL read of the same rows {base:6.3f} s   "
            f"ratio {took / base:5.1f}x"
            f"   {'OK' if took < 3.0 else 'SLOW'} (goal < 3 s)"
        )
    store.close()
    tmp.cleanup()
    return 0 if all(t < 3.0 for _, t in results) else 1


if __name__ == "__main__":
    sys.exit(main())
