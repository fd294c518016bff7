"""Scan orchestration: collect every target of one city, check, store, as results arrive.

Each protocol's collector runs its own ``collect_many`` in a worker thread (SSH on a
bounded thread pool, SNMP on one asyncio loop); results flow through one queue to this
thread, the single writer, which runs the checks and stores each device in its own
transaction. A failure on one host is a result with an error status, never an exception.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import queue
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from itaudit import inventory, plugins, rules
from itaudit.checking import CheckContext, run_checks
from itaudit.config import CityConfig, Config, check_scannable, verify_secrets
from itaudit.model import CollectResult, DeviceFacts, Finding, ResultStatus, Status, Target
from itaudit.store import Store

log = logging.getLogger("itaudit.scan")

@dataclass
class ScanSummary:
    city_id: str
    scan_id: int
    as_of: dt.date
    total: int = 0
    ok: int = 0
    partial: int = 0
    failed: int = 0
    interrupted: bool = False  # stopped by a signal before every target was stored
    # Why the scan is marked incomplete (stopped, or a collector failed), or None when complete.
    incomplete_reason: str | None = None
    findings: dict[str, int] = field(default_factory=dict)  # severity -> open fails this scan
    errors: list[tuple[str, str]] = field(default_factory=list)  # (target label, reason)
    # The directory: computers read, of them judged from the directory alone.
    directory_computers: int = 0
    directory_only: int = 0
    directory_error: str | None = None

    @property
    def exit_code(self) -> int:
        return 3 if self.failed or self.directory_error else 0


ProgressFn = Callable[[CollectResult, int, int], None]


def _results(targets: list[Target], ctx: Any, stop: threading.Event,
             failures: list[str] | None = None) -> Iterable[CollectResult]:
    """Merge every protocol's ``collect_many`` into one stream, in arrival order.

    A collector that raises, or whose thread dies, never loses its targets silently: each
    target it did not return becomes an error result naming the failure, and the failure is
    appended to ``failures`` (the scan is then marked incomplete with that reason).
    """
    by_proto: dict[str, list[Target]] = {}
    for t in targets:
        by_proto.setdefault(t.protocol, []).append(t)
    q: queue.SimpleQueue[CollectResult | tuple[str, list[Target], str | None]] = queue.SimpleQueue()

    def worker(proto: str, items: list[Target]) -> None:
        returned: list[Target] = []
        failure: str | None = None
        try:
            try:
                collector = plugins.collector_class(proto)()
            except Exception as exc:  # collector missing or broken: every target is an error line
                for t in items:
                    q.put(CollectResult(t, ResultStatus.ERROR, error_kind="internal",
                                        error=f"no working {proto} collector: {exc}"))
                    returned.append(t)
                return
            for res in collector.collect_many(items, ctx):
                returned.append(res.target)
                q.put(res)
                if stop.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001 - a dying collector thread must be reported, not lost
            failure = f"the {proto} collector failed: {type(exc).__name__}: {exc}".rstrip(": ")
            log.error("%s", failure)
            log.debug("the %s collector's traceback", proto, exc_info=True)
        finally:
            # Always tell the reader this worker is done, with what it never returned.
            q.put((proto, _missing(items, returned), failure))

    threads = [threading.Thread(target=worker, args=(p, ts), name=f"collect-{p}", daemon=True)
               for p, ts in by_proto.items()]
    started = 0
    try:
        for th in threads:
            th.start()
            started += 1
    except Exception as exc:  # no thread for a collector (out of threads/memory): its targets fail
        reason = f"cannot start a collector thread: {type(exc).__name__}: {exc}"
        log.error("%s", reason)
        for proto, items in list(by_proto.items())[started:]:
            q.put((proto, items, reason))
        started = len(threads)
    done = 0
    while done < started:
        item = q.get()
        if isinstance(item, tuple):
            done += 1
            proto, missing, failure = item
            if failure is None and missing and not stop.is_set():
                failure = f"the {proto} collector returned no result for {len(missing)} of its targets"
            if failure is not None and failures is not None:
                failures.append(failure)
            if failure is not None:
                for t in missing:
                    yield CollectResult(t, ResultStatus.ERROR, error_kind="internal", error=failure)
            continue
        yield item


def _missing(items: list[Target], returned: list[Target]) -> list[Target]:
    """The targets a collector did not return a result for (the same objects, or equal copies)."""
    if len(returned) >= len(items):
        return []
    ids = {id(t) for t in returned}
    missing = [t for t in items if id(t) not in ids]
    if len(missing) > len(items) - len(returned):  # a collector that returns copies of its targets
        missing = [t for t in missing if t not in returned]
    return missing


def run_scan(cfg: Config, city: CityConfig, *, as_of: dt.date | None = None,
             targets: list[Target] | None = None, progress: ProgressFn | None = None,
             stop: threading.Event | None = None, store: Store | None = None,
             now: str | None = None, directory_read: Any = None) -> ScanSummary:
    """Scan one city. Raises ``ScanLocked`` if another scan of it runs, ``StoreError`` on disk trouble.

    ``now`` (UTC ISO) stamps the stored rows instead of the clock: the demo uses it to build
    a history of earlier months; a real scan leaves it unset. ``directory_read`` (a
    ``collectors.directory.DirectoryRead``) stands in for reading the city's directory: the
    demo's recorded directory.
    """
    as_of = as_of or dt.date.today()
    stop = stop or threading.Event()
    # Before any device is contacted or anything is recorded: an unedited starter config or a
    # missing secret is a config error, not a scan in which every device failed.
    check_scannable(city, list(targets if targets is not None else city.targets), str(cfg.path))
    verify_secrets(city, list(targets if targets is not None else city.targets), str(cfg.path))
    own_store = store is None
    store = store or Store(city.database)
    if targets is None:
        # With discovery's auto_add, what the last sweep reached with a city credential joins the scan.
        targets = inventory.scan_targets(city, store)
    targets = list(targets)
    verify_secrets(city, targets, str(cfg.path))  # (discovered targets use the city's credentials too)
    specs = plugins.load_checks()
    knowledge = _knowledge()
    try:
        with store.scan_lock(), _scan_gc():
            # The directory is read whole before anything is stored: a failed read stores none of it
            # and changes no device already known.
            directory: _DirectoryComputers | None
            if directory_read is not None:
                directory, directory_error = _DirectoryComputers(directory_read), None
            else:
                directory, directory_error = _read_directory(city, now)
            n_dir = len(directory.computers) if directory else 0
            scan_id = store.begin_scan(city.id, as_of, len(targets) + n_dir, now=now)
            summary = ScanSummary(city.id, scan_id, as_of, total=len(targets))
            _record_directory_read(store, scan_id, city, directory, directory_error, now)
            if directory_error:
                summary.directory_error = directory_error
                summary.errors.append((city.directory.label if city.directory else "directory", directory_error))
            summary.directory_computers = n_dir
            ctx = inventory.collect_context(cfg, city, stop)
            seen = 0
            failures: list[str] = []
            batch: list[tuple[CollectResult, list[Finding]]] = []
            try:
                for result in _with_directory(_results(targets, ctx, stop, failures), directory, city, stop):
                    seen += 1
                    findings = _findings_for(result, store, city, as_of, knowledge, specs, now)
                    if result.target.protocol == "directory":
                        # Judged from the directory alone: stored DIRECTORY_BATCH devices per transaction.
                        batch.append((result, findings))
                        if len(batch) >= DIRECTORY_BATCH:
                            store.record_results(scan_id, batch, now=now)
                            batch = []
                    else:
                        store.record_result(scan_id, result, findings, now=now)
                    _tally(summary, result, findings)
                    if result.target.protocol == "directory":
                        summary.directory_only += 1
                    if progress:
                        progress(result, seen, max(seen, len(targets) + n_dir - (directory.matched if directory
                                                                                  else 0)))
                    if stop.is_set():
                        break
                if batch:
                    store.record_results(scan_id, batch, now=now)
            except BaseException:
                stop.set()  # a failed writer (full disk...) stops the collectors too
                raise
            # Every target, plus each directory computer no scanned result claimed (judged alone).
            summary.total = len(targets) + (len(directory.remaining()) if directory else 0)
            summary.interrupted = stop.is_set() and seen < summary.total
            if failures:
                summary.incomplete_reason = "; ".join(dict.fromkeys(failures))
            elif summary.interrupted:
                summary.incomplete_reason = f"stopped after {seen} of {summary.total} targets"
            store.finish_scan(scan_id, complete=summary.incomplete_reason is None, now=now,
                              reason=summary.incomplete_reason)
            inventory.apply_register(store)  # register rows whose device this scan saw first
            return summary
    finally:
        if own_store:
            store.close()


# --- the directory ----------------------------------------------------------------------

# Directory-only devices per transaction. One commit per device was most of their cost at
# 10,000 computer objects; a killed scan still leaves every stored device whole (a batch is
# all or nothing) and the scan marked incomplete.
DIRECTORY_BATCH = 250


class _DirectoryComputers:
    """One read of the directory, indexed by host name, handed out once per machine."""

    def __init__(self, read: Any):
        from itaudit.store import host_key

        self.read = read
        self.computers: list[Any] = list(read.computers)
        self.by_fqdn: dict[str, int] = {}
        by_short: dict[str, list[int]] = {}
        for i, f in enumerate(self.computers):
            if f.directory.dns_host_name:
                self.by_fqdn.setdefault(f.directory.dns_host_name.lower(), i)
            for name in (f.directory.dns_host_name, f.directory.name):
                key = host_key(name)
                if key and i not in by_short.get(key, []):
                    by_short.setdefault(key, []).append(i)
        # A short name two computers share (two domains) matches neither: no guessing.
        self.by_short = {k: v[0] for k, v in by_short.items() if len(v) == 1}
        self.used: set[int] = set()
        self.matched = 0

    def take(self, result: CollectResult) -> Any:
        """The directory's facts for the machine a scan result is about, or None."""
        from itaudit.store import host_key

        t = result.target
        for name in (result.facts.identity.hostname, t.name, t.address):
            if not name:
                continue
            i = self.by_fqdn.get(name.lower())
            if i is None:
                key = host_key(name)
                i = self.by_short.get(key) if key else None
            if i is not None and i not in self.used:
                self.used.add(i)
                self.matched += 1
                return self.computers[i]
        return None

    def remaining(self) -> list[Any]:
        return [f for i, f in enumerate(self.computers) if i not in self.used]


