"""The SSH collector: one connection, one exec, one probe per host.

The only module of itaudit that imports paramiko (besides the test simulator).

Flow for one target, all inside one deadline (``ctx.timeout``):

1. open the TCP socket ourselves with ``TCP_NODELAY`` (paramiko does not set it, which
   costs ~44 ms per exec through Nagle + delayed ACK) and hand it to ``Transport(sock=)``
   non-blocking and reading ahead (``_ReadAheadSocket``: half the system calls, each a
   GIL hand-over), with a packetizer that times the key exchange without a thread of its
   own (``_Packetizer``), asking for AES-GCM first (no per-packet HMAC in Python);
2. key exchange, then verify the host key against itaudit's own known_hosts
   (``ctx.known_hosts``) BEFORE any authentication: unknown -> pinned (trust on first
   use); changed -> ``HostKeyMismatch`` and no credential is ever sent;
3. authenticate with the target's ``SSHCredential`` (key file, ssh-agent, password or
   keyboard-interactive; secrets read only now);
4. pick the platform without an extra round trip: OpenSSH for Windows announces itself
   in its version banner (``SSH-2.0-OpenSSH_for_Windows_9.5``); a target tag
   ``windows``/``linux`` overrides it. POSIX hosts get ``sh -s`` with the probe script on
   stdin; Windows hosts get ``powershell -NoProfile -NonInteractive -EncodedCommand``
   with a tiny bootstrap that reads the probe from stdin (so the command line stays far
   below cmd.exe's 8 KiB limit);
5. read at most ``ctx.max_output`` bytes until EOF or the deadline; a probe cut short
   keeps what arrived (status ``partial``, missing sections unknown).

The server's algorithm offer (its KEXINIT: key exchange, host key, cipher and MAC lists)
is captured during step 1 by ``_AuditTransport``, before any negotiation, so the
weak-crypto check has it even when negotiation or login fails: such errors carry those
facts (``CollectError.facts``). itaudit negotiates modern-only servers out of the box
(``curve25519-sha256``, the RFC 8731 name, besides paramiko's ``@libssh.org`` one) and
legacy-only ones (``diffie-hellman-group14-sha1``, ``ssh-rsa`` host keys with SHA-1
signatures) only when the city opts in: ``legacy_algorithms = true`` on the credential or
the tag ``legacy-ssh`` on the target. A server offering only the ``sntrup761x25519``
post-quantum hybrid cannot be negotiated (paramiko does not implement it): the error names
both sides' key exchange lists and what to add, and the offer is still judged.
"""

from __future__ import annotations

import base64
import logging
import select
import socket
import time
from functools import cache, lru_cache
from hashlib import sha1
from importlib import resources
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import hashes
from paramiko.kex_curve25519 import KexCurve25519
from paramiko.kex_group14 import KexGroup14SHA256

from collectors.base import CollectContext, Collector, now_iso
from collectors.known_hosts import KnownHosts, fingerprint, import_known_hosts, open_known_hosts
from collectors.linux import parse_linux
from collectors.windows import decode_output, parse_windows
from itaudit.credentials import SSHCredential
from itaudit.errors import (
    AuthError,
    CollectError,
    CollectTimeout,
    ConnectError,
    HostKeyMismatch,
    ProtocolError,
)
from itaudit.model import CollectResult, DeviceFacts, ResultStatus, Target, clip

LEGACY_TAG = "legacy-ssh"

__all__ = ["SSHCollector", "import_known_hosts", "linux_command", "offered_host_key", "offer_facts",
           "windows_command", "probe_script"]

# paramiko's transport threads log a traceback when we hang up on a silent host; without a
# handler Python would print it to stderr. The application's logging config still sees it.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

LINUX_COMMAND = "sh -s"
_PS_BOOTSTRAP = "$ErrorActionPreference='Continue';$s=[Console]::In.ReadToEnd();Invoke-Expression $s"
_READ_CHUNK = 65536
# paramiko names the RSA host key "ssh-rsa" but negotiates it as one of these algorithms.
_KEY_ALGOS = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256")}
# Ciphers asked for first (the rest of paramiko's list stays as fallback). AES-GCM is an
# AEAD: no separate HMAC per packet, and so none of paramiko's pure-Python constant-time
# MAC comparison (64 Python calls per packet) either. Key exchange stays paramiko's
# default, the post-quantum hybrid mlkem768x25519 first: it costs ~0.1 ms per host.
_CIPHERS_FIRST = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


