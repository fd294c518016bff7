"""`itaudit demo`: the simulated city is scanned for real and a report a person can read is written."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The demo, run once for this module: (its output folder, the finished process)."""
    out = tmp_path_factory.mktemp("demo") / "demo-output"
    proc = subprocess.run([sys.executable, "-m", "itaudit.cli", "demo", "--out", str(out), "--as-of", "2026-11-23"],
                          capture_output=True, text=True, cwd=ROOT, timeout=240,
                          env={**os.environ, "COLUMNS": "160"})
    return out, proc


@pytest.mark.slow
def test_demo_scans_the_simulated_city_and_writes_the_report(demo_run) -> None:
    out, proc = demo_run
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
    _named_devices_agree(out, dt.date(2026, 11, 23))


@pytest.mark.slow
def test_the_demo_summary_prints_on_two_pages_with_nothing_left_out(
    demo_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DESIGN.md: the city manager's summary prints on at most two Letter pages. The demo city is
    the busiest case we ship (five top risks, five budget lines, both data-age warnings, the
    council page), so it is the one measured; fitting must not drop a section."""
    from test_report_visual import _pages, _tools, assert_every_section_printed, pdf_text

    from itaudit import config
    from itaudit.store import Store
    from reports.model import build_monthly
    from reports.monthly import write_monthly

    _tools()
    out, proc = demo_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for k in ("ITAUDIT_DEMO_SSH_PASSWORD", "ITAUDIT_DEMO_SNMP_AUTH", "ITAUDIT_DEMO_SNMP_PRIV"):
        monkeypatch.setenv(k, os.environ.get(k, "x"))  # only needed to scan, not to report
    city = config.load(out / "config.toml").city("lakeside")
    store = Store(city.database, readonly=True)
    try:
        as_of = dt.date(2026, 11, 23)
        pdf = write_monthly(city, store, as_of=as_of, out_dir=tmp_path, formats=("pdf",))[-1]
        rep = build_monthly(city, store, as_of=as_of)
    finally:
        store.close()
    # The busiest summary: if newer bundled data removes a data-age warning, measure with another as_of.
    assert len(rep.top_risks) == 5 and len(rep.cost_by_line) >= 4 and len(rep.data_warnings) == 2, rep.data_warnings
    assert _pages(pdf) <= 2
    assert_every_section_printed(pdf_text(pdf), rep)


def _named_devices_agree(out: Path, as_of: dt.date) -> None:
    """The issue's examples: the core switches and the rugged Police laptop are priced, paid and
    dated alike in their findings and in the capital plan."""
    from itaudit import config, rules
    from itaudit.store import Store
    from reports.plan import build_plan

    os.environ.update({k: "x" for k in ("ITAUDIT_DEMO_SSH_PASSWORD", "ITAUDIT_DEMO_SNMP_AUTH",
                                         "ITAUDIT_DEMO_SNMP_PRIV") if k not in os.environ})
    city = config.load(out / "config.toml").city("lakeside")
    store = Store(city.database, readonly=True)
    try:
        plan = build_plan(city, store, as_of=as_of)
        items = {i.device: i for i in plan.items}
        rows = store.findings_open_at(store.latest_scan().id)  # type: ignore[union-attr]
        rem = rules.remedies(rows, city.policy.fiscal_year(as_of))
        ids = {r["device_name"]: r["device_id"] for r in rows}
        expect = {
            "pd-core-3750": (20000.0, "101-2110-5740", 2027, True),  # overdue Police core switch: capital
            "ch-core-sw01": (20000.0, "101-1410-5740", 2027, True),  # unsupported firmware pulls it forward
            "pd-car12": (4500.0, "101-2110-5310", 2028, False),  # rugged Police laptop under the threshold
        }
        for name, want in expect.items():
            item = items[name]
            assert (item.cost, item.budget_line, item.fiscal_year, item.capital) == want, item
            repl = [r for r in rem if r.device_id == ids[name] and r.replacement]
            assert [(r.amount, r.budget_line, r.fiscal_year, r.capital) for r in repl] == [want], repl
    finally:
        store.close()


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
