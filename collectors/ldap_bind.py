"""The directory's NTLM and Kerberos binds: SASL over an already verified TLS connection.

``collectors/directory.py`` opens the connection and validates the certificate; this module
only authenticates on it, and runs after the TLS handshake succeeded (a refused certificate
never gets this far, so no NTLM or Kerberos token is sent to an unverified server).

Both binds carry **TLS channel binding** (RFC 5929 ``tls-server-end-point``: a hash of the
certificate the domain controller presented, in the authentication itself), which Active
Directory requires when ``LdapEnforceChannelBinding`` is set. A TLS-intercepting middlebox
presents another certificate, so the binding no longer matches and the DC refuses the bind.

- ``ntlm``: SASL ``GSS-SPNEGO`` carrying NTLMSSP messages made by pyspnego (ldap3's own
  NTLM is the Microsoft "sicily" bind, which has no channel binding and which Samba does
  not offer). The NTLM AUTHENTICATE message holds ``MsvAvChannelBindings`` = MD5 of the
  ``gss_channel_bindings_struct`` whose application data is ``tls-server-end-point:`` +
  the certificate hash. Neither signing nor sealing is negotiated: over TLS both Active
  Directory and Samba refuse a SASL security layer ("Sign or Seal are not allowed if TLS
  is used"); TLS already protects the session.
- ``kerberos``: SASL ``GSSAPI`` (RFC 4752) with python-gssapi (MIT Kerberos), service
  principal ``ldap/<tls_name or server>``, the channel binding in the authenticator, and
  "no security layer" chosen in the final SASL step (TLS is the layer). With a password
  the ticket is obtained into memory (``gss_acquire_cred_with_password``): nothing is
  written to disk. Without one, the default credential cache or client keytab is used.
"""

from __future__ import annotations

import hashlib
import struct
import warnings
from collections.abc import Callable
from typing import Any

from itaudit.errors import AuthError, CollectError, ConnectError, ProtocolError
from itaudit.model import clip

TLS_PREFIX = b"tls-server-end-point:"
_SASL_IN_PROGRESS = 14
_MAX_STEPS = 8  # NTLM needs 2 round trips, Kerberos 3: more is a confused server

# Active Directory's bind diagnostics carry a Win32 code ("... AcceptSecurityContext error,
# data 52e, v4563"); Samba uses the same codes. What each means for the bind account:
AD_DATA_CODES = {
    "52e": "wrong password or unknown account",
    "525": "the account does not exist",
    "530": "the account may not log on at this time",
    "531": "the account may not log on from this workstation",
    "532": "the account's password has expired",
    "533": "the account is disabled",
    "701": "the account has expired",
    "773": "the account must change its password first",
    "775": "the account is locked out",
    "57": "the domain controller rejected a parameter of the NTLM exchange",
}
SEC_E_BAD_BINDINGS = "80090346"


def certificate_hash(der: bytes) -> bytes:
    """RFC 5929 section 4.1: the certificate hashed with its signature's hash algorithm,
    SHA-256 when that is MD5 or SHA-1 (or unknown)."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm

    with warnings.catch_warnings():
        # Samba's self-generated certificates have a negative serial number, which cryptography
        # still parses with a deprecation warning; only the signature algorithm is needed here.
        warnings.simplefilter("ignore")
        try:
            algorithm = x509.load_der_x509_certificate(der).signature_hash_algorithm
        except (UnsupportedAlgorithm, ValueError):
            algorithm = None
    name = algorithm.name if algorithm is not None else "sha256"
    if name in ("md5", "sha1"):
        name = "sha256"
    return hashlib.new(name, der).digest()


def application_data(der: bytes) -> bytes:
    """The channel binding's application data for a TLS server certificate."""
    return TLS_PREFIX + certificate_hash(der)


def gss_channel_bindings(app_data: bytes) -> bytes:
    """``gss_channel_bindings_struct`` as MS-NLMP hashes it: no addresses, only application data
    (initiator type and length, acceptor type and length, application data length, data)."""
    return struct.pack("<IIIII", 0, 0, 0, 0, len(app_data)) + app_data


def ntlm_channel_binding_hash(app_data: bytes) -> bytes:
    """The 16 bytes of ``MsvAvChannelBindings`` in the NTLM AUTHENTICATE message."""
    return hashlib.md5(gss_channel_bindings(app_data)).digest()  # noqa: S324 - MS-NLMP defines it as MD5


def peer_certificate(conn: Any) -> bytes:
    """The DER certificate the server presented on this (verified) TLS connection."""
    sock = getattr(conn, "socket", None)
    der = sock.getpeercert(binary_form=True) if sock is not None and hasattr(sock, "getpeercert") else None
    if not der:
        raise ProtocolError("no TLS certificate on the connection: NTLM and Kerberos binds are only made over TLS")
    return bytes(der)


# --- the SASL exchanges ---------------------------------------------------------------


