"""SNMP collector: identify network gear and judge its SNMP exposure (pysnmp 7, asyncio).

The only module of the project that imports pysnmp. A device costs three or four round
trips: a GET of the system group (and ifNumber); then, concurrently, one GET of the vendor
scalars the candidate fingerprint rules name, a walk of ifType sized by ifNumber, and any
short column a rule asks for (hrDeviceDescr for printers); then, only when the vendor
objects left model, serial or version unknown, a walk of entPhysicalClass and a GET of the
chassis row. The exposure probes (default communities, versions answered, SNMPv3 without
privacy) are all sent at once right after the system group, each once, and read when
identification ends (``_Probes``): a device waits for them one short timeout at most.
Walks are bounded (rows per column, loops and
non-increasing OIDs stop them); values are clipped before anything else sees them.

``collect_many`` runs every target on ONE asyncio loop, bounded by ``ctx.concurrency``
devices being identified (a device left waiting only for its exposure probes gives its
place to the next) with a per-device deadline of ``ctx.timeout``; it is a plain generator (called from a
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
from collections.abc import Callable, Iterable, Iterator, Sequence
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
# An SNMPv3 agent tells why it refuses a request in a Report PDU (RFC 3414 usmStats
# counters, 1.3.6.1.6.3.15.1.1.N.0); pysnmp turns each into an error indication.
_V3_REASONS: tuple[tuple[type, str], ...] = (
    (errind.UnknownUserName, "the agent does not know SNMPv3 user {user!r} (usmStatsUnknownUserNames, "
     "1.3.6.1.6.3.15.1.1.3)"),
    (errind.WrongDigest, "the agent knows user {user!r} but refused our authentication key: wrong auth key or "
     "auth protocol (usmStatsWrongDigests, 1.3.6.1.6.3.15.1.1.5)"),
    (errind.DecryptionError, "the agent could not decrypt our request: wrong privacy key or privacy protocol "
     "(usmStatsDecryptionErrors, 1.3.6.1.6.3.15.1.1.6)"),
    (errind.UnknownEngineID, "the agent refused our idea of its engine ID (usmStatsUnknownEngineIDs, "
     "1.3.6.1.6.3.15.1.1.4)"),
    (errind.NotInTimeWindow, "the agent's clock is outside our time window even after resynchronising "
     "(usmStatsNotInTimeWindows, 1.3.6.1.6.3.15.1.1.2)"),
    (errind.UnsupportedSecurityLevel, "the agent does not accept the {level} security level for user "
     "{user!r} (usmStatsUnsupportedSecLevels, 1.3.6.1.6.3.15.1.1.1)"),
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
    (anything else, or a malformed datagram, is dropped as pysnmp would drop it). The
    same socket sends the SNMPv3 engine-discovery probes (``send_v3_probe``): any SNMPv3
    message back from the address asked answers them.
    """

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, tuple[asyncio.Future[Any], tuple[str, int], int, bytes]] = {}
        self.v3_pending: dict[tuple[str, int], list[asyncio.Future[bool]]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            version, community, rid, es, ix, vbs = snmpwire.decode_response(data, MAX_OCTETS)
        except (snmpwire.WireError, ValueError, IndexError):
            if self.v3_pending and snmpwire.message_version(data) == 3:  # an SNMPv3 agent answered
                for future in self.v3_pending.pop((addr[0], addr[1]), ()):
                    if not future.done():
                        future.set_result(True)
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

    def send(self, address: tuple[str, int], version: int, community: bytes, pdu: int, oids: Sequence[str],
             reps: int = 0) -> tuple[int, asyncio.Future[tuple[int, int, list[Any]]]]:
        """Send one request now, without waiting: (request ID, future of its response).

        The caller must ``forget`` the request ID once it stops waiting.
        """
        rid = next(_REQUEST_IDS) % 2**31
        message = snmpwire.encode_request(version, community, pdu, rid, list(oids), 0, reps)
        return rid, self._send(rid, message, address, version, community)

    def _send(self, rid: int, message: bytes, address: tuple[str, int], version: int,
              community: bytes) -> asyncio.Future[tuple[int, int, list[Any]]]:
        if self.transport is None or self.transport.is_closing():
            raise ConnectError("the SNMP socket is closed")
        future: asyncio.Future[tuple[int, int, list[Any]]] = asyncio.get_running_loop().create_future()
        self.pending[rid] = (future, address, version, community)
        self.transport.sendto(message, address)
        return future

    def forget(self, rid: int) -> None:
        self.pending.pop(rid, None)

    async def request(self, address: tuple[str, int], version: int, community: bytes, pdu: int,
                      oids: Sequence[str], reps: int, timeout: float, retries: int) -> tuple[int, int, list[Any]]:
        """Send one request (re-sent ``retries`` times on silence); (error-status, index, varbinds)."""
        rid = next(_REQUEST_IDS) % 2**31
        message = snmpwire.encode_request(version, community, pdu, rid, list(oids), 0, reps)
        try:
            for _ in range(retries + 1):
                future = self._send(rid, message, address, version, community)
                try:
                    return await asyncio.wait_for(future, timeout)
                except TimeoutError:
                    continue
        finally:
            self.forget(rid)
        raise _NoAnswer("no response to the SNMP request")

    def send_v3_probe(self, address: tuple[str, int]) -> asyncio.Future[bool]:
        """Send the SNMPv3 engine-discovery probe; the future is set when the address answers.

        The caller must ``forget_v3`` it once it stops waiting.
        """
        if self.transport is None or self.transport.is_closing():
            raise ConnectError("the SNMP socket is closed")
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.v3_pending.setdefault(address, []).append(future)
        self.transport.sendto(V3_DISCOVERY, address)
        return future

    def forget_v3(self, address: tuple[str, int], future: asyncio.Future[bool]) -> None:
        waiting = self.v3_pending.get(address)
        if waiting and future in waiting:
            waiting.remove(future)
            if not waiting:
                del self.v3_pending[address]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        for future, *_ in self.pending.values():
            if not future.done():
                future.cancel()
        for futures in self.v3_pending.values():
            for f in futures:
                if not f.done():
                    f.cancel()
        self.pending.clear()
        self.v3_pending.clear()


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
                raise AuthError(v3_reason(ei, self.auth))
            raise ProtocolError(f"SNMP error: {clip(str(ei), 200)}")
        return (int(es) if es else 0, int(ix) if ix else 0,
                [(_oid(n), snmpwire.END if isinstance(v, rfc1905.EndOfMibView) else _value(v)) for n, v in vbs])


def v3_reason(ei: Any, auth: _Auth) -> str:
    """A refusal by an SNMPv3 agent in plain words, naming the report it sent."""
    for kind, text in _V3_REASONS:
        if isinstance(ei, kind):
            return "SNMPv3 refused: " + text.format(user=auth.user or "", level=auth.level)
    return f"SNMPv3 refused our credentials: {clip(str(ei), 200)}"


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
    if level in ("authNoPriv", "noAuthNoPriv"):
        priv_name, priv_key = None, None
    if level == "noAuthNoPriv":
        auth_name, auth_key = None, None
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
        # Each finished task hands itself to this queue. (``asyncio.wait`` over the pending
        # set added and removed a callback on every pending task at each call: quadratic in
        # the city's size, 0.3 ms of CPU per device at 1,000 devices.)
        finished: asyncio.Queue[asyncio.Task[CollectResult]] = asyncio.Queue()
        try:
            limit = asyncio.Semaphore(max(1, ctx.concurrency))
            for t in targets:
                task = loop.create_task(self._guarded(engines, limit, t, ctx))
                task.add_done_callback(finished.put_nowait)
                pending.add(task)
            while pending:
                done = [loop.run_until_complete(finished.get())]
                while not finished.empty():
                    done.append(finished.get_nowait())
                for task in done:
                    pending.discard(task)
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
        async with _Slot(limit) as slot:
            started, t0 = now_iso(), time.monotonic()
            try:
                result = await asyncio.wait_for(self._device(engine, target, ctx, slot.release), ctx.timeout)
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
        result = CollectResult(target, ResultStatus.ERROR, error_kind=exc.kind, error=clip(str(exc), 300))
        if isinstance(exc.facts, DeviceFacts):
            result.facts = exc.facts  # what the agent answered without our credential
        return result

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

    async def _device(self, engine: _Engines, target: Target, ctx: CollectContext,
                      idle: Callable[[], None] = lambda: None) -> CollectResult:
        """Collect one device; ``idle()`` is called once identification is done and only the
        exposure probes' answers are left to wait for: ``collect_many`` then starts another
        device (a silent probe costs no work, only its timeout)."""
        cred = self._credential(target, ctx)
        auth = make_auth(cred)
        timeout = max(0.2, min(self.request_timeout, ctx.timeout / (2 * (self.retries + 1))))
        transport = await self._transport(target, timeout, self.retries)
        session = _Session(engine, auth, transport)
        try:
            system = await session.get(SYSTEM_OIDS)
        except (_NoAnswer, AuthError) as exc:
            err = exc if isinstance(exc, AuthError) else await self._no_answer(engine, target, transport, cred, auth)
            if self.exposure:  # the default communities are tried whatever our own login did
                err.facts = await self._exposure_without_login(engine, target, transport, cred, auth)
            raise err from None
        plan = fingerprint.plan(system)
        # The exposure probes go out before the rest of identification, all at once.
        probes = await self._send_probes(engine, target, transport, cred, auth) if self.exposure else None
        try:
            return await self._identify(session, target, auth, system, plan, probes, idle)
        finally:
            if probes is not None:
                probes.close()

    async def _identify(self, session: _Session, target: Target, auth: _Auth, system: dict[str, Any],
                        plan: fingerprint.Plan, probes: _Probes | None, idle: Callable[[], None]) -> CollectResult:
        """Everything after the system group: vendor objects, walks, then the exposure facts."""
        try:
            snapshot = await gather(session, system, plan, entity_rows=self.entity_rows, if_rows=self.if_rows,
                                    interfaces=self.interfaces, if_speeds=self.if_speeds)
            partial = None
        except _NoAnswer:
            snapshot, partial = dict(system), "device stopped answering after the system group"
        facts = DeviceFacts(collected_at=now_iso())
        ident = fingerprint.identify(snapshot)
        fingerprint.apply(ident, facts, address=target.address)
        facts.sources.update({"identity": "snmp:system", "software": f"snmp:{ident.rule or 'unknown'}",
                              "hardware": "snmp:entity", "posture": "snmp:exposure"})
        facts.add_evidence("snmp", fingerprint.evidence(snapshot, MAX_EVIDENCE))
        if probes is not None:
            idle()
            versions, defaults, nopriv = await probes.result(auth)
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

    async def _no_answer(self, engine: _Engines, target: Target, transport: UdpTransportTarget,
                         cred: SNMPCredential, auth: _Auth) -> CollectError:
        """Turn silence into the right error: v1/v2c cannot tell a wrong community from
        an unreachable device, so a cheap unauthenticated v3 probe tells them apart. An
        SNMPv3 agent that drops our encrypted requests (Net-SNMP does so on a wrong privacy
        key, without a report) is asked once without privacy: an authenticated answer then
        proves the user and auth key right and the privacy key wrong."""
        if auth.version == "v3" and auth.level == "authPriv":
            probe = await self._transport(target, self.exposure_timeout, 0)
            try:
                await _Session(engine, make_auth(cred, level="authNoPriv"), probe).get([SYS_DESCR])
                authenticated = True
            except ProtocolError:  # an error-status in an authenticated response (e.g. authorizationError)
                authenticated = True
            except AuthError as exc:
                return AuthError(str(exc))
            except _NoAnswer:
                authenticated = False
            if authenticated:
                return AuthError("SNMPv3 refused: the agent accepted our user name and authentication key but "
                                 "did not answer our encrypted requests: wrong privacy key or privacy protocol")
        if await self._v3_answers(engine, _address(transport)):
            if auth.version == "v3":
                return AuthError("the SNMPv3 agent answers engine discovery but not our requests (an access "
                                 "rule or view refuses our user, or a wrong privacy key)")
            return AuthError(f"the device answers SNMP but not {auth.version} with our community "
                             "(wrong community or an ACL refuses us)")
        if auth.version == "v3":
            return CollectTimeout("no answer from the SNMPv3 agent: unreachable, filtered or SNMP off")
        return CollectTimeout(f"no answer to SNMP {auth.version}: wrong community, unreachable, filtered or SNMP off")

    async def _exposure_without_login(self, engine: _Engines, target: Target, transport: UdpTransportTarget,
                                      cred: SNMPCredential, auth: _Auth) -> DeviceFacts:
        """The exposure probes when our own credential failed: what the agent answers anyway."""
        probes = await self._send_probes(engine, target, transport, cred, auth, own_ok=False)
        try:
            versions, defaults, _ = await probes.result(auth, own_ok=False)
            seen = probes.answered_values()
        finally:
            probes.close()
        facts = DeviceFacts(collected_at=now_iso())
        if seen:  # what the device says it is, through a default community
            fingerprint.apply(fingerprint.identify(seen), facts, address=target.address)
            facts.add_evidence("snmp", fingerprint.evidence(seen, MAX_EVIDENCE))
        facts.identity.address = target.address
        facts.sources["posture"] = "snmp:exposure"
        facts.posture.snmp_versions = versions or None
        facts.posture.snmp_default_communities = defaults
        if not versions:
            facts.gaps["posture.snmp_versions"] = "the agent answered none of our probes"
        return facts

    # --- exposure ----------------------------------------------------------------------

    async def _send_probes(self, engine: _Engines, target: Target, transport: UdpTransportTarget,
                           cred: SNMPCredential, auth: _Auth, own_ok: bool = True) -> _Probes:
        """Send every exposure probe at once: default communities over v2c and v1, our own
        community over the other version, SNMPv3 engine discovery, or (for an authPriv
        credential) our user without privacy. Read-only GETs of sysDescr, one send each.

        Auditing exposure means trying the insecure versions on purpose. What our own
        request already proved (our community over our version) is not probed again.
        """
        probes = _Probes(await engine.wire(), _address(transport), self.exposure_timeout)
        configured = cred.community() if auth.version in ("v1", "v2c") else None
        if configured is not None and own_ok:
            probes.known(auth.version, configured)
        for version in ("v2c", "v1"):
            for community in DEFAULT_COMMUNITIES:
                probes.ask(version, community)
        if configured is not None:
            if own_ok:
                probes.ask("v1" if auth.version == "v2c" else "v2c", configured)
            probes.ask_v3()
        elif not own_ok:
            probes.ask_v3()
        elif auth.level == "authPriv":
            # Our user without privacy: does the agent accept it? (A VACM minimum of noauth
            # accepts authNoPriv too, so this one probe also finds agents open to noAuthNoPriv.)
            t = await self._transport(target, self.exposure_timeout, 0)
            probes.ask_nopriv(_Session(engine, make_auth(cred, level="authNoPriv"), t))
        return probes

    async def _v3_answers(self, engine: _Engines, address: tuple[str, int]) -> bool:
        """True when an SNMPv3 agent answers engine discovery (no credentials needed)."""
        wire = await engine.wire()
        answered = wire.send_v3_probe(address)
        try:
            return await asyncio.wait_for(answered, self.exposure_timeout)
        except TimeoutError:
            return False
        finally:
            wire.forget_v3(address, answered)


class _Slot:
    """A device's place among the ``ctx.concurrency`` in flight; ``release`` may come early."""

    def __init__(self, limit: asyncio.Semaphore) -> None:
        self.limit, self.held = limit, False

    async def __aenter__(self) -> _Slot:
        await self.limit.acquire()
        self.held = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self.held:
            self.held = False
            self.limit.release()


def _address(transport: UdpTransportTarget) -> tuple[str, int]:
    return str(transport.transport_address[0]), int(transport.transport_address[1])


def _accepted(version: int, es: int, ix: int, vbs: list[tuple[str, Any]]) -> bool:
    """Did a Response to a GET of sysDescr accept the community (as ``_Session.get`` reads it)?

    Any answer is an acceptance except an error other than tooBig, or v1's noSuchName.
    """
    if es == 0:
        return any(oid == SYS_DESCR for oid, _ in vbs)
    return es == 1 or (es == 2 and version == 0 and ix == 1)


class _Probes:
    """The exposure probes of one device: sent together, read when identification ends.

    Each probe is sent once (no retry) and counts as answered if its answer arrives any
    time before ``result`` returns: at least ``timeout`` after sending, and never before
    identification has finished. The probes leave before the identification requests
    that follow the system group, so an agent that answers in order (snmpd, snmpsim,
    embedded agents) has answered them by the time identification ends, however slow it
    or the scanner is; only an agent that stays silent costs the timeout, once.
    """

    def __init__(self, wire: _Wire, address: tuple[str, int], timeout: float) -> None:
        self.wire, self.address = wire, address
        self.deadline = time.monotonic() + timeout
        self.community: dict[tuple[str, str], tuple[int, asyncio.Future[Any]] | None] = {}  # None: known
        self.v3: asyncio.Future[bool] | None = None
        self.nopriv: list[asyncio.Task[dict[str, Any]]] = []

    def known(self, version: str, community: str) -> None:
        self.community[(version, community)] = None

    def ask(self, version: str, community: str) -> None:
        if (version, community) not in self.community:
            # sysObjectID too: when our own credential fails, a default community's answer is
            # all there is to tell what the device is (and so which checks apply).
            self.community[(version, community)] = self.wire.send(
                self.address, 0 if version == "v1" else 1, community.encode("utf-8"), snmpwire.GET,
                [SYS_DESCR, SYSTEM_OIDS[1]])

    def ask_v3(self) -> None:
        self.v3 = self.wire.send_v3_probe(self.address)

    def ask_nopriv(self, session: _Session) -> None:
        """Our v3 user at a lower security level (pysnmp: discovery, then the GET; its own timeout)."""
        self.nopriv.append(asyncio.ensure_future(session.get([SYS_DESCR])))

    async def result(self, auth: _Auth, own_ok: bool = True) -> tuple[list[str], list[str], bool | None]:
        """(versions answered, default communities answered, v3 without privacy) for ``auth``'s device;
        ``own_ok`` False: our own request was not answered, so it proves no version."""
        waiting = [f for f in self._futures() if not f.done()]
        remaining = self.deadline - time.monotonic()
        if waiting and remaining > 0:
            await asyncio.wait(waiting, timeout=remaining)
        answered: dict[tuple[str, str], bool] = {}
        for key, sent in self.community.items():
            if sent is None:
                answered[key] = True
            else:
                future = sent[1]
                answered[key] = future.done() and not future.cancelled() and _accepted(
                    0 if key[0] == "v1" else 1, *future.result())
        versions = ({auth.version} if own_ok else set()) | {version for (version, _), ok in answered.items() if ok}
        if self.v3 is not None and self.v3.done() and not self.v3.cancelled() and self.v3.result():
            versions.add("v3")
        defaults = [c for c in DEFAULT_COMMUNITIES if answered.get(("v2c", c)) or answered.get(("v1", c))]
        nopriv: bool | None = None
        if auth.version == "v3" and own_ok:
            nopriv = auth.level != "authPriv" or await self._nopriv_answers()
        return [v for v in ("v1", "v2c", "v3") if v in versions], defaults, nopriv

    def answered_values(self) -> dict[str, Any]:
        """sysDescr and sysObjectID from the first default-community probe that was answered."""
        for (version, _), sent in self.community.items():
            if sent is None or not sent[1].done() or sent[1].cancelled():
                continue
            es, ix, vbs = sent[1].result()
            if _accepted(0 if version == "v1" else 1, es, ix, vbs) and es == 0:
                return {oid: val for oid, val in vbs if val is not snmpwire.END}
        return {}

    async def _nopriv_answers(self) -> bool:
        for task in self.nopriv:
            try:
                if SYS_DESCR in await task:
                    return True
            except (_NoAnswer, CollectError):
                continue
        return False

    def _futures(self) -> list[asyncio.Future[Any]]:
        futures = [sent[1] for sent in self.community.values() if sent is not None]
        return futures + [f for f in (self.v3,) if f is not None] + list(self.nopriv)

    def close(self) -> None:
        """Stop listening: unanswered probes are forgotten (never resent)."""
        for sent in self.community.values():
            if sent is not None:
                self.wire.forget(sent[0])
        if self.v3 is not None:
            self.wire.forget_v3(self.address, self.v3)
        for task in self.nopriv:
            if not task.done():
                task.cancel()


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


# --- discovery probe -------------------------------------------------------------------


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


async def gather(session: Any, system: dict[str, Any], plan: fingerprint.Plan, *, entity_rows: int = 10,
                 if_rows: int = 256, interfaces: bool = True, if_speeds: bool = False) -> dict[str, Any]:
    """Everything identification reads after the system group, as one flat snapshot.

    ``session`` has ``get(oids)`` and ``walk(columns, max_rows, reps)``: the live
    ``_Session``, or ``collectors.snmprec.RecordedSession`` replaying a recording with the
    same requests (the corpus evaluation and its test use that). Two rounds: the vendor
    scalars, short walks and the ifType walk together; then, only if model, serial or
    version is still unknown, the ENTITY-MIB chassis row, walked together with the
    HOST-RESOURCES uptime, processor and disk columns when no rule (or only a generic host
    rule) matched.
    """
    if_walks = plan.if_walks + ([fingerprint.IF_HIGH_SPEED] if if_speeds else [])
    if_count = system.get(IF_NUMBER)
    # Bulk responses run past the end of a column: ask for about as many rows as exist.
    if_reps = min(if_rows, if_count + 1) if isinstance(if_count, int) and if_count > 0 else 8
    scalars, rows, if_values = await asyncio.gather(
        session.get(plan.gets),
        session.walk(plan.walks, entity_rows, 6),
        session.walk(if_walks, if_rows, if_reps) if interfaces else _nothing(),
    )
    rows.update(if_values)
    first = {**system, **scalars, **rows}
    entity, host_resources = fingerprint.second_round(first)
    if entity:
        # HOST-RESOURCES rides in the same walk as entPhysicalClass (no request of its own),
        # for a device no rule matched or a generic host rule matched.
        host = fingerprint.host_resources_columns() if host_resources else []
        rows.update(await session.walk([fingerprint.ENT_CLASS] + host, entity_rows, entity_rows if host else 6))
        chassis = fingerprint.chassis_candidates(rows)
        if chassis is not None:
            rows.update(await session.get(fingerprint.entity_row_oids(chassis)))
        else:  # no entPhysicalClass: a few rows of the useful columns instead
            rows.update(await session.walk(fingerprint.ENTITY_FALLBACK_WALK, 3))
    return {**system, **scalars, **rows}


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
