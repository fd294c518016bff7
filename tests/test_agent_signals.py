"""The agent as a real process: SIGTERM stops it between devices, SIGKILL mid-scan loses
nothing already stored, and the next start redoes the cut scan and finishes it.

The city has this host (``local``) and SNMP devices that never answer (each takes under a
second to give up on), scanned one at a time, so a signal lands in the middle of a scan.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agentkit import SNMP_CRED, SilentUDP, city_block, local_target, write_config

ROOT = Path(__file__).resolve().parents[1]
N_SILENT = 5


@pytest.fixture
def silent() -> Iterator[SilentUDP]:
    s = SilentUDP(N_SILENT)
    yield s
    s.close()


def _config(tmp_path: Path, silent: SilentUDP) -> Path:
    return write_config(tmp_path / "c.toml", [city_block(
        "springfield", credentials={"net": SNMP_CRED},
        schedule={"scan": "daily", "scan_at": "02:00", "report": False},
        targets=[local_target("city-hall-server")] + silent.targets("core"))],
        settings={"concurrency": 1, "timeout": 0.6})


def _agent(cfg: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "ITAUDIT_TEST_COMMUNITY": "public", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "itaudit.cli", "--log-format", "json", "agent", "-c", str(cfg),
                             *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "springfield" / "itaudit.db"


def _query(db: Path, sql: str) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def _wait(pred: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def _observations(db: Path) -> list[tuple[object, ...]]:
    return _query(db, "select scan_id, target, status from observations order by id")


def test_sigkill_mid_scan_then_restart_completes_without_losing_data(tmp_path: Path, silent: SilentUDP) -> None:
    cfg = _config(tmp_path, silent)
    db = _db(tmp_path)
    first = _agent(cfg, "--once")
    try:
        _wait(lambda: len(_observations(db)) >= 2)  # this host and one silent switch are stored
    finally:
        first.kill()  # SIGKILL: no handler runs, the lock and a 'running' scan are left behind
        first.communicate(timeout=10)
    before = _observations(db)
    assert _query(db, "select status from scans") == [("running",)]
    assert 2 <= len(before) < N_SILENT + 1

    second = _agent(cfg)  # the daemon: redoes the cut scan at start
    try:
        _wait(lambda: ("complete",) in _query(db, "select status from scans"), timeout=60)
        out = subprocess.run([sys.executable, "-m", "itaudit.cli", "agent", "-c", str(cfg), "--status", "--json"],
                             cwd=ROOT, capture_output=True, text=True, timeout=30,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        doc = json.loads(out.stdout)
        assert doc["agent_running"] is True and doc["pid"] == second.pid
    finally:
        second.send_signal(signal.SIGTERM)
        log_out, err = second.communicate(timeout=30)
    assert second.returncode == 0, err
    scans = _query(db, "select id, status, n_targets from scans order by id")
    assert scans == [(1, "incomplete", N_SILENT + 1), (2, "complete", N_SILENT + 1)]
    after = _observations(db)
    assert after[:len(before)] == before  # every row stored before the kill is still there
    assert len([o for o in after if o[0] == 2]) == N_SILENT + 1
    # The agent logs to stdout, one JSON object per line (journald, log shippers).
    logs = [json.loads(line) for line in log_out.splitlines() if line.startswith("{")]
    messages = [m["message"] for m in logs]
    assert any("stale agent lock" in m for m in messages), messages
    assert any("was cut short: redoing it now" in m for m in messages), messages
    assert all(m["level"] and m["time"] and m["logger"].startswith("itaudit") for m in logs)


def test_sigterm_stops_between_devices_and_the_scan_is_marked_incomplete(tmp_path: Path,
                                                                         silent: SilentUDP) -> None:
    cfg = _config(tmp_path, silent)
    db = _db(tmp_path)
    proc = _agent(cfg, "--once")
    try:
        _wait(lambda: len(_observations(db)) >= 2)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    scans = _query(db, "select status, n_targets from scans")
    assert scans == [("incomplete", N_SILENT + 1)], err
    stored = len(_observations(db))
    assert stored < N_SILENT + 1  # it stopped early, after a whole device
    assert "stopping after the current device" in out
    assert "cut short (marked incomplete)" in out
    assert (tmp_path / "data" / "agent.lock").read_text() == ""  # a clean stop leaves no stale lock


def test_the_agent_logs_each_event_once_and_warns_only_where_it_applies(tmp_path: Path) -> None:
    """Issue 13: every next-run line came out twice (echoed and logged, both on stdout, so
    twice in the journal), and the missing-[smtp] warning came out on stderr before logging
    was set up, also for --dry-run (which sends nothing) and for --status."""
    cfg = write_config(tmp_path / "c.toml", [city_block(
        "springfield", schedule={"scan": "daily", "scan_at": "02:00"},
        delivery={"recipients": ["manager@springfield.example.org"]},
        targets=[local_target("city-hall-server")])])
    smtp_warning = "has recipients but there is no [smtp] table"

    daemon = _agent(cfg)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(iter(daemon.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        _wait(lambda: any("next monthly report" in line for line in got))  # the last start line
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        reader.join(timeout=10)
        err = daemon.stderr.read()
        daemon.stdout.close()
        daemon.stderr.close()
    assert daemon.returncode == 0, err
    lines = [line for line in got if line.strip()]
    assert all(line.startswith("{") for line in lines), lines  # one format: nothing echoed beside the log
    messages = [json.loads(line)["message"] for line in lines]
    assert len(messages) == len(set(messages)), messages
    assert [m for m in messages if "next scan" in m] == [m for m in messages if m.startswith("springfield: next scan")]
    assert len([m for m in messages if "next scan" in m]) == 1
    assert len([m for m in messages if smtp_warning in m]) == 1  # it applies: the email cannot be sent
    assert err == ""

    once = _agent(cfg, "--once", "--dry-run", "--report")
    out, err = once.communicate(timeout=120)
    assert once.returncode == 0, err
    messages = [json.loads(line)["message"] for line in out.splitlines() if line.strip()]
    assert len(messages) == len(set(messages)), messages
    assert len([m for m in messages if "dry run: email written to" in m]) == 1
    assert smtp_warning not in out + err  # a dry run sends nothing: the warning does not apply

    st = subprocess.run([sys.executable, "-m", "itaudit.cli", "agent", "-c", str(cfg), "--status"], cwd=ROOT,
                        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert st.returncode == 0, st.stderr
    assert smtp_warning not in st.stdout + st.stderr