class NtlmExchange:
    """NTLMSSP by pyspnego, without signing or sealing, with channel binding."""

    mechanism = "GSS-SPNEGO"

    def __init__(self, account: str, password: str, host: str, app_data: bytes):
        import spnego
        from spnego.channel_bindings import GssChannelBindings

        self._ctx = spnego.client(account, password, hostname=host, service="ldap", protocol="ntlm",
                                  channel_bindings=GssChannelBindings(application_data=app_data),
                                  context_req=spnego.ContextReq.none)
        # pyspnego always asks for NTLM key exchange; without signing it then sends a one-byte
        # "encrypted session key", which Samba (correctly) rejects as malformed. With no
        # signing or sealing there is no key to exchange: do not ask for it.
        try:
            from spnego._ntlm_raw.messages import NegotiateFlags

            self._ctx._context_req &= ~NegotiateFlags.key_exch
        except (ImportError, AttributeError) as exc:  # a pyspnego whose internals moved: say so plainly
            raise ProtocolError(f"this pyspnego version cannot make an NTLM bind without signing ({exc})") from None

    def first(self) -> bytes:
        return bytes(self._ctx.step())

    @property
    def done(self) -> bool:
        return bool(self._ctx.complete)

    def step(self, server_token: bytes | None) -> bytes | None:
        if self._ctx.complete:
            raise ProtocolError("the domain controller asked for more after the NTLM exchange was complete")
        out = self._ctx.step(server_token or b"")
        return bytes(out) if out is not None else None


class KerberosExchange:
    """RFC 4752 GSSAPI: the Kerberos context, then "no security layer" (TLS protects the session)."""

    mechanism = "GSSAPI"

    def __init__(self, account: str, password: str, host: str, app_data: bytes):
        import gssapi
        import gssapi.raw as graw

        creds = None
        if password:
            name = gssapi.Name(kerberos_principal(account), gssapi.NameType.kerberos_principal)
            # The ticket goes into a credential cache in memory, never to disk.
            creds = graw.acquire_cred_with_password(name, password.encode("utf-8"), usage="initiate").creds
        target = gssapi.Name(f"ldap@{host}", gssapi.NameType.hostbased_service)
        self._ctx = gssapi.SecurityContext(name=target, creds=creds, usage="initiate",
                                           flags=[gssapi.RequirementFlag.mutual_authentication],
                                           channel_bindings=graw.ChannelBindings(application_data=app_data))
        # python-gssapi defers a step's error when it carries a token; raise it here instead.
        self._ctx.__DEFER_STEP_ERRORS__ = False
        self._layer_sent = False

    def first(self) -> bytes:
        return bytes(self._ctx.step() or b"")

    @property
    def done(self) -> bool:  # the DC proved itself (mutual authentication) and the layer was chosen
        return bool(self._ctx.complete) and self._layer_sent

    def step(self, server_token: bytes | None) -> bytes | None:
        if not self._ctx.complete:
            return bytes(self._ctx.step(server_token or b"") or b"")
        if self._layer_sent:
            raise ProtocolError("the domain controller asked for more after the Kerberos exchange was complete")
        offer = self._ctx.unwrap(server_token or b"").message
        if len(offer) != 4 or not offer[0] & 0x01:
            raise AuthError(f"the domain controller does not offer SASL without a security layer "
                            f"(offer {offer[:4].hex()}); over TLS none is needed")
        self._layer_sent = True
        return bytes(self._ctx.wrap(b"\x01\x00\x00\x00", False).message)  # layer 1 = none, no size, no authzid


def kerberos_principal(account: str) -> str:
    """``user@realm`` with the realm in capitals, as Active Directory's realms are."""
    user, _, realm = account.rpartition("@")
    return f"{user}@{realm.upper()}"


Observer = Callable[[str, bytes | None], None]


def sasl_bind(conn: Any, exchange: Any, label: str, *, observe: Observer | None = None) -> None:
    """Run one SASL exchange on ``conn`` (ldap3, opened, TLS verified) until the DC says success.

    Raises ``CollectError`` with the DC's reason. ``observe`` (tests) sees each token sent
    ("client") and received ("server").
    """
    from ldap3 import SASL
    from ldap3.core.exceptions import LDAPException
    from ldap3.operation.bind import bind_operation

    token: bytes | None = exchange.first()
    for _ in range(_MAX_STEPS):
        if observe:
            observe("client", token)
        request = bind_operation(conn.version, SASL, None, None, exchange.mechanism, token)
        try:
            conn.post_send_single_response(conn.send("bindRequest", request, None))
        except LDAPException as exc:
            raise translate_bind_error(exc, label) from None
        result = conn.result or {}
        code = result.get("result")
        if code == 0:
            if not exchange.done:
                raise ProtocolError(f"{label} reported the {exchange.mechanism} bind as done before the exchange "
                                    "was complete (no mutual authentication); not trusted")
            conn.bound = True
            return
        if code != _SASL_IN_PROGRESS:
            raise bind_refused(label, result.get("description") or str(code), result.get("message") or "")
        server = result.get("saslCreds")
        if observe:
            observe("server", server)
        token = exchange.step(server)
    raise ProtocolError(f"{label}: the {exchange.mechanism} bind did not finish in {_MAX_STEPS} steps")


