"""The scheduling agent on an injected clock: a month of runs in seconds, next run times,
config reload (a bad config is refused), the agent lock, and the redo of a cut scan."""

from __future__ import annotations

import datetime as dt
import io
import logging
import shutil
import subprocess
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from agentkit import REFUSED_SSH_HOST, city_block, local_target, write_config
from peers_smtp import SMTPPeer, TLSFiles, tls_files_fixture  # noqa: F401

from itaudit.agent import (
    Agent,
    AgentLock,
    AgentRunning,
    ManualClock,
    format_status,
    next_report,
    previous_month,
    status,
)
from itaudit.config import load
from itaudit.scan import run_scan
from itaudit.store import Store

CHI = ZoneInfo("America/Chicago")
PW_ENV = "ITAUDIT_TEST_AGENT_SMTP_PW"  # noqa: S105 - a variable name


@pytest.fixture(autouse=True)
def _ssh_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """The city's SSH secret is set (a missing one is a config error before any device)."""
    monkeypatch.setenv("SPRINGFIELD_SSH_PW", "not-the-real-one")


def _springfield(**schedule: object) -> str:
    return city_block(
        "springfield", schedule=schedule or None,
        credentials={"servers": {"type": "ssh", "username": "itaudit", "password_env": "SPRINGFIELD_SSH_PW"}},
        delivery={"recipients": ["manager@springfield.example.org"], "cc": ["finance@springfield.example.org"]},
        targets=[local_target("city-hall-server"),
                 {"address": REFUSED_SSH_HOST, "port": 2222, "protocol": "ssh", "credential": "servers",
                  "name": "library-pc", "kind": "workstation"}])


def test_next_run_times_are_in_the_city_time_zone(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", [_springfield(scan="daily", scan_at="02:00", report_day=31,
                                                          report_at="06:30")])
    clock = ManualClock(dt.datetime(2026, 2, 10, 12, 0, tzinfo=CHI))
    agent = Agent(cfg, clock=clock, poll=None)
    runs = {n.what: n.when for n in agent.next_runs()}
    assert runs["scan"] == dt.datetime(2026, 2, 11, 2, 0, tzinfo=CHI)
    # Day 31 falls on the last day of February; the report covers January.
    assert runs["monthly report (2026-01)"] == dt.datetime(2026, 2, 28, 6, 30, tzinfo=CHI)
    assert runs["scan"].utcoffset() == dt.timedelta(hours=-6)


def test_weekly_and_hourly_cadence(tmp_path: Path) -> None:
    clock = ManualClock(dt.datetime(2026, 7, 1, 10, 20, tzinfo=CHI))  # a Wednesday
    weekly = write_config(tmp_path / "w.toml", [_springfield(scan="weekly", scan_weekday="sunday",
                                                             scan_at="03:15", report=False)])
    (n,) = Agent(weekly, clock=clock, poll=None).next_runs()
    assert n.when == dt.datetime(2026, 7, 5, 3, 15, tzinfo=CHI) and n.when.utcoffset() == dt.timedelta(hours=-5)
    hourly = write_config(tmp_path / "h.toml", [_springfield(scan="hourly", scan_at=":45", report=False)])
    (n,) = Agent(hourly, clock=clock, poll=None).next_runs()
    assert n.when == dt.datetime(2026, 7, 1, 10, 45, tzinfo=CHI)


def test_report_calendar() -> None:
    assert previous_month(dt.date(2026, 1, 1)) == "2025-12"
    assert next_report(dt.datetime(2026, 1, 31, 7, 0), 31, "06:00") == dt.datetime(2026, 2, 28, 6, 0)
    assert next_report(dt.datetime(2026, 1, 31, 5, 0), 31, "06:00") == dt.datetime(2026, 1, 31, 6, 0)


