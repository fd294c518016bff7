"""What every collector is: a class with ``collect`` (one target) and ``collect_many``.

Collectors receive a ``CollectContext`` holding only the credentials of the city being
scanned, so a credential of one city can never reach another city's target.
"""

from __future__ import annotations

import datetime as dt
import queue
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from itaudit.errors import CertificateRefused, CollectError, HostKeyMismatch
from itaudit.inventory import CollectContext  # the spine owns it; collectors receive it
from itaudit.model import CollectResult, ResultStatus, Target

__all__ = ["CollectContext", "CollectError", "Collector", "HostKeyMismatch", "now_iso"]


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Collector:
    """Base class. Subclasses set ``protocol`` and implement ``collect``."""

    protocol: str = ""

    def collect(self, target: Target, ctx: CollectContext) -> CollectResult:
        raise NotImplementedError

    def safe_collect(self, target: Target, ctx: CollectContext) -> CollectResult:
        """``collect``, with any failure turned into an error result (never raises)."""
        started = now_iso()
        t0 = time.monotonic()
        try:
            result = self.collect(target, ctx)
        except CollectError as exc:
            result = CollectResult(target, ResultStatus.ERROR, error_kind=exc.kind, error=str(exc))
            if exc.facts is not None:
                result.facts = exc.facts  # type: ignore[assignment]  # seen before the failure
            if isinstance(exc, HostKeyMismatch | CertificateRefused):
                # What the collector saw is itself the finding (check SEC-001): a changed SSH host
                # key, or a TLS certificate (WinRM) that is untrusted or names another host.
                result.collector_findings["SEC-001"] = str(exc)
        except Exception as exc:  # a collector bug must not end the scan
            result = CollectResult(
                target, ResultStatus.ERROR, error_kind="internal",
                error=f"internal error: {type(exc).__name__}: {exc}",
            )
        result.started_at = result.started_at or started
        if result.duration_ms is None:
            result.duration_ms = int((time.monotonic() - t0) * 1000)
        return result

    def _collect_unless_stopped(self, target: Target, ctx: CollectContext) -> CollectResult | None:
        if ctx.stop is not None and ctx.stop.is_set():
            return None  # the scan is stopping: a queued host is not started
        return self.safe_collect(target, ctx)

    def collect_many(self, targets: Iterable[Target], ctx: CollectContext) -> Iterator[CollectResult]:
        """Collect many targets on a bounded thread pool, yielding results as they finish."""
        targets = list(targets)
        if not targets:
            return
        # Each finished future hands itself to this queue. (``concurrent.futures.wait`` over
        # the pending set, as before, installed and removed a waiter on every pending future
        # at each call: quadratic in the city's size, ~1 ms of CPU per host at 1,000 hosts.)
        finished: queue.SimpleQueue[Future[CollectResult | None]] = queue.SimpleQueue()
        pool = ThreadPoolExecutor(max_workers=max(1, min(ctx.concurrency, len(targets))))
        try:
            for t in targets:
                pool.submit(self._collect_unless_stopped, t, ctx).add_done_callback(finished.put)
            for _ in range(len(targets)):
                # Forget each future once yielded: holding every finished result (facts with
                # thousands of packages) until the last host made memory grow with the city.
                fut = finished.get()
                result = None if fut.cancelled() else fut.result()
                del fut
                if result is not None:
                    yield result
        finally:
            # A stopped scan (closed generator) drops the hosts not yet started; those in
            # flight end within their deadline. Without this, exit waited for every host.
            pool.shutdown(wait=False, cancel_futures=True)