def translate_bind_error(exc: Exception, label: str) -> CollectError:
    """An ldap3 bind exception as a named reason (used for every bind kind)."""
    from ldap3.core.exceptions import LDAPOperationResult

    if isinstance(exc, LDAPOperationResult):
        return bind_refused(label, str(exc.description or exc.result), str(exc.message or ""))
    return ConnectError(f"{label} closed the connection during the bind ({clip(str(exc), 200)})")


def bind_refused(label: str, description: str, message: str) -> CollectError:
    """The DC refused the bind: the reason a person can act on, from its result and diagnostic."""
    text = clip(message, 200)
    low = message.lower()
    if SEC_E_BAD_BINDINGS in low:
        return AuthError(f"{label} refused the bind's TLS channel binding (SEC_E_BAD_BINDINGS): the domain controller "
                         "requires LDAP channel binding and the certificate this client saw is not the one it holds "
                         f"(TLS interception or a TLS-terminating load balancer in between?) [{text}]")
    if "sign or seal are required" in low or (description == "strongerAuthRequired" and "sasl" in low):
        return AuthError(f"{label} refuses NTLM and Kerberos binds over TLS without signing [{text}] (a Samba DC with "
                         "'ldap server require strong auth = yes'; set it to allow_sasl_over_tls, or use "
                         "bind = \"simple\")")
    if description == "invalidCredentials" or "acceptsecuritycontext" in low:
        for code, meaning in AD_DATA_CODES.items():
            if f"data {code}," in low or low.endswith(f"data {code}"):
                return AuthError(f"{label} refused the bind account: {meaning} (invalidCredentials, data {code})")
        return AuthError(f"{label} refused the bind account's password or name (invalidCredentials) [{text}]")
    if description in ("strongerAuthRequired", "confidentialityRequired"):
        return AuthError(f"{label} requires a stronger bind ({description}) [{text}]")
    if description == "authMethodNotSupported":
        return AuthError(f"{label} does not offer this bind method ({description}) [{text}]")
    return ProtocolError(f"{label}: bind refused ({description}) [{text}]")


def gss_error(exc: Exception, label: str, account: str, host: str) -> CollectError:
    """A Kerberos (GSSAPI) failure before or during the bind, named."""
    text = str(exc)
    low = text.lower()
    principal = kerberos_principal(account) if "@" in account else account
    if "preauthentication failed" in low or "password incorrect" in low:
        return AuthError(f"{label}: the KDC refused the password of {principal} (preauthentication failed)")
    if "client" in low and "not found in kerberos database" in low:
        return AuthError(f"{label}: the KDC does not know {principal}")
    if "server not found" in low:
        return AuthError(f"{label}: the KDC knows no service principal ldap/{host}; set tls_name to the domain "
                         "controller's name as the directory registers it (its dNSHostName)")
    if "cannot find kdc" in low or "cannot contact any kdc" in low or "cannot resolve" in low:
        return ConnectError(f"{label}: no KDC reachable for the realm of {principal} ({clip(text, 160)}); "
                            "check /etc/krb5.conf (or KRB5_CONFIG)")
    if "clock skew" in low:
        return AuthError(f"{label}: this machine's clock differs too much from the KDC's (Kerberos allows 5 minutes)")
    if "no credentials" in low or "credentials cache" in low:
        return AuthError(f"{label}: no Kerberos ticket for the bind account (give password_env or password_keyring, "
                         f"or run kinit / set KRB5_CLIENT_KTNAME) [{clip(text, 160)}]")
    if "revoked" in low or "locked" in low:
        return AuthError(f"{label}: the KDC refused {principal}: account disabled or locked out [{clip(text, 160)}]")
    return AuthError(f"{label}: Kerberos failed: {clip(text, 240)}")


def bind(conn: Any, kind: str, account: str, password: str, host: str, label: str,
         *, observe: Observer | None = None) -> None:
    """Authenticate the opened, verified TLS connection ``conn`` with ``kind`` ("ntlm", "kerberos")."""
    app_data = application_data(peer_certificate(conn))
    if kind == "ntlm":
        try:
            exchange: Any = NtlmExchange(account, password, host, app_data)
            sasl_bind(conn, exchange, label, observe=observe)
        except CollectError:
            raise
        except Exception as exc:  # pyspnego's own errors: a malformed challenge, an unusable credential
            if type(exc).__module__.startswith("spnego"):
                raise AuthError(f"{label}: the NTLM exchange failed: {clip(str(exc), 240)}") from None
            raise
        return
    if kind == "kerberos":
        try:
            import gssapi  # noqa: F401 - the optional extra
        except ImportError:
            raise AuthError("bind = \"kerberos\" needs python-gssapi (pip install 'itaudit[kerberos]', with the "
                            "system's MIT Kerberos libraries)") from None
        from gssapi.exceptions import GeneralError
        from gssapi.raw.misc import GSSError

        try:
            exchange = KerberosExchange(account, password, host, app_data)
            sasl_bind(conn, exchange, label, observe=observe)
        except (GSSError, GeneralError) as exc:
            raise gss_error(exc, label, account, host) from None
        return
    raise ProtocolError(f"unknown bind kind {kind!r}")