def _read_directory(city: CityConfig, now: str | None) -> tuple[_DirectoryComputers | None, str | None]:
    """Read the city's directory, if it has one: (computers, None) or (None, the reason it failed)."""
    if city.directory is None:
        return None, None
    from itaudit.credentials import read_secret
    from itaudit.errors import CollectError

    cfg = city.directory
    try:
        password = read_secret(env=cfg.password_env, keyring_ref=cfg.password_keyring) or ""
        read = plugins.directory_reader()(cfg, password, now=(lambda: now) if now else None)
    except CollectError as exc:
        log.warning("directory %s: %s", cfg.label, exc)
        return None, f"directory not read ({exc.kind}): {exc}"
    except Exception as exc:  # a reader bug must not end the scan
        log.error("directory %s: internal error: %s: %s", cfg.label, type(exc).__name__, exc)
        return None, f"directory not read (internal): {type(exc).__name__}: {exc}"
    return _DirectoryComputers(read), None


def _record_directory_read(store: Store, scan_id: int, city: CityConfig, directory: _DirectoryComputers | None,
                           error: str | None, now: str | None) -> None:
    if city.directory is None and directory is None:
        return
    from itaudit.store import utcnow

    if directory is None:
        label = city.directory.label if city.directory else "directory"
        store.record_directory_read(scan_id, server=label, read_at=now or utcnow(), error=error)
        return
    r = directory.read
    store.record_directory_read(scan_id, server=r.server, read_at=r.read_at, n_computers=len(r.computers),
                                n_referrals=len(r.referrals), laps_source=r.laps_source,
                                recovery_objects=r.recovery_objects)


