"""A real Samba Active Directory domain controller for the tests (Debian's ``samba``).

``samba_dc`` (session scope): ``samba-tool domain provision`` into a temp folder (about
4-8 s), the schema extended with legacy LAPS, a plain user as the read-only bind account,
the computers of ``directory_fleet.fleet`` created with their real attributes
(``samba_populate.py``, run by Debian's Python, which has Samba's bindings), then ``samba``
in the foreground with only its LDAP service, on 127.0.0.1 (Samba refuses other loopback
addresses: "no network interfaces found"), LDAPS on 636 with the certificate and CA it
generates at first start, and its KDC on 127.0.0.1:88 (``krb5.conf`` in the temp folder).
Readiness is polled with a real LDAPS bind, never a blind sleep.

The DC accepts NTLM and Kerberos (SASL) binds over TLS (``ldap server require strong auth =
allow_sasl_over_tls``; Samba's default, ``yes``, refuses them - ``restarted`` runs the DC
with other options for one test). Samba 4.17 does not check TLS channel bindings (4.21
does); they are sent all the same.

Samba needs root (provisioning writes POSIX ACLs); CI runs as root. Only one DC can hold
127.0.0.1:636 (and 389, 88, 464), so parallel test runs on this machine take turns (a file
lock held by the whole session).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from directory_fleet import BASE_DN, Computer, as_json, fleet

__all__ = ["SambaDC", "samba_dc"]  # running_dc, SambaError: for bench/directory_scale.py

SAMBA = "/usr/sbin/samba"
SAMBA_TOOL = "/usr/bin/samba-tool"
SYSTEM_PYTHON = "/usr/bin/python3"
POPULATE = Path(__file__).resolve().parent / "samba_populate.py"
LOCK = Path("/tmp/itaudit-test-samba.lock")  # noqa: S108 - shared by every test run on the machine


@dataclass
class SambaDC:
    """How to reach the test DC (test-only secrets)."""

    address: str
    port: int
    tls_name: str  # the name in the certificate Samba generated
    ca_file: Path
    base_dn: str
    reader_dn: str
    reader_password: str
    admin_dn: str
    admin_password: str
    as_of: dt.date
    computers: list[Computer] = field(default_factory=list)
    workdir: Path = Path()
    realm: str = "CITY.TEST"
    reader_upn: str = ""  # the bind account as Kerberos names it (user@REALM)
    reader_ntlm: str = ""  # ... and as NTLM does (DOMAIN\\user)
    krb5_conf: Path = Path()  # points at the DC's KDC; tests set KRB5_CONFIG to it
    conf: Path = Path()
    process: subprocess.Popen[bytes] | None = None


def _need_samba() -> None:
    from conftest import need_peer

    have = all(os.path.exists(p) for p in (SAMBA, SAMBA_TOOL, SYSTEM_PYTHON))
    need_peer(have, f"{SAMBA} / {SAMBA_TOOL} not installed (apt-get install samba samba-ad-provision "
                    "samba-dsdb-modules samba-vfs-modules)")
    need_peer(os.geteuid() == 0, "a Samba AD DC is provisioned and run as root (CI runs as root)")
    ok = subprocess.run([SYSTEM_PYTHON, "-c", "import samba.samdb"], capture_output=True).returncode == 0
    need_peer(ok, f"{SYSTEM_PYTHON} cannot import samba.samdb (python3-samba missing)")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _bind_ok(dc: SambaDC) -> bool:
    """One real LDAPS bind as the read-only account (the collector's own connect, which closes on failure)."""
    from collectors.directory import _close, connect
    from itaudit.config import DirectoryConfig
    from itaudit.errors import CollectError

    cfg = DirectoryConfig(server=dc.address, port=dc.port, base_dn=dc.base_dn, bind_dn=dc.reader_dn,
                          password_env="UNUSED", tls_name=dc.tls_name, ca_file=str(dc.ca_file), timeout=5)
    try:
        _close(connect(cfg, dc.reader_password))
        return True
    except CollectError:
        return False


class SambaError(RuntimeError):
    """The test DC could not be set up (the fixture fails with this reason)."""


# Options the test DC runs with beyond provisioning's (see the module docstring).
DC_OPTIONS = ("ldap server require strong auth = allow_sasl_over_tls",)
PORTS = (636, 389, 88, 464)  # LDAPS, LDAP, Kerberos, kpasswd


def _start(dc: SambaDC, options: tuple[str, ...] = ()) -> None:
    """Start ``samba`` for ``dc`` and wait until it answers a real LDAPS bind."""
    log = open(dc.workdir / "samba.out", "ab")  # noqa: SIM115 - the child holds it; closed below
    try:
        dc.process = subprocess.Popen([SAMBA, "-i", "-M", "single", "-s", str(dc.conf),
                                       *(f"--option={o}" for o in options)],
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        log.close()
    ready = time.monotonic() + 60
    while not (dc.ca_file.exists() and _bind_ok(dc)):
        if dc.process.poll() is not None:
            raise SambaError(f"samba exited with {dc.process.returncode}: "
                             f"{(dc.workdir / 'samba.out').read_text(errors='replace')[-2000:]}")
        if time.monotonic() > ready:
            raise SambaError("samba did not answer an LDAPS bind within 60 s")
        time.sleep(0.2)


def _stop(dc: SambaDC) -> None:
    proc, dc.process = dc.process, None
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def restarted(dc: SambaDC, *options: str) -> Iterator[SambaDC]:
    """The same DC run with other smb.conf ``options`` for the block, then as before."""
    _stop(dc)
    try:
        _start(dc, options)
        yield dc
    finally:
        _stop(dc)
        _start(dc)


@contextlib.contextmanager
def running_dc(tmp: Path, computers: list[Computer], as_of: dt.date, *, wait_lock: float = 600) -> Iterator[SambaDC]:
    """Provision, populate and run a Samba AD DC in ``tmp`` (used by the fixture and bench/)."""
    lock_fd = os.open(LOCK, os.O_CREAT | os.O_RDWR, 0o600)
    deadline = time.monotonic() + wait_lock
    while True:  # another test run holds 127.0.0.1:636: wait for it (never two DCs at once)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(lock_fd)
                raise SambaError(f"another run held the Samba DC lock ({LOCK}) for {wait_lock:.0f} s") from None
            time.sleep(1)
    dc = None
    try:
        if not all(_port_free(p) for p in PORTS):
            raise SambaError(f"one of 127.0.0.1:{'/'.join(map(str, PORTS))} is taken by another LDAP or Kerberos "
                             "server: the Samba test DC needs them")
        target = tmp / "dc"
        admin_password = "Adm1n-Test-Pass!"  # test-only
        subprocess.run(
            [SAMBA_TOOL, "domain", "provision", "--realm=CITY.TEST", "--domain=CITY", "--server-role=dc",
             "--dns-backend=NONE", f"--adminpass={admin_password}", "--host-name=dc1", "--host-ip=127.0.0.1",
             f"--targetdir={target}", "--option=interfaces=127.0.0.1", "--option=bind interfaces only=yes",
             "--option=server services=ldap kdc", f"--option=log file={tmp}/log.%m",
             *(f"--option={o}" for o in DC_OPTIONS)],
            check=True, capture_output=True, timeout=180,
        )
        conf = target / "etc" / "smb.conf"
        spec = tmp / "computers.json"
        spec.write_text(json.dumps(as_json(computers)), encoding="utf-8")
        reader, reader_password = "itaudit-read", "Read0nly-Test-Pass!"  # test-only
        done = subprocess.run([SYSTEM_PYTHON, str(POPULATE), str(conf), str(target / "private" / "sam.ldb"),
                               str(spec), reader, reader_password], capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise SambaError(f"populating the Samba DC failed: {done.stderr[-2000:]}")
        krb5_conf = tmp / "krb5.conf"
        krb5_conf.write_text(KRB5_CONF, encoding="utf-8")
        dc = SambaDC(address="127.0.0.1", port=636, tls_name="DC1.city.test",
                     ca_file=target / "private" / "tls" / "ca.pem", base_dn=BASE_DN,
                     reader_dn=f"CN={reader},CN=Users,{BASE_DN}", reader_password=reader_password,
                     admin_dn=f"CN=Administrator,CN=Users,{BASE_DN}", admin_password=admin_password,
                     as_of=as_of, computers=computers, workdir=tmp, reader_upn=f"{reader}@CITY.TEST",
                     reader_ntlm=f"CITY\\{reader}", krb5_conf=krb5_conf, conf=conf)
        _start(dc)
        yield dc
    finally:
        if dc is not None:
            _stop(dc)
        os.close(lock_fd)  # releases the lock


# The test realm's KDC, and nothing looked up in DNS (the names exist only in the test DC).
KRB5_CONF = """[libdefaults]
    default_realm = CITY.TEST
    dns_lookup_realm = false
    dns_lookup_kdc = false
    rdns = false
    dns_canonicalize_hostname = false
[realms]
    CITY.TEST = {
        kdc = 127.0.0.1
    }
[domain_realm]
    .city.test = CITY.TEST
    city.test = CITY.TEST
"""


@pytest.fixture(scope="session")
def samba_dc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaDC]:
    """A provisioned, populated Samba AD DC on 127.0.0.1:636 (LDAPS)."""
    _need_samba()
    as_of = dt.datetime.now(dt.UTC).date()
    try:
        with running_dc(tmp_path_factory.mktemp("samba"), fleet(as_of), as_of) as dc:
            yield dc
    except SambaError as exc:
        pytest.fail(str(exc))


def copy_ca(dc: SambaDC, dest: Path) -> Path:
    """The DC's CA certificate copied where a test config can point to it."""
    out = dest / "dc-ca.pem"
    shutil.copyfile(dc.ca_file, out)
    return out
