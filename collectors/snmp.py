"""SNMP collector: identify network gear and judge its SNMP exposure (pysnmp 7, asyncio).

The only module of the project that imports pysnmp. A device costs three or four round
trips: a GET of the system group (and ifNumber); then, concurrently, one GET of the vendor
scalars the candidate fingerprint rules name, a walk of ifType sized by ifNumber, and any
short column a rule asks for (hrDeviceDescr for printers); then, only when the vendor
objects left model, serial or version unknown, a walk of entPhysicalClass and a GET of the
chassis row. The exposure probes (default communities, versions answered, SNMPv3 without
privacy) run alongside with a short timeout. Walks are bounded (rows per column, loops and
non-increasing OIDs stop them); values are clipped before anything else sees them.

``collect_many`` runs every target on ONE asyncio loop, bounded by ``ctx.concurrency``
with a per-device deadline of ``ctx.timeout``; it is a plain generator (called from a
worker thread) that drives the loop and yields results as they finish. It uses one pysnmp
engine per SNMPv3 credential and security level.
SNMPv1/v2c requests skip pysnmp: ``collectors.snmpwire`` encodes and decodes them as bytes
over one UDP socket per run (``_Wire``), a quarter of the client CPU; SNMPv3 uses pysnmp.
What the values mean is decided in ``collectors.fingerprint`` (pure, rules as data).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import itertools
import random
import socket
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

# pysnmp imports pysmi when it is installed (snmpsim needs it), and pysmi 1.5+ warns that
# pysnmp uses a deprecated name: not ours to fix, and harmless.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*deprecated.*")
    from pysnmp.entity.rfc3413 import cmdgen as _cmdgen
    from pysnmp.entity.rfc3413 import config as _target_config
    from pysnmp.hlapi.v3arch.asyncio import CommunityData, SnmpEngine, UdpTransportTarget, UsmUserData
    from pysnmp.hlapi.v3arch.asyncio import auth as _auth
    from pysnmp.hlapi.v3arch.asyncio.lcd import CommandGeneratorLcdConfigurator
    from pysnmp.proto import errind, rfc1902, rfc1905
    from pysnmp.proto.proxy import rfc2576 as _rfc2576
    from pysnmp.smi import builder as _mib_builder
    from pysnmp.smi import view as _mib_view

from collectors import fingerprint, snmpwire
from collectors.base import CollectContext, Collector, now_iso
from itaudit.credentials import SNMPCredential
from itaudit.errors import AuthError, CollectError, CollectTimeout, ConfigError, ConnectError, ProtocolError
from itaudit.model import MAX_EVIDENCE, CollectResult, DeviceFacts, ResultStatus, Target, clip

SYSTEM_OIDS = (
    "1.3.6.1.2.1.1.1.0",  # sysDescr
    "1.3.6.1.2.1.1.2.0",  # sysObjectID
    "1.3.6.1.2.1.1.3.0",  # sysUpTime
    "1.3.6.1.2.1.1.4.0",  # sysContact
    "1.3.6.1.2.1.1.5.0",  # sysName
    "1.3.6.1.2.1.1.6.0",  # sysLocation
    "1.3.6.1.2.1.2.1.0",  # ifNumber: sizes the IF-MIB walk so it does not overshoot
)
IF_NUMBER = SYSTEM_OIDS[-1]
SYS_DESCR = SYSTEM_OIDS[0]
DEFAULT_COMMUNITIES = ("public", "private")
MAX_OCTETS = 16384  # raw bytes kept from one value, before any decoding
MAX_VARBINDS = 60  # per request/response: fits snmpsim's 64 and small agents' buffers
MAX_GET_OIDS = 48

AUTH_PROTOCOLS = {
    None: _auth.USM_AUTH_NONE, "none": _auth.USM_AUTH_NONE,
    "md5": _auth.USM_AUTH_HMAC96_MD5, "sha": _auth.USM_AUTH_HMAC96_SHA, "sha1": _auth.USM_AUTH_HMAC96_SHA,
    "sha224": _auth.USM_AUTH_HMAC128_SHA224, "sha256": _auth.USM_AUTH_HMAC192_SHA256,
    "sha384": _auth.USM_AUTH_HMAC256_SHA384, "sha512": _auth.USM_AUTH_HMAC384_SHA512,
}
# aes192/aes256 follow Net-SNMP (Blumenthal key extension); the "c" variants are Cisco's
# (Reeder) key extension, which some Cisco and HPE agents use instead.
PRIV_PROTOCOLS = {
    None: _auth.USM_PRIV_NONE, "none": _auth.USM_PRIV_NONE,
    "des": _auth.USM_PRIV_CBC56_DES, "3des": _auth.USM_PRIV_CBC168_3DES,
    "aes": _auth.USM_PRIV_CFB128_AES, "aes128": _auth.USM_PRIV_CFB128_AES,
    "aes192": _auth.USM_PRIV_CFB192_AES_BLUMENTHAL, "aes256": _auth.USM_PRIV_CFB256_AES_BLUMENTHAL,
    "aes192c": _auth.USM_PRIV_CFB192_AES, "aes256c": _auth.USM_PRIV_CFB256_AES,
}
_V3_AUTH_ERRORS = (
    errind.UnknownUserName, errind.WrongDigest, errind.DecryptionError, errind.AuthenticationError,
    errind.AuthenticationFailure, errind.UnsupportedSecurityLevel, errind.UnknownSecurityName,
    errind.NotInTimeWindow, errind.UnsupportedAuthProtocol, errind.UnsupportedPrivProtocol,
)
_MISSING = (rfc1905.NoSuchObject, rfc1905.NoSuchInstance, rfc1905.EndOfMibView)
# The command generators are used directly (not through hlapi's get_cmd/bulk_cmd), for
# client CPU: hlapi resolves every numeric OID through a MIB view (a quarter of the CPU),
# and writes a row in the engine's target tables for every new (device, auth, timeout),
# then reads it back on every request (about 6 ms per device). ``_Direct`` sends to an
# explicit target instead; the engine only learns each credential and transport once.
_LCD = CommandGeneratorLcdConfigurator()
_NULL = rfc1902.Null("")


class _Direct:
    """Mixin for pysnmp command generators: send to ``self.target`` (no target tables).

    Mirrors ``CommandGenerator.send_pdu`` of pysnmp 7.1 minus the target-table lookup;
    retries and responses are still handled by pysnmp's own ``process_response_pdu``.
    """

    target: tuple[Any, ...]

    def send_pdu(self, snmpEngine: Any, targetName: Any, contextEngineId: Any, contextName: Any,  # noqa: N803
                 PDU: Any, cbFun: Any, cbCtx: Any) -> Any:  # noqa: N803
        domain, address, timeout, retries, mp_model, sec_model, sec_name, sec_level = self.target
        dispatcher = snmpEngine.transport_dispatcher
        ticks = float(timeout) / 100 / dispatcher.get_timer_resolution()
        contextName = rfc1902.OctetString(contextName)  # noqa: N806 - pysnmp's name
        orig = PDU
        if mp_model == 0:
            PDU, pdu_version = _rfc2576.v2_to_v1(PDU), 0
        else:
            pdu_version = 1
        handle = _cmdgen.getNextHandle()
        pdu_handle = snmpEngine.message_dispatcher.send_pdu(
            snmpEngine, domain, address, mp_model, sec_model, sec_name, sec_level,
            contextEngineId, contextName, pdu_version, PDU, True, ticks,
            self.process_response_pdu, (handle, cbFun, cbCtx))  # type: ignore[attr-defined]
        dispatcher.job_started(id(self))
        self._CommandGenerator__pendingReqs[pdu_handle] = (  # type: ignore[attr-defined]
            domain, address, mp_model, sec_model, sec_name, sec_level, contextEngineId, contextName,
            pdu_version, orig, ticks, retries, 0, 0)
        return handle


class _Get(_Direct, _cmdgen.GetCommandGenerator):
    pass


class _Next(_Direct, _cmdgen.NextCommandGeneratorSingleRun):
    pass


class _Bulk(_Direct, _cmdgen.BulkCommandGeneratorSingleRun):
    pass


@functools.lru_cache(maxsize=4096)
def _name(oid: str) -> Any:
    return rfc1902.ObjectName(oid)


@dataclass
class _Auth:
    """pysnmp auth data plus what we need to say about it (never the secret)."""

    data: CommunityData | UsmUserData
    version: str  # "v1", "v2c", "v3"
    level: str = ""  # v3: "noAuthNoPriv", "authNoPriv", "authPriv"
    user: str | None = None
    auth_key: str | None = field(default=None, repr=False)
    auth_proto: Any = None
    engine_key: str = "shared"  # pysnmp keeps one USM entry per user name and engine


class _Engines:
    """SNMP engines of one run: a shared one, plus one per SNMPv3 credential and level.

    pysnmp stores USM users by name per engine; two settings for one user name (our
    authPriv credential and its authNoPriv exposure probe) must not share an engine.
    """

    def __init__(self) -> None:
        self._engines: dict[str, SnmpEngine] = {}
        self._wire: _Wire | None = None
        self._wire_lock: asyncio.Lock | None = None

    def get(self, key: str) -> SnmpEngine:
        if key not in self._engines:
            self._engines[key] = new_engine()
        return self._engines[key]

    async def wire(self) -> _Wire:
        """The run's one UDP socket for SNMPv1/v2c requests (opened on first use)."""
        if self._wire is None:
            if self._wire_lock is None:
                self._wire_lock = asyncio.Lock()
            async with self._wire_lock:
                if self._wire is None:
                    loop = asyncio.get_running_loop()
                    _, protocol = await loop.create_datagram_endpoint(_Wire, family=socket.AF_INET)
                    self._wire = protocol
        return self._wire

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close_dispatcher()
        self._engines.clear()
        if self._wire is not None:
            self._wire.close()
            self._wire = None