def _with_directory(results: Iterable[CollectResult], directory: _DirectoryComputers | None, city: CityConfig,
                    stop: threading.Event) -> Iterator[CollectResult]:
    """Scanned results with the directory's facts of the same machine merged in, then one
    result per directory computer no scan reached (judged from the directory alone).

    A scanned machine keeps its scanned facts and gains the directory section. A machine
    whose scan failed is judged from what the directory says (its error stays reported).
    """
    for result in results:
        entry = directory.take(result) if directory else None
        if entry is not None:
            if result.status == ResultStatus.ERROR:
                result.facts = entry
            else:
                result.facts.directory = entry.directory
                result.facts.sources.update(entry.sources)
                result.facts.gaps.update({k: v for k, v in entry.gaps.items() if k.startswith("directory.")})
        yield result
    if directory is None or stop.is_set():
        return
    for facts in directory.remaining():
        d = facts.directory
        target = Target(address=(facts.identity.address or d.name or d.dn or "?"), protocol="directory",
                        city_id=city.id, name=d.name)
        yield CollectResult(target, ResultStatus.OK, facts=facts, started_at=d.read_at, duration_ms=0)


# The cyclic garbage collector at its defaults (700, 10, 10) cost ~0.8 ms of CPU per host
# at 1,000 hosts: each Linux host parses thousands of package records, so young
# collections ran several times per host and walked every result still in flight, middle
# ones walked them again, and full ones walked the whole knowledge base. During a scan the
# heap built before it (imports, knowledge, checks) is frozen out of collections, young
# collections wait for 50,000 allocations and middle ones for 20 young ones: ~0.2 ms per
# host, most of it freeing paramiko's reference cycles (transports, channels), which are
# still collected as before. Peak memory at 1,000 hosts stays under 250 MB.
SCAN_GC_THRESHOLDS = (50_000, 20)