@cache
def probe_script(platform: str) -> str:
    """The probe source for ``linux`` or ``windows`` (comment lines stripped to save bytes)."""
    name = "linux.sh" if platform == "linux" else "windows.ps1"
    text = resources.files("collectors").joinpath("probes", name).read_text(encoding="utf-8")
    keep = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return "\n".join(keep) + "\n"


def linux_command() -> str:
    """The exec command for POSIX hosts (the script itself goes to stdin)."""
    return LINUX_COMMAND


@cache
def windows_command(shell: str = "powershell") -> str:
    """The exec command for Windows hosts: PowerShell (``powershell`` 5.1 or ``pwsh`` 7)
    with an encoded bootstrap that reads the probe from stdin."""
    encoded = base64.b64encode(_PS_BOOTSTRAP.encode("utf-16-le")).decode()
    return f"{shell} -NoProfile -NonInteractive -EncodedCommand {encoded}"


class _ReadAheadSocket:
    """The TCP socket as paramiko's transport thread uses it, with fewer system calls.

    paramiko reads each packet with several small ``recv`` calls (the first cipher block,
    then the rest), and on a socket with a timeout (the transport sets 0.1 s) CPython
    makes each one a ``poll`` and then a ``recv``, two system calls that each give up the
    GIL and must win it back from the other collector threads. Here the socket is
    non-blocking: a ``recv`` fetches whatever has arrived (up to 64 KiB) in one call,
    later small reads are served from that buffer, and ``poll`` (with the transport's
    timeout) runs only when nothing has arrived yet. The poll-then-read behaviour,
    timeouts and end-of-file are what a socket with a timeout gives; ``paramiko.Transport``
    documents socket-like objects (``send``, ``recv``, ``close``, ``settimeout``). Only the
    transport's own thread reads, so the buffer needs no lock.
    """

    _CHUNK = 65536

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._data = b""
        self._pos = 0
        self._timeout_ms: int | None = None
        sock.setblocking(False)
        self._readable = select.poll()
        self._readable.register(sock.fileno(), select.POLLIN)
        self.getpeername = sock.getpeername
        self.fileno = sock.fileno

    @property
    def _closed(self) -> bool:  # read by Transport.stop_thread
        return bool(getattr(self._sock, "_closed", False))

    def settimeout(self, timeout: float | None) -> None:
        self._timeout_ms = None if timeout is None else max(0, int(timeout * 1000))

    def recv(self, n: int) -> bytes:
        if self._pos < len(self._data):
            start = self._pos
            self._pos = min(start + n, len(self._data))
            return self._data[start:self._pos]
        try:
            data = self._sock.recv(max(n, self._CHUNK))
        except BlockingIOError:
            if not self._readable.poll(self._timeout_ms):
                raise TimeoutError("timed out") from None
            try:
                data = self._sock.recv(max(n, self._CHUNK))
            except BlockingIOError:  # woken up with nothing to read after all: a timeout to paramiko
                raise TimeoutError("timed out") from None
        if len(data) <= n:
            self._data, self._pos = b"", 0
            return data
        self._data, self._pos = data, n
        return data[:n]

    def send(self, data: bytes) -> int:
        try:
            return self._sock.send(data)
        except BlockingIOError:
            writable = select.poll()  # rare: the send buffer is full (any thread may send)
            writable.register(self._sock.fileno(), select.POLLOUT)
            if not writable.poll(self._timeout_ms):
                raise TimeoutError("timed out") from None
            return self._sock.send(data)

    def close(self) -> None:
        self._data, self._pos = b"", 0
        self._sock.close()


