"""A simulated fleet of SSH hosts in one process (test, demo and benchmark peer only).

Each ``SimHost`` listens on its own loopback address (port 2222 by default), presents a
stable host key of its own, authenticates a username with a password and/or public keys,
and answers itaudit's probe exec with the recorded ``probe.txt`` of its case folder
(``tests/fixtures/<platform>/<case>/``). Windows cases announce themselves as OpenSSH
for Windows in their version banner and answer only the PowerShell command, like the
real thing. One acceptor thread serves every listening socket through a selector;
each connection gets paramiko's transport thread and each exec one short-lived thread.

Faults for failure tests (``SimHost.fault``):

- ``tarpit``: accept TCP, then say nothing at all;
- ``drop``: send part of the probe output, then cut the connection;
- ``stall``: send part of the probe output, then go silent with the channel open;
- ``flood``: send the probe header, then output without end.

With ``SimHost.serial_tag`` (``--unique-serials`` standalone) each copy of a case reports
its own serial number (``<recorded>-<tag>``), so a fleet of 1,000 copies of 20 cases is
1,000 distinct machines to the store, as a real city is; without it, every copy of a case
with a serial number is the same device.

Run standalone (used by ``bench/``)::

    python -m itaudit.sim.sshfleet --case tests/fixtures/linux/debian-12 --count 50 \\
        --base 127.3.1.1 --key-dir /tmp/keys --username bench --password-env PW
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import ipaddress
import json
import logging
import os
import selectors
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import paramiko

# Clients hanging up mid-handshake (timeouts, fault tests) make paramiko log tracebacks.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

DEFAULT_PORT = 2222
FAULTS = ("tarpit", "drop", "stall", "flood")
_LINUX_BANNER = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"
_WINDOWS_BANNER = "SSH-2.0-OpenSSH_for_Windows_9.5"


@dataclass(frozen=True)
class SimHost:
    """One simulated host: where it listens, which recorded case it answers with, any fault."""

    address: str
    case_dir: Path
    port: int = DEFAULT_PORT
    fault: str | None = None
    # Appended to the recorded serial number (``-0042``), so copies of one case are distinct
    # machines to the store, as in a real city (else every copy is the same device).
    serial_tag: str | None = None

    @property
    def platform(self) -> str:
        """``windows`` or ``linux``, from the fixture folder the case lives in."""
        return "windows" if Path(self.case_dir).parent.name == "windows" else "linux"

    @property
    def banner(self) -> str:
        f = Path(self.case_dir) / "banner.txt"
        if f.exists():
            return f.read_text(encoding="utf-8").strip()
        return _WINDOWS_BANNER if self.platform == "windows" else _LINUX_BANNER


@cache
def _probe_output(case_dir: Path, serial_tag: str | None = None) -> bytes:
    out = (Path(case_dir) / "probe.txt").read_bytes()
    return _tag_serial(out, serial_tag) if serial_tag else out


def _tag_serial(out: bytes, tag: str) -> bytes:
    """The probe output with the serial number the parser keeps made unique by ``tag``.

    Serials the parser drops as junk (``0123456789``, ``!unreadable``) stay as recorded.
    """
    from itaudit import plugins

    parse_probe = plugins._load("collectors.ssh:parse_probe")  # the project's parser decides what a serial is
    serial = parse_probe(out).hardware.serial
    if not serial:
        return out
    new = f"{serial}-{tag}"
    for old_field, new_field in ((f"product_serial={serial}\n", f"product_serial={new}\n"),
                                 (f'"SerialNumber":{json.dumps(serial)}', f'"SerialNumber":{json.dumps(new)}')):
        out = out.replace(old_field.encode(), new_field.encode())
    return out


def host_key(key_dir: Path, address: str) -> paramiko.PKey:
    """The stable Ed25519 host key of one address, generated once into ``key_dir``."""
    path = Path(key_dir) / f"{address}.ed25519"
    if not path.exists():
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        os.replace(tmp, path)  # atomic: a concurrent start never reads half a key
    return paramiko.Ed25519Key.from_private_key_file(str(path))


def addresses(base: str, count: int) -> list[str]:
    """``count`` consecutive loopback addresses from ``base`` (e.g. 127.3.1.1 …)."""
    start = ipaddress.IPv4Address(base)
    out = [str(start + i) for i in range(count)]
    if not all(ipaddress.IPv4Address(a).is_loopback for a in out):
        raise ValueError("the simulated fleet binds loopback addresses only")
    return out


class _Server(paramiko.ServerInterface):
    def __init__(self, fleet: SSHFleet, host: SimHost):
        self.fleet = fleet
        self.host = host

    def get_allowed_auths(self, username: str) -> str:
        methods = []
        if self.fleet.password is not None:
            methods.append("password")
        if self.fleet.authorized_keys:
            methods.append("publickey")
        return ",".join(methods) or "none"

    def check_auth_none(self, username: str) -> int:
        self.fleet._count("auth", self.host.address)
        return paramiko.AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        self.fleet._count("auth", self.host.address)
        ok = (self.fleet.password is not None and hmac.compare_digest(username, self.fleet.username)
              and hmac.compare_digest(password.encode(), self.fleet.password.encode()))
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        self.fleet._count("auth", self.host.address)
        ok = username == self.fleet.username and key.asbytes() in self.fleet.authorized_keys
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.fleet._count("exec", self.host.address)
        # Answer from another thread: writing here could block the transport thread itself.
        threading.Thread(target=self.fleet._answer, args=(self.host, channel, command.decode("utf-8", "replace")),
                         daemon=True, name=f"sim-exec-{self.host.address}").start()
        return True


class SSHFleet:
    """Many simulated SSH hosts in this process; a context manager.

    ``username``/``password`` (and/or ``authorized_keys``: public key files or
    ``paramiko.PKey`` objects) are accepted by every host. ``key_dir`` keeps each host's
    key so a restarted fleet presents the same keys.
    """

    def __init__(self, hosts: Iterable[SimHost], *, username: str, password: str | None = None,
                 key_dir: Path, authorized_keys: Iterable[str | Path | paramiko.PKey] = ()):
        self.hosts = list(hosts)
        self.username = username
        self.password = password
        self.key_dir = Path(key_dir)
        self.authorized_keys = {_public_blob(k) for k in authorized_keys}
        self.counts: Counter[tuple[str, str]] = Counter()
        self._keys: dict[str, paramiko.PKey] = {}
        self._listeners: dict[socket.socket, SimHost] = {}
        self._open: set[socket.socket | paramiko.Transport] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._selector: selectors.BaseSelector | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> SSHFleet:
        """Generate or load host keys, bind every address, start accepting."""
        sel = selectors.DefaultSelector()
        try:
            for h in self.hosts:
                if h.fault is not None and h.fault not in FAULTS:
                    raise ValueError(f"unknown fault {h.fault!r}")
                self._keys[h.address] = host_key(self.key_dir, h.address)
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((h.address, h.port))
                    s.listen(128)
                except OSError:
                    s.close()  # (not yet among the listeners closed below)
                    raise
                s.setblocking(False)
                self._listeners[s] = h
                sel.register(s, selectors.EVENT_READ)
        except BaseException:
            for s in self._listeners:
                s.close()
            self._listeners.clear()
            sel.close()
            raise
        self._selector = sel
        self._stop.clear()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name="sim-ssh-accept")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection and listening socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            conns = list(self._open)
            self._open.clear()
        for c in conns:
            with contextlib.suppress(Exception):  # best effort while shutting down
                c.close()
        for s in self._listeners:
            s.close()
        self._listeners.clear()
        if self._selector is not None:
            self._selector.close()
            self._selector = None

    def __enter__(self) -> SSHFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fingerprint(self, address: str) -> str:
        """The host key fingerprint of one simulated host (``ssh-ed25519 SHA256:…``)."""
        import base64
        import hashlib

        key = self._keys[address]
        digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
        return f"{key.get_name()} SHA256:{digest}"

    def auth_attempts(self, address: str) -> int:
        """How many authentication requests a host has seen (for "no credentials sent" tests)."""
        return self.counts[("auth", address)]

    # --- serving ------------------------------------------------------------------------

    def _count(self, what: str, address: str) -> None:
        with self._lock:
            self.counts[(what, address)] += 1

    def _accept_loop(self) -> None:
        sel = self._selector
        assert sel is not None
        while not self._stop.is_set():
            for key, _ in sel.select(timeout=0.2):
                lsock = key.fileobj
                host = self._listeners.get(lsock)  # type: ignore[call-overload]
                if host is None:
                    continue
                try:
                    conn, _ = lsock.accept()  # type: ignore[union-attr]
                except (BlockingIOError, OSError):
                    continue
                conn.setblocking(True)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._count("connect", host.address)
                if host.fault == "tarpit":
                    with self._lock:
                        self._open.add(conn)
                    continue
                try:
                    self._serve(conn, host)
                except Exception:
                    conn.close()

    def _serve(self, conn: socket.socket, host: SimHost) -> None:
        t = paramiko.Transport(conn)
        t.local_version = host.banner
        t.add_server_key(self._keys[host.address])
        with self._lock:
            if len(self._open) > 2 * len(self.hosts) + 64:  # forget finished sessions
                self._open = {c for c in self._open if not isinstance(c, paramiko.Transport) or c.is_active()}
            self._open.add(t)
        # With an event, start_server returns at once; paramiko's own thread negotiates.
        t.start_server(event=threading.Event(), server=_Server(self, host))

    def _answer(self, host: SimHost, chan: paramiko.Channel, command: str) -> None:
        try:
            self._answer_inner(host, chan, command)
        except (OSError, EOFError, paramiko.SSHException):
            pass  # the client went away: nothing to answer
        finally:
            with contextlib.suppress(Exception):
                chan.close()

    def _answer_inner(self, host: SimHost, chan: paramiko.Channel, command: str) -> None:
        cmd = command.strip()
        if host.platform == "windows":
            is_probe = cmd.lower().startswith(("powershell", "pwsh")) and "-encodedcommand" in cmd.lower()
            not_found = f"'{cmd.split()[0] if cmd else ''}' is not recognized as an internal or external command,\r\n"
        else:
            is_probe = cmd in ("sh -s", "/bin/sh -s")
            not_found = f"sh: 1: {cmd.split()[0] if cmd else ''}: not found\n"
        # Wait for the client's end of input first: it sends that only after our exec
        # reply, so answering (and closing) can never overtake the reply itself.
        _drain_stdin(chan)
        if cmd == "true":
            chan.send_exit_status(0)
            return
        if cmd.startswith("echo "):
            chan.sendall(cmd[5:].encode() + b"\n")
            chan.send_exit_status(0)
            return
        if not is_probe:
            chan.sendall_stderr(not_found.encode())
            chan.send_exit_status(127 if host.platform == "linux" else 1)
            return
        out = _probe_output(Path(host.case_dir), host.serial_tag)
        if host.fault in ("drop", "stall"):
            chan.sendall(out[: len(out) * 2 // 5])
            if host.fault == "drop":
                chan.get_transport().close()  # type: ignore[union-attr]
                return
            self._stop.wait()
            return
        if host.fault == "flood":
            chan.sendall(out[:200])
            block = b"flood " * 10922 + b"\n"
            while not self._stop.is_set() and not chan.closed:
                chan.sendall(block)
            return
        chan.sendall(out)
        chan.send_exit_status(0)


def _drain_stdin(chan: paramiko.Channel, limit: float = 2.0) -> None:
    """Read the probe script the client sends (until its EOF), like a shell would."""
    chan.settimeout(limit)
    end = time.monotonic() + limit
    try:
        while time.monotonic() < end:
            if not chan.recv(65536):
                return
    except TimeoutError:
        return
    finally:
        chan.settimeout(None)


def _public_blob(k: str | Path | paramiko.PKey) -> bytes:
    if isinstance(k, paramiko.PKey):
        return k.asbytes()
    text = Path(k).read_text(encoding="utf-8").split()
    import base64

    return base64.b64decode(text[1])


def main(argv: list[str] | None = None) -> int:
    """Serve ``--count`` copies of one case (or several ``--case``) until stdin closes."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", action="append", required=True, type=Path)
    ap.add_argument("--count", type=int, default=0, help="hosts (default: one per --case)")
    ap.add_argument("--base", default="127.3.1.1")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT)
    ap.add_argument("--key-dir", type=Path, required=True)
    ap.add_argument("--username", default="itaudit")
    ap.add_argument("--password-env", default="ITAUDIT_SIM_PASSWORD")
    ap.add_argument("--authorized-key", action="append", default=[], type=Path)
    ap.add_argument("--unique-serials", action="store_true",
                    help="make each host's serial number unique (a city of distinct machines)")
    args = ap.parse_args(argv)
    count = args.count or len(args.case)
    hosts = [SimHost(a, args.case[i % len(args.case)], args.port,
                     serial_tag=a.replace(".", "") if args.unique_serials else None)
             for i, a in enumerate(addresses(args.base, count))]
    fleet = SSHFleet(hosts, username=args.username, password=os.environ.get(args.password_env),
                     key_dir=args.key_dir, authorized_keys=args.authorized_key)
    with fleet:
        print(f"READY {count}", flush=True)
        sys.stdin.read()  # run until the parent closes our stdin
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
