"""A fleet of simulated SNMP devices: one ``snmpsim-command-responder`` process, one
loopback address per device.

Each recording ``NAME.snmprec`` in ``data_dir`` becomes one simulated device with its own
SNMP engine (its own engine ID and USM user) listening on its own ``address:port``.
snmpsim scopes data directories per engine (``--v3-engine-id ... --data-dir D
--agent-udpv4-endpoint A``), so every device gets a private data folder holding two links
to its recording:

- ``<community>.snmprec``: answers SNMPv1/v2c with that community (default ``public``);
- ``self.snmprec``: answers SNMPv3 with the empty context name real devices use.

So a device is addressed exactly like a real one: ``SimDevice.address``/``port``, the
community, or the v3 user with SHA/AES keys. Test and demo peer only: this module never
imports pysnmp (readiness is polled with a hand-built SNMP GET over a plain UDP socket).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_BASE_ADDRESS = "127.0.4.10"
DEFAULT_PORT = 1161
SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)


@dataclass(frozen=True)
class SimDevice:
    """One simulated device and how to reach it (the keys are test-only, not secrets)."""

    name: str
    recording: Path
    address: str
    port: int
    community: str = "public"
    v3_user: str = "itaudit"
    v3_auth_proto: str = "SHA"
    v3_auth_key: str = "itaudit-auth-key"
    v3_priv_proto: str = "AES"
    v3_priv_key: str = "itaudit-priv-key"
    v3_enabled: bool = True

    @property
    def endpoint(self) -> tuple[str, int]:
        return (self.address, self.port)


@dataclass
class SNMPFleet:
    """Serve a folder of ``.snmprec`` recordings with snmpsim, one loopback address each.

    ``endpoints`` maps a recording stem to ``(address, port)``; recordings not in it get
    consecutive addresses from ``base_address`` on ``port``. ``names`` limits the fleet to
    some recordings. Use as a context manager, or ``start()`` / ``wait_ready()`` / ``stop()``.
    """

    data_dir: Path
    endpoints: dict[str, tuple[str, int]] = field(default_factory=dict)
    cache_dir: Path | None = None
    base_address: str = DEFAULT_BASE_ADDRESS
    port: int = DEFAULT_PORT
    community: str = "public"
    names: list[str] | None = None
    v3: bool = True
    log_file: Path | None = None
    ready_timeout: float = 60.0
    devices: dict[str, SimDevice] = field(default_factory=dict, init=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        files = sorted(self.data_dir.glob("*.snmprec"))
        if self.names is not None:
            wanted = set(self.names)
            files = [f for f in files if f.stem in wanted]
        addr = ipaddress.IPv4Address(self.base_address)
        for f in files:
            if f.stem in self.endpoints:
                host, port = self.endpoints[f.stem]
            else:
                host, port = str(addr), self.port
                addr += 1
            if not ipaddress.IPv4Address(host).is_loopback:
                raise ValueError(f"{f.stem}: simulated devices bind loopback only, not {host}")
            self.devices[f.stem] = SimDevice(f.stem, f, host, port, self.community, v3_enabled=self.v3)

    # --- lifecycle --------------------------------------------------------------------

    def command(self, root: Path) -> list[str]:
        """The snmpsim command line: one engine (data folder + endpoint) per device."""
        exe = shutil.which("snmpsim-command-responder") or str(
            Path(sys.executable).with_name("snmpsim-command-responder"))
        cmd = [exe, f"--cache-dir={root / 'cache'}"]
        if self.log_file:
            cmd += ["--logging-method=file:" + str(self.log_file)]
        else:
            cmd += ["--logging-method=null"]
        for dev in self.devices.values():
            folder = root / "data" / dev.name
            folder.mkdir(parents=True, exist_ok=True)
            # Copies, not links: snmpsim resolves links and would name the community
            # after the link target's stem.
            shutil.copyfile(dev.recording, folder / f"{dev.community}.snmprec")
            if dev.v3_enabled:
                shutil.copyfile(dev.recording, folder / "self.snmprec")
            cmd += ["--v3-engine-id=auto", f"--data-dir={folder}",
                    f"--agent-udpv4-endpoint={dev.address}:{dev.port}"]
            if dev.v3_enabled:
                cmd += [f"--v3-user={dev.v3_user}",
                        f"--v3-auth-key={dev.v3_auth_key}", f"--v3-auth-proto={dev.v3_auth_proto}",
                        f"--v3-priv-key={dev.v3_priv_key}", f"--v3-priv-proto={dev.v3_priv_proto}"]
        return cmd

    def start(self) -> SNMPFleet:
        """Start snmpsim in the background (call ``wait_ready`` before querying)."""
        if self._proc is not None:
            return self
        if not self.devices:
            raise ValueError(f"no .snmprec recordings in {self.data_dir}")
        self._tmp = tempfile.TemporaryDirectory(prefix="itaudit-snmpsim-")
        root = Path(self._tmp.name)
        if self.cache_dir is not None:
            (root / "cache").symlink_to(Path(self.cache_dir).resolve(), target_is_directory=True)
            Path(self.cache_dir).mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, SNMPSIM_ALLOW_ROOT="true")
        self._proc = subprocess.Popen(
            self.command(root), env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until every device answers a v2c GET of sysDescr (polled, never a blind sleep)."""
        deadline = time.monotonic() + timeout
        pending = dict(self.devices)
        while pending:
            if self._proc is not None and self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(f"snmpsim exited with {self._proc.returncode}: {err[-2000:]}")
            for name, dev in list(pending.items()):
                if probe(dev.address, dev.port, dev.community, timeout=0.2):
                    del pending[name]
            if pending and time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"snmpsim not ready after {timeout}s: {sorted(pending)[:5]}")

    def stop(self) -> None:
        """Stop snmpsim and remove its temporary folder."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stderr:
                self._proc.stderr.close()
            self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SNMPFleet:
        if self._proc is not None:
            return self  # already started (and waited for) by the caller
        self.start()
        try:
            self.wait_ready(self.ready_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- a tiny SNMPv2c GET, so readiness needs no SNMP library ----------------------------


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def _int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def _oid(parts: tuple[int, ...]) -> bytes:
    body = bytearray([parts[0] * 40 + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        body += bytes(reversed(chunk))
    return _tlv(0x06, bytes(body))


def get_request(community: str, request_id: int = 1, oid: tuple[int, ...] = SYS_DESCR,
                version: int = 1) -> bytes:
    """BER-encode an SNMP GetRequest for one OID (``version`` 1 = v2c, 0 = v1)."""
    varbind = _tlv(0x30, _oid(oid) + b"\x05\x00")
    pdu = _tlv(0xA0, _int(request_id) + _int(0) + _int(0) + _tlv(0x30, varbind))
    return _tlv(0x30, _int(version) + _tlv(0x04, community.encode()) + pdu)


def probe(address: str, port: int, community: str = "public", timeout: float = 0.5,
          version: int = 1) -> bool:
    """True when something answers an SNMP GET of sysDescr at ``address:port`` (v2c by default)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(get_request(community, version=version), (address, port))
            data, _ = sock.recvfrom(65535)
        except OSError:
            return False
    return data[:1] == b"\x30"