class _Packetizer(paramiko.Packetizer):
    """paramiko's packetizer, timing the key exchange against a clock reading instead of
    starting a ``threading.Timer`` thread per connection (its only use of the timer is to
    answer ``handshake_timed_out``, which the transport asks on every read)."""

    _handshake_deadline: float | None = None
    _handshake_done = False

    def start_handshake(self, timeout: float) -> None:
        if self._handshake_deadline is None:
            self._handshake_deadline = time.monotonic() + float(timeout)

    def handshake_timed_out(self) -> bool:
        if self._handshake_deadline is None or self._handshake_done:
            return False
        return time.monotonic() >= self._handshake_deadline

    def complete_handshake(self) -> None:
        if self._handshake_deadline is not None:
            self._handshake_done = True


class _KexGroup14SHA1(KexGroup14SHA256):
    """RFC 4253's diffie-hellman-group14-sha1 (paramiko 5 dropped it): legacy opt-in only."""

    name = "diffie-hellman-group14-sha1"
    hash_algo = sha1


class _SHA1RSAKey(paramiko.RSAKey):
    """An RSA host key that also verifies ``ssh-rsa`` (SHA-1) signatures: legacy opt-in only."""

    HASHES = {**paramiko.RSAKey.HASHES, "ssh-rsa": hashes.SHA1}


class _AuditTransport(paramiko.Transport):
    """paramiko's client transport that keeps the server's algorithm offer (its KEXINIT).

    Also knows ``curve25519-sha256``, RFC 8731's name for paramiko's
    ``curve25519-sha256@libssh.org``: a modern-only sshd offers no other name.
    """

    _kex_info = {**paramiko.Transport._kex_info, "curve25519-sha256": KexCurve25519}
    _preferred_kex = tuple(
        k for name in paramiko.Transport._preferred_kex
        for k in ((name, "curve25519-sha256") if name == "curve25519-sha256@libssh.org" else (name,))
    )
    server_offer: dict[str, list[str]] | None = None

    def _really_parse_kex_init(self, m, ignore_first_byte=False):  # type: ignore[no-untyped-def]
        parsed = super()._really_parse_kex_init(m, ignore_first_byte)
        if not ignore_first_byte and self.server_offer is None:  # the peer's KEXINIT (not our own)
            self.server_offer = {
                "kex": [k for k in parsed["kex_algo_list"] if not k.startswith(("ext-info-", "kex-strict-"))],
                "host_keys": list(parsed["server_key_algo_list"]),
                "ciphers": list(dict.fromkeys(parsed["client_encrypt_algo_list"]
                                              + parsed["server_encrypt_algo_list"])),
                "macs": list(dict.fromkeys(parsed["client_mac_algo_list"] + parsed["server_mac_algo_list"])),
            }
        return parsed


class _LegacyTransport(_AuditTransport):
    """Also negotiates diffie-hellman-group14-sha1 and ``ssh-rsa`` (SHA-1) host keys, last."""

    _kex_info = {**_AuditTransport._kex_info, "diffie-hellman-group14-sha1": _KexGroup14SHA1}
    _preferred_kex = (*_AuditTransport._preferred_kex, "diffie-hellman-group14-sha1")
    _key_info = {**paramiko.Transport._key_info, "ssh-rsa": _SHA1RSAKey}
    _preferred_keys = (*paramiko.Transport._preferred_keys, "ssh-rsa")


def _ours(transport: paramiko.Transport) -> dict[str, list[str]]:
    opts = transport.get_security_options()
    return {"kex": list(opts.kex), "host_keys": list(opts.key_types), "ciphers": list(opts.ciphers),
            "macs": list(opts.digests)}


# What the legacy opt-in adds (``_LegacyTransport``), per negotiation part.
_LEGACY_ADDS = {"kex": {"diffie-hellman-group14-sha1"}, "host_keys": {"ssh-rsa"}}
# Post-quantum hybrid key exchange families (OpenSSH: sntrup761 since 8.5, ML-KEM since 9.9).
_PQ_HYBRID = ("sntrup761x25519-", "mlkem")


