"""Discovery sweep: TCP connects to management ports and an SNMP GET of sysObjectID.

Gentle by design: every probe (one TCP SYN or one SNMP request) takes a slot from a
shared pacer, so the whole sweep never sends more than ``rate`` probes per second, and
at most ``concurrency`` probes are in flight. The caller hands in the exact address list
and an ``allowed`` predicate; a probe to any other address is refused here as well (a
second lock on the door: discovery must never touch what the city did not configure).

``tcp`` and ``snmp`` are injectable so tests can record every target and timestamp.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from itaudit.credentials import SNMPCredential
from itaudit.model import clip

DEFAULT_PORTS = (22, 23, 80, 443, 445, 3389, 5985, 5986, 9100)
SSH_PORTS = frozenset({22, 2222})  # ports whose banner we read (free: the server speaks first)
MAX_BANNER = 255  # RFC 4253: the identification line is at most 255 bytes

# (address, port, timeout, read_banner) -> (open, banner)
TcpProbe = Callable[[str, int, float, bool], Awaitable[tuple[bool, str | None]]]
# (address, port, credential, timeout) -> sysObjectID or None
SnmpProbe = Callable[[str, int, SNMPCredential, float], Awaitable[str | None]]


@dataclass
class SweepOptions:
    """How hard to knock: ports, probes per second, probes in flight, timeouts."""

    ports: tuple[int, ...] = DEFAULT_PORTS
    rate: float = 50.0  # probes (packets that open a conversation) per second
    # In flight at once. A silent address holds its slot for the whole timeout, so this
    # must be at least rate x timeout for the rate to be reachable on a sparse network.
    concurrency: int = 64
    connect_timeout: float = 1.0
    snmp_port: int = 161
    snmp_timeout: float = 1.0
    snmp_credentials: list[SNMPCredential] = field(default_factory=list)


@dataclass
class Answer:
    """What one address answered. ``snmp_credential`` names the credential that worked."""

    address: str
    open_ports: list[int] = field(default_factory=list)
    ssh_banner: str | None = None
    ssh_port: int | None = None
    snmp_sysobjectid: str | None = None
    snmp_credential: str | None = None

    @property
    def responded(self) -> bool:
        return bool(self.open_ports or self.snmp_sysobjectid)


class OutsideRange(Exception):  # noqa: N818 - a programming error, never expected to fire
    """A probe was about to leave the configured ranges."""


class Pacer:
    """Hands out probe slots at most ``rate`` per second, evenly spaced.

    Slots follow an even schedule, but a late wake-up never turns into a catch-up burst:
    at most one slot is made up.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock = clock
        self._last = float("-inf")
        self._lock = asyncio.Lock()

    async def slot(self) -> None:
        """Wait for the next free slot (waiters queue on the lock, in order)."""
        async with self._lock:
            due = self._last + self.interval
            wait = due - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            now = self.clock()
            # Keep to the schedule despite sleep overshoot, but never bank more than one
            # slot: a wake-up later than a whole interval restarts the schedule from now.
            self._last = due if now - due < self.interval else now


async def tcp_connect(address: str, port: int, timeout: float, read_banner: bool) -> tuple[bool, str | None]:
    """One TCP connect; on an SSH port, read the server's identification line (bounded)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    except (OSError, TimeoutError):
        return False, None
    banner = None
    try:
        if read_banner:
            with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                line = await asyncio.wait_for(reader.readline(), timeout)
                banner = clip(line[:MAX_BANNER].decode("ascii", "replace").strip(), MAX_BANNER) or None
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
    return True, banner


async def sweep_async(addresses: Iterable[str], allowed: Callable[[str], bool], opts: SweepOptions, *,
                      tcp: TcpProbe | None = None, snmp: SnmpProbe | None = None,
                      progress: Callable[[int, int], None] | None = None) -> list[Answer]:
    """Probe every address; return the ones that answered, in address order."""
    addresses = list(addresses)
    for a in addresses:
        if not allowed(a):
            raise OutsideRange(f"{a} is outside the configured ranges")
    tcp = tcp or tcp_connect
    prober = None
    if snmp is None and opts.snmp_credentials:
        from collectors.snmp import SysObjectIDProbe

        prober = SysObjectIDProbe()
        snmp = prober.get
    pacer = Pacer(opts.rate)
    limit = asyncio.Semaphore(max(1, opts.concurrency))
    answers = {a: Answer(a) for a in addresses}
    total = len(addresses) * (len(opts.ports) + (1 if opts.snmp_credentials else 0))
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    async def one_tcp(address: str, port: int) -> None:
        if not allowed(address):
            raise OutsideRange(address)
        async with limit:
            await pacer.slot()
            is_open, banner = await tcp(address, port, opts.connect_timeout, port in SSH_PORTS)
        if is_open:
            ans = answers[address]
            ans.open_ports.append(port)
            if banner and banner.startswith("SSH-") and ans.ssh_banner is None:
                ans.ssh_banner, ans.ssh_port = banner, port
        tick()

    async def one_snmp(address: str) -> None:
        assert snmp is not None
        if not allowed(address):
            raise OutsideRange(address)
        # Credentials in order; the first that answers wins (each try is one packet).
        for cred in opts.snmp_credentials:
            async with limit:
                await pacer.slot()
                oid = await snmp(address, opts.snmp_port, cred, opts.snmp_timeout)
            if oid:
                answers[address].snmp_sysobjectid, answers[address].snmp_credential = oid, cred.name
                break
        tick()

    # Interleave by port, not by address: consecutive probes hit different hosts, so no
    # single device sees a burst.
    jobs: list[Awaitable[None]] = []
    for port in opts.ports:
        jobs += [one_tcp(a, port) for a in addresses]
    if opts.snmp_credentials:
        # Spread the SNMP GETs through the sweep: silent agents hold a slot for the whole
        # timeout, and mixed with quick TCP answers they do not stall the pace.
        step = max(1, len(jobs) // max(1, len(addresses)))
        for i, a in enumerate(addresses):
            jobs.insert(min(len(jobs), i * (step + 1)), one_snmp(a))
    try:
        await asyncio.gather(*jobs)
    finally:
        if prober is not None:
            prober.close()
    out = [a for a in answers.values() if a.responded]
    for a in out:
        a.open_ports.sort()
    return out


def sweep(addresses: Iterable[str], allowed: Callable[[str], bool], opts: SweepOptions, *,
          tcp: TcpProbe | None = None, snmp: SnmpProbe | None = None,
          progress: Callable[[int, int], None] | None = None) -> list[Answer]:
    """Blocking wrapper: run ``sweep_async`` on a fresh event loop."""
    return asyncio.run(sweep_async(addresses, allowed, opts, tcp=tcp, snmp=snmp, progress=progress))
