"""Read computer objects from Active Directory (ldap3): one read-only paged search.

With ``collectors/ldap_bind.py`` (the NTLM and Kerberos binds) the only module that imports
ldap3. One bind with a read-only account - simple, NTLM or Kerberos - over TLS only (LDAPS,
or StartTLS before the bind), the certificate validated by Python's ``ssl`` against the
configured CA and the expected server name: a failed validation stops before any credential
is sent. Referrals are never followed (they would carry the bind password to
another server); they are counted and named.

What is read per computer: name, dNSHostName, operatingSystem, operatingSystemVersion,
whenCreated, lastLogonTimestamp, pwdLastSet, userAccountControl, the LAPS *expiry*
attributes the schema has (legacy ``ms-Mcs-AdmPwdExpirationTime``, Windows LAPS
``msLAPS-PasswordExpirationTime``), and the number of BitLocker recovery objects
(``msFVE-RecoveryInformation``) under it, counted by their names only. No password
attribute is ever requested (``FORBIDDEN``; a test enforces it).

``read_directory`` reads everything before returning: a read that fails part way raises,
so a caller stores nothing of it (and never forgets devices it already knows).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
import socket
import ssl
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from itaudit.errors import AuthError, CertificateRefused, CollectError, CollectTimeout, ConnectError, ProtocolError
from itaudit.model import DeviceFacts, Kind, clip

SOURCE = "ldap:directory"

COMPUTER_ATTRIBUTES = (
    "name", "dNSHostName", "operatingSystem", "operatingSystemVersion", "whenCreated",
    "lastLogonTimestamp", "pwdLastSet", "userAccountControl",
)
LAPS_EXPIRY = {"ms-Mcs-AdmPwdExpirationTime": "legacy", "msLAPS-PasswordExpirationTime": "windows"}
# Attributes that hold secrets. Never requested, whatever the configuration says.
FORBIDDEN = frozenset(a.lower() for a in (
    "ms-Mcs-AdmPwd", "msLAPS-Password", "msLAPS-EncryptedPassword", "msLAPS-EncryptedPasswordHistory",
    "msLAPS-EncryptedDSRMPassword", "msLAPS-EncryptedDSRMPasswordHistory", "msFVE-RecoveryPassword",
    "msFVE-KeyPackage", "msFVE-VolumeGuid", "unicodePwd", "userPassword", "dBCSPwd", "ntPwdHistory",
    "lmPwdHistory", "supplementalCredentials", "msDS-ManagedPassword", "msTPM-OwnerInformation",
))
assert not FORBIDDEN & {a.lower() for a in (*COMPUTER_ATTRIBUTES, *LAPS_EXPIRY)}

_UAC_DISABLED = 0x2
_UAC_SERVER_TRUST = 0x2000  # a domain controller's own account
_FILETIME_NEVER = (0, 0x7FFFFFFFFFFFFFFF)
_FILETIME_EPOCH = dt.datetime(1601, 1, 1, tzinfo=dt.UTC)
_VERSION_RE = re.compile(r"^\s*(\d+)\.(\d+)\s*\((\d+)\)")


@dataclass
class DirectoryRead:
    """Everything one read of the directory found, or nothing (a failed read raises)."""

    server: str
    computers: list[DeviceFacts] = field(default_factory=list)
    referrals: list[str] = field(default_factory=list)  # continuation references, not followed
    laps_source: str | None = None  # expiry attributes the schema has: "legacy", "windows", both, or None
    recovery_objects: int | None = None  # BitLocker recovery objects the bind account could see
    pages: int = 0
    read_at: str = ""


# --- pure: one entry -> facts -----------------------------------------------------------


def _text(values: list[bytes] | None, limit: int = 255) -> str | None:
    if not values:
        return None
    return clip(values[0].decode("utf-8", errors="replace").strip(), limit) or None


def _int(values: list[bytes] | None) -> int | None:
    text = _text(values, 32)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def filetime_date(value: int | None) -> dt.date | None:
    """An AD FILETIME (100 ns since 1601) as a date; 0 and "never" are None."""
    if value is None or value in _FILETIME_NEVER or value < 0:
        return None
    try:
        return (_FILETIME_EPOCH + dt.timedelta(microseconds=value // 10)).date()
    except OverflowError:
        return None


def generalized_date(text: str | None) -> dt.date | None:
    """``whenCreated`` (LDAP GeneralizedTime, "20180102030405.0Z") as a date."""
    if not text or len(text) < 8 or not text[:8].isdigit():
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def computer_facts(dn: str, raw: dict[str, list[bytes]], *, laps_source: str | None,
                   recovery_counts: dict[str, int] | None, read_at: str) -> DeviceFacts:
    """One computer object's raw attributes as device facts. Pure; never raises.

    ``recovery_counts`` maps a lower-cased computer DN to its recovery objects; None when
    BitLocker escrow cannot be known (see ``read_directory``).
    """
    from collectors.windows import judge_os  # same build and edition tables as the Windows probe

    raw = {k.lower(): v for k, v in raw.items()}
    f = DeviceFacts(collected_at=read_at)
    d = f.directory
    d.dn = clip(dn, 512)
    d.read_at = read_at
    d.name = _text(raw.get("name"))
    d.dns_host_name = _text(raw.get("dnshostname"))
    d.created = generalized_date(_text(raw.get("whencreated"), 32))
    d.last_logon = filetime_date(_int(raw.get("lastlogontimestamp")))
    d.password_last_set = filetime_date(_int(raw.get("pwdlastset")))
    uac = _int(raw.get("useraccountcontrol"))
    d.disabled = bool(uac & _UAC_DISABLED) if uac is not None else None
    d.domain_controller = bool(uac & _UAC_SERVER_TRUST) if uac is not None else None
    if uac is None:
        f.gaps["directory.disabled"] = "userAccountControl not readable"
    if d.created is None:
        f.gaps["directory.created"] = "whenCreated not readable"
    if d.last_logon is None:
        f.gaps["directory.last_logon"] = "no lastLogonTimestamp: never logged on to the domain (or not replicated)"

    # LAPS: which expiry attributes exist in the schema decides what "not set" means.
    d.laps_source = laps_source
    if laps_source is None:
        f.gaps["directory.laps_managed"] = "the directory's schema has no LAPS attributes (neither legacy LAPS " \
                                           "nor Windows LAPS is installed)"
    else:
        expiries = [filetime_date(_int(raw.get(a.lower()))) for a in LAPS_EXPIRY]
        known = [e for e in expiries if e is not None]
        d.laps_managed = bool(known)
        d.laps_expires = max(known) if known else None

    if recovery_counts is None:
        f.gaps["directory.bitlocker_keys"] = "BitLocker recovery objects not visible to the bind account " \
                                             "(none in the whole directory, or no right to read them)"
    else:
        d.bitlocker_keys = recovery_counts.get(dn.lower(), 0)

    ident = f.identity
    ident.hostname = d.dns_host_name or d.name
    ident.address = d.dns_host_name or d.name
    sw = f.software
    sw.os_name = _text(raw.get("operatingsystem"), 128)
    version = _text(raw.get("operatingsystemversion"), 64)
    build = None
    if version:
        m = _VERSION_RE.match(version)
        if m:
            build = int(m.group(3))
            sw.os_version = f"{m.group(1)}.{m.group(2)}.{build}"
            sw.os_build = str(build)
        else:
            sw.os_version = version
    if sw.os_name and "windows" in sw.os_name.lower():
        sw.os_family = "windows"
        judge_os(f, sw.os_name, build)
        ident.kind = Kind.SERVER.value if sw.product == "windows-server" else Kind.WORKSTATION.value
        if ident.kind == Kind.WORKSTATION.value:
            f.gaps["identity.kind"] = "the directory does not say desktop or laptop"
    elif sw.os_name is None:
        f.gaps["software.os_name"] = "operatingSystem not set on the computer object"
    f.sources = {"directory": SOURCE}
    return f


# --- I/O: the search --------------------------------------------------------------------


def ldap3_module() -> Any:
    """ldap3, imported once. (ldap3 2.9 reads pyasn1's ``tagMap``/``typeMap`` at import time,
    which pyasn1 0.6 deprecates with a warning; nothing else of it is used.)"""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"(tagMap|typeMap) is deprecated", DeprecationWarning)
        import ldap3
        import ldap3.utils.dn  # noqa: F401
    return ldap3


def _tls_class() -> Any:
    ldap3 = ldap3_module()

    class _VerifiedTls(ldap3.Tls):  # type: ignore[misc]
        """TLS by Python's ``ssl``: chain AND host name checked during the handshake.

        (ldap3's own host-name check uses ``ssl.match_hostname``, deprecated since Python 3.7
        and gone in 3.12.)
        """

        def __init__(self, context: ssl.SSLContext, server_name: str):
            super().__init__(validate=ssl.CERT_REQUIRED)
            self._context = context
            self._server_name = server_name

        def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
            connection.socket = self._context.wrap_socket(connection.socket, server_side=False,
                                                          do_handshake_on_connect=True,
                                                          server_hostname=self._server_name)

    return _VerifiedTls


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Certificate validation on: the configured CA file, else the system's trust store."""
    try:
        ctx = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise CertificateRefused(f"cannot load the CA file {ca_file}: {exc}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _translate(exc: Exception, server: str) -> CollectError:
    """ldap3's exceptions as the project's, with a reason a person can act on."""
    ldap3_module()
    from ldap3.core import exceptions as lx

    text = str(exc)
    if isinstance(exc, lx.LDAPInvalidCredentialsResult):
        from collectors.ldap_bind import bind_refused

        return bind_refused(server, "invalidCredentials", str(getattr(exc, "message", "") or ""))
    if isinstance(exc, lx.LDAPReferralResult):
        return ProtocolError(f"{server} referred the search to another server ({clip(text, 200)}): base_dn is "
                             "not in its naming context; referrals are not followed")
    if isinstance(exc, lx.LDAPNoSuchObjectResult):
        return ProtocolError(f"{server}: the search base does not exist in this directory (noSuchObject): "
                             "check base_dn")
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text or "Hostname mismatch" in text:
        reason = text.split("certificate verify failed:")[-1].split("(_ssl")[0].strip(" :'\"") or "untrusted"
        return CertificateRefused(f"{server}: TLS certificate refused ({clip(reason, 200)}); no credentials sent")
    if isinstance(exc, lx.LDAPStartTLSError):
        return ConnectError(f"{server}: StartTLS failed ({clip(text, 200)}); no credentials sent")
    if isinstance(exc, lx.LDAPSocketOpenError):
        return ConnectError(f"{server} unreachable: {clip(text, 200)}")
    if isinstance(exc, (lx.LDAPSocketReceiveError, lx.LDAPResponseTimeoutError)) or "timed out" in text:
        return CollectTimeout(f"{server} did not answer in time ({clip(text, 200)})")
    if isinstance(exc, (lx.LDAPStrongerAuthRequiredResult, lx.LDAPConfidentialityRequiredResult)):
        return AuthError(f"{server} requires a stronger bind ({clip(text, 200)})")
    if isinstance(exc, lx.LDAPInsufficientAccessRightsResult):
        return AuthError(f"{server}: the bind account may not read {clip(text, 200)}")
    if isinstance(exc, lx.LDAPSessionTerminatedByServerError | lx.LDAPSocketCloseError | lx.LDAPSocketSendError):
        return ConnectError(f"{server} closed the connection ({clip(text, 200)})")
    if isinstance(exc, socket.timeout):
        return CollectTimeout(f"{server} did not answer in time")
    return ProtocolError(f"{server}: directory read failed: {type(exc).__name__}: {clip(text, 300)}")


def connect(cfg: Any, password: str) -> Any:
    """An ldap3 connection bound over verified TLS. ``cfg`` is a ``config.DirectoryConfig``."""
    ldap3 = ldap3_module()
    from ldap3.core.exceptions import LDAPException

    name = cfg.tls_name or cfg.server
    tls = _tls_class()(tls_context(cfg.ca_file), name)
    seconds = max(1, math.ceil(cfg.timeout))  # ldap3 packs socket timeouts as whole seconds
    server = ldap3.Server(cfg.server, port=cfg.port, use_ssl=cfg.security == "ldaps", tls=tls,
                          get_info=ldap3.NONE, connect_timeout=seconds)
    conn = ldap3.Connection(server, user=cfg.bind_dn, password=password, authentication=ldap3.SIMPLE,
                            auto_bind=ldap3.AUTO_BIND_NONE, auto_referrals=False, raise_exceptions=True,
                            receive_timeout=seconds, read_only=True, return_empty_attributes=False)
    kind = getattr(cfg, "bind", "simple")
    try:
        conn.open()
        if cfg.security == "starttls":
            conn.start_tls()  # raises before the bind when the certificate is refused
        if kind == "simple":
            conn.bind()
        else:
            from collectors import ldap_bind

            ldap_bind.bind(conn, kind, cfg.bind_dn, password, name, cfg.label)
    except (LDAPException, OSError) as exc:
        _close(conn)
        raise _translate(exc, cfg.label) from None
    except CollectError:
        _close(conn)
        raise
    return conn


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection: nothing more to do
        conn.unbind()
    # ldap3 leaves the socket of a refused connection open (it never counts as opened).
    sock = getattr(conn, "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def _paged(conn: Any, base: str, flt: str, attributes: list[str] | str, page_size: int,
           scope: str = "SUBTREE") -> Iterator[dict[str, Any]]:
    ldap3 = ldap3_module()

    yield from conn.extend.standard.paged_search(base, flt, search_scope=getattr(ldap3, scope),
                                                 attributes=attributes, paged_size=page_size, generator=True)


def _schema_laps(conn: Any) -> str | None:
    """Which LAPS expiry attributes the schema defines ("legacy", "windows", "legacy+windows")."""
    ldap3 = ldap3_module()

    conn.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["schemaNamingContext"])
    nc = _text(conn.response[0].get("raw_attributes", {}).get("schemaNamingContext")) if conn.response else None
    if not nc:
        return None
    flt = "(|" + "".join(f"(lDAPDisplayName={a})" for a in LAPS_EXPIRY) + ")"
    conn.search(nc, flt, search_scope=ldap3.LEVEL, attributes=["lDAPDisplayName"])
    have = {(_text(e.get("raw_attributes", {}).get("lDAPDisplayName")) or "").lower()
            for e in conn.response or [] if e.get("type") == "searchResEntry"}
    found = [kind for attr, kind in LAPS_EXPIRY.items() if attr.lower() in have]
    return "+".join(found) or None


