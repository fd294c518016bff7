"""Issue 13: a scan whose collector thread dies is marked incomplete with the reason, never complete.

Real scans of this host (the ``local`` collector) with a plugin collector registered for the
test in place of ``local``: it collects the first target for real and then raises, or dies
with a BaseException, or silently returns fewer results than it was given. Before the fix
each of these scans was stored as ``complete`` with targets missing.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from agentkit import city_block, local_target, write_config

from collectors.local import LocalCollector
from itaudit import plugins
from itaudit.agent import Agent, ManualClock, format_status, status
from itaudit.config import load
from itaudit.model import CollectResult
from itaudit.scan import run_scan
from itaudit.store import Store

AS_OF = dt.date(2026, 3, 2)


class CollectorBug(RuntimeError):
    pass


class RaisesAfterOne(LocalCollector):
    """Collects the first target, then raises out of ``collect_many`` (a plugin's bug)."""

    def collect_many(self, targets: Iterable[Any], ctx: Any) -> Iterator[CollectResult]:
        targets = list(targets)
        yield self.safe_collect(targets[0], ctx)
        raise CollectorBug("decoder state lost")


class ThreadDies(LocalCollector):
    """The worker thread itself dies: a BaseException that is not an Exception."""

    def collect_many(self, targets: Iterable[Any], ctx: Any) -> Iterator[CollectResult]:
        targets = list(targets)
        yield self.safe_collect(targets[0], ctx)
        raise SystemExit("collector called sys.exit")


class ReturnsTooFew(LocalCollector):
    """Returns one result for three targets and ends without a word."""

    def collect_many(self, targets: Iterable[Any], ctx: Any) -> Iterator[CollectResult]:
        yield self.safe_collect(list(targets)[0], ctx)


def _city(tmp_path: Path) -> Path:
    targets = [local_target(f"pc-{i}", address=f"host-{i}") for i in range(3)]
    return write_config(tmp_path / "c.toml", [city_block("springfield", targets=targets,
                                                         schedule={"scan": "daily", "report": False})])


def _scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collector: type) -> tuple[Any, Path]:
    monkeypatch.setitem(plugins.BUILTIN_COLLECTORS, "local", f"{__name__}:{collector.__name__}")
    cfg = load(_city(tmp_path))
    city = cfg.cities["springfield"]
    return run_scan(cfg, city, as_of=AS_OF), city.database


def _stored(db: Path) -> tuple[list[Any], dict[str, tuple[str, str | None]], str | None]:
    store = Store(db, readonly=True)
    try:
        scans = store.scans()
        rows = {r[0]: (r[1], r[2]) for r in store.db.execute("select target, status, error from observations")}
        return scans, rows, store.scan_incomplete_reason(scans[0].id)
    finally:
        store.close()


@pytest.mark.parametrize("collector,why", [
    (RaisesAfterOne, "the local collector failed: CollectorBug: decoder state lost"),
    (ThreadDies, "the local collector failed: SystemExit: collector called sys.exit"),
    (ReturnsTooFew, "the local collector returned no result for 2 of its targets"),
])
def test_a_dying_collector_marks_the_scan_incomplete_with_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collector: type, why: str) -> None:
    summary, db = _scan(tmp_path, monkeypatch, collector)
    assert summary.incomplete_reason == why
    assert not summary.interrupted  # nobody stopped it: it broke
    assert (summary.ok + summary.partial, summary.failed, summary.total) == (1, 2, 3)
    scans, rows, reason = _stored(db)
    assert [s.status for s in scans] == ["incomplete"]
    assert (scans[0].n_ok, scans[0].n_failed) == (1, 2)
    assert reason == why
    # Every target has a line: the one collected, and two errors naming the failure.
    errors = sorted(err for status, err in rows.values() if status == "error")
    assert errors == [why, why] and len(rows) == 3
    assert sorted(label for label, _ in summary.errors) == ["local://host-1", "local://host-2"]


def test_a_healthy_scan_is_complete_without_a_reason(tmp_path: Path) -> None:
    cfg = load(_city(tmp_path))
    summary = run_scan(cfg, cfg.cities["springfield"], as_of=AS_OF)
    assert summary.incomplete_reason is None and summary.failed == 0
    scans, _, reason = _stored(cfg.cities["springfield"].database)
    assert [s.status for s in scans] == ["complete"] and reason is None


def test_a_stopped_scan_says_how_far_it_got(tmp_path: Path) -> None:
    cfg = load(_city(tmp_path))
    stop = threading.Event()
    summary = run_scan(cfg, cfg.cities["springfield"], as_of=AS_OF, stop=stop,
                       progress=lambda r, d, n: stop.set())
    assert summary.interrupted and summary.incomplete_reason == "stopped after 1 of 3 targets"


def test_the_agent_logs_and_shows_why_a_scan_is_incomplete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="itaudit")
    monkeypatch.setitem(plugins.BUILTIN_COLLECTORS, "local", f"{__name__}:RaisesAfterOne")
    path = _city(tmp_path)
    clock = ManualClock(dt.datetime(2026, 3, 3, 12, 0, tzinfo=dt.UTC))
    assert Agent(path, clock=clock, poll=None).run_once() == 3
    assert ("scan 1 marked incomplete (the local collector failed: CollectorBug: decoder state lost)"
            in caplog.text)
    doc = status(path, clock=clock)
    (c,) = doc["cities"]
    assert c["last_scan"]["status"] == "incomplete"
    assert "incomplete (the local collector failed" in format_status(doc)


def test_a_collector_thread_that_cannot_start_marks_the_scan_incomplete(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker machinery itself fails (no thread for the collector: out of threads or
    memory): the scan ends, incomplete, its targets error lines with the reason."""
    real_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if self.name.startswith("collect-"):
            raise RuntimeError("can't start new thread")
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    cfg = load(_city(tmp_path))
    summary = run_scan(cfg, cfg.cities["springfield"], as_of=AS_OF)
    why = "cannot start a collector thread: RuntimeError: can't start new thread"
    assert summary.incomplete_reason == why and summary.failed == 3
    scans, rows, reason = _stored(cfg.cities["springfield"].database)
    assert [s.status for s in scans] == ["incomplete"] and reason == why
    assert {err for _, err in rows.values()} == {why}