@pytest.mark.peers
def test_a_month_of_scans_then_the_monthly_email(tmp_path: Path, tls_files: TLSFiles,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Nov 1 07:00 to Dec 1 07:00 on an injected clock: 30 daily scans at 02:00, and on Dec 1
    at 06:00 the November summary, written to disk and emailed (STARTTLS, AUTH) with the PDF
    and the capital-plan spreadsheet, which the test opens."""
    pytest.importorskip("aiosmtpd")
    openpyxl = pytest.importorskip("openpyxl")
    monkeypatch.setenv(PW_ENV, "relay-secret")
    peer = SMTPPeer(tls_files, security="starttls", username="itaudit", password="relay-secret").start()
    cfg = write_config(tmp_path / "c.toml", [_springfield(scan="daily", scan_at="02:00", report_day=1,
                                                          report_at="06:00")],
                       smtp={"host": "127.0.6.1", "port": peer.port, "security": "starttls", "username": "itaudit",
                             "password_env": PW_ENV, "from": "itaudit@msp.example.com",
                             "ca_file": str(tls_files.cert), "timeout": 10})
    clock = ManualClock(dt.datetime(2026, 11, 1, 7, 0, tzinfo=CHI))
    agent = Agent(cfg, clock=clock, poll=None)
    caplog.set_level(logging.INFO, logger="itaudit")
    try:
        assert agent.run(until=dt.datetime(2026, 12, 1, 7, 0, tzinfo=CHI)) == 0
    finally:
        peer.stop()
    assert "springfield: next scan 2026-11-02 02:00 CST" in caplog.messages
    assert "springfield: next monthly report (2026-11) 2026-12-01 06:00 CST" in caplog.messages

    store = Store(agent.cfg.cities["springfield"].database, readonly=True)
    scans = sorted(store.scans(limit=100), key=lambda s: s.id)
    store.close()
    assert [s.as_of[:10] for s in scans] == [(dt.date(2026, 11, 2) + dt.timedelta(days=i)).isoformat()
                                             for i in range(30)]
    assert {s.status for s in scans} == {"complete"}

    month_dir = tmp_path / "data" / "springfield" / "reports" / "2026-11"
    on_disk = {p.name for p in month_dir.iterdir()}
    assert {"springfield-monthly-2026-11.html", "springfield-monthly-2026-11.md"} <= on_disk
    (got,) = peer.received
    assert sorted(got.rcpt_tos) == ["finance@springfield.example.org", "manager@springfield.example.org"]
    msg = got.message
    assert msg["Subject"] == "City of Springfield: IT risk summary for November 2026"
    assert "November 2026" in msg.get_body(("plain",)).get_content()
    assert "<html" in msg.get_body(("html",)).get_content().lower()
    files = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
    xlsx = [n for n in files if n.endswith(".xlsx")]
    assert xlsx and xlsx[0] in on_disk, files.keys()
    wb = openpyxl.load_workbook(io.BytesIO(files[xlsx[0]]))
    assert wb.sheetnames
    pdfs = [n for n in files if n.endswith(".pdf")]
    if shutil.which("chromium") and shutil.which("pdftotext"):
        assert pdfs, "a PDF renderer is installed, so the PDF must be attached"
        pdf = tmp_path / "got.pdf"
        pdf.write_bytes(files[pdfs[0]])
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True).stdout.decode()
        assert "Springfield" in text and "November 2026" in text
    assert [a.event for a in agent.outbox(agent.cfg.cities["springfield"]).history()] == ["queued", "sent"]


def test_dry_run_writes_the_email_to_a_file(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", [_springfield(scan="off", report_day=1)])
    clock = ManualClock(dt.datetime(2026, 12, 1, 5, 0, tzinfo=CHI))
    agent = Agent(cfg, clock=clock, poll=None, dry_run=True)
    agent.run(until=dt.datetime(2026, 12, 1, 7, 0, tzinfo=CHI))
    eml = tmp_path / "data" / "springfield" / "reports" / "2026-11" / "springfield-monthly-2026-11.eml"
    assert eml.exists()
    from itaudit.delivery import read_message

    msg = read_message(eml)
    assert msg["To"] == "manager@springfield.example.org"
    assert "No scan was run" in msg.get_body(("plain",)).get_content()
    assert [a.event for a in agent.outbox(agent.cfg.cities["springfield"]).history()] == ["dry-run"]


def test_the_plan_and_the_summary_share_the_report_month_as_of(tmp_path: Path) -> None:
    """The June report, written on July 1 (a July fiscal year), plans from FY2026 like the
    summary's "refresh plan at a glance", not from FY2027 (today's fiscal year)."""
    import json

    openpyxl = pytest.importorskip("openpyxl")
    cfg = write_config(tmp_path / "c.toml", [_springfield(scan="off", report_day=1)])
    agent = Agent(cfg, clock=ManualClock(dt.datetime(2026, 7, 1, 5, 0, tzinfo=CHI)), poll=None, dry_run=True)
    agent.run(until=dt.datetime(2026, 7, 1, 7, 0, tzinfo=CHI))
    month_dir = tmp_path / "data" / "springfield" / "reports" / "2026-06"
    summary = json.loads((month_dir / "springfield-monthly-2026-06.json").read_text())
    assert summary["as_of"] == "2026-06-30"
    (plan,) = month_dir.glob("springfield-plan-*.xlsx")
    assert plan.name == "springfield-plan-2026-06-30.xlsx"
    head = [c.value for c in openpyxl.load_workbook(plan)["By budget line"][1]]
    assert head[2] == "FY2026 devices"


def test_a_report_that_breaks_does_not_lose_the_email(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Only ItauditError was caught: any other error in the plan (openpyxl's
    IllegalCharacterError on device text) lost the month's email."""
    from openpyxl.utils.exceptions import IllegalCharacterError

    import itaudit.agent as agent_mod

    real = agent_mod._writer

    def writer(name: str):
        if name != "plan":
            return real(name)

        def broken(*args: object, **kwargs: object) -> list[Path]:
            raise IllegalCharacterError("bell\x07host cannot be used in worksheets.")
        return broken

    monkeypatch.setattr(agent_mod, "_writer", writer)
    caplog.set_level(logging.INFO, logger="itaudit")
    cfg = write_config(tmp_path / "c.toml", [_springfield(scan="off", report_day=1)])
    agent = Agent(cfg, clock=ManualClock(dt.datetime(2026, 12, 1, 5, 0, tzinfo=CHI)), poll=None, dry_run=True)
    agent.run(until=dt.datetime(2026, 12, 1, 7, 0, tzinfo=CHI))
    eml = tmp_path / "data" / "springfield" / "reports" / "2026-11" / "springfield-monthly-2026-11.eml"
    assert eml.exists()
    assert "the plan report failed; the email goes without it" in caplog.text