def _parent(dn: str) -> str:
    ldap3_module()  # (imports ldap3 with its pyasn1 warnings silenced)
    from ldap3.utils.dn import to_dn

    parts = to_dn(dn)
    return ",".join(parts[1:]).lower()


def search_attributes(laps_source: str | None) -> list[str]:
    """What the computer search asks for: never a password attribute (see ``FORBIDDEN``)."""
    return ["objectClass", *COMPUTER_ATTRIBUTES,
            *(a for a, k in LAPS_EXPIRY.items() if laps_source and k in laps_source)]


def _fill(out: DirectoryRead, entries: list[tuple[str, dict[str, list[bytes]]]]) -> None:
    """Computers and recovery objects of one search, as facts (recovery objects counted first)."""
    counts: dict[str, int] = {}
    computers = []
    for dn, raw in entries:
        classes = {c.lower() for k, v in raw.items() if k.lower() == "objectclass" for c in v or []}
        if b"msfve-recoveryinformation" in classes:
            parent = _parent(dn)
            counts[parent] = counts.get(parent, 0) + 1
        else:
            computers.append((dn, raw))
    out.recovery_objects = sum(counts.values())
    visible = counts if out.recovery_objects else None  # none visible: cannot tell "none escrowed"
    out.computers = [computer_facts(dn, raw, laps_source=out.laps_source, recovery_counts=visible,
                                    read_at=out.read_at) for dn, raw in computers]