def _incompatible(offer: dict[str, list[str]] | None, ours: dict[str, list[str]], why: str) -> str:
    """Name the algorithms on both sides of a failed negotiation, and what would make them meet."""
    low = why.lower()
    part = ("host_keys" if "host key" in low else "ciphers" if "cipher" in low else
            "macs" if "mac" in low else "kex")
    label = {"kex": "key exchange", "host_keys": "host key", "ciphers": "cipher", "macs": "MAC"}[part]
    offered = (offer or {}).get(part, [])
    theirs = ", ".join(offered) or "unknown"
    mine = ", ".join(ours.get(part, []))
    hint = ""
    legacy = [a for a in offered if a in _LEGACY_ADDS.get(part, set()) and a not in ours.get(part, [])]
    if legacy:
        hint = (f"; if the city accepts this legacy device, set legacy_algorithms = true on its credential "
                f"or tag the target {LEGACY_TAG!r}")
    elif offered and part == "kex" and all(a.startswith(_PQ_HYBRID) for a in offered):
        hint = (f"; the server offers only post-quantum hybrid key exchange, which is not weak but which "
                f"itaudit's SSH library (paramiko {paramiko.__version__}) does not implement for these names: "
                f"add curve25519-sha256 (or mlkem768x25519-sha256 on OpenSSH 9.9 and later) to the server's "
                f"KexAlgorithms (a global setting: sshd does not allow it in a Match block)")
    elif offered:
        hint = f"; none of the server's {label} algorithms is one itaudit implements"
    return clip(f"no common {label} algorithm: the server offers {theirs}; itaudit offers {mine}{hint}", 900) or ""


def offer_facts(offer: dict[str, list[str]] | None, banner: str, facts: DeviceFacts | None = None) -> DeviceFacts:
    """Facts the key exchange alone shows (no login needed): the server's offer and banner."""
    facts = facts or DeviceFacts()
    po = facts.posture
    if offer:
        po.ssh_kex_offered = [clip(a, 80) or "" for a in offer["kex"][:64]]
        po.ssh_host_keys_offered = [clip(a, 80) or "" for a in offer["host_keys"][:64]]
        po.ssh_ciphers_offered = [clip(a, 80) or "" for a in offer["ciphers"][:64]]
        po.ssh_macs_offered = [clip(a, 80) or "" for a in offer["macs"][:64]]
        facts.sources.setdefault("posture", "ssh:kexinit")
    else:
        for f in ("ssh_kex_offered", "ssh_host_keys_offered", "ssh_ciphers_offered", "ssh_macs_offered"):
            facts.gaps.setdefault(f"posture.{f}", "the server sent no algorithm offer (closed before key exchange)")
    if banner:
        po.ssh_banner = clip(banner, 200)
    return facts


class _Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + max(0.1, seconds)

    def left(self) -> float:
        return self.end - time.monotonic()

    def passed(self) -> bool:
        return self.left() <= 0

    def need(self, what: str) -> float:
        left = self.left()
        if left <= 0:
            raise CollectTimeout(f"deadline reached before {what}")
        return left


