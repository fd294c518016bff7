"""The scheduling agent: ``itaudit agent -c FILE``, a foreground daemon built on ``schedule``.

Per city it scans on the city's cadence and, on the monthly report day, writes the
manager summary and the capital plan into ``<data_dir>/<city>/reports/<YYYY-MM>/`` and
emails them to the city's recipients (``itaudit.delivery``). Cities run one after another
in one thread; a scan itself is parallel across devices. Times are the city's local time.

Robustness, in the order a small unattended box needs it:

- one agent per data folder (``agent.lock``, flock: the OS drops it when a holder dies; a
  lock file left by a killed agent is reported as stale and taken over);
- one scan at a time per city (``Store.scan_lock``, shared with ``itaudit scan``);
- SIGTERM/SIGINT stop between devices; the cut scan is marked incomplete and redone when
  the agent next starts; a second signal stops at once;
- SIGHUP, or a change of the config file's mtime, reloads the config; a config with an
  error is refused and the agent keeps running on the last good one;
- every failure of a job is logged and the agent carries on.

The clock is injected (``SystemClock`` or ``ManualClock``), so a test runs a month of
schedule in seconds. ``schedule`` 1.2 reads ``datetime.datetime.now()`` itself; the agent
gives it a ``datetime`` module whose ``now()`` is the agent's clock in the city's time zone,
bound only while the agent calls into ``schedule`` (see ``_bound``).
"""

from __future__ import annotations

import calendar
import contextlib
import contextvars
import datetime as dt
import fcntl
import json
import logging
import math
import os
import signal
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import schedule

from itaudit import plugins
from itaudit.config import CityConfig, Config, load
from itaudit.delivery import Outbox, build_message, write_eml
from itaudit.errors import ConfigError, ItauditError, ScanLocked
from itaudit.store import Store

log = logging.getLogger("itaudit.agent")

MONTHLY_FORMATS = ("html", "pdf", "md", "json")
PLAN_FORMATS = ("csv", "xlsx")
DEFAULT_POLL = 30.0  # seconds between looks at the config file's mtime


class AgentRunning(ItauditError):
    """Another agent already runs on this data folder."""


