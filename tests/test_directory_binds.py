"""NTLM and Kerberos binds to the directory (collectors/ldap_bind.py).

Against the real Samba AD DC (tests/peers_samba.py): NTLM inside SASL GSS-SPNEGO and Kerberos
SASL GSSAPI, over LDAPS and StartTLS, with TLS channel binding; the NTLM message on the wire
carries the binding of the certificate the DC really holds; a DC that refuses SASL over TLS,
wrong passwords and unknown accounts are named reasons. Samba 4.17 does not verify channel
bindings (Windows with LdapEnforceChannelBinding does): the token's computation is checked
against published vectors, the NTLM message on the wire against the DC's own certificate
file, and the Kerberos AP-REQ by accepting it again with the DC's exported key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import subprocess
from pathlib import Path

import pytest

from collectors import ldap_bind
from collectors.directory import _close, _tls_class, connect, ldap3_module, read_directory, tls_context
from itaudit.config import DirectoryConfig
from itaudit.errors import AuthError, CertificateRefused, ConnectError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "directory"


def _cfg(dc, **kw) -> DirectoryConfig:
    base = dict(server=dc.address, port=dc.port, base_dn=dc.base_dn, tls_name=dc.tls_name, ca_file=str(dc.ca_file),
                bind_dn=dc.reader_ntlm, password_env="UNUSED", page_size=100, timeout=10, bind="ntlm")
    base.update(kw)
    return DirectoryConfig(**base)


# --- the channel binding token, on published vectors (no peer) ------------------------


def test_certificate_hash_matches_published_vectors():
    """RFC 5929 tls-server-end-point on real Windows Server certificates: MD5 and SHA-1 signatures
    hash with SHA-256, others with their own algorithm (requests-kerberos' expected values)."""
    data = json.loads((FIXTURES / "tls_server_end_point.json").read_text())
    assert len(data["vectors"]) >= 5
    for v in data["vectors"]:
        der = base64.b64decode(v["cert_b64"])
        assert ldap_bind.certificate_hash(der).hex().upper() == v["expected_hex"], v["name"]
        assert ldap_bind.application_data(der) == b"tls-server-end-point:" + bytes.fromhex(v["expected_hex"])


def test_channel_bindings_struct_is_pyspnego_s_and_rfc_2744_s():
    """The packed gss_channel_bindings_struct (which MD5 turns into MsvAvChannelBindings) is the
    layout pyspnego documents (its test vector: type, length, address per side, then the data)."""
    from spnego.channel_bindings import GssChannelBindings

    app = b"tls-server-end-point:" + bytes(range(32))
    assert ldap_bind.gss_channel_bindings(app) == GssChannelBindings(application_data=app).pack()
    assert ldap_bind.gss_channel_bindings(app)[:20] == b"\0" * 16 + struct.pack("<I", len(app))
    # pyspnego's own documented packing (tests/test_channel_bindings.py), so both agree on the layout
    assert GssChannelBindings(2, b"\x01\x02\x03\x04", 0, b"\x05\x06\x07\x08", b"caf\xc3\xa9").pack() == (
        b"\x02\x00\x00\x00\x04\x00\x00\x00\x01\x02\x03\x04\x00\x00\x00\x00\x04\x00\x00\x00\x05\x06\x07\x08"
        b"\x05\x00\x00\x00caf\xc3\xa9")


def test_refusals_are_named():
    """Diagnostics as domain controllers send them: Samba's (seen from the peer below) and Active
    Directory's channel-binding refusal, result 49 with "data 80090346" (SEC_E_BAD_BINDINGS; as
    documented by zyn3rgy/LdapRelayScan's README)."""
    samba_52e = "8009030C: LdapErr: DSID-0C0904DC, comment: AcceptSecurityContext error, data 52e, v1db1"
    e = ldap_bind.bind_refused("ldaps://dc1:636", "invalidCredentials", samba_52e)
    assert isinstance(e, AuthError) and "wrong password" in str(e) and "data 52e" in str(e)
    ad_cbt = "80090346: LdapErr: DSID-0C0906B5, comment: AcceptSecurityContext error, data 80090346, v4563"
    e = ldap_bind.bind_refused("ldaps://dc1:636", "invalidCredentials", ad_cbt)
    assert isinstance(e, AuthError) and "channel binding" in str(e) and "SEC_E_BAD_BINDINGS" in str(e)
    samba_yes = "SASL:[GSS-SPNEGO]: Sign or Seal are required."
    e = ldap_bind.bind_refused("ldaps://dc1:636", "strongerAuthRequired", samba_yes)
    assert "allow_sasl_over_tls" in str(e) and 'bind = "simple"' in str(e)


# --- NTLM against the real DC ----------------------------------------------------------


def _av_pairs(authenticate: bytes) -> dict[int, bytes]:
    """The AV pairs inside an NTLMv2 AUTHENTICATE message (MS-NLMP 2.2.1.3, 2.2.2.7, 2.2.2.1)."""
    assert authenticate[:8] == b"NTLMSSP\0" and struct.unpack("<I", authenticate[8:12])[0] == 3
    length, _, offset = struct.unpack("<HHI", authenticate[20:28])  # NtChallengeResponseFields
    response = authenticate[offset:offset + length]
    pos = 16 + 28  # NTProofStr, then RespType, HiRespType, reserved, TimeStamp, ChallengeFromClient, reserved
    pairs: dict[int, bytes] = {}
    while pos + 4 <= len(response):
        av_id, av_len = struct.unpack("<HH", response[pos:pos + 4])
        if av_id == 0:
            break
        pairs[av_id] = response[pos + 4:pos + 4 + av_len]
        pos += 4 + av_len
    return pairs


@pytest.mark.peers
@pytest.mark.slow
@pytest.mark.parametrize("security,port", [("ldaps", 636), ("starttls", 389)])
def test_ntlm_bind_reads_every_computer(samba_dc, security, port):
    r = read_directory(_cfg(samba_dc, security=security, port=port), samba_dc.reader_password)
    assert {f.directory.name for f in r.computers} == {c.name for c in samba_dc.computers} | {"DC1"}


@pytest.mark.peers
@pytest.mark.slow
def test_ntlm_bind_with_a_upn(samba_dc):
    _authenticated_search(connect(_cfg(samba_dc, bind_dn=samba_dc.reader_upn.lower()), samba_dc.reader_password))


def _authenticated_search(conn) -> None:
    """A search Samba answers only to an authenticated session (anonymous gets an error)."""
    try:
        assert conn.bound
        conn.search(conn.server.info.naming_contexts[0] if conn.server.info else "DC=city,DC=test",
                    "(sAMAccountName=itaudit-read)", attributes=["sAMAccountName"])
        assert len(conn.response) >= 1
    finally:
        _close(conn)


@pytest.mark.peers
@pytest.mark.slow
def test_ntlm_message_carries_the_dc_certificate_binding(samba_dc):
    """The AUTHENTICATE message on the wire holds MD5(gss_channel_bindings_struct) of
    "tls-server-end-point:" + SHA-256 of the certificate file the DC serves (read from its disk)."""
    import ssl

    ldap3 = ldap3_module()
    pem = (samba_dc.ca_file.parent / "cert.pem").read_bytes()
    der = ssl.PEM_cert_to_DER_cert(pem.decode())
    assert b"sha256" in subprocess.run(["openssl", "x509", "-noout", "-text"], input=pem, capture_output=True,
                                       check=True).stdout.lower()  # so RFC 5929 hashes it with SHA-256
    app = b"tls-server-end-point:" + hashlib.sha256(der).digest()
    expected = hashlib.md5(b"\0" * 16 + struct.pack("<I", len(app)) + app).digest()  # noqa: S324 - MS-NLMP's MD5

    server = ldap3.Server(samba_dc.address, port=636, use_ssl=True, get_info=ldap3.NONE,
                          tls=_tls_class()(tls_context(str(samba_dc.ca_file)), samba_dc.tls_name))
    conn = ldap3.Connection(server, raise_exceptions=True, read_only=True)
    seen: list[tuple[str, bytes | None]] = []
    try:
        conn.open()
        ldap_bind.bind(conn, "ntlm", samba_dc.reader_ntlm, samba_dc.reader_password, samba_dc.tls_name, "dc",
                       observe=lambda who, token: seen.append((who, token)))
        assert conn.bound
    finally:
        _close(conn)
    sent = [t for who, t in seen if who == "client"]
    assert len(sent) == 2 and sent[0][:12] == b"NTLMSSP\0\x01\0\0\0"  # NEGOTIATE, then AUTHENTICATE
    pairs = _av_pairs(sent[1])
    assert pairs[0x000A] == expected  # MsvAvChannelBindings
    flags = struct.unpack("<I", sent[1][60:64])[0]
    assert not flags & 0x10 and not flags & 0x20  # neither sign nor seal: TLS is the protection


@pytest.mark.peers
@pytest.mark.slow
def test_ntlm_wrong_password_and_unknown_account(samba_dc):
    with pytest.raises(AuthError, match=r"wrong password or unknown account \(invalidCredentials, data 52e\)"):
        read_directory(_cfg(samba_dc), "not-the-password")
    with pytest.raises(AuthError, match="refused the bind account"):
        read_directory(_cfg(samba_dc, bind_dn="CITY\\nobody-here"), samba_dc.reader_password)


@pytest.mark.peers
@pytest.mark.slow
def test_untrusted_certificate_refused_before_any_ntlm_token(samba_dc):
    with pytest.raises(CertificateRefused, match="no credentials sent"):
        connect(_cfg(samba_dc, ca_file=None), samba_dc.reader_password)


@pytest.mark.peers
@pytest.mark.slow
def test_dc_refusing_sasl_over_tls_is_named(samba_dc):
    """Samba's default ('ldap server require strong auth = yes') refuses NTLM and Kerberos over
    TLS; the reason says what to change. Simple binds still work there."""
    from peers_samba import restarted

    with restarted(samba_dc, "ldap server require strong auth = yes"):
        with pytest.raises(AuthError, match="refuses NTLM and Kerberos binds over TLS without signing"):
            read_directory(_cfg(samba_dc), samba_dc.reader_password)
        _close(connect(_cfg(samba_dc, bind="simple", bind_dn=samba_dc.reader_dn), samba_dc.reader_password))


# --- Kerberos against the real DC's KDC ------------------------------------------------


@pytest.fixture
def kerberos(samba_dc, monkeypatch):
    """python-gssapi, and MIT Kerberos pointed at the test DC's KDC (no system file touched)."""
    from conftest import need_peer

    try:
        import gssapi  # noqa: F401
    except ImportError:
        need_peer(False, "python-gssapi not installed (pip install '.[kerberos]', needs libkrb5-dev)")
    monkeypatch.setenv("KRB5_CONFIG", str(samba_dc.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{samba_dc.workdir}/no-such-cache")  # no ticket of this machine's user
    return samba_dc


@pytest.mark.peers
@pytest.mark.slow
@pytest.mark.parametrize("security,port", [("ldaps", 636), ("starttls", 389)])
def test_kerberos_bind_reads_every_computer(kerberos, security, port):
    dc = kerberos
    r = read_directory(_cfg(dc, bind="kerberos", bind_dn=dc.reader_upn, security=security, port=port),
                       dc.reader_password)
    assert {f.directory.name for f in r.computers} == {c.name for c in dc.computers} | {"DC1"}


@pytest.mark.peers
@pytest.mark.slow
def test_kerberos_ap_req_carries_the_dc_certificate_binding(kerberos, tmp_path, monkeypatch):
    """The AP-REQ sent to the DC, accepted again by MIT Kerberos with the DC's own ldap/ key
    (exported by samba-tool): only with the binding of the certificate file the DC serves."""
    import ssl

    import gssapi
    import gssapi.raw as graw
    from gssapi.raw.exceptions import BadChannelBindingsError

    dc = kerberos
    ldap3 = ldap3_module()
    server = ldap3.Server(dc.address, port=636, use_ssl=True, get_info=ldap3.NONE,
                          tls=_tls_class()(tls_context(str(dc.ca_file)), dc.tls_name))
    conn = ldap3.Connection(server, raise_exceptions=True, read_only=True)
    seen: list[tuple[str, bytes | None]] = []
    try:
        conn.open()
        ldap_bind.bind(conn, "kerberos", dc.reader_upn, dc.reader_password, dc.tls_name, "dc",
                       observe=lambda who, token: seen.append((who, token)))
        assert conn.bound
    finally:
        _close(conn)
    ap_req = seen[0][1]
    keytab = tmp_path / "ldap.keytab"
    subprocess.run(["samba-tool", "domain", "exportkeytab", str(keytab), "--principal=ldap/dc1.city.test@CITY.TEST",
                    "-s", str(dc.conf)], check=True, capture_output=True, timeout=60)
    monkeypatch.setenv("KRB5_KTNAME", f"FILE:{keytab}")
    monkeypatch.setenv("KRB5RCACHETYPE", "none")  # the DC already accepted this AP-REQ once

    der = ssl.PEM_cert_to_DER_cert((dc.ca_file.parent / "cert.pem").read_text())
    right = b"tls-server-end-point:" + hashlib.sha256(der).digest()

    # The raw call: it raises at once (the high-level context defers an error that carries a token).
    def accept(app_data: bytes) -> str:
        res = graw.accept_sec_context(ap_req, gssapi.Credentials(usage="accept"),
                                      channel_bindings=graw.ChannelBindings(application_data=app_data))
        return str(gssapi.Name(res.initiator_name))

    assert accept(right) == dc.reader_upn
    with pytest.raises(BadChannelBindingsError):
        accept(b"tls-server-end-point:" + bytes(32))


@pytest.mark.peers
@pytest.mark.slow
def test_kerberos_lowercase_realm(kerberos):
    dc = kerberos
    _authenticated_search(connect(_cfg(dc, bind="kerberos", bind_dn="itaudit-read@city.test"), dc.reader_password))


@pytest.mark.peers
@pytest.mark.slow
def test_kerberos_refusals_are_named(kerberos):
    dc = kerberos
    with pytest.raises(AuthError, match="refused the password of itaudit-read@CITY.TEST"):
        read_directory(_cfg(dc, bind="kerberos", bind_dn=dc.reader_upn), "not-the-password")
    with pytest.raises(AuthError, match="does not know nobody@CITY.TEST"):
        read_directory(_cfg(dc, bind="kerberos", bind_dn="nobody@CITY.TEST"), dc.reader_password)
    with pytest.raises(AuthError, match="no Kerberos ticket"):  # no password and no ticket cache
        read_directory(_cfg(dc, bind="kerberos", bind_dn=dc.reader_upn), "")


@pytest.mark.peers
@pytest.mark.slow
def test_kerberos_without_a_reachable_kdc(kerberos, tmp_path, monkeypatch):
    dc = kerberos
    conf = tmp_path / "krb5.conf"
    conf.write_text(dc.krb5_conf.read_text().replace("kdc = 127.0.0.1", "kdc = 127.0.0.1:9"))
    monkeypatch.setenv("KRB5_CONFIG", str(conf))
    with pytest.raises(ConnectError, match="no KDC reachable for the realm of itaudit-read@CITY.TEST"):
        read_directory(_cfg(dc, bind="kerberos", bind_dn=dc.reader_upn), dc.reader_password)


@pytest.mark.peers
@pytest.mark.slow
def test_kerberos_with_a_ticket_from_kinit(kerberos, tmp_path, monkeypatch):
    """No password in itaudit at all: a ticket obtained by kinit (password on its stdin) in a
    private cache is used."""
    dc = kerberos
    cache = tmp_path / "ccache"
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{cache}")
    subprocess.run(["kinit", dc.reader_upn], input=dc.reader_password + "\n", text=True, check=True,
                   capture_output=True, timeout=30)
    assert cache.exists() and dc.reader_password.encode() not in cache.read_bytes()
    r = read_directory(_cfg(dc, bind="kerberos", bind_dn=dc.reader_upn, password_env=None), "")
    assert len(r.computers) == len(dc.computers) + 1


# --- through the CLI -------------------------------------------------------------------


@pytest.mark.peers
@pytest.mark.slow
def test_cli_scan_with_a_kerberos_bind(kerberos, tmp_path):
    """`itaudit scan` with bind = "kerberos": every computer lands in SQLite; with a wrong password
    the scan names the reason, exits 3 and the devices already stored stay."""
    import os
    import sqlite3
    import sys

    dc = kerberos
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"""
[settings]
data_dir = "data"

[cities.testville]
name = "Testville"

[cities.testville.directory]
server = "{dc.address}"
tls_name = "{dc.tls_name}"
ca_file = "{dc.ca_file}"
base_dn = "{dc.base_dn}"
bind = "kerberos"
bind_dn = "{dc.reader_upn}"
password_env = "E2E_KRB_PASSWORD"
""", encoding="utf-8")
    cfg.chmod(0o600)
    root = Path(__file__).resolve().parents[1]

    def scan(password: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "E2E_KRB_PASSWORD": password, "COLUMNS": "200"}
        return subprocess.run([sys.executable, "-m", "itaudit.cli", "scan", "-c", str(cfg), "--as-of",
                               dc.as_of.isoformat(), "--json"], capture_output=True, text=True, cwd=root, env=env,
                              timeout=300)

    first = scan(dc.reader_password)
    assert first.returncode == 0, first.stdout + first.stderr
    db = tmp_path / "data" / "testville" / "itaudit.db"
    with sqlite3.connect(db) as c:
        n = c.execute("SELECT COUNT(*) FROM devices").fetchone()[0]
    assert n == len(dc.computers) + 1
    second = scan("not-the-password")
    assert second.returncode == 3
    out = json.loads(second.stdout)[0]
    assert any("refused the password of itaudit-read@CITY.TEST" in e["reason"] for e in out["errors"])
    assert "Traceback" not in second.stderr and "not-the-password" not in second.stdout + second.stderr
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*) FROM devices").fetchone()[0] == n