def test_reload_refuses_a_bad_config_and_keeps_the_last_good_one(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="itaudit")
    path = write_config(tmp_path / "c.toml", [_springfield(scan="daily", scan_at="02:00", report=False)])
    clock = ManualClock(dt.datetime(2026, 3, 3, 12, 0, tzinfo=CHI))
    agent = Agent(path, clock=clock, poll=None)
    good = agent.cfg

    text = path.read_text()
    path.write_text(text.replace('scan_at = "02:00"', 'scan_at = "25:00"'))
    agent.request_reload()  # what SIGHUP does
    assert agent.maybe_reload() is False
    assert agent.cfg is good
    assert [n.when.hour for n in agent.next_runs()] == [2]
    assert "config reload refused" in caplog.text and "cities.springfield.schedule.scan_at" in caplog.text
    assert agent.maybe_reload() is False  # refused once, not at every tick

    # A good edit is noticed by the file's mtime alone (no signal).
    path.write_text(text.replace('scan_at = "02:00"', 'scan_at = "03:30"') + "\n")
    assert agent.maybe_reload() is True
    assert [(n.when.hour, n.when.minute) for n in agent.next_runs()] == [(3, 30)]


def test_reload_in_the_loop_survives_a_broken_file(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.toml", [_springfield(scan="daily", scan_at="02:00", report=False)])
    clock = ManualClock(dt.datetime(2026, 3, 3, 12, 0, tzinfo=CHI))
    agent = Agent(path, clock=clock, poll=None)
    path.write_text("this is [not toml")
    agent.run(until=dt.datetime(2026, 3, 5, 12, 0, tzinfo=CHI))  # two 02:00 scans on the last good config
    store = Store(agent.cfg.cities["springfield"].database, readonly=True)
    assert [s.as_of[:10] for s in store.scans()] == ["2026-03-05", "2026-03-04"]
    store.close()


def test_agent_lock_refuses_a_second_agent_and_takes_over_a_stale_one(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="itaudit")
    lock_path = tmp_path / "agent.lock"
    now = dt.datetime(2026, 3, 3, 12, 0, tzinfo=dt.UTC)
    lock_path.write_text("4000000 2026-03-01T00:00:00+00:00\n")  # left by a killed agent
    first = AgentLock(lock_path)
    first.acquire(now)
    assert "stale agent lock" in caplog.text and "4000000" in caplog.text
    with pytest.raises(AgentRunning, match=r"pid \d+"):
        AgentLock(lock_path).acquire(now)
    first.release()
    caplog.clear()
    again = AgentLock(lock_path)
    again.acquire(now)  # a clean release leaves nothing stale behind
    assert "stale" not in caplog.text
    again.release()


def test_a_cut_scan_is_redone_when_the_agent_starts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="itaudit")
    targets = [local_target(f"pc-{i}", address=f"host-{i}") for i in range(4)]
    path = write_config(tmp_path / "c.toml", [city_block("springfield", targets=targets)])
    cfg = load(path)
    city = cfg.cities["springfield"]
    stop = threading.Event()
    cut = run_scan(cfg, city, as_of=dt.date(2026, 3, 2), stop=stop, progress=lambda r, d, n: stop.set())
    assert cut.interrupted
    clock = ManualClock(dt.datetime(2026, 3, 3, 12, 0, tzinfo=CHI))
    agent = Agent(path, clock=clock, poll=None)
    agent.run(until=clock.now())
    store = Store(city.database, readonly=True)
    scans = store.scans()
    store.close()
    assert [s.status for s in scans] == ["complete", "incomplete"]
    assert scans[0].n_targets == 4 and scans[0].as_of[:10] == "2026-03-03"
    assert "was cut short: redoing it now" in caplog.text


