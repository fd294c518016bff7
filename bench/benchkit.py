"""What the report benchmarks share: the best-of-N timers (wall clock and CPU) and the synthetic
city database (tests/report_city.py, built through the real store API once; ``--db`` reuses it)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import report_city  # noqa: E402


def best(fn: Callable[[], Any], repeat: int = 3) -> float:
    """The fastest of ``repeat`` runs of ``fn``, in seconds."""
    fastest = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        fastest = min(fastest, time.perf_counter() - t)
    return fastest


def best_cpu(fn: Callable[[], Any], repeat: int = 3) -> float:
    """The least CPU time (this process) of ``repeat`` runs: steadier than the wall clock on a
    shared machine, where other work stretches every wall time."""
    fastest = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        fastest = min(fastest, time.process_time() - t)
    return fastest


def city_from_args(doc: str, *, devices: int, months: int, end: dt.date
                   ) -> tuple[Any, Path, tempfile.TemporaryDirectory[str]]:
    """Parse ``--devices``, ``--months`` and ``--db`` (with these defaults) and return the synthetic
    city's config, its database and the run's work folder (removed by its ``cleanup()``)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--devices", type=int, default=devices)
    ap.add_argument("--months", type=int, default=months)
    ap.add_argument("--db", type=Path, default=None, help="reuse (or create) this database")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="itaudit-bench-")
    db = args.db or Path(tmp.name) / "city.db"
    return city_db(db, devices=args.devices, months=args.months, end=end), db, tmp


def city_db(db: Path, *, devices: int, months: int, end: dt.date) -> Any:
    """The synthetic city's config; its database at ``db`` is built first unless it exists."""
    if db.exists():
        print(f"reusing {db}")
        return report_city.city_config(db)
    t = time.perf_counter()
    city, store = report_city.build(db, n=devices, months=months, end=end)
    store.close()
    print(f"built {devices:,} devices x {months} months in {time.perf_counter() - t:.1f} s")
    return city