# --- a recorded read (the demo city's directory) ----------------------------------------

RECORDING_FORMAT = "itaudit-directory-recording/1"
_FILETIME_ATTRS = {"lastlogontimestamp", "pwdlastset", *(a.lower() for a in LAPS_EXPIRY)}


def recorded_read(doc: dict[str, Any], as_of: dt.date) -> DirectoryRead:
    """A read recorded from a real directory, replayed as of ``as_of``.

    Every date in it (whenCreated, lastLogonTimestamp, pwdLastSet, LAPS expiry) moves by the
    days between the recording and ``as_of``, so the city looks the same on any day. Used
    by ``itaudit demo``; a real scan always reads the live directory.
    """
    if doc.get("format") != RECORDING_FORMAT:
        raise ProtocolError(f"not a directory recording (format {doc.get('format')!r})")
    shift = as_of - dt.date.fromisoformat(doc["recorded_on"])
    ticks = int(shift.total_seconds()) * 10_000_000
    entries = []
    for e in doc["entries"]:
        raw: dict[str, list[bytes]] = {}
        for k, values in e["attributes"].items():
            low = k.lower()
            out_values = []
            for v in values:
                if low in _FILETIME_ATTRS and v.isdigit() and int(v) not in _FILETIME_NEVER:
                    v = str(int(v) + ticks)
                elif low == "whencreated" and len(v) >= 8 and v[:8].isdigit():
                    day = generalized_date(v)
                    v = (day + shift).strftime("%Y%m%d") + v[8:] if day else v
                out_values.append(v.encode("utf-8"))
            raw[k] = out_values
        entries.append((e["dn"], raw))
    out = DirectoryRead(server=doc.get("server", "recorded directory"), laps_source=doc.get("laps_source"),
                        read_at=dt.datetime.combine(as_of, dt.time(2, 0), dt.UTC).isoformat())
    _fill(out, entries)
    return out