class SSHCollector(Collector):
    """Collect a Linux/POSIX or Windows host over SSH with one exec (see module doc)."""

    protocol = "ssh"

    def collect(self, target: Target, ctx: CollectContext) -> CollectResult:
        """Collect one target; raises a ``CollectError`` subclass on failure."""
        started = now_iso()
        t0 = time.monotonic()
        cred = _credential(target, ctx)
        port = target.port or 22
        deadline = _Deadline(ctx.timeout)
        transport: _AuditTransport | None = None
        legacy = bool(cred.legacy_algorithms) or LEGACY_TAG in {t.lower() for t in target.tags}
        try:
            sock = _connect(target.address, port, deadline)
            kind = _LegacyTransport if legacy else _AuditTransport
            transport = kind(_ReadAheadSocket(sock), packetizer_class=_Packetizer)
            transport.banner_timeout = deadline.left()
            _prefer_ciphers(transport)
            known = _known_hosts(ctx.known_hosts) if ctx.known_hosts else None
            pinned = known.lookup(target.address, port) if known else []
            if pinned:
                _prefer_key_types(transport, [t for t, _ in pinned])
            transport.start_client(timeout=deadline.need("key exchange"))
            host_fp = _verify_host_key(transport, target.address, port, pinned, known)
            _authenticate(transport, cred, deadline)
            platform = _platform(target, transport.remote_version or "")
            sudo = bool(cred.sudo and ctx.allow_sudo)
            shell = "pwsh" if "pwsh" in {t.lower() for t in target.tags} else "powershell"
            data, complete_read, why = _run_probe(transport, platform, sudo, deadline, ctx.max_output, shell)
            banner = transport.remote_version or ""
        except CollectError as exc:
            raise _with_offer(exc, transport) from exc.__cause__
        except paramiko.AuthenticationException as exc:
            raise _with_offer(AuthError(f"authentication failed: {clip(exc, 200)}"), transport) from exc
        except TimeoutError as exc:
            raise _with_offer(CollectTimeout(f"no answer within {ctx.timeout:g} s"), transport) from exc
        except paramiko.IncompatiblePeer as exc:
            assert transport is not None  # noqa: S101 - only the transport raises it
            raise _with_offer(ProtocolError(_incompatible(transport.server_offer, _ours(transport), str(exc))),
                              transport) from exc
        except (paramiko.SSHException, EOFError, OSError) as exc:
            if deadline.passed():
                raise _with_offer(CollectTimeout(f"no answer within {ctx.timeout:g} s"), transport) from exc
            stage = "during key exchange" if transport is not None and not transport.server_offer else ""
            why = clip(exc, 200) or type(exc).__name__
            if isinstance(exc, (EOFError, ConnectionResetError)):
                why = f"the server closed the connection ({why})"
            raise _with_offer(ConnectError(f"SSH session failed{' ' + stage if stage else ''}: {why}"),
                              transport) from exc
        finally:
            if transport is not None:
                transport.close()
        if not data:
            if why == "timeout":
                raise CollectTimeout(f"probe sent nothing within {ctx.timeout:g} s")
            raise ProtocolError("the probe produced no output")
        if b"=== ITAUDIT " not in data[:4096] and b"=== SECTION " not in data:
            # Not a shell that runs our probe (restricted CLI, wrong platform): say what it said.
            first = decode_output(data[:300]).strip().splitlines()
            raise ProtocolError(f"the {platform} probe did not run: {clip(first[0] if first else '', 200)}")
        facts = parse_probe(data, platform)
        # Our clock, not the device's (which may be wrong); the device's stays as evidence.
        if facts.collected_at:
            facts.add_evidence("device-clock", facts.collected_at)
        facts.collected_at = started
        facts.identity.address = target.address
        facts.identity.ssh_host_key = host_fp
        facts.add_evidence("ssh-banner", banner)
        offer_facts(transport.server_offer if transport is not None else None, banner, facts)
        status = ResultStatus.OK
        if not complete_read or not _complete(data):
            status = ResultStatus.PARTIAL
            reasons = {"timeout": "probe timed out part-way", "cut": f"output cut at {ctx.max_output} bytes",
                       "dropped": "connection dropped mid-probe"}
            facts.gaps.setdefault("probe", reasons.get(why or "", "probe ended early"))
        return CollectResult(
            target=target, status=status, facts=facts, started_at=started,
            duration_ms=int((time.monotonic() - t0) * 1000),
            error=None if status is ResultStatus.OK else facts.gaps.get("probe"),
        )


def _with_offer(exc: CollectError, transport: _AuditTransport | None) -> CollectError:
    """Attach what the key exchange showed (the server's offer) to an error, for the checks
    that need no login (weak crypto)."""
    if transport is not None and transport.server_offer and getattr(exc, "facts", None) is None:
        exc.facts = offer_facts(transport.server_offer, transport.remote_version or "")
    return exc