def test_status_without_a_running_agent(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.toml", [_springfield(scan="daily", scan_at="02:00")])
    doc = status(path, clock=ManualClock(dt.datetime(2026, 3, 3, 12, 0, tzinfo=CHI)))
    assert doc["agent_running"] is False
    (c,) = doc["cities"]
    assert c["last_scan"] is None and c["emails_pending"] == 0
    assert [n["what"] for n in c["next"]] == ["scan", "monthly report (2026-03)"]
    assert c["next"][0]["when"] == "2026-03-04T02:00:00-06:00"


# --- issue 13: the first report, missed report days, the From address ------------------


def _city_for_reports(tmp_path: Path, name: str = "c.toml", **delivery: object) -> Path:
    return write_config(tmp_path / name, [city_block(
        "springfield", schedule={"scan": "daily", "scan_at": "02:00", "report_day": 1, "report_at": "06:00"},
        delivery={"recipients": ["manager@springfield.example.org"], "attach": ["xlsx"], **delivery},
        targets=[local_target("city-hall-server")])])


def _events(agent: Agent) -> list[str]:
    return [a.event for a in agent.outbox(agent.cfg.cities["springfield"]).history()]


def test_the_first_report_right_after_the_first_scans_covers_this_month(tmp_path: Path) -> None:
    """`agent --once --report` on the first day wrote (and would have emailed) last month's
    report saying "No scan has been run yet" right after three scans."""
    path = _city_for_reports(tmp_path)
    clock = ManualClock(dt.datetime(2026, 12, 3, 10, 0, tzinfo=CHI))
    agent = Agent(path, clock=clock, poll=None, dry_run=True)
    for _ in range(3):
        assert agent.run_once() == 0
        clock.advance(600)
    assert agent.run_once(report=True) == 0
    reports = tmp_path / "data" / "springfield" / "reports"
    assert [p.name for p in reports.iterdir()] == ["2026-12"]
    text = (reports / "2026-12" / "springfield-monthly-2026-12.md").read_text()
    assert "December 2026" in text and "No scan" not in text and "no scan" not in text
    from itaudit.delivery import read_message

    msg = read_message(reports / "2026-12" / "springfield-monthly-2026-12.eml")
    assert msg["Subject"] == "City of Springfield: IT risk summary for December 2026"


def test_a_report_of_a_month_with_scans_still_covers_the_last_full_month(tmp_path: Path) -> None:
    path = _city_for_reports(tmp_path)
    clock = ManualClock(dt.datetime(2026, 11, 20, 10, 0, tzinfo=CHI))
    agent = Agent(path, clock=clock, poll=None, dry_run=True)
    agent.run_once()
    clock.advance(13 * 86400)  # 3 December
    agent.run_once(report=True)
    assert sorted(p.name for p in (tmp_path / "data" / "springfield" / "reports").iterdir()) == ["2026-11"]


def test_a_report_day_missed_while_the_machine_was_off_is_caught_up_once(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="itaudit")
    path = _city_for_reports(tmp_path)
    # The agent runs from 20 November (one scan on the 21st) ...
    Agent(path, clock=ManualClock(dt.datetime(2026, 11, 20, 12, 0, tzinfo=CHI)), poll=None,
          dry_run=True).run(until=dt.datetime(2026, 11, 21, 12, 0, tzinfo=CHI))
    # ... the machine is off on 1 December and comes back on the 3rd: the November report now.
    clock = ManualClock(dt.datetime(2026, 12, 3, 9, 0, tzinfo=CHI))
    agent = Agent(path, clock=clock, poll=None, dry_run=True)
    agent.run(until=dt.datetime(2026, 12, 3, 9, 30, tzinfo=CHI))
    assert _events(agent) == ["dry-run"]
    assert "the report day 2026-12-01 was missed" in caplog.text
    month = tmp_path / "data" / "springfield" / "reports" / "2026-11"
    assert "November 2026" in (month / "springfield-monthly-2026-11.md").read_text()
    assert agent.state(agent.cfg.cities["springfield"])["dry_run_last_report"]["day"] == "2026-12-01"
    # Restarting (again and again) does not send it again; nor does --once that day.
    for hour in (10, 11):
        again = Agent(path, clock=ManualClock(dt.datetime(2026, 12, 3, hour, 0, tzinfo=CHI)), poll=None,
                      dry_run=True)
        again.run(until=dt.datetime(2026, 12, 3, hour, 30, tzinfo=CHI))
    Agent(path, clock=ManualClock(dt.datetime(2026, 12, 3, 12, 0, tzinfo=CHI)), poll=None,
          dry_run=True).run_once()
    assert _events(agent) == ["dry-run"]
    # The next report day, with the agent running, is on time as before.
    Agent(path, clock=ManualClock(dt.datetime(2026, 12, 31, 12, 0, tzinfo=CHI)), poll=None,
          dry_run=True).run(until=dt.datetime(2027, 1, 1, 7, 0, tzinfo=CHI))
    assert _events(agent) == ["dry-run", "dry-run"]
    assert (tmp_path / "data" / "springfield" / "reports" / "2026-12").is_dir()


def test_a_new_install_does_not_send_an_old_report_at_its_first_start(tmp_path: Path) -> None:
    path = _city_for_reports(tmp_path)
    agent = Agent(path, clock=ManualClock(dt.datetime(2026, 12, 3, 9, 0, tzinfo=CHI)), poll=None, dry_run=True)
    agent.run(until=dt.datetime(2026, 12, 3, 9, 30, tzinfo=CHI))
    assert _events(agent) == []
    # Started at 07:00 on the report day, after its 06:00: the same (a first start, not a missed day).
    other = tmp_path / "other"
    other.mkdir()
    path2 = _city_for_reports(other)
    agent2 = Agent(path2, clock=ManualClock(dt.datetime(2026, 12, 1, 7, 0, tzinfo=CHI)), poll=None, dry_run=True)
    agent2.run(until=dt.datetime(2026, 12, 1, 8, 0, tzinfo=CHI))
    assert _events(agent2) == []


def test_a_restart_after_the_report_time_on_the_report_day_catches_it_up(tmp_path: Path) -> None:
    path = _city_for_reports(tmp_path)
    Agent(path, clock=ManualClock(dt.datetime(2026, 11, 30, 12, 0, tzinfo=CHI)), poll=None,
          dry_run=True).run(until=dt.datetime(2026, 11, 30, 13, 0, tzinfo=CHI))
    # Off from 13:00 on the 30th until 07:00 on the 1st: the 06:00 report was missed.
    agent = Agent(path, clock=ManualClock(dt.datetime(2026, 12, 1, 7, 0, tzinfo=CHI)), poll=None, dry_run=True)
    agent.run(until=dt.datetime(2026, 12, 1, 8, 0, tzinfo=CHI))
    assert _events(agent) == ["dry-run"]


def test_once_on_the_report_day_reports_once(tmp_path: Path) -> None:
    """A timer runs `agent --once` at 02:00; run twice on the report day it mailed twice."""
    path = _city_for_reports(tmp_path)
    for hour in (2, 3):
        agent = Agent(path, clock=ManualClock(dt.datetime(2026, 12, 1, hour, 0, tzinfo=CHI)), poll=None,
                      dry_run=True)
        agent.run_once()
    assert _events(agent) == ["dry-run"]


def test_the_from_address_is_configurable_per_city(tmp_path: Path) -> None:
    from itaudit.delivery import read_message

    path = _city_for_reports(tmp_path, **{"from": "it-reports@springfield.example.org"})
    clock = ManualClock(dt.datetime(2026, 12, 3, 10, 0, tzinfo=CHI))
    agent = Agent(path, clock=clock, poll=None, dry_run=True)
    agent.run_once(report=True)
    (eml,) = (tmp_path / "data" / "springfield" / "reports").glob("*/*.eml")
    assert read_message(eml)["From"] == "it-reports@springfield.example.org"


@pytest.mark.peers
def test_a_missed_report_day_is_emailed_once_and_a_dry_run_does_not_stand_for_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The real path (no --dry-run) against a real SMTP server: the report day missed while
    the machine was off is emailed once at the next start, never again at later starts; a
    dry run earlier that day does not count as sent. From is the city's delivery.from, the
    envelope sender smtp.from."""
    pytest.importorskip("aiosmtpd")
    caplog.set_level(logging.INFO, logger="itaudit")
    peer = SMTPPeer(None, security="none").start()
    try:
        path = write_config(tmp_path / "c.toml", [city_block(
            "springfield", schedule={"scan": "daily", "scan_at": "02:00", "report_day": 1, "report_at": "06:00"},
            delivery={"recipients": ["manager@springfield.example.org"], "attach": ["xlsx"],
                      "from": "it-reports@springfield.example.org"},
            targets=[local_target("city-hall-server")])],
            smtp={"host": "127.0.6.1", "port": peer.port, "security": "none", "from": "itaudit@msp.example.com",
                  "timeout": 10})
        Agent(path, clock=ManualClock(dt.datetime(2026, 11, 20, 12, 0, tzinfo=CHI)), poll=None).run(
            until=dt.datetime(2026, 11, 21, 12, 0, tzinfo=CHI))
        # Off on 1 December. On the 3rd someone tries a dry run first, then the agent starts.
        Agent(path, clock=ManualClock(dt.datetime(2026, 12, 3, 8, 0, tzinfo=CHI)), poll=None,
              dry_run=True).run(until=dt.datetime(2026, 12, 3, 8, 10, tzinfo=CHI))
        assert peer.received == []
        for hour in (9, 10):
            agent = Agent(path, clock=ManualClock(dt.datetime(2026, 12, 3, hour, 0, tzinfo=CHI)), poll=None)
            agent.run(until=dt.datetime(2026, 12, 3, hour, 30, tzinfo=CHI))
        Agent(path, clock=ManualClock(dt.datetime(2026, 12, 3, 11, 0, tzinfo=CHI)), poll=None).run_once()
    finally:
        peer.stop()
    (got,) = peer.received
    assert got.message["Subject"] == "City of Springfield: IT risk summary for November 2026"
    assert got.message["From"] == "it-reports@springfield.example.org"
    assert got.mail_from == "itaudit@msp.example.com"
    # Once: the dry run keeps its own record, which starts at its own first run (after the 1st).
    assert caplog.text.count("the report day 2026-12-01 was missed") == 1
    doc = status(path, clock=ManualClock(dt.datetime(2026, 12, 3, 12, 0, tzinfo=CHI)))
    assert doc["cities"][0]["last_report"]["month"] == "2026-11"
    assert "last report: 2026-11 (report day 2026-12-01" in format_status(doc)
