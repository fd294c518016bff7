"""Evidence and open-data report speed, against the monthly summary in the same run.

Builds a synthetic city through the real store API (tests/report_city.py; pass --db to reuse
one), then times the evidence report (model; model + HTML + XLSX + JSON) and the open-data
files, next to the monthly summary (model + HTML) as the baseline: both read the same store.

    .venv/bin/python bench/evidence_speed.py [--devices 2000] [--months 13] [--db PATH]
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import best, city_from_args  # noqa: E402

from itaudit.store import Store  # noqa: E402
from reports.evidence import build_evidence, write_evidence  # noqa: E402
from reports.monthly import write_monthly  # noqa: E402
from reports.opendata import write_opendata  # noqa: E402

END = dt.date(2026, 10, 20)
AS_OF = dt.date(2026, 10, 25)



def main() -> int:
    city, db, tmp = city_from_args(__doc__, devices=2000, months=13, end=END)
    work = Path(tmp.name)
    store = Store(db, readonly=True)
    out = work / "out"
    base = best(lambda: write_monthly(city, store, as_of=AS_OF, out_dir=out))
    rows = [
        ("evidence model", best(lambda: build_evidence(city, store, as_of=AS_OF))),
        ("evidence html+xlsx+json", best(lambda: write_evidence(city, store, as_of=AS_OF, out_dir=out,
                                                                 formats=("html", "xlsx", "json")))),
        ("open data (csv, datapackage, dcat)", best(lambda: write_opendata(city, store, as_of=AS_OF,
                                                                            out_dir=out))),
    ]
    print(f"baseline: monthly summary (model + HTML) {base:.2f} s")
    for name, secs in rows:
        print(f"{name:38s} {secs:6.2f} s   {secs / base:4.1f}x the monthly summary")
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
