"""itaudit's own known_hosts file: SSH host keys pinned on first use (TOFU).

The file uses OpenSSH's format (``host keytype base64``; ``[host]:port`` for ports other
than 22; hashed ``|1|salt|hash`` names are understood), so a user's ``~/.ssh/known_hosts``
can be imported and itaudit's file read by ``ssh -o UserKnownHostsFile=``. Lookups are
cached per file and the file is appended under a lock, so many collector threads can pin
at once. This module has no paramiko dependency: keys are handled as (type, blob).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path


def host_label(address: str, port: int) -> str:
    """The name OpenSSH writes for a host: ``addr`` on port 22, else ``[addr]:port``."""
    return address if port == 22 else f"[{address}]:{port}"


def fingerprint(key_type: str, blob: bytes) -> str:
    """OpenSSH-style fingerprint: ``ssh-ed25519 SHA256:base64-without-padding``."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"{key_type} SHA256:{digest}"


def _hashed_match(pattern: str, label: str) -> bool:
    # |1|base64(salt)|base64(HMAC-SHA1(salt, hostname))
    try:
        _, magic, salt64, hash64 = pattern.split("|")
        if magic != "1":
            return False
        salt = base64.b64decode(salt64)
        mac = hmac.new(salt, label.encode(), hashlib.sha1).digest()
        return hmac.compare_digest(mac, base64.b64decode(hash64))
    except (ValueError, TypeError):
        return False


@dataclass
class _Entry:
    names: list[str]
    key_type: str
    blob: bytes

    def matches(self, label: str) -> bool:
        for n in self.names:
            if n.startswith("|1|"):
                if _hashed_match(n, label):
                    return True
            elif n == label:
                return True
        return False


@dataclass
class KnownHosts:
    """One known_hosts file. Use :func:`open_known_hosts` to share one object per path."""

    path: Path
    _entries: list[_Entry] = field(default_factory=list)
    _plain: dict[str, list[_Entry]] = field(default_factory=dict)
    _hashed: list[_Entry] = field(default_factory=list)
    _mtime: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _reload_if_changed(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime == self._mtime:
            return
        self._entries, self._plain, self._hashed = [], {}, []
        if mtime is not None:
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                e = _parse_line(line)
                if e:
                    self._add(e)
        self._mtime = mtime

    def _add(self, e: _Entry) -> None:
        self._entries.append(e)
        for n in e.names:
            if n.startswith("|"):
                self._hashed.append(e)
            else:
                self._plain.setdefault(n, []).append(e)

    def lookup(self, address: str, port: int) -> list[tuple[str, bytes]]:
        """Pinned keys (type, blob) for a host; empty when unknown."""
        label = host_label(address, port)
        with self._lock:
            self._reload_if_changed()
            found = list(self._plain.get(label, []))
            found += [e for e in self._hashed if e.matches(label)]
            return [(e.key_type, e.blob) for e in found]

    def pin(self, address: str, port: int, key_type: str, blob: bytes) -> bool:
        """Pin a key unless the host already has one. Returns True when it was written."""
        label = host_label(address, port)
        with self._lock:
            self._reload_if_changed()
            if self._plain.get(label) or any(e.matches(label) for e in self._hashed):
                return False
            self.path.parent.mkdir(parents=True, exist_ok=True)
            line = f"{label} {key_type} {base64.b64encode(blob).decode()}\n"
            # O_APPEND keeps concurrent writers (threads or processes) from interleaving lines.
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
            self._add(_Entry([label], key_type, blob))
            try:
                self._mtime = self.path.stat().st_mtime_ns
            except FileNotFoundError:
                self._mtime = None
            return True


    def entries(self) -> list[tuple[str, str, bytes]]:
        """Every pinned key as (host label or hashed name, key type, blob), in file order."""
        with self._lock:
            self._reload_if_changed()
            return [(",".join(e.names), e.key_type, e.blob) for e in self._entries]

    def acceptances(self) -> list[str]:
        """The notes ``replace`` wrote (``# accepted ...`` lines), oldest first."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        return [ln[2:].strip() for ln in text.splitlines() if ln.startswith(ACCEPT_NOTE)]

    def replace(self, address: str, port: int, key_type: str, blob: bytes, when: str) -> list[tuple[str, bytes]]:
        """Pin a new key for a host in place of its old ones (hashed names included), with a
        comment line saying when (``when``, UTC ISO) and which keys; returns the keys removed.

        The file is rewritten through a temporary file and ``os.replace`` (never half-written).
        """
        label = host_label(address, port)
        with self._lock:
            self._reload_if_changed()
            try:
                lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
            except FileNotFoundError:
                lines = []
            kept, removed = [], []
            for line in lines:
                e = _parse_line(line)
                if e is not None and e.matches(label):
                    others = [n for n in e.names if not _Entry([n], "", b"").matches(label)]
                    removed.append((e.key_type, e.blob))
                    if others:  # a line naming several hosts keeps the others
                        kept.append(f"{','.join(others)} {e.key_type} {base64.b64encode(e.blob).decode()}")
                    continue
                kept.append(line)
            old = ", ".join(fingerprint(t, b) for t, b in removed) or "none"
            kept.append(f"{ACCEPT_NOTE}{when} {label}: was {old}; now {fingerprint(key_type, blob)}")
            kept.append(f"{label} {key_type} {base64.b64encode(blob).decode()}")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("\n".join(kept) + "\n")
            os.replace(tmp, self.path)
            self._mtime = None  # force a reload on the next lookup
            return removed


ACCEPT_NOTE = "# accepted "


def _parse_line(line: str) -> _Entry | None:
    parts = line.strip().split()
    if not parts or parts[0].startswith("#"):
        return None
    if parts[0].startswith("@"):  # @cert-authority / @revoked markers: not host pins
        return None
    if len(parts) < 3:
        return None
    try:
        blob = base64.b64decode(parts[2], validate=True)
    except (ValueError, TypeError):
        return None
    return _Entry(parts[0].split(","), parts[1], blob)


_OPEN: dict[Path, KnownHosts] = {}
_OPEN_LOCK = threading.Lock()


def open_known_hosts(path: str | os.PathLike[str]) -> KnownHosts:
    """The shared ``KnownHosts`` object for a path (one per process, thread-safe)."""
    p = Path(path).expanduser().resolve()
    with _OPEN_LOCK:
        kh = _OPEN.get(p)
        if kh is None:
            kh = _OPEN[p] = KnownHosts(p)
        return kh


def import_known_hosts(user_file: str | os.PathLike[str], itaudit_file: str | os.PathLike[str]) -> int:
    """Copy the host keys of a user's known_hosts into itaudit's file; return how many were added.

    Entries whose host is already pinned (same name and key type) are skipped; hashed
    names are copied as they are (they still match on lookup).
    """
    src = Path(user_file).expanduser()
    kh = open_known_hosts(itaudit_file)
    added = 0
    with kh._lock:
        kh._reload_if_changed()
        existing = {(n, e.key_type, e.blob) for e in kh._entries for n in e.names}
        lines = []
        for raw in src.read_text(encoding="utf-8", errors="replace").splitlines():
            e = _parse_line(raw)
            if e is None or all((n, e.key_type, e.blob) in existing for n in e.names):
                continue
            lines.append(f"{','.join(e.names)} {e.key_type} {base64.b64encode(e.blob).decode()}\n")
            existing.update((n, e.key_type, e.blob) for n in e.names)
        if lines:
            kh.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(kh.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, "".join(lines).encode())
            finally:
                os.close(fd)
            added = len(lines)
            kh._mtime = None  # force a reload on the next lookup
    return added
