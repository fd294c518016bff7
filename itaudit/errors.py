"""One exception hierarchy for the whole project.

Transport libraries' exceptions (paramiko, pysnmp, socket) are translated into these
at the collector boundary, so the scan loop only ever sees ``ItauditError``.
"""

from __future__ import annotations


class ItauditError(Exception):
    """Base of every error itaudit raises on purpose."""


class ConfigError(ItauditError):
    """The configuration is invalid. ``key`` names the offending key (dotted path)."""

    def __init__(self, message: str, *, key: str | None = None, path: str | None = None):
        self.key = key
        self.path = path
        where = []
        if path:
            where.append(str(path))
        if key:
            where.append(f"key '{key}'")
        prefix = (": ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)


class StoreError(ItauditError):
    """The database cannot be opened or written (read-only, full disk, corrupt)."""


class ScanLocked(ItauditError):
    """Another scan of the same city is already running."""


class KnowledgeError(ItauditError):
    """A knowledge data file (lifecycle, KEV, fingerprints) is corrupt or unknown."""


class CollectError(ItauditError):
    """Collecting facts from one device failed. ``kind`` is a short stable code.

    ``facts`` (a ``DeviceFacts`` or None) holds what was seen before the failure without
    logging in: an SSH server's algorithm offer, the SNMP versions and default communities
    an agent answers. Checks that need no login judge them (``itaudit.scan``).
    """

    kind = "collect"
    facts: object | None = None


class ConnectError(CollectError):
    """The device could not be reached (refused, unreachable, DNS)."""

    kind = "connect"


class AuthError(CollectError):
    """The device refused our credentials (wrong password, key or community)."""

    kind = "auth"


class CollectTimeout(CollectError):
    """The device did not answer within its deadline."""

    kind = "timeout"


class HostKeyMismatch(CollectError):
    """The SSH host key differs from the pinned one; no credentials were sent."""

    kind = "hostkey"

    def __init__(self, message: str, *, expected: str = "", offered: str = ""):
        self.expected = expected
        self.offered = offered
        super().__init__(message)


class CertificateRefused(CollectError):
    """The server's TLS certificate is untrusted or names another host; no credentials were sent."""

    kind = "certificate"


class ProtocolError(CollectError):
    """The device answered but not in a way we understand (garbled, oversized)."""

    kind = "protocol"