def read_directory(cfg: Any, password: str, *, now: Callable[[], str] | None = None,
                   connection: Any = None) -> DirectoryRead:
    """Read every computer object under ``cfg.base_dn``. Raises ``CollectError`` (never half a read)."""
    ldap3_module()
    from ldap3.core.exceptions import LDAPException

    read_at = now() if now else dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    conn = connection or connect(cfg, password)
    out = DirectoryRead(server=cfg.label, read_at=read_at)
    try:
        out.laps_source = _schema_laps(conn)
        attrs = search_attributes(out.laps_source)
        # One pass over the directory: the computers and, by name only, the BitLocker recovery
        # objects under them (a second search cost the domain controller a second full pass).
        flt = f"(|{cfg.search_filter}(objectClass=msFVE-RecoveryInformation))"
        entries: list[tuple[str, dict[str, list[bytes]]]] = []
        for e in _paged(conn, cfg.base_dn, flt, attrs, cfg.page_size):
            kind = e.get("type")
            if kind == "searchResRef":
                out.referrals.extend(str(u) for u in e.get("uri") or [])
            elif kind == "searchResEntry":
                entries.append((e["dn"], e.get("raw_attributes") or {}))
        _fill(out, entries)
        out.pages = -(-len(entries) // cfg.page_size) if entries else 0
    except (LDAPException, OSError) as exc:
        raise _translate(exc, cfg.label) from None
    finally:
        if connection is None:
            _close(conn)
    return out
