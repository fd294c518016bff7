"""Evidence and open data on the demo city: a real scan of the simulated fleet, then device names
made hostile, then both reports through the CLI. Open data must carry none of the device text;
the evidence report answers from the real check results and shows hostile text as text."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = '<script>alert("x")</script>=HYPERLINK("http://evil")'


def _itaudit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "itaudit.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=240, env={**os.environ, "COLUMNS": "160"})


@pytest.mark.slow
def test_demo_city_evidence_and_open_data(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    demo = _itaudit("demo", "--out", str(out), "--as-of", "2026-11-23")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    db_path = out / "data" / "lakeside" / "itaudit.db"
    db = sqlite3.connect(db_path)
    try:
        db.execute("update devices set name = ? || id, hostname = ? || id where id % 3 = 0", [HOSTILE, HOSTILE])
        db.commit()
        strings = {str(v) for row in db.execute(
            "select name, hostname, address, serial, mac, identity_key, ssh_host_key, model, os_name from devices")
            for v in row if v and len(str(v)) >= 4}
        strings |= {str(r[0]) for r in db.execute("select summary from findings where summary != ''")}
        strings |= {str(r[0]) for r in db.execute("select evidence from findings where evidence != ''")}
    finally:
        db.close()
    assert len(strings) > 60
    cfg = str(out / "config.toml")

    od = _itaudit("report", "opendata", "-c", cfg, "--as-of", "2026-11-23", "--out", str(tmp_path / "od"))
    assert od.returncode == 0, od.stdout + od.stderr
    published = "\n".join(p.read_text() for p in (tmp_path / "od").iterdir())
    assert "lakeside-it-measures-2026-11.csv" in published
    assert sorted(s for s in strings if s in published) == []
    assert "<script" not in published and "HYPERLINK" not in published and "CVE-" not in published

    ev = _itaudit("report", "evidence", "-c", cfg, "--as-of", "2026-11-23", "--out", str(tmp_path / "ev"),
                  "--format", "html,json,xlsx")
    assert ev.returncode == 0, ev.stdout + ev.stderr
    data = json.loads((tmp_path / "ev" / "lakeside-evidence-2026-11-23.json").read_text())
    ins = {q["id"]: q for t in data["templates"] for q in t["questions"]}
    # The demo city has unsupported systems and missing patches: itaudit must not say "yes".
    assert ins["INS-EOL"]["answer"] in ("partly", "no") and ins["INS-EOL"]["tally"]["fails"] > 0
    assert ins["INS-PATCH"]["answer"] in ("partly", "no")
    assert ins["INS-MFA-REMOTE"]["answer"] == "unknown"  # nobody has attested
    assert any(d["device"].startswith(HOSTILE) for q in ins.values() for d in q["devices"])
    html = (tmp_path / "ev" / "lakeside-evidence-2026-11-23.html").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    fns = {f["code"]: f["status"] for f in data["functions"]}
    assert fns["PR"] == "assessed" and fns["RC"] == "not assessed"