def offered_host_key(address: str, port: int, timeout: float = 10.0, *, legacy: bool = False,
                     key_types: list[str] | None = None) -> tuple[str, bytes]:
    """The host key a server offers now: key exchange only, no authentication, nothing pinned.

    ``key_types`` puts those key types first (the type pinned before), as a scan would.
    For ``itaudit hostkey accept``; raises ``ConnectError``/``ProtocolError`` with the reason.
    """
    deadline = _Deadline(timeout)
    sock = _connect(address, port, deadline)
    transport = (_LegacyTransport if legacy else _AuditTransport)(_ReadAheadSocket(sock),
                                                                  packetizer_class=_Packetizer)
    try:
        transport.banner_timeout = deadline.left()
        if key_types:
            _prefer_key_types(transport, key_types)
        transport.start_client(timeout=deadline.need("key exchange"))
        key = transport.get_remote_server_key()
        return key.get_name(), key.asbytes()
    except paramiko.IncompatiblePeer as exc:
        raise ProtocolError(_incompatible(transport.server_offer, _ours(transport), str(exc))) from exc
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise ConnectError(f"SSH key exchange with {address}:{port} failed: {clip(exc, 200)}") from exc
    finally:
        transport.close()


def parse_probe(data: bytes | str, platform: str | None = None) -> DeviceFacts:
    """Parse probe output with the parser its header names (``platform`` as fallback)."""
    text = decode_output(data) if isinstance(data, bytes) else data
    head = text[:200]
    if "=== ITAUDIT windows-probe" in head or (platform == "windows" and "linux-probe" not in head):
        return parse_windows(text)
    return parse_linux(text)


def _complete(data: bytes) -> bool:
    return b"=== END ===" in data[-256:]


# --- steps ---------------------------------------------------------------------------


def _credential(target: Target, ctx: CollectContext) -> SSHCredential:
    cred = ctx.credentials.get(target.credential or "")
    if not isinstance(cred, SSHCredential):
        raise AuthError(f"no SSH credential named {target.credential!r} for this city")
    return cred


def _connect(address: str, port: int, deadline: _Deadline) -> socket.socket:
    try:
        sock = socket.create_connection((address, port), timeout=deadline.need("connect"))
    except ConnectionRefusedError as exc:
        raise ConnectError(f"connection refused by {address}:{port}") from exc
    except TimeoutError as exc:
        raise CollectTimeout(f"no TCP answer from {address}:{port}") from exc
    except OSError as exc:
        raise ConnectError(f"cannot reach {address}:{port}: {exc.strerror or exc}") from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(None)  # paramiko's thread polls on its own; deadlines are ours
    return sock


@lru_cache(maxsize=64)
def _known_hosts(path: Path) -> KnownHosts:
    """``open_known_hosts`` without resolving the path again for every host (five ``lstat``
    calls, each a GIL hand-over). The shared object still reloads the file when it changes."""
    return open_known_hosts(path)


def _prefer_ciphers(transport: paramiko.Transport) -> None:
    opts = transport.get_security_options()
    current = list(opts.ciphers)
    first = [c for c in _CIPHERS_FIRST if c in current]
    opts.ciphers = first + [c for c in current if c not in first]


def _prefer_key_types(transport: paramiko.Transport, pinned_types: list[str]) -> None:
    """Negotiate the pinned key type first, so a host with several keys is not a mismatch."""
    opts = transport.get_security_options()
    current = list(opts.key_types)
    wanted: list[str] = []
    for t in pinned_types:
        for algo in _KEY_ALGOS.get(t, (t,)):
            if algo in current and algo not in wanted:
                wanted.append(algo)
    if wanted:
        opts.key_types = wanted + [k for k in current if k not in wanted]


def _verify_host_key(transport: paramiko.Transport, address: str, port: int,
                     pinned: list[tuple[str, bytes]], known: KnownHosts | None) -> str:
    key = transport.get_remote_server_key()
    key_type, blob = key.get_name(), key.asbytes()
    offered = fingerprint(key_type, blob)
    if pinned:
        if (key_type, blob) not in pinned:
            expected = ", ".join(fingerprint(t, b) for t, b in pinned)
            raise HostKeyMismatch(
                f"host key of {address}:{port} changed: pinned {expected}, offered {offered}; "
                "no credentials were sent (after checking it: itaudit hostkey accept)",
                expected=expected, offered=offered,
            )
    elif known is not None:
        known.pin(address, port, key_type, blob)
    return offered