_REQUEST_IDS = itertools.count(random.randrange(1, 2**30))  # noqa: S311 - an ID, not a secret


class _Wire(asyncio.DatagramProtocol):
    """SNMPv1/v2c without pysnmp: requests and responses as bytes (``collectors.snmpwire``).

    One unconnected socket serves every community-based request of a run; a response is
    accepted only from the address asked, with the same request ID, version and community
    (anything else, or a malformed datagram, is dropped as pysnmp would drop it).
    """

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, tuple[asyncio.Future[Any], tuple[str, int], int, bytes]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            version, community, rid, es, ix, vbs = snmpwire.decode_response(data, MAX_OCTETS)
        except (snmpwire.WireError, ValueError, IndexError):
            return
        entry = self.pending.get(rid)
        if entry is None:
            return
        future, want_addr, want_version, want_community = entry
        if (addr[0], addr[1]) != want_addr or version != want_version or community != want_community:
            return
        if not future.done():
            future.set_result((es, ix, vbs))

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors cannot be tied to a request on an unconnected socket: timeouts tell

    async def request(self, address: tuple[str, int], version: int, community: bytes, pdu: int,
                      oids: Sequence[str], reps: int, timeout: float, retries: int) -> tuple[int, int, list[Any]]:
        """Send one request (re-sent ``retries`` times on silence); (error-status, index, varbinds)."""
        if self.transport is None or self.transport.is_closing():
            raise ConnectError("the SNMP socket is closed")
        rid = next(_REQUEST_IDS) % 2**31
        message = snmpwire.encode_request(version, community, pdu, rid, list(oids), 0, reps)
        loop = asyncio.get_running_loop()
        try:
            for _ in range(retries + 1):
                future: asyncio.Future[tuple[int, int, list[Any]]] = loop.create_future()
                self.pending[rid] = (future, address, version, community)
                self.transport.sendto(message, address)
                try:
                    return await asyncio.wait_for(future, timeout)
                except TimeoutError:
                    continue
        finally:
            self.pending.pop(rid, None)
        raise _NoAnswer("no response to the SNMP request")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        for future, *_ in self.pending.values():
            if not future.done():
                future.cancel()
        self.pending.clear()


