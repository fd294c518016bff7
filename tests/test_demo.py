"""`itaudit demo`: the simulated city is scanned for real and a report a person can read is written."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_scans_the_simulated_city_and_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "demo-output"
    proc = subprocess.run([sys.executable, "-m", "itaudit.cli", "demo", "--out", str(out), "--as-of", "2026-11-23"],
                          capture_output=True, text=True, cwd=ROOT, timeout=240,
                          env={**os.environ, "COLUMNS": "160"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = out / "lakeside-monthly-2026-11.html"
    assert f"Report: {report}" in proc.stdout.replace("\n", "")
    assert "not managed by anyone" in proc.stdout and "could not be checked" in proc.stdout
    html = report.read_text()
    assert "City of Lakeside" in html and "since October" in html  # three months of history
    db = sqlite3.connect(out / "data" / "lakeside" / "itaudit.db")
    try:
        kinds = dict(db.execute("select protocol, count(*) from devices group by protocol").fetchall())
        assert kinds["ssh"] >= 13 and kinds["snmp"] >= 6  # issue 2: at least 12 SSH hosts and 6 network devices
        statuses = dict(db.execute("select status, count(*) from scans group by status").fetchall())
        assert statuses == {"complete": 3}
        failed = db.execute("select d.name from devices d where d.last_status = 'error'").fetchall()
        assert failed == [("animal-shelter-pc",)]  # the one switched-off host, with its reason
        n_os = db.execute("select count(distinct os_name) from devices where protocol = 'ssh'").fetchone()[0]
        assert n_os >= 12
    finally:
        db.close()


def test_a_busy_demo_address_names_its_holder(tmp_path: Path) -> None:
    """Issue 13: a kept-running demo (here: this test) holds the address; the next demo says who."""
    import socket

    from itaudit import demo

    try:
        holder = socket.create_server((f"{demo.SSH_NET}1", demo.SSH_PORT))
    except OSError as exc:
        pytest.skip(f"the demo address is taken by something else here: {exc}")
    with holder:
        proc = subprocess.run([sys.executable, "-m", "itaudit.cli", "demo", "--out", str(tmp_path / "d")],
                              capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{demo.SSH_NET}1:{demo.SSH_PORT}" in proc.stderr and "in use by process" in proc.stderr
    assert f"process {os.getpid()} " in proc.stderr  # this test process holds it


@pytest.mark.slow
def test_demo_on_a_terminal_ends_with_the_report_and_what_to_do_next(tmp_path: Path) -> None:
    """Issue 13: the demo on a real 80-column terminal: names whole, no traceback, next steps."""
    from test_cli_person import run_pty

    run = run_pty("demo", "--out", str(tmp_path / "out"), "--as-of", "2026-11-23")
    assert run.code == 0, run.text[-3000:]
    assert "Traceback" not in run.text
    for name in ("pa220-fire-station-1", "animal-shelter-pc", "ap-library-lobby"):
        assert name in run.text  # never cut at 80 columns
    tail = run.last_lines(4)
    assert "lakeside-monthly-2026-11.html" in tail and "Next:" in tail and "--keep-running" in tail