def _authenticate(transport: paramiko.Transport, cred: SSHCredential, deadline: _Deadline) -> None:
    tried: list[str] = []
    allowed: list[str] | None = None

    def attempt(method: str, fn) -> bool:  # type: ignore[no-untyped-def]
        nonlocal allowed
        if allowed is not None and method not in allowed:
            return False
        transport.auth_timeout = deadline.need("authentication")
        tried.append(method)
        try:
            fn()
        except paramiko.BadAuthenticationType as exc:
            allowed = list(exc.allowed_types)
            return False
        except paramiko.AuthenticationException:
            return False
        return transport.is_authenticated()

    if cred.key_file:
        pkey = _load_key(cred)
        if attempt("publickey", lambda: transport.auth_publickey(cred.username, pkey)):
            return
    if cred.use_agent:
        agent = paramiko.Agent()
        try:
            for akey in agent.get_keys():
                if attempt("publickey", lambda k=akey: transport.auth_publickey(cred.username, k)):
                    return
        finally:
            agent.close()
    if cred.password_env or cred.password_keyring:
        password = cred.password()  # read only now; never stored
        if attempt("password", lambda: transport.auth_password(cred.username, password or "")):
            return

        def answer(title, instructions, prompts):  # type: ignore[no-untyped-def]
            return [password or "" for _ in prompts]

        # Servers that take passwords only through PAM's keyboard-interactive method
        # reject "password" as a type; a wrong password is not retried another way.
        if allowed is not None and "password" not in allowed and attempt(
                "keyboard-interactive", lambda: transport.auth_interactive(cred.username, answer)):
            return
    methods = ", ".join(dict.fromkeys(tried)) or "none configured"
    raise AuthError(f"authentication failed for user {cred.username!r} (tried: {methods})")


def _load_key(cred: SSHCredential) -> paramiko.PKey:
    path = cred.key_file or ""
    try:
        return paramiko.PKey.from_path(path)
    except (paramiko.PasswordRequiredException, TypeError):
        # An encrypted key: paramiko says so, or (OpenSSH-format keys) cryptography's TypeError.
        passphrase = cred.password()
        if not passphrase:
            raise AuthError(f"key file {path} is encrypted and no passphrase is configured") from None
        try:
            return paramiko.PKey.from_path(path, passphrase.encode())  # type: ignore[arg-type]
        except (paramiko.SSHException, ValueError, TypeError) as exc:
            raise AuthError(f"cannot decrypt key file {path}") from exc
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise AuthError(f"cannot load key file {path}: {clip(exc, 120)}") from exc


def _platform(target: Target, banner: str) -> str:
    tags = {t.lower() for t in target.tags}
    if "windows" in tags or "pwsh" in tags:
        return "windows"
    if "linux" in tags or "posix" in tags:
        return "linux"
    return "windows" if "windows" in banner.lower() else "linux"


def _run_probe(transport: paramiko.Transport, platform: str, sudo: bool, deadline: _Deadline,
               max_output: int, shell: str = "powershell") -> tuple[bytes, bool, str | None]:
    """Exec the probe; return (output, ended normally, reason when not: timeout/cut)."""
    chan = transport.open_session(timeout=deadline.need("opening a session"))
    try:
        # stderr is merged so an unread stderr buffer can never stall the channel window.
        chan.set_combine_stderr(True)
        chan.settimeout(deadline.need("exec"))
        if platform == "windows":
            chan.exec_command(windows_command(shell))
            payload = probe_script("windows")
        else:
            chan.exec_command(linux_command())
            payload = ("ITAUDIT_SUDO=1\n" if sudo else "") + probe_script("linux")
        chan.sendall(payload.encode("utf-8"))
        chan.shutdown_write()
        chunks: list[bytes] = []
        total = 0
        while True:
            left = deadline.left()
            if left <= 0:
                return b"".join(chunks), False, "timeout"
            chan.settimeout(left)
            try:
                data = chan.recv(_READ_CHUNK)
            except TimeoutError:
                return b"".join(chunks), False, "timeout"
            except (EOFError, OSError, paramiko.SSHException):
                return b"".join(chunks), False, "dropped"
            if not data:
                return b"".join(chunks), True, None
            if total + len(data) > max_output:
                chunks.append(data[: max_output - total])
                return b"".join(chunks), False, "cut"
            chunks.append(data)
            total += len(data)
    finally:
        chan.close()
