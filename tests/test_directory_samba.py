"""The directory collector against a real Samba AD domain controller, over LDAPS/StartTLS
with certificate validation (the CA Samba generated for itself)."""

from __future__ import annotations

import json

import pytest
from directory_fleet import BASE_DN

from collectors.directory import connect, read_directory
from itaudit.config import DirectoryConfig
from itaudit.errors import AuthError, CertificateRefused, ConnectError, ProtocolError

pytestmark = [pytest.mark.peers, pytest.mark.slow]


def _cfg(dc, *, admin: bool = False, **kw) -> DirectoryConfig:
    base = dict(server=dc.address, port=dc.port, base_dn=dc.base_dn, tls_name=dc.tls_name, ca_file=str(dc.ca_file),
                bind_dn=dc.admin_dn if admin else dc.reader_dn, password_env="UNUSED", page_size=50, timeout=10)
    base.update(kw)
    return DirectoryConfig(**base)


@pytest.fixture(scope="module")
def reader_read(samba_dc):
    return read_directory(_cfg(samba_dc), samba_dc.reader_password)


@pytest.fixture(scope="module")
def admin_read(samba_dc):
    return read_directory(_cfg(samba_dc, admin=True), samba_dc.admin_password)


def _by_name(read):
    return {f.directory.name: f for f in read.computers}


def test_every_computer_read_with_its_attributes(samba_dc, reader_read):
    got = _by_name(reader_read)
    assert len(samba_dc.computers) >= 200
    # every populated computer, plus the domain controller's own object
    assert set(got) == {c.name for c in samba_dc.computers} | {"DC1"}
    assert reader_read.pages >= 5  # 242 objects at 50 a page: the paged search went past one page
    for c in samba_dc.computers:
        f = got[c.name]
        d = f.directory
        assert d.dns_host_name == c.dns, c.name
        assert f.identity.hostname == (c.dns or c.name)
        assert d.created.isoformat() == c.created, c.name
        assert (d.last_logon.isoformat() if d.last_logon else None) == c.last_logon, c.name
        assert d.disabled is c.disabled, c.name
        assert d.laps_source == "legacy"  # the schema has legacy LAPS only
        assert d.laps_managed is (c.laps_expires is not None), c.name
        assert (d.laps_expires.isoformat() if d.laps_expires else None) == c.laps_expires, c.name
        assert f.software.os_name == c.os
        assert f.software.product == c.product, c.name
        assert f.software.release == c.release, (c.name, c.os, c.version)
        if c.os:
            assert f.identity.kind == ("server" if "Server" in c.os else "workstation")
    assert "KÄMMEREI-037" in got  # non-ASCII names survive
    bare = got["BARE-0001"]
    assert bare.software.os_name is None and "software.os_name" in bare.gaps
    assert bare.directory.last_logon is None and "directory.last_logon" in bare.gaps


def test_no_password_attribute_is_ever_read(samba_dc, admin_read):
    """The admin may read ms-Mcs-AdmPwd and msFVE-RecoveryPassword: neither may appear anywhere."""
    text = json.dumps([f.to_dict() for f in admin_read.computers])
    secrets = [c.laps_password for c in samba_dc.computers if c.laps_password]
    assert secrets and not [s for s in secrets if s in text]
    assert "AdmPwd\"" not in text and "RecoveryPassword" not in text


def test_bitlocker_escrow_counted_when_visible(samba_dc, reader_read, admin_read):
    # A plain user cannot see recovery objects (as in a real domain): unknown, not "none".
    assert reader_read.recovery_objects == 0
    assert all(f.directory.bitlocker_keys is None for f in reader_read.computers)
    assert "directory.bitlocker_keys" in reader_read.computers[0].gaps
    got = _by_name(admin_read)
    assert admin_read.recovery_objects == sum(c.recovery_keys for c in samba_dc.computers) > 0
    for c in samba_dc.computers:
        assert got[c.name].directory.bitlocker_keys == c.recovery_keys, c.name


def test_starttls_with_validation(samba_dc):
    r = read_directory(_cfg(samba_dc, security="starttls", port=389), samba_dc.reader_password)
    assert len(r.computers) == len(samba_dc.computers) + 1


def test_wrong_password_is_an_auth_error(samba_dc):
    with pytest.raises(AuthError, match="refused the bind account"):
        read_directory(_cfg(samba_dc), "not-the-password")


@pytest.mark.parametrize("security,port", [("ldaps", 636), ("starttls", 389)])
def test_untrusted_certificate_refused_before_bind(samba_dc, security, port):
    # No ca_file: the system trust store does not know Samba's own CA.
    with pytest.raises(CertificateRefused, match="no credentials sent"):
        connect(_cfg(samba_dc, ca_file=None, security=security, port=port), samba_dc.reader_password)


def test_certificate_for_another_name_refused(samba_dc):
    with pytest.raises(CertificateRefused, match="Hostname mismatch"):
        connect(_cfg(samba_dc, tls_name="dc9.elsewhere.test"), samba_dc.reader_password)


def test_unreachable_controller(samba_dc):
    with pytest.raises(ConnectError, match="unreachable"):
        connect(_cfg(samba_dc, port=1, timeout=2), samba_dc.reader_password)


def test_base_outside_the_directory_is_named(samba_dc):
    # (Windows answers a referral here, which is named and not followed; Samba says noSuchObject.)
    with pytest.raises(ProtocolError, match="check base_dn"):
        read_directory(_cfg(samba_dc, base_dn="DC=other,DC=example"), samba_dc.reader_password)


def test_continuation_references_are_named(reader_read):
    # Samba returns a reference to the configuration partition from a search of the domain.
    assert any(BASE_DN.split(",")[0][3:] in r for r in reader_read.referrals)


def test_schema_without_laps_gives_unknown_not_unmanaged(samba_dc):
    """A domain whose schema has no LAPS attributes: the same real entries, read as such, say
    "unknown" (LAPS may back up to Entra ID), never "not managed"."""
    from collectors.directory import COMPUTER_ATTRIBUTES, _close, _paged, computer_facts, connect

    conn = connect(_cfg(samba_dc), samba_dc.reader_password)
    try:
        entries = [e for e in _paged(conn, samba_dc.base_dn, "(objectCategory=computer)", list(COMPUTER_ATTRIBUTES),
                                     100) if e.get("type") == "searchResEntry"]
    finally:
        _close(conn)
    assert len(entries) == len(samba_dc.computers) + 1
    for e in entries:
        f = computer_facts(e["dn"], e["raw_attributes"], laps_source=None, recovery_counts=None, read_at="t")
        assert f.directory.laps_managed is None and "no LAPS attributes" in f.gaps["directory.laps_managed"]


def test_domain_controller_object(reader_read):
    dc = _by_name(reader_read)["DC1"]
    assert dc.directory.domain_controller is True and dc.directory.disabled is False
