"""Issue 8: the scan survives what networks and machines do to it.

- hosts that tarpit, drop the connection mid-probe or flood output: the scan ends on time,
  stores the good ones and names every failure;
- SIGKILL of the real CLI at random moments: the database stays whole, earlier scans
  intact, the next scan completes;
- a full disk and a read-only database: a clear message and a non-zero exit, no traceback;
- a second scan of the same city is refused while reports still read (WAL).

Addresses: 127.0.8.0/24 (in-process fleets, unreachable targets), 127.0.9.0/24 (the
fleet process of the SIGKILL test).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fleetkit import SSH_PASSWORD_ENV, FleetProcess, database, itaudit_cmd, write_city_config

from itaudit import config
from itaudit.demo import ssh_cases
from itaudit.scan import run_scan
from itaudit.sim.sshfleet import SimHost, SSHFleet

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
USER = "auditor"


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> str:
    pw = "res-" + secrets.token_urlsafe(12)
    monkeypatch.setenv(SSH_PASSWORD_ENV, pw)
    return pw


def cli(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(itaudit_cmd(*args), cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"}, **kw)


def scan_in_process(cfg_path: Path):
    cfg = config.load(cfg_path)
    t0 = time.monotonic()
    summary = run_scan(cfg, cfg.city(None))
    return summary, time.monotonic() - t0


def rows(db: Path, sql: str, *args: object) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


# --- hang, drop, flood -------------------------------------------------------------------

TIMEOUT = 4.0


@pytest.mark.slow
def test_tarpits_drops_and_floods_end_on_time_and_are_named(tmp_path: Path, password: str) -> None:
    cases = [c for c in ssh_cases() if c.parent.name == "linux"]
    kinds = ["good"] * 65 + ["tarpit"] * 20 + ["drop"] * 10 + ["flood"] * 5
    random.Random(8).shuffle(kinds)  # faults interleaved with good hosts, as in a real city
    hosts = [SimHost(f"127.0.8.{i + 1}", cases[i % len(cases)], fault=None if k == "good" else k)
             for i, k in enumerate(kinds)]
    by_addr = {h.address: k for h, k in zip(hosts, kinds, strict=True)}
    good = [(h.address, h.port) for h in hosts if h.fault is None]
    # Concurrency above the 25 slow hosts: each can hold a worker for the whole deadline.
    clean_cfg = write_city_config(tmp_path / "clean" / "city.toml", ssh=good, username=USER, timeout=TIMEOUT,
                                  concurrency=40)
    all_cfg = write_city_config(tmp_path / "all" / "city.toml", ssh=[(h.address, h.port) for h in hosts],
                                username=USER, timeout=TIMEOUT, concurrency=40)
    with SSHFleet(hosts, username=USER, password=password, key_dir=tmp_path / "keys"):
        clean, clean_s = scan_in_process(clean_cfg)
        assert clean.ok == 65 and clean.failed == 0
        summary, faulty_s = scan_in_process(all_cfg)

    # On time: one per-host deadline on top of the clean scan, plus a margin for a loaded box.
    assert faulty_s <= TIMEOUT + clean_s + 3.0, (faulty_s, clean_s)
    assert summary.total == 100 and summary.ok == 65 and not summary.interrupted
    db = database(all_cfg)
    obs = {addr_of(t): (status, kind, err, facts) for t, status, kind, err, facts in rows(
        db, "select target, status, error_kind, error, facts from observations where scan_id = ?", summary.scan_id)}
    assert len(obs) == 100  # every host has its line
    for addr, kind in by_addr.items():
        status, error_kind, error, facts = obs[addr]
        if kind == "good":
            assert status == "ok" and facts and json.loads(facts)["software"]["os_name"], addr
        elif kind == "tarpit":
            assert (status, error_kind) == ("error", "timeout") and "no answer" in error, (addr, error)
        elif kind == "drop":
            assert status == "partial" and error in ("connection dropped mid-probe", "probe ended early"), error
        else:  # flood: kept what fits, cut at the bound or at the deadline
            assert status == "partial" and ("cut at" in error or "timed out" in error), error
    # The summary (what the CLI prints) names each failed host with its reason.
    reasons = dict(summary.errors)
    assert len(reasons) == 20 and all("no answer" in r for r in reasons.values())
    assert summary.partial == 15


def addr_of(label: str) -> str:
    return label.split("//", 1)[-1].rsplit(":", 1)[0]


# --- SIGKILL --------------------------------------------------------------------------------

KILLS_WANTED = 20  # the number: every round is a kill, however long the rounds take
KILL_GUARD_S = 240.0  # only against a hang; 20 rounds take about 40 s here


def complete_scans(db: Path) -> dict[int, tuple]:
    """For each complete scan: what it stored (must never change afterwards)."""
    return {sid: (n_ok, n_failed, n_obs, n_cr) for sid, n_ok, n_failed, n_obs, n_cr in rows(
        db, "select s.id, s.n_ok, s.n_failed, (select count(*) from observations o where o.scan_id = s.id), "
            "(select count(*) from check_results c where c.scan_id = s.id) from scans s where status = 'complete'")}


@pytest.mark.slow
def test_sigkill_at_random_moments_never_corrupts(tmp_path: Path, password: str) -> None:
    n = 200
    cfg = write_city_config(tmp_path / "city.toml", ssh=[(f"127.0.9.{i + 1}", 2222) for i in range(n)],
                            username=USER, timeout=10, concurrency=16)
    db = database(cfg)
    rng = random.Random()
    with FleetProcess(ssh_cases(), n, "127.0.9.1", tmp_path / "keys", password=password, username=USER):
        t0 = time.monotonic()
        first = cli("scan", "-c", str(cfg), "--json")
        full_s = time.monotonic() - t0
        assert first.returncode == 0, first.stderr[-2000:]
        before = complete_scans(db)
        assert len(before) == 1 and next(iter(before.values()))[0] == n

        kills, mid_scan, start = 0, 0, time.monotonic()
        while kills < KILLS_WANTED:
            assert time.monotonic() - start < KILL_GUARD_S, f"{kills} kills so far: rounds hang"
            proc = subprocess.Popen(itaudit_cmd("scan", "-c", str(cfg), "--json"), cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.2, 0.9 * full_s))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
            conn = sqlite3.connect(db)
            try:
                assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
                last = conn.execute("select max(id) from scans").fetchone()[0]
                # One transaction per device: every stored observation has its verdicts and facts.
                for device_id, facts in conn.execute(
                        "select device_id, facts from observations where scan_id = ?", [last]):
                    assert json.loads(facts)["identity"]["address"]
                    assert conn.execute("select count(*) from check_results where scan_id = ? and device_id = ?",
                                        [last, device_id]).fetchone()[0] > 0
            finally:
                conn.close()
            now = complete_scans(db)
            assert now.items() >= before.items()  # earlier scans whole
            mid_scan += len(now) == len(before)  # (a late kill can land after the scan finished)
            before = now

        print(f"{kills} SIGKILLs ({mid_scan} mid-scan) in {time.monotonic() - start:.1f} s "
              f"(a full scan takes {full_s:.1f} s)")
        assert kills == KILLS_WANTED
        assert mid_scan >= 15, "too few kills landed mid-scan to mean anything"
        after = cli("scan", "-c", str(cfg), "--json")
    assert after.returncode == 0, after.stderr[-2000:]
    assert json.loads(after.stdout)[0]["ok"] == n
    statuses = [s for (s,) in rows(db, "select status from scans order by id")]
    assert statuses[0] == statuses[-1] == "complete"
    assert "running" not in statuses  # killed scans were marked incomplete by the next one
    assert complete_scans(db).items() >= before.items()


# --- full disk, read-only database --------------------------------------------------------

def unreachable_city(tmp: Path, n: int = 40, data_dir: str = "data") -> Path:
    # Nothing listens on 127.0.8.240-255: every target is a quick "refused", which is still
    # a row per device to write.
    return write_city_config(tmp / "city.toml", ssh=[(f"127.0.8.{240 + i % 16}", 2200 + i) for i in range(n)],
                             username=USER, timeout=2, data_dir=data_dir)


def assert_clean_failure(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode not in (0, 1, 3), (proc.returncode, proc.stderr[-1500:])
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr[-3000:]
    text = proc.stderr.lower()
    assert "error" in text and any(w in text for w in words), proc.stderr[-1500:]


def _limit_file_size(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # Python ignores SIGXFSZ: writes get EFBIG
    return apply


def test_disk_full_mid_scan_is_a_clear_error(tmp_path: Path, password: str) -> None:
    cfg = unreachable_city(tmp_path, n=300)
    assert cli("scan", "-c", str(cfg)).returncode == 3  # a database with history
    before = complete_scans(database(cfg))
    # No file may grow past 256 KB: the WAL fills up a few dozen devices into the next scan.
    proc = cli("scan", "-c", str(cfg), preexec_fn=_limit_file_size(256 * 1024))
    assert_clean_failure(proc, "full", "cannot write", "too large", "disk")
    conn = sqlite3.connect(database(cfg))
    assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert complete_scans(database(cfg)) == before


def test_full_tmpfs_is_a_clear_error(tmp_path: Path, password: str) -> None:
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root (the RLIMIT_FSIZE test covers a full disk)")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(mnt)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        # The config stays outside; the database lives on the tiny disk.
        small = unreachable_city(tmp_path / "one", n=4, data_dir=str(mnt / "data"))
        assert cli("scan", "-c", str(small)).returncode == 3  # fits
        before = complete_scans(database(small))
        # Fill what is left of the disk, then scan more devices than fit.
        with contextlib.suppress(OSError), open(mnt / "filler", "wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
        cfg = unreachable_city(tmp_path / "many", n=300, data_dir=str(mnt / "data"))
        proc = cli("scan", "-c", str(cfg))
        assert_clean_failure(proc, "full", "space", "cannot write", "disk")
        (mnt / "filler").unlink()  # with room again, the database is whole and the next scan works
        conn = sqlite3.connect(database(cfg))
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        conn.close()
        assert complete_scans(database(cfg)) == before
        assert cli("scan", "-c", str(small)).returncode == 3  # a city that fits scans again
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_read_only_database_is_a_clear_error(tmp_path: Path, password: str) -> None:
    cfg = unreachable_city(tmp_path, n=3)
    assert cli("scan", "-c", str(cfg)).returncode == 3
    db = database(cfg)
    # We may be root, who ignores mode bits: make the file immutable instead when we can.
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i not supported on this filesystem (root ignores file modes)")
    else:
        db.chmod(0o400)
    try:
        proc = cli("scan", "-c", str(cfg))
        assert_clean_failure(proc, "read", "cannot write", "permission", "not permitted")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(db)], check=False)
        db.chmod(0o600)
    assert cli("scan", "-c", str(cfg)).returncode == 3  # writable again: back to normal


# --- one scan at a time; reports read during a scan ---------------------------------------


@pytest.mark.slow
def test_second_scan_refused_and_reports_work_during_a_scan(tmp_path: Path, password: str) -> None:
    cases = [c for c in ssh_cases() if c.parent.name == "linux"]
    good = [SimHost(f"127.0.8.{200 + i}", cases[i % len(cases)]) for i in range(6)]
    slow = [SimHost(f"127.0.8.{210 + i}", cases[0], fault="tarpit") for i in range(4)]
    quick_cfg = write_city_config(tmp_path / "city.toml", ssh=[(h.address, h.port) for h in good], username=USER,
                                  timeout=8)
    slow_cfg = write_city_config(tmp_path / "slow.toml", ssh=[(h.address, h.port) for h in good + slow],
                                 username=USER, timeout=8)
    with SSHFleet(good + slow, username=USER, password=password, key_dir=tmp_path / "keys"):
        assert cli("scan", "-c", str(quick_cfg)).returncode == 0  # history for the report
        running = subprocess.Popen(itaudit_cmd("scan", "-c", str(slow_cfg), "--json"), cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            db = database(quick_cfg)
            deadline = time.monotonic() + 15
            while not rows(db, "select 1 from scans where status = 'running'"):
                assert time.monotonic() < deadline and running.poll() is None, "the long scan did not start"
                time.sleep(0.05)
            second = cli("scan", "-c", str(quick_cfg))
            report = cli("report", "monthly", "-c", str(quick_cfg), "--out", str(tmp_path / "reports"))
            still_running = running.poll() is None
        finally:
            out, err = running.communicate(timeout=60)
    assert still_running, "the long scan ended before the checks ran: they proved nothing"
    assert second.returncode == 2, second.stderr
    assert "another scan of this city is running" in second.stderr and "Traceback" not in second.stderr
    assert report.returncode == 0, report.stderr[-2000:]
    assert list((tmp_path / "reports").glob("*.html"))
    assert running.returncode == 3 and json.loads(out)[0]["ok"] == 6  # the long scan was not disturbed
    assert sys.executable  # the CLI ran under this interpreter


def test_sigterm_stops_a_slow_scan_within_one_deadline(tmp_path: Path, password: str) -> None:
    """A stopped scan must not wait for every host still queued (30 tarpits at 3 at a time
    would take 30 s): it ends within one per-host deadline and is marked incomplete."""
    hosts = [SimHost(f"127.0.8.{101 + i}", FIXTURES / "linux" / "debian-12", fault="tarpit") for i in range(30)]
    cfg = write_city_config(tmp_path / "city.toml", ssh=[(h.address, h.port) for h in hosts], username=USER,
                            timeout=3, concurrency=3)
    with SSHFleet(hosts, username=USER, password=password, key_dir=tmp_path / "keys") as fleet:
        proc = subprocess.Popen(itaudit_cmd("scan", "-c", str(cfg), "--json"), cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        db = database(cfg)
        deadline = time.monotonic() + 15
        # Signal once hosts are in flight (connected to their tarpit), not before the first.
        while sum(fleet.counts[("connect", h.address)] for h in hosts) < 3:
            assert time.monotonic() < deadline and proc.poll() is None, "the scan did not start"
            time.sleep(0.05)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        stopped_s = time.monotonic() - t0
    assert stopped_s < 3 + 2.5, stopped_s
    assert "Traceback" not in err
    summary = json.loads(out)[0]
    assert summary["interrupted"] is True and summary["targets"] == 30 and summary["failed"] < 30
    assert rows(db, "select status from scans") == [("incomplete",)]
