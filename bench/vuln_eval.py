"""Accuracy of the exploited-vulnerability verdicts on a labelled set.

Reads ``tests/fixtures/vuln/eval.json``: (product, version, CVE) pairs labelled by hand from
the vendor advisories cited per pair, covering every demo device with KEV entries. Runs the
same judgment as VULN-001/VULN-002 (``checks.kev.judge``) with the shipped data and prints
accuracy ("maybe" counts as not correct), the false "affected" count (must be 0) and each miss.

    python bench/vuln_eval.py [--json]
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from checks.kev import judge  # noqa: E402
from itaudit.knowledge import Knowledge  # noqa: E402

AS_OF = dt.date(2026, 12, 1)


def evaluate(kn: Knowledge | None = None) -> dict:
    """Score every labelled pair; returns counts and the per-pair rows."""
    kn = kn or Knowledge.load()
    pairs = json.loads((ROOT / "tests" / "fixtures" / "vuln" / "eval.json").read_text(encoding="utf-8"))["pairs"]
    rows = []
    for p in pairs:
        life = kn.lifecycle(p["product"], p["version"], as_of=AS_OF)
        released = life.release_date if isinstance(life.release_date, dt.date) else None
        verdicts = {e.cve: v for e, v in judge(kn, p["product"], p["version"], released=released,
                                               installed=p.get("installed"), kernel=p.get("kernel"))}
        v = verdicts.get(p["cve"])
        got = v.status if v else "not in KEV family"
        rows.append({**p, "got": got, "reason": v.reason if v else ""})
    n = len(rows)
    correct = sum(r["got"] == r["label"] for r in rows)
    false_affected = sum(r["got"] == "affected" and r["label"] != "affected" for r in rows)
    maybe = sum(r["got"] == "maybe" for r in rows)
    return {"pairs": n, "correct": correct, "accuracy": correct / n if n else 0.0,
            "false_affected": false_affected, "maybe": maybe,
            "false_not_affected": sum(r["got"] == "not_affected" and r["label"] == "affected" for r in rows),
            "rows": rows}


def main() -> int:
    res = evaluate()
    if "--json" in sys.argv:
        print(json.dumps(res, indent=1))
        return 0
    for r in res["rows"]:
        if r["got"] != r["label"]:
            print(f"  miss: {r['product']} {r['version']} {r['cve']}: label {r['label']}, got {r['got']} "
                  f"({r['reason']})")
    print(f"pairs {res['pairs']}  correct {res['correct']} ({res['accuracy']:.1%})  maybe {res['maybe']}  "
          f"false 'affected' {res['false_affected']}  false 'not affected' {res['false_not_affected']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