# --- clocks ---------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware."""

    def sleep(self, seconds: float, wake: threading.Event) -> None:
        """Wait ``seconds`` or until ``wake`` is set."""


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def sleep(self, seconds: float, wake: threading.Event) -> None:
        wake.wait(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when slept on or advanced: a month of schedule in seconds."""

    def __init__(self, start: dt.datetime):
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += dt.timedelta(seconds=max(0.0, seconds))

    def sleep(self, seconds: float, wake: threading.Event) -> None:
        self.advance(seconds)


# --- schedule's view of the time ------------------------------------------------------

_LOCAL_NOW: contextvars.ContextVar[Callable[[], dt.datetime] | None] = contextvars.ContextVar(
    "itaudit_schedule_now", default=None)


class _ScheduleDatetime(dt.datetime):
    """``datetime.datetime`` whose ``now()`` is the agent's clock while bound."""

    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
        fn = _LOCAL_NOW.get()
        if fn is None:
            return dt.datetime.now(tz)
        local = fn()
        return local if tz is None else local.replace(tzinfo=tz)


def _install_schedule_clock() -> None:
    if getattr(schedule.datetime, "_itaudit_clock", False):
        return
    shim = types.ModuleType("datetime")
    shim.__dict__.update({k: v for k, v in dt.__dict__.items() if not k.startswith("__")})
    shim.datetime = _ScheduleDatetime  # type: ignore[attr-defined]
    shim._itaudit_clock = True  # type: ignore[attr-defined]
    schedule.datetime = shim  # type: ignore[attr-defined]


# --- agent lock -----------------------------------------------------------------------


class AgentLock:
    """One agent per data folder. flock dies with its holder; the file's text says who held it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, now: dt.datetime) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 128, 0).decode(errors="replace").split()
            os.close(fd)
            raise AgentRunning(f"another itaudit agent is running on {self.path.parent} "
                               f"(pid {holder[0] if holder else '?'})") from None
        previous = os.pread(fd, 128, 0).decode(errors="replace").split()
        if previous:
            # A clean exit empties the file: text left behind means that agent was killed.
            started = previous[1] if len(previous) > 1 else "?"
            log.warning("stale agent lock %s (pid %s, started %s) left by an agent that is no longer "
                        "running: taken over", self.path, previous[0], started)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {now.isoformat(timespec='seconds')}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def holder(self) -> int | None:
        """The pid of a running agent, read without taking the lock (for --status)."""
        try:
            text = self.path.read_text(encoding="utf-8").split()
        except OSError:
            return None
        if not text or not text[0].isdigit():
            return None
        pid = int(text[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid


# --- plans ----------------------------------------------------------------------------


@dataclass
class NextRun:
    city_id: str
    what: str  # "scan", "report", "email retry"
    when: dt.datetime  # aware, in the city's time zone

    def line(self) -> str:
        return f"{self.city_id}: next {self.what} {self.when:%Y-%m-%d %H:%M %Z}"


@dataclass
class _CityPlan:
    city_id: str
    tz: ZoneInfo
    scheduler: schedule.Scheduler


def city_dir(cfg: Config, city: CityConfig) -> Path:
    """A city's own folder under the data folder (reports, outbox): never shared between cities."""
    return cfg.settings.data_dir / city.id


def previous_month(day: dt.date) -> str:
    """The last full calendar month before ``day`` (what a report on ``day`` covers)."""
    first = day.replace(day=1) - dt.timedelta(days=1)
    return first.strftime("%Y-%m")


def report_as_of(month: str, today: dt.date) -> dt.date:
    """The as-of date of a month's reports: its last day (today, for the month still running).

    The summary and the plan attached to it share it, so a June report written on July 1
    plans from the same fiscal year as the summary's "refresh plan at a glance"."""
    year, mon = int(month[:4]), int(month[5:7])
    return min(today, dt.date(year, mon, calendar.monthrange(year, mon)[1]))


def report_date(year: int, month: int, report_day: int) -> dt.date:
    """The report day of a month; days past the month's end fall on its last day."""
    return dt.date(year, month, min(report_day, calendar.monthrange(year, month)[1]))


def next_report(local_now: dt.datetime, report_day: int, report_at: str) -> dt.datetime:
    """The next report time after ``local_now`` (naive local times)."""
    at = dt.time.fromisoformat(report_at)
    y, m = local_now.year, local_now.month
    for _ in range(3):
        when = dt.datetime.combine(report_date(y, m, report_day), at)
        if when > local_now:
            return when
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    raise AssertionError("unreachable")


def last_report(local_now: dt.datetime, report_day: int, report_at: str | None) -> dt.datetime:
    """The latest report time at or before ``local_now`` (naive local times). With
    ``report_at`` None only the day counts (``--once`` runs report any time on the day)."""
    at = dt.time.fromisoformat(report_at) if report_at else dt.time(0, 0)
    y, m = local_now.year, local_now.month
    for _ in range(3):
        when = dt.datetime.combine(report_date(y, m, report_day), at)
        if when <= local_now:
            return when
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    raise AssertionError("unreachable")


def report_month(scan_dates: list[str], on: dt.date) -> str:
    """The month a report written on ``on`` covers: the last full month, or the month still
    running when the last full month has no scan but this one has (the agent's first
    report, right after the first scans, has figures instead of "no scan was run")."""
    prev, current = previous_month(on), on.strftime("%Y-%m")
    months = {d[:7] for d in scan_dates if d[:10] <= on.isoformat()}
    return current if prev not in months and current in months else prev


STATE_NAME = "agent-state.json"


# --- the agent ------------------------------------------------------------------------


class Agent:
    """The daemon. ``run()`` loops until stopped; ``tick()`` does what is due now."""

    def __init__(self, config_path: str | Path, *, clock: Clock | None = None,
                 env: dict[str, str] | None = None, dry_run: bool = False,
                 echo: Callable[[str], None] | None = None,
                 poll: float | None = DEFAULT_POLL, city_ids: list[str] | None = None):
        _install_schedule_clock()
        self.config_path = Path(config_path)
        self.clock: Clock = clock or SystemClock()
        self.env = env
        self.dry_run = dry_run
        self.echo = echo or (lambda s: None)
        self.poll = poll
        self.city_ids = city_ids
        self.stop = threading.Event()
        self.wake = threading.Event()
        self._reload = threading.Event()
        self._warned: set[str] = set()
        self.cfg = self._load()  # a bad config at start is an error (exit 2)
        self._stamp = self._config_stamp()
        self.plans = self._plan(self.cfg)
        self.lock = AgentLock(self.cfg.settings.data_dir / "agent.lock")

    # config --------------------------------------------------------------------------

    def _load(self) -> Config:
        cfg = load(self.config_path, env=self.env)
        for cid in self.city_ids or []:
            cfg.city(cid)  # an unknown --city is a config error
        return cfg

    def warn_config(self) -> None:
        """Log the config's warnings that apply to this agent, each once in the agent's life.

        Called when the agent starts (after the command set up logging, so they come out in
        the configured format) and after a reload (only new ones). ``--status`` does not
        warn. A dry run sends nothing, so a missing ``[smtp]`` table does not concern it.
        """
        agent_only = getattr(self.cfg, "agent_warnings", None)
        if agent_only is None:  # configs from before agent_warnings: the [smtp] warnings by their text
            agent_only = [w for w in self.cfg.warnings if "[smtp]" in w]
        for w in dict.fromkeys([*self.cfg.warnings, *agent_only]):
            if w in self._warned or (self.dry_run and w in agent_only):
                continue
            self._warned.add(w)
            log.warning(w)

    def _say(self, line: str, city_id: str) -> None:
        """Log a line for the person watching; echo it only when the log does not show it.

        The CLI logs INFO to stdout, so echoing as well printed every line twice."""
        log.info(line, extra={"city": city_id})
        if not log.isEnabledFor(logging.INFO):
            self.echo(line)

    def _config_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.config_path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def request_reload(self) -> None:
        """Ask for a config reload at the next tick (SIGHUP does this)."""
        self._reload.set()
        self.wake.set()

    def maybe_reload(self) -> bool:
        """Reload when asked or when the file changed; a bad config is refused. True if reloaded."""
        stamp = self._config_stamp()
        if not self._reload.is_set() and stamp == self._stamp:
            return False
        self._reload.clear()
        self._stamp = stamp  # a bad file is refused once, not at every tick
        try:
            cfg = self._load()
        except ConfigError as exc:
            log.error("config reload refused, still running on the last good config: %s", exc)
            return False
        if cfg.settings.data_dir != self.cfg.settings.data_dir:
            log.warning("settings.data_dir changed to %s: the agent lock stays on %s until restart",
                        cfg.settings.data_dir, self.cfg.settings.data_dir)
        self.cfg = cfg
        self.plans = self._plan(cfg)
        log.info("config reloaded from %s", self.config_path)
        self.warn_config()
        self.announce()
        return True

    def _cities(self, cfg: Config | None = None) -> list[CityConfig]:
        cfg = cfg or self.cfg
        return [c for c in cfg.cities.values() if not self.city_ids or c.id in self.city_ids]

    # schedule ------------------------------------------------------------------------

    def _local_now(self, tz: ZoneInfo) -> dt.datetime:
        return self.clock.now().astimezone(tz).replace(tzinfo=None)

    @contextlib.contextmanager
    def _bound(self, plan: _CityPlan) -> Iterator[None]:
        token = _LOCAL_NOW.set(lambda: self._local_now(plan.tz))
        try:
            yield
        finally:
            _LOCAL_NOW.reset(token)

    def _plan(self, cfg: Config) -> dict[str, _CityPlan]:
        plans = {}
        for city in self._cities(cfg):
            plan = _CityPlan(city.id, ZoneInfo(city.timezone), schedule.Scheduler())
            s = city.schedule
            with self._bound(plan):
                every = plan.scheduler.every()
                if s.scan == "daily":
                    every.day.at(s.scan_at).do(self._job, city.id, "scan").tag("scan")
                elif s.scan == "weekly":
                    getattr(every, s.scan_weekday).at(s.scan_at).do(self._job, city.id, "scan").tag("scan")
                elif s.scan == "hourly":
                    every.hour.at(s.scan_at).do(self._job, city.id, "scan").tag("scan")
                if s.report:
                    # schedule has no monthly unit: a daily job that acts on the report day only.
                    plan.scheduler.every().day.at(s.report_at).do(self._job, city.id, "report").tag("report")
            plans[city.id] = plan
        return plans

    def next_runs(self) -> list[NextRun]:
        """The next scan, report and email retry of every city, in the city's time zone."""
        out = []
        for city in self._cities():
            plan = self.plans.get(city.id)
            if plan is None:
                continue
            for job in plan.scheduler.jobs:
                if "scan" in job.tags and job.next_run:
                    out.append(NextRun(city.id, "scan", job.next_run.replace(tzinfo=plan.tz)))
            if city.schedule.report:
                s = city.schedule
                when = next_report(self._local_now(plan.tz), s.report_day, s.report_at)
                out.append(NextRun(city.id, f"monthly report ({previous_month(when.date())})",
                                   when.replace(tzinfo=plan.tz)))
            due = self.outbox(city).next_due()
            if due:
                out.append(NextRun(city.id, "email retry", due.astimezone(plan.tz)))
        return out

    def announce(self) -> None:
        """Print (and log) the next run times."""
        for n in self.next_runs():
            self._say(n.line(), n.city_id)

    def seconds_until_due(self) -> float:
        """Seconds until the next job or email retry (capped by the config poll interval)."""
        now = self.clock.now()
        waits = [self.poll] if self.poll else []
        for plan in self.plans.values():
            for job in plan.scheduler.jobs:
                if job.next_run:
                    waits.append((job.next_run.replace(tzinfo=plan.tz) - now).total_seconds())
        if not self.dry_run:
            for city in self._cities():
                due = self.outbox(city).next_due()
                if due:
                    waits.append((due - now).total_seconds())
        if not waits:
            return 3600.0
        # Whole milliseconds up: waking a hair early would only spin once more.
        return max(0.0, math.ceil(min(waits) * 1000) / 1000)

    # the loop ------------------------------------------------------------------------

    def install_signals(self) -> None:
        """SIGTERM/SIGINT: stop between devices (twice: at once). SIGHUP: reload the config."""

        def stop(signum: int, frame: Any) -> None:
            if self.stop.is_set():
                raise KeyboardInterrupt
            log.warning("signal %s: stopping after the current device", signal.Signals(signum).name)
            self.stop.set()
            self.wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, lambda signum, frame: self.request_reload())

    def tick(self) -> None:
        """Reload if needed, run every job that is due, send due emails."""
        self.maybe_reload()
        for plan in list(self.plans.values()):
            if self.stop.is_set():
                return
            with self._bound(plan):
                plan.scheduler.run_pending()
        if not self.dry_run and not self.stop.is_set():
            self.flush_outboxes()

    def run(self, *, until: dt.datetime | None = None) -> int:
        """Run until stopped (or until the clock reaches ``until``). Returns an exit code."""
        self.lock.acquire(self.clock.now())
        board = None
        try:
            log.info("agent started (pid %d) with %s: %s", os.getpid(), self.config_path,
                     ", ".join(c.id for c in self._cities()))
            board = self.start_board()
            self.warn_config()
            self.note_start()
            self.announce()
            self.redo_cut_scans()
            self.catch_up_reports()
            while not self.stop.is_set():
                self.tick()
                now = self.clock.now()
                if until is not None and now >= until:
                    break
                wait = self.seconds_until_due()
                if until is not None:
                    wait = min(wait, (until - now).total_seconds())
                self.wake.clear()
                if not (self.stop.is_set() or self._reload.is_set()):
                    self.clock.sleep(wait, self.wake)
            log.info("agent stopped")
            return 0
        finally:
            if board is not None:
                board[0].should_exit = True
                board[1].join(timeout=10)
            self.lock.release()

    def start_board(self) -> tuple[Any, threading.Thread] | None:
        """``[board] enabled = true``: the status board (every city of the config) in a thread
        beside the scans, by the rules of ``itaudit serve``; a board that cannot start is logged
        and the agent scans on. A changed [board] takes effect when the agent restarts."""
        board = self.cfg.board
        if board is None or not board.enabled:
            return None
        from itaudit.board_cli import prepare, start_in_thread

        try:
            served = prepare(self.cfg)
            running = start_in_thread(served)
        except ItauditError as exc:
            log.error("status board not started: %s", exc)
            return None
        log.info("status board for %s: %s%s", served.label, served.url,
                 " (login required)" if board.login_required() else "")
        return running

    def run_once(self, *, report: bool = False) -> int:
        """Scan every city now, write (and send) the monthly report on its report day or when
        ``report`` is set, send due emails, and exit. Returns 3 if a target failed, else 0."""
        self.lock.acquire(self.clock.now())
        code = 0
        try:
            self.warn_config()
            self.note_start()
            for city in self._cities():
                if self.stop.is_set():
                    break
                summary = self.scan_city(city.id, reason="once")
                if summary is None:
                    code = max(code, 2)
                elif summary.failed:
                    code = max(code, 3)
                if self.stop.is_set():
                    break
                if report:
                    self.monthly(city.id)
                elif city.schedule.report:
                    # On the report day (any time: a timer runs --once at 02:00), or a report
                    # day missed while the machine was off, once.
                    self._report_if_due(city, report_at=None)
            if not self.dry_run:
                self.flush_outboxes()
            return code
        finally:
            self.lock.release()

    # jobs ----------------------------------------------------------------------------

    def _job(self, city_id: str, what: str) -> None:
        if self.stop.is_set():  # stopping: nothing new starts
            return
        # A job that raises would end schedule's run_pending and the agent with it.
        try:
            if what == "scan":
                self.scan_city(city_id)
            elif what == "report":
                city = self.cfg.cities.get(city_id)
                if city is None:
                    return
                self._report_if_due(city, report_at=city.schedule.report_at)
        except Exception:
            log.exception("%s job of %s failed", what, city_id, extra={"city": city_id})

    # report days: done once, missed ones caught up -----------------------------------

    def _state_path(self, city: CityConfig) -> Path:
        return city_dir(self.cfg, city) / STATE_NAME

    def state(self, city: CityConfig) -> dict[str, Any]:
        """The city's agent state: ``since`` (the agent's first start for this city) and
        ``last_report`` (the report day last written, its month and when)."""
        try:
            doc = json.loads(self._state_path(city).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("%s: agent state %s unreadable (%s): starting it afresh", city.id,
                        self._state_path(city), exc, extra={"city": city.id})
            return {}
        return doc if isinstance(doc, dict) else {}

    def _save_state(self, city: CityConfig, doc: dict[str, Any]) -> None:
        path = self._state_path(city)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def _key(self, name: str) -> str:
        """A dry run keeps its own record: it never stands for (or blocks) a real email."""
        return f"dry_run_{name}" if self.dry_run else name

    def note_start(self) -> None:
        """Remember when the agent first ran for each city: report days before it are not
        "missed" (a new install does not mail a report at its first start)."""
        now = self.clock.now().astimezone(dt.UTC).isoformat(timespec="seconds")
        for city in self._cities():
            doc = self.state(city)
            if self._key("since") not in doc:
                doc[self._key("since")] = now
                try:
                    self._save_state(city, doc)
                except OSError as exc:
                    log.error("%s: cannot write the agent state: %s", city.id, exc, extra={"city": city.id})

    def _report_if_due(self, city: CityConfig, *, report_at: str | None, on_time: bool = True) -> bool:
        """Write the report of the latest report day unless it was written already.

        ``report_at`` None (``--once``): any time on the report day counts. ``on_time``: the
        scheduled job (or ``--once``) runs on the report day itself. Any other report day
        was missed (the machine was off): it is caught up when it came after the agent's
        first start, once, as the state records it."""
        tz = ZoneInfo(city.timezone)
        local = self._local_now(tz)
        slot = last_report(local, city.schedule.report_day, report_at)
        doc = self.state(city)
        if (doc.get(self._key("last_report")) or {}).get("day") == slot.date().isoformat():
            return False
        since = doc.get(self._key("since"))
        if not (on_time and slot.date() == local.date()):
            if since is None or slot.replace(tzinfo=tz) <= dt.datetime.fromisoformat(since):
                return False
            log.warning("%s: the report day %s was missed (the agent was not running at %s): writing its "
                        "report now", city.id, slot.date(), slot.strftime("%H:%M") if report_at else "any time",
                        extra={"city": city.id})
        self.monthly(city.id, report_day=slot.date())
        return True

    def catch_up_reports(self) -> None:
        """At start: a report day missed while the machine was off is written now, once."""
        for city in self._cities():
            if not city.schedule.report or self.stop.is_set():
                continue
            try:
                self._report_if_due(city, report_at=city.schedule.report_at, on_time=False)
            except Exception:  # noqa: BLE001 - a failed catch-up is logged; the agent carries on
                log.exception("%s: catching up the missed report failed", city.id, extra={"city": city.id})

    def redo_cut_scans(self) -> None:
        """A city whose last scan was cut short (signal, kill, crash) is scanned again now."""
        for city in self._cities():
            if city.schedule.scan == "off" or not city.database.exists() or self.stop.is_set():
                continue
            try:
                store = Store(city.database, readonly=True)
                try:
                    last = store.scans(limit=1)
                finally:
                    store.close()
            except ItauditError as exc:
                log.error("cannot read %s: %s", city.database, exc, extra={"city": city.id})
                continue
            if last and last[0].status in ("incomplete", "running"):
                log.warning("%s: the last scan (%d, %s, %d of %d devices) was cut short: redoing it now",
                            city.id, last[0].id, last[0].as_of, (last[0].n_ok or 0) + (last[0].n_failed or 0),
                            last[0].n_targets, extra={"city": city.id})
                self.scan_city(city.id, reason="redo of a cut scan")

    def scan_city(self, city_id: str, *, reason: str = "scheduled") -> Any:
        """Scan one city now; return its ScanSummary, or None when it could not run."""
        from itaudit.scan import run_scan

        city = self.cfg.cities[city_id]
        as_of = self._local_now(ZoneInfo(city.timezone)).date()
        extra = {"city": city.id}
        log.info("%s: scan started (%s, %d targets, as of %s)", city.id, reason, len(city.targets), as_of,
                 extra=extra)

        def progress(res: Any, done: int, total: int) -> None:
            if res.status.value == "error":
                log.info("%s: [%d/%d] %s could not be checked: %s", city.id, done, total, res.target.label,
                         res.error, extra=extra)
            else:
                log.debug("%s: [%d/%d] %s %s", city.id, done, total, res.target.label, res.status.value,
                          extra=extra)

        try:
            summary = run_scan(self.cfg, city, as_of=as_of, progress=progress, stop=self.stop)
        except ScanLocked as exc:
            log.warning("%s: scan skipped: %s", city.id, exc, extra=extra)
            return None
        except ItauditError as exc:
            log.error("%s: scan failed: %s", city.id, exc, extra=extra)
            return None
        if summary.interrupted:
            outcome = "cut short (marked incomplete)"
        elif summary.incomplete_reason:
            outcome = f"marked incomplete ({summary.incomplete_reason})"
        else:
            outcome = "finished"
        (log.warning if summary.incomplete_reason and not summary.interrupted else log.info)(
            "%s: scan %d %s: %d targets, %d ok, %d partial, %d could not be checked", city.id,
            summary.scan_id, outcome, summary.total, summary.ok, summary.partial, summary.failed, extra=extra)
        if self.cfg.site is not None and self.cfg.site.city == city.id:
            self.ship_snapshot()
        return summary

    def ship_snapshot(self) -> None:
        """Site mode: snapshot the city's database and push what waits to the MSP (kept on failure)."""
        from itaudit import sitelink

        try:
            sitelink.make_snapshot(self.cfg, now=self.clock.now())
            sitelink.push(self.cfg, now=self.clock.now())
        except ItauditError as exc:
            log.error("site: snapshot not shipped: %s", exc)

    def outbox(self, city: CityConfig) -> Outbox:
        return Outbox(city_dir(self.cfg, city) / "outbox")

    def flush_outboxes(self) -> None:
        now = self.clock.now()
        for city in self._cities():
            try:
                self.outbox(city).flush(self.cfg.smtp, now=now)
            except OSError as exc:
                log.error("%s: outbox unreadable: %s", city.id, exc, extra={"city": city.id})

    def monthly(self, city_id: str, *, month: str | None = None, report_day: dt.date | None = None) -> list[Path]:
        """Write the monthly summary and capital plan for ``month`` and queue the email.

        The default month is the last full month before ``report_day`` (default today), or
        the month still running when the last full month has no scan but this one has (see
        ``report_month``). With ``report_day``, the state records that day's report as done.
        Returns the report files (they stay on disk whatever the email does)."""
        city = self.cfg.cities[city_id]
        today = self._local_now(ZoneInfo(city.timezone)).date()
        extra = {"city": city.id}
        store = Store(city.database)
        try:
            if month is None:
                month = report_month([s.as_of for s in store.report_scans()], report_day or today)
            as_of = report_as_of(month, today)
            out_dir = city_dir(self.cfg, city) / "reports" / month
            # The PDF costs a headless browser run: made when it is mailed (the default).
            formats = tuple(f for f in MONTHLY_FORMATS if f != "pdf" or "pdf" in city.delivery.attach)
            paths = _write_report("monthly", city, store, out_dir, formats, as_of=as_of, month=month)
            plan = _write_report("plan", city, store, out_dir, PLAN_FORMATS, as_of=as_of)
            if "evidence" in city.delivery.attach:  # the insurer/CPG/NCSR evidence report
                plan += _write_report("evidence", city, store, out_dir, ("html", "pdf"), as_of=as_of)
        finally:
            store.close()
        log.info("%s: monthly report for %s written: %s", city.id, month,
                 ", ".join(str(p) for p in paths + plan), extra=extra)
        if city.delivery.recipients:
            self.email(city, month, paths + plan, out_dir)
        if report_day is not None:
            doc = self.state(city)
            doc[self._key("last_report")] = {"day": report_day.isoformat(), "month": month,
                                  "written_at": self.clock.now().astimezone(dt.UTC).isoformat(timespec="seconds")}
            self._save_state(city, doc)
        return paths + plan

    def email(self, city: CityConfig, month: str, files: list[Path], out_dir: Path) -> Path | None:
        """Build the monthly email; queue and send it, or with --dry-run write it to a file."""
        by_suffix: dict[str, Path] = {}
        for p in files:
            by_suffix.setdefault(p.suffix.lstrip("."), p)
        html = by_suffix.get("html")
        md = by_suffix.get("md")
        label = f"{calendar.month_name[int(month[5:])]} {month[:4]}"
        text = md.read_text(encoding="utf-8") if md else (
            f"The IT risk summary of {city.name} for {label} is attached.\n")
        attachments = []
        evidence = sorted((p for p in files if "-evidence-" in p.name and p.suffix in (".pdf", ".html")),
                          key=lambda p: p.suffix != ".pdf")  # the PDF when it could be printed
        for kind in city.delivery.attach:
            if kind == "evidence" and evidence:
                attachments.append(evidence[0])
            elif kind in by_suffix:
                attachments.append(by_suffix[kind])
            else:
                log.warning("%s: no %s file to attach (see the warnings above); the email goes without it",
                            city.id, kind, extra={"city": city.id})
        # The city's own From address, else the mail server's, else (dry run, no [smtp]) a placeholder.
        sender = city.delivery.sender or (self.cfg.smtp.sender if self.cfg.smtp else "itaudit@localhost")
        msg = build_message(sender=sender, recipients=city.delivery.recipients, cc=city.delivery.cc,
                            subject=city.delivery.subject.format(city=city.name, month=label), text=text,
                            html=html.read_text(encoding="utf-8") if html else None, attachments=attachments,
                            now=self.clock.now())
        outbox = self.outbox(city)
        if self.dry_run:
            path = write_eml(msg, out_dir / f"{city.id}-monthly-{month}.eml")
            outbox.record_dry_run(path, msg, now=self.clock.now())
            self._say(f"{city.id}: dry run: email written to {path} (not sent)", city.id)
            return path
        mid = outbox.enqueue(msg, now=self.clock.now())
        log.info("%s: email %s queued for %s", city.id, mid, ", ".join(city.delivery.recipients),
                 extra={"city": city.id})
        outbox.flush(self.cfg.smtp, now=self.clock.now())
        return outbox.folder / f"{mid}.eml"


def _writer(name: str) -> Any:
    try:
        return plugins.report_writer(name)
    except KeyError:
        return plugins.report_writer(name)


def _write_report(name: str, city: CityConfig, store: Store, out_dir: Path, formats: tuple[str, ...],
                  **kwargs: Any) -> list[Path]:
    """Write one report; without a PDF renderer, write the rest and say so."""
    try:
        writer = _writer(name)
    except (ImportError, AttributeError) as exc:
        log.warning("%s: the %s report is not available: %s", city.id, name, exc, extra={"city": city.id})
        return []
    try:
        try:
            return list(writer(city, store, out_dir=out_dir, formats=formats, **kwargs))
        except ItauditError as exc:
            if "pdf" not in formats:
                log.error("%s: the %s report failed: %s", city.id, name, exc, extra={"city": city.id})
                return []
            log.warning("%s: no PDF of the %s report: %s", city.id, name, exc, extra={"city": city.id})
            return list(writer(city, store, out_dir=out_dir, formats=tuple(f for f in formats if f != "pdf"),
                               **kwargs))
    except Exception:  # noqa: BLE001 - a broken report (a bug, odd device text) must not lose the email
        log.exception("%s: the %s report failed; the email goes without it", city.id, name,
                      extra={"city": city.id})
        return []


# --- status ---------------------------------------------------------------------------


def status(config_path: str | Path, *, clock: Clock | None = None, env: dict[str, str] | None = None,
           city_ids: list[str] | None = None) -> dict[str, Any]:
    """What ``itaudit agent --status`` shows: running agent, next runs, last scan and email per city."""
    agent = Agent(config_path, clock=clock, env=env, city_ids=city_ids)
    pid = agent.lock.holder()
    cities = []
    nexts = agent.next_runs()
    for city in agent._cities():
        last_scan = None
        if city.database.exists():
            try:
                store = Store(city.database, readonly=True)
                try:
                    scans = store.scans(limit=1)
                    reason = store.scan_incomplete_reason(scans[0].id) if scans else None
                finally:
                    store.close()
                if scans:
                    s = scans[0]
                    last_scan = {"id": s.id, "as_of": s.as_of, "status": s.status, "started_at": s.started_at,
                                 "finished_at": s.finished_at, "targets": s.n_targets, "ok": s.n_ok,
                                 "failed": s.n_failed, "incomplete_reason": reason}
            except ItauditError as exc:
                last_scan = {"error": str(exc)}
        outbox = agent.outbox(city)
        state = outbox.state()
        last_email = max(state.values(), key=lambda a: a.time, default=None)
        cities.append({
            "city": city.id, "name": city.name, "timezone": city.timezone,
            "next": [{"what": n.what, "when": n.when.isoformat()} for n in nexts if n.city_id == city.id],
            "last_scan": last_scan,
            "last_report": agent.state(city).get("last_report"),
            "emails_pending": len(outbox.pending()),
            "last_email": None if last_email is None else {
                "event": last_email.event, "time": last_email.time, "attempt": last_email.attempt,
                "reason": last_email.reason},
        })
    return {"agent_running": pid is not None, "pid": pid, "config": str(config_path), "cities": cities}


def format_status(doc: dict[str, Any]) -> str:
    """The status as a few plain lines."""
    lines = [f"agent: {'running, pid ' + str(doc['pid']) if doc['agent_running'] else 'not running'}"]
    for c in doc["cities"]:
        lines.append(f"{c['city']} ({c['name']}, {c['timezone']})")
        for n in c["next"]:
            when = dt.datetime.fromisoformat(n["when"]).astimezone(ZoneInfo(c["timezone"]))
            lines.append(f"  next {n['what']}: {when:%Y-%m-%d %H:%M %Z}")
        s = c["last_scan"]
        if s is None:
            lines.append("  last scan: none yet")
        elif "error" in s:
            lines.append(f"  last scan: {s['error']}")
        else:
            why = f" ({s['incomplete_reason']})" if s.get("incomplete_reason") else ""
            lines.append(f"  last scan: {s['id']} as of {s['as_of'][:10]}, {s['status']}{why}, "
                         f"{s['ok']} ok / {s['failed']} could not be checked of {s['targets']}")
        r = c.get("last_report")
        if r:
            lines.append(f"  last report: {r['month']} (report day {r['day']}, written {r['written_at']})")
        e = c["last_email"]
        if e:
            why = f" ({e['reason']})" if e["reason"] else ""
            waiting = f", {c['emails_pending']} waiting" if c["emails_pending"] else ""
            lines.append(f"  last email: {e['event']} at {e['time']}{why}{waiting}")
    return "\n".join(lines)
