"""What the report benchmarks share: the best-of-N timer and the synthetic city database
(tests/report_city.py, built through the real store API once; ``--db`` reuses it)."""

from __future__ import annotations

import datetime as dt
import sys
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