class _NoAnswer(Exception):  # noqa: N818 - internal signal, mapped at the boundary
    pass


def _value(v: Any) -> Any:
    """pysnmp value -> plain Python: None (missing), int, str (OIDs, IPs) or bytes."""
    if isinstance(v, _MISSING):
        return None
    if isinstance(v, rfc1902.ObjectIdentifier):
        return ".".join(str(x) for x in tuple(v)[:128])
    if isinstance(v, rfc1902.IpAddress):
        return ".".join(str(b) for b in v.asOctets())
    if isinstance(v, rfc1902.OctetString | rfc1902.Opaque):
        return bytes(v.asOctets()[:MAX_OCTETS])
    try:
        return int(v)
    except (TypeError, ValueError):
        return clip(v.prettyPrint(), 256)


def _oid(name: Any) -> str:
    return ".".join(str(x) for x in tuple(name))


class _Session:
    """One device: an auth, a transport, and GET / bounded bulk-walk helpers."""

    def __init__(self, engines: _Engines, auth: _Auth, transport: UdpTransportTarget):
        self.engines = engines
        # pysnmp only for SNMPv3; SNMPv1/v2c go through the run's raw socket (``_Wire``)
        self.engine = engines.get(auth.engine_key) if auth.version == "v3" else None
        self.auth = auth
        self.transport = transport
        self.round_trips = 0
        self.too_big: list[str] = []  # OIDs whose value did not fit in a response

    async def get(self, oids: Sequence[str]) -> dict[str, Any]:
        """GET many OIDs; a missing object is None. v1 noSuchName drops the OID and retries."""
        oids = list(dict.fromkeys(oids))
        out: dict[str, Any] = {}
        for start in range(0, len(oids), MAX_GET_OIDS):
            chunk = oids[start : start + MAX_GET_OIDS]
            for _ in range(len(chunk) + 1):  # v1 removes one bad OID per attempt
                if not chunk:
                    break
                es, ix, vbs = await self._call("get", chunk)
                if es == 2 and self.auth.version == "v1" and 0 < ix <= len(chunk):
                    out[chunk.pop(ix - 1)] = None  # noSuchName
                    continue
                if es == 1:  # tooBig: halve; a single huge value is dropped
                    if len(chunk) == 1:
                        out[chunk[0]] = None
                        self.too_big.append(chunk[0])
                        break
                    half = len(chunk) // 2
                    out.update(await self.get(chunk[:half]))
                    chunk = chunk[half:]
                    continue
                if es:
                    raise ProtocolError(f"agent returned error-status {es} to a GET")
                for oid, val in vbs:
                    out[oid] = None if val is snmpwire.END else val
                break
        return out

    async def walk(self, columns: Sequence[str], max_rows: int, reps: int | None = None) -> dict[str, Any]:
        """Bulk-walk table columns together, at most ``max_rows`` rows each.

        Stops a column when it leaves its subtree, repeats or goes backwards (a looping
        agent), or reaches ``max_rows``; v1 agents are walked with GETNEXT instead.
        """
        out: dict[str, Any] = {}
        active = {c: c for c in columns}  # column -> last OID seen
        counts = dict.fromkeys(columns, 0)
        while active:
            cols = list(active)
            per_col = max(1, min(max_rows, MAX_VARBINDS // len(cols), reps or max_rows))
            op = "next" if self.auth.version == "v1" else "bulk"  # v1 has no GETBULK
            es, _, vbs = await self._call(op, [active[c] for c in cols], per_col)
            if es or not vbs:
                break
            progressed = False
            for i, (oid, val) in enumerate(vbs):
                col = cols[i % len(cols)]
                if col not in active:
                    continue
                if val is snmpwire.END or not oid.startswith(col + "."):
                    del active[col]
                    continue
                if _oid_key(oid) <= _oid_key(active[col]):
                    del active[col]  # not increasing: a looping agent
                    continue
                out[oid] = val
                active[col] = oid
                counts[col] += 1
                progressed = True
                if counts[col] >= max_rows:
                    del active[col]
            if not progressed:
                break
        return out

    async def _call(self, op: str, oids: Sequence[str], reps: int = 0) -> tuple[int, int, list[tuple[str, Any]]]:
        """One request: (error-status, error-index, [(OID, plain value or snmpwire.END)])."""
        self.round_trips += 1
        data, tr = self.auth.data, self.transport
        if self.engine is None:  # SNMPv1/v2c: bytes on the wire, no pysnmp
            wire = await self.engines.wire()
            pdu = snmpwire.GETBULK if op == "bulk" else snmpwire.GETNEXT if op == "next" else snmpwire.GET
            address = (str(tr.transport_address[0]), int(tr.transport_address[1]))
            community = str(data.communityName).encode("utf-8")
            return await wire.request(address, int(data.message_processing_model), community, pdu, oids,
                                      reps, float(tr.timeout), int(tr.retries))
        key = (data.securityName, data.security_level, data.message_processing_model)
        params = self.engine.cache.setdefault("itaudit_params", {})
        if key not in params:  # once per engine and credential: auth, params, transport
            _, params_name = _LCD.configure(self.engine, data, tr, b"")
            params[key] = _target_config.get_target_parameters(self.engine, params_name)
        future: asyncio.Future[tuple[Any, Any, Any, Any]] = asyncio.get_running_loop().create_future()

        def done(engine: Any, handle: Any, ei: Any, es: Any, ix: Any, vbs: Any, ctx: Any) -> None:
            if not future.done():
                future.set_result((ei, es, ix, vbs))

        gen = _Bulk() if op == "bulk" else _Next() if op == "next" else _Get()
        gen.target = (tr.TRANSPORT_DOMAIN, tr.transport_address, tr.timeout * 100, tr.retries, *params[key])
        binds = [(_name(o), _NULL) for o in oids]
        if op == "bulk":
            gen.send_varbinds(self.engine, None, None, b"", 0, reps, binds, done)
        else:
            gen.send_varbinds(self.engine, None, None, b"", binds, done)
        ei, es, ix, vbs = await future
        if ei:
            if isinstance(ei, errind.RequestTimedOut):
                raise _NoAnswer(str(ei))
            if isinstance(ei, _V3_AUTH_ERRORS):
                raise AuthError(f"SNMPv3 agent refused our credentials: {ei}")
            raise ProtocolError(f"SNMP error: {clip(str(ei), 200)}")
        return (int(es) if es else 0, int(ix) if ix else 0,
                [(_oid(n), snmpwire.END if isinstance(v, rfc1905.EndOfMibView) else _value(v)) for n, v in vbs])


def new_engine() -> SnmpEngine:
    """An SNMP engine that never compiles MIBs: we send and read numeric OIDs only.

    pysnmp attaches a pysmi MIB compiler to an engine on its first request when pysmi is
    installed (slow, and it warns); a builder that already reports a compiler skips that.
    """
    engine = SnmpEngine()
    mib = _mib_builder.MibBuilder()
    mib.set_mib_compiler(_NO_COMPILER, "/nonexistent/itaudit-no-mib-compiler")
    engine.cache["mibViewController"] = _mib_view.MibViewController(mib)
    return engine


_NO_COMPILER = object()


def _oid_key(oid: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in oid.split("."))
    except ValueError:
        return ()


def make_auth(cred: SNMPCredential, *, community: str | None = None, level: str | None = None) -> _Auth:
    """Build pysnmp auth data from a credential reference; secrets are read here, at use."""
    version = (cred.version or "v3").lower()
    if version in ("1", "v1", "2c", "v2c", "2", "v2"):
        mp = 0 if version in ("1", "v1") else 1
        secret = community if community is not None else cred.community()
        if not secret:
            raise AuthError(f"SNMP credential {cred.name}: no community configured")
        return _Auth(CommunityData(secret, mpModel=mp), "v1" if mp == 0 else "v2c")
    if version not in ("3", "v3"):
        raise ConfigError(f"unknown SNMP version {cred.version!r}", key=f"credentials.{cred.name}.version")
    if not cred.username:
        raise AuthError(f"SNMP credential {cred.name}: no v3 username")
    auth_name = (cred.auth_protocol or "").lower() or None
    priv_name = (cred.priv_protocol or "").lower() or None
    if auth_name not in AUTH_PROTOCOLS or priv_name not in PRIV_PROTOCOLS:
        raise ConfigError("unknown SNMPv3 auth or privacy protocol", key=f"credentials.{cred.name}")
    auth_key = cred.auth_key() if auth_name else None
    priv_key = cred.priv_key() if priv_name and auth_name else None
    if auth_name and not auth_key:
        raise AuthError(f"SNMP credential {cred.name}: no auth key")
    if priv_name and not priv_key:
        raise AuthError(f"SNMP credential {cred.name}: no privacy key")
    if level == "authNoPriv":
        priv_name, priv_key = None, None
    auth_proto = AUTH_PROTOCOLS[auth_name]
    data = UsmUserData(cred.username, authKey=auth_key, privKey=priv_key,
                       authProtocol=auth_proto, privProtocol=PRIV_PROTOCOLS[priv_name])
    lvl = "noAuthNoPriv" if not auth_name else ("authPriv" if priv_name else "authNoPriv")
    return _Auth(data, "v3", lvl, cred.username, auth_key, auth_proto, engine_key=f"v3:{cred.name}:{lvl}")


@dataclass
class SNMPCollector(Collector):
    """Collect identity, hardware, firmware and SNMP exposure facts from one or many devices.

    ``exposure`` turns the exposure probes (default communities, versions, v3 privacy) on;
    ``request_timeout``/``retries`` apply to each SNMP request, bounded by ``ctx.timeout``.
    """

    protocol = "snmp"
    exposure: bool = True
    request_timeout: float = 1.5
    retries: int = 1
    exposure_timeout: float = 1.0
    entity_rows: int = 10  # the chassis row comes first or nearly (stack, chassis, ...)
    if_rows: int = 256
    if_speeds: bool = False  # also walk ifHighSpeed (port speeds): more varbinds
    interfaces: bool = True  # IF-MIB summary (port count): about one varbind per interface
    default_port: int = 161

    # --- public API --------------------------------------------------------------------

    def collect(self, target: Target, ctx: CollectContext) -> CollectResult:
        """Collect one target (a one-element ``collect_many``)."""
        return next(iter(self.collect_many([target], ctx)))

    def collect_many(self, targets: Iterable[Target], ctx: CollectContext) -> Iterator[CollectResult]:
        """Collect all targets concurrently on one asyncio loop; yield results as they finish."""
        targets = list(targets)
        if not targets:
            return
        loop = asyncio.new_event_loop()
        engines = _Engines()
        pending: set[asyncio.Task[CollectResult]] = set()
        try:
            limit = asyncio.Semaphore(max(1, ctx.concurrency))
            for t in targets:
                pending.add(loop.create_task(self._guarded(engines, limit, t, ctx)))
            while pending:
                done, pending = loop.run_until_complete(
                    asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED))
                for task in done:
                    yield task.result()
        finally:
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            _shutdown(loop, engines)

    # --- one device --------------------------------------------------------------------

    async def _guarded(self, engine: _Engines, limit: asyncio.Semaphore, target: Target,
                       ctx: CollectContext) -> CollectResult:
        async with limit:
            started, t0 = now_iso(), time.monotonic()
            try:
                result = await asyncio.wait_for(self._device(engine, target, ctx), ctx.timeout)
            except TimeoutError:
                result = self._error(target, CollectTimeout(f"no complete answer within {ctx.timeout:g}s"))
            except CollectError as exc:
                result = self._error(target, exc)
            except Exception as exc:  # a collector bug must not end the scan
                result = CollectResult(target, ResultStatus.ERROR, error_kind="internal",
                                       error=clip(f"internal error: {type(exc).__name__}: {exc}", 300))
            result.started_at = started
            result.duration_ms = int((time.monotonic() - t0) * 1000)
            return result

    @staticmethod
    def _error(target: Target, exc: CollectError) -> CollectResult:
        return CollectResult(target, ResultStatus.ERROR, error_kind=exc.kind, error=clip(str(exc), 300))

    def _credential(self, target: Target, ctx: CollectContext) -> SNMPCredential:
        cred = ctx.credentials.get(target.credential or "")
        if not isinstance(cred, SNMPCredential):
            raise AuthError(f"no SNMP credential named {target.credential!r} for this city")
        return cred

    async def _transport(self, target: Target, timeout: float, retries: int) -> UdpTransportTarget:
        addr = (target.address, target.port or self.default_port)
        try:
            ipaddress.IPv4Address(target.address)
        except ValueError:
            pass
        else:
            # An IP literal needs no resolver: skip create()'s getaddrinfo, which runs in a
            # thread pool and cost more client CPU than a whole SNMP request.
            transport = UdpTransportTarget.__new__(UdpTransportTarget)
            transport.transport_address = addr
            transport.__init__(timeout=timeout, retries=retries)  # type: ignore[misc]
            return transport
        try:
            return await UdpTransportTarget.create(addr, timeout=timeout, retries=retries)
        except Exception as exc:  # resolver errors come back as several types
            raise ConnectError(f"cannot resolve {clip(target.address, 100)}: {exc}") from exc

    async def _device(self, engine: _Engines, target: Target, ctx: CollectContext) -> CollectResult:
        cred = self._credential(target, ctx)
        auth = make_auth(cred)
        timeout = max(0.2, min(self.request_timeout, ctx.timeout / (2 * (self.retries + 1))))
        transport = await self._transport(target, timeout, self.retries)
        session = _Session(engine, auth, transport)
        try:
            system = await session.get(SYSTEM_OIDS)
        except _NoAnswer:
            raise await self._no_answer(engine, target, auth) from None
        plan = fingerprint.plan(system)
        exposure_task = None
        if self.exposure:
            exposure_task = asyncio.ensure_future(self._exposure(engine, target, cred, auth))
        if_walks = plan.if_walks + ([fingerprint.IF_HIGH_SPEED] if self.if_speeds else [])
        if_count = system.get(IF_NUMBER)
        # Bulk responses run past the end of a column: ask for about as many rows as exist.
        if_reps = min(self.if_rows, if_count + 1) if isinstance(if_count, int) and if_count > 0 else 8
        try:
            scalars, rows, if_rows = await asyncio.gather(
                session.get(plan.gets),
                session.walk(plan.walks, self.entity_rows, 6),
                session.walk(if_walks, self.if_rows, if_reps) if self.interfaces else _nothing(),
            )
            rows.update(if_rows)
            if fingerprint.needs_entity({**system, **scalars, **rows}):
                rows.update(await session.walk([fingerprint.ENT_CLASS], self.entity_rows, 6))
                chassis = fingerprint.chassis_candidates(rows)
                if chassis is not None:
                    rows.update(await session.get(fingerprint.entity_row_oids(chassis)))
                else:  # no entPhysicalClass: a few rows of the useful columns instead
                    rows.update(await session.walk(fingerprint.ENTITY_FALLBACK_WALK, 3))
            partial = None
        except _NoAnswer:
            scalars, rows, partial = {}, {}, "device stopped answering after the system group"
        snapshot: dict[str, Any] = {**system, **scalars, **rows}
        facts = DeviceFacts(collected_at=now_iso())
        ident = fingerprint.identify(snapshot)
        fingerprint.apply(ident, facts, address=target.address)
        facts.sources.update({"identity": "snmp:system", "software": f"snmp:{ident.rule or 'unknown'}",
                              "hardware": "snmp:entity", "posture": "snmp:exposure"})
        facts.add_evidence("snmp", fingerprint.evidence(snapshot, MAX_EVIDENCE))
        if exposure_task is not None:
            versions, defaults, nopriv = await exposure_task
            facts.posture.snmp_versions = versions
            facts.posture.snmp_default_communities = defaults
            facts.posture.snmp_v3_nopriv = nopriv
        elif auth.version == "v3":
            facts.posture.snmp_v3_nopriv = auth.level != "authPriv"
        status = ResultStatus.PARTIAL if partial else ResultStatus.OK
        if partial:
            facts.gaps["hardware"] = partial
        facts.evidence["snmp_round_trips"] = str(session.round_trips)
        if session.too_big:
            facts.gaps["snmp"] = clip("values too big for one SNMP response: " + ", ".join(session.too_big), 300)
        return CollectResult(target, status, facts=facts)

    async def _no_answer(self, engine: _Engines, target: Target, auth: _Auth) -> CollectError:
        """Turn silence into the right error: v1/v2c cannot tell a wrong community from
        an unreachable device, so a cheap unauthenticated v3 probe tells them apart."""
        if auth.version == "v3":
            return CollectTimeout("no answer from the SNMPv3 agent: unreachable, filtered or SNMP off")
        if await self._v3_answers(engine, target):
            return AuthError(f"the device answers SNMP but not {auth.version} with our community "
                             "(wrong community or an ACL refuses us)")
        return CollectTimeout(f"no answer to SNMP {auth.version}: wrong community or unreachable")

    # --- exposure ----------------------------------------------------------------------

    async def _exposure(self, engine: _Engines, target: Target, cred: SNMPCredential,
                        auth: _Auth) -> tuple[list[str], list[str], bool | None]:
        """Versions answered, default communities answered (read-only GET), v3 without privacy."""
        transport = await self._transport(target, self.exposure_timeout, 0)

        async def answers(a: _Auth) -> bool:
            try:
                vals = await _Session(engine, a, transport).get([SYS_DESCR])
            except (_NoAnswer, CollectError):
                return False
            return SYS_DESCR in vals

        # Auditing exposure means trying the insecure versions on purpose (read-only GET).
        # v2c first; v1 only for what v2c did not answer (fewer probes, less client CPU).
        configured = cred.community() if auth.version in ("v1", "v2c") else None
        results: dict[str, bool] = {}
        probes: dict[str, Any] = {}
        for com in DEFAULT_COMMUNITIES:
            if com == configured and auth.version == "v2c":
                results[f"v2c:{com}"] = True  # our own request already proved it
            else:
                probes[f"v2c:{com}"] = answers(_Auth(CommunityData(com, mpModel=1), "v2c"))  # noqa: S508
        if auth.version == "v2c":
            probes["v1:configured"] = answers(_Auth(CommunityData(configured or "", mpModel=0), "v1"))  # noqa: S508
            probes["v3"] = self._v3_answers(engine, target)
        elif auth.version == "v1":
            probes["v2c:configured"] = answers(_Auth(CommunityData(configured or "", mpModel=1), "v2c"))  # noqa: S508
            probes["v3"] = self._v3_answers(engine, target)
        elif auth.level == "authPriv":
            probes["v3:nopriv"] = answers(make_auth(cred, level="authNoPriv"))
        results.update(zip(probes, await asyncio.gather(*probes.values()), strict=True))
        v1_probes = {f"v1:{com}": answers(_Auth(CommunityData(com, mpModel=0), "v1"))  # noqa: S508
                     for com in DEFAULT_COMMUNITIES if not results.get(f"v2c:{com}")}
        results.update(zip(v1_probes, await asyncio.gather(*v1_probes.values()), strict=True))
        versions = {auth.version}
        for key, ok in results.items():
            if ok and key != "v3:nopriv":
                versions.add(key.split(":")[0])
        defaults = [c for c in DEFAULT_COMMUNITIES if results.get(f"v2c:{c}") or results.get(f"v1:{c}")]
        nopriv: bool | None = None
        if auth.version == "v3":
            nopriv = auth.level != "authPriv" or bool(results.get("v3:nopriv"))
        order = ["v1", "v2c", "v3"]
        return [v for v in order if v in versions], defaults, nopriv

    async def _v3_answers(self, engine: _Engines, target: Target) -> bool:
        """True when an SNMPv3 agent answers engine discovery (no credentials needed).

        The discovery request is a fixed message (RFC 3414 section 4: empty engine ID and
        user, reportable flag), so it is sent as raw bytes and any datagram back counts:
        one message, no decoding, instead of pysnmp's discovery plus a refused request.
        """
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[bool] = loop.create_future()

        class _Probe(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                if not answered.done():
                    answered.set_result(data[:1] == b"\x30")

            def error_received(self, exc: Exception) -> None:  # ICMP port unreachable
                if not answered.done():
                    answered.set_result(False)

        try:
            transport, _ = await loop.create_datagram_endpoint(
                _Probe, remote_addr=(target.address, target.port or self.default_port))
        except OSError:
            return False
        try:
            transport.sendto(V3_DISCOVERY)
            return await asyncio.wait_for(answered, self.exposure_timeout)
        except TimeoutError:
            return False
        finally:
            transport.close()


def _ber(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = bytes([n]) if n < 0x80 else bytes([0x81, n])
    return bytes([tag]) + length + body


def _v3_discovery_message(msg_id: int = 0x1A2B) -> bytes:
    """SNMPv3 engine-discovery GetRequest: noAuthNoPriv, empty engine ID and user name."""
    ints = {v: _ber(0x02, v.to_bytes(4, "big")) for v in (msg_id, 65507)}
    header = _ber(0x30, ints[msg_id] + ints[65507] + _ber(0x04, b"\x04") + _ber(0x02, b"\x03"))
    usm = _ber(0x30, _ber(0x04, b"") + _ber(0x02, b"\x00") + _ber(0x02, b"\x00")
               + _ber(0x04, b"") + _ber(0x04, b"") + _ber(0x04, b""))
    pdu = _ber(0xA0, ints[msg_id] + _ber(0x02, b"\x00") + _ber(0x02, b"\x00") + _ber(0x30, b""))
    scoped = _ber(0x30, _ber(0x04, b"") + _ber(0x04, b"") + pdu)
    return _ber(0x30, _ber(0x02, b"\x03") + header + _ber(0x04, usm) + scoped)


V3_DISCOVERY = _v3_discovery_message()


def _shutdown(loop: asyncio.AbstractEventLoop, engines: _Engines) -> None:
    """Close the engines' sockets, then let pysnmp's own timer tasks finish cancelling."""
    engines.close()
    leftover = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in leftover:
        task.cancel()
    if leftover:
        loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


# --- discovery probe (issue 9; owned by the discovery helper) ---------------------------


class SysObjectIDProbe:
    """One SNMP GET of sysObjectID per address, on the caller's asyncio loop (discovery).

    One request, no retry: a sweep counts packets. Secrets are read at use by ``make_auth``.
    Call ``close()`` on the same loop when the sweep ends.
    """

    def __init__(self) -> None:
        self._engines = _Engines()

    async def get(self, address: str, port: int, cred: SNMPCredential, timeout: float) -> str | None:
        """sysObjectID as a dotted string, or None (no answer, refused, or no such object)."""
        try:
            auth = make_auth(cred)
            transport = await UdpTransportTarget.create((address, port), timeout=timeout, retries=0)
            vals = await _Session(self._engines, auth, transport).get([SYSTEM_OIDS[1]])
        except (_NoAnswer, CollectError, ConfigError):
            return None
        value = vals.get(SYSTEM_OIDS[1])
        return clip(str(value), 200) if value is not None else None

    def close(self) -> None:
        """Close the engines' sockets (pending pysnmp timers are cancelled with the loop)."""
        self._engines.close()

# --- end of the discovery probe block ----------------------------------------------------


async def _nothing() -> dict[str, Any]:
    return {}


def ping_many(targets: Iterable[Target], ctx: CollectContext, timeout: float = 1.0) -> dict[int, bool]:
    """One bare GET of sysDescr per target, all on one loop: ``{index in targets: answered}``.

    A cheap reachability check (and the baseline of ``bench/snmp_cpu.py``).
    """
    targets = list(targets)
    loop = asyncio.new_event_loop()
    engines = _Engines()
    collector = SNMPCollector(exposure=False)

    async def one(i: int, t: Target) -> tuple[int, bool]:
        try:
            auth = make_auth(collector._credential(t, ctx))
            transport = await collector._transport(t, timeout, 0)
            vals = await _Session(engines, auth, transport).get([SYS_DESCR])
        except (_NoAnswer, CollectError):
            return i, False
        return i, vals.get(SYS_DESCR) is not None

    async def run() -> dict[int, bool]:
        limit = asyncio.Semaphore(max(1, ctx.concurrency))

        async def bounded(i: int, t: Target) -> tuple[int, bool]:
            async with limit:
                return await one(i, t)

        return dict(await asyncio.gather(*(bounded(i, t) for i, t in enumerate(targets))))

    try:
        return loop.run_until_complete(run())
    finally:
        _shutdown(loop, engines)