@contextlib.contextmanager
def _scan_gc() -> Iterator[None]:
    """Garbage-collector settings for the length of one scan (restored after it)."""
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(old[0], SCAN_GC_THRESHOLDS[0]), max(old[1], SCAN_GC_THRESHOLDS[1]), old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


def _knowledge() -> Any:
    from itaudit.knowledge import load_preferred

    knowledge, warning = load_preferred()
    if warning:
        log.warning(warning)
    return knowledge


# Checks of facts only a scan collects (with the PATCH family): not run on a device judged
# from the directory alone.
_SCAN_ONLY_CHECKS = ("DATA-003", "SEC-002", "SEC-003", "SEC-004", "SEC-005", "SEC-006", "SEC-007", "SEC-008",
                     "SEC-009")

# Checks that still mean something when a device could not be reached this time.
_CHECKS_WITHOUT_FACTS = ("SEC-001", "DATA-001", "DATA-002")
# Checks judged on what a device shows before any login (an SSH server's algorithm offer,
# the SNMP versions and default communities it answers): they run on failed results too,
# with the facts the collector saw before the failure (``CollectError.facts``).
_CHECKS_BEFORE_LOGIN = ("SEC-020", "NET-001", "NET-002", "NET-003", "NET-010")
# Checks of a device's age: a date on record (purchase date from the asset register or the
# config) and the dates last collected from it decide them, not an answer from the device. A
# device that did not answer is judged on those, so its findings price and place it the way
# the capital plan does (the plan reads the same dates from the store).
_AGE_CHECKS = ("HW-001", "HW-002")


def _findings_for(result: CollectResult, store: Store, city: CityConfig, as_of: dt.date, knowledge: Any,
                  specs: dict[str, Any], now: str | None = None) -> list[Finding]:
    record = store.device_record(result, now=now)
    ctx = CheckContext(as_of=as_of, device=record, policy=city.policy, knowledge=knowledge)
    chosen = sorted(specs.values(), key=lambda s: s.id)
    directory = result.facts.directory
    if not directory.dn:
        chosen = [s for s in chosen if s.family != "AD"]  # a switch is not "missing from LAPS"
        if result.status == ResultStatus.ERROR:
            seen = bool(result.facts.sources)
            chosen = [s for s in chosen if s.id in _CHECKS_WITHOUT_FACTS or (seen and s.id in _CHECKS_BEFORE_LOGIN)]
            return run_checks(result.facts, ctx, chosen) + _age_on_record(store, ctx, specs)
    elif result.target.protocol == "directory" or result.status == ResultStatus.ERROR:
        if rules.disabled_directory_object(directory.disabled, result.facts.sources):
            # A disabled computer object judged from the directory alone: only whether it lingers
            # (the refresh plan leaves it out by the same rule).
            chosen = [s for s in chosen if s.id == "AD-001" or s.id in _CHECKS_WITHOUT_FACTS]
        else:
            # Checks of what only a scan collects (patch state, host security settings, "key facts
            # missing") would all say "unknown": no scan ran. They are not run; the reports say
            # which devices were judged from the directory only.
            chosen = [s for s in chosen if s.id not in _SCAN_ONLY_CHECKS and s.family != "PATCH"]
    return run_checks(result.facts, ctx, chosen)


def _age_on_record(store: Store, ctx: CheckContext, specs: dict[str, Any]) -> list[Finding]:
    """The age checks of a device that did not answer, on its dates on record and the facts last
    collected from it (none when it never answered: then only a purchase date on record decides)."""
    last = store.latest_facts(ctx.device.id) if ctx.device.id is not None else None
    facts = last[1] if last else DeviceFacts()
    found = run_checks(facts, ctx, [specs[c] for c in _AGE_CHECKS if c in specs])
    basis = ("the dates on record and the facts last collected from it" if last
             else "the dates on record (it has never answered)")
    for f in found:
        f.evidence = "; ".join(x for x in (f.evidence, f"the device did not answer: judged on {basis}") if x)
    return found


def _tally(summary: ScanSummary, result: CollectResult, findings: list[Finding]) -> None:
    if result.status == ResultStatus.ERROR:
        summary.failed += 1
        summary.errors.append((result.target.label, result.error or result.error_kind or "failed"))
    elif result.status == ResultStatus.PARTIAL:
        summary.partial += 1
    else:
        summary.ok += 1
    for f in findings:
        if f.status == Status.FAIL:
            summary.findings[f.severity.value] = summary.findings.get(f.severity.value, 0) + 1


def install_signal_stop(stop: threading.Event) -> None:
    """SIGTERM/SIGINT stop the scan cleanly between devices (the scan is marked incomplete)."""

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.warning("signal %s: stopping after the current device", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
