"""Issue 17 end to end: the real CLI reads a real Samba AD DC and scans a real sshd; what lands
in SQLite, in ``itaudit directory`` and in the monthly summary is checked."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from directory_fleet import BASE_DN

from collectors.directory import ldap3_module

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.peers, pytest.mark.slow]


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "itaudit.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **env, "COLUMNS": "200"}, timeout=300)


def _admin(dc):
    from collectors.directory import _tls_class, tls_context

    ldap3 = ldap3_module()
    server = ldap3.Server(dc.address, port=dc.port, use_ssl=True,
                          tls=_tls_class()(tls_context(str(dc.ca_file)), dc.tls_name), get_info=ldap3.NONE)
    conn = ldap3.Connection(server, user=dc.admin_dn, password=dc.admin_password, raise_exceptions=True)
    conn.bind()
    return conn


@pytest.fixture(scope="module")
def city(tmp_path_factory, samba_dc, sshd):
    """A city whose directory is the Samba DC, with this machine (the sshd host) joined to it."""
    work = tmp_path_factory.mktemp("dirscan")
    host = socket.gethostname().split(".")[0]
    host_dn = f"CN={host},CN=Computers,{BASE_DN}"
    conn = _admin(samba_dc)
    conn.add(host_dn, ["computer"], {"sAMAccountName": f"{host[:15]}$", "userAccountControl": "4096",
                                      "dNSHostName": f"{host}.city.test", "operatingSystem": "Debian GNU/Linux"})
    cfg = work / "config.toml"
    cfg.write_text(f"""
[settings]
data_dir = "data"
timeout = 15

[cities.testville]
name = "Testville"

[cities.testville.credentials.key]
type = "ssh"
username = "{sshd.username}"
key_file = "{sshd.client_key}"

[cities.testville.directory]
server = "{samba_dc.address}"
tls_name = "{samba_dc.tls_name}"
ca_file = "{samba_dc.ca_file}"
base_dn = "{samba_dc.base_dn}"
bind_dn = "{samba_dc.reader_dn}"
password_env = "E2E_DIR_PASSWORD"
page_size = 100

[[cities.testville.targets]]
address = "{sshd.address}"
port = {sshd.port}
credential = "key"
name = "real-sshd"

# In the directory as PC-0002, switched off today: judged from the directory, its error reported.
[[cities.testville.targets]]
address = "127.0.2.77"
port = 2222
credential = "key"
name = "PC-0002"
""", encoding="utf-8")
    cfg.chmod(0o600)
    register = work / "register.csv"
    register.write_text("hostname,purchase_date,department\nPC-0005,2019-03-01,Finance\n"
                        "ghost-pc-99,2018-01-01,Parks\n", encoding="utf-8")
    env = {"E2E_DIR_PASSWORD": samba_dc.reader_password}
    as_of = samba_dc.as_of.isoformat()
    first = run_cli("scan", "-c", str(cfg), "--as-of", as_of, "--json", env=env)
    imported = run_cli("assets", "import", "-c", str(cfg), str(register), env=env)
    try:
        yield {"cfg": cfg, "env": env, "first": first, "imported": imported, "host": host, "as_of": as_of,
               "db": work / "data" / "testville" / "itaudit.db", "work": work}
    finally:
        conn.delete(host_dn)
        conn.unbind()


def _q(db: Path, sql: str, *args):
    with sqlite3.connect(db) as c:
        return c.execute(sql, args).fetchall()


def test_scan_reads_the_directory_and_merges_the_scanned_host(city, samba_dc):
    r = city["first"]
    assert r.returncode == 3, r.stderr  # the switched-off PC
    out = json.loads(r.stdout)[0]
    n = len(samba_dc.computers) + 2  # the fleet, the DC's own object, this host
    assert out["directory_computers"] == n
    assert out["directory_only"] == n - 2
    assert out["failed"] == 1 and out["errors"][0]["target"] == "ssh://127.0.2.77:2222"
    db = city["db"]
    # One device per machine: this host's scanned facts and its computer object are one device.
    assert _q(db, "select count(*) from devices")[0][0] == n
    merged = _q(db, "select protocol, directory_dn, last_full_audit from devices where host_key = ?",
                city["host"].lower())
    assert len(merged) == 1 and merged[0][0] == "ssh" and merged[0][1].startswith(f"CN={city['host']},")
    assert merged[0][2]
    sources = dict(_q(db, "select source, count(*) from observations group by source"))
    assert sources == {"directory": n - 1, "scan+directory": 1}
    # The unreachable PC is one device, judged from what the directory says about it.
    row = _q(db, "select d.protocol, d.last_status, o.status, o.source, json_extract(o.facts, '$.software.release') "
                 "from devices d join observations o on o.device_id = d.id where d.name = 'PC-0002'")
    assert row == [("ssh", "error", "error", "directory", "10-21h2-e")]


def test_directory_findings_in_sqlite(city, samba_dc):
    db = city["db"]
    stale = {c.name for c in samba_dc.computers if not c.disabled and (
        (c.last_logon and (samba_dc.as_of - __import__("datetime").date.fromisoformat(c.last_logon)).days > 90)
        or (not c.last_logon and (samba_dc.as_of - __import__("datetime").date.fromisoformat(c.created)).days > 90))}
    got = {r[0] for r in _q(db, "select d.name from findings f join devices d on d.id = f.device_id "
                                "where f.check_id = 'AD-001' and f.resolved_at is null")}
    assert got == stale and len(stale) > 10
    no_laps = {c.name for c in samba_dc.computers if not c.disabled and c.os and not c.laps_expires}
    got = {r[0] for r in _q(db, "select d.name from findings f join devices d on d.id = f.device_id "
                                "where f.check_id = 'AD-002' and f.resolved_at is null")}
    assert got == no_laps
    # The read-only account cannot see recovery objects: BitLocker escrow is unknown, never "none".
    assert _q(db, "select distinct status from check_results where check_id = 'AD-003'") == [("unknown",)]
    # A disabled object judged from the directory gets only the stale-object check.
    disabled = next(c.name for c in samba_dc.computers if c.disabled)
    checks = {r[0] for r in _q(db, "select check_id from check_results c join devices d on d.id = c.device_id "
                                   "where d.name = ?", disabled)}
    assert "AD-001" in checks and "EOL-001" not in checks
    # Unsupported Windows from the directory alone: Windows 7 and Server 2008 (enabled objects).
    eol = {r[0] for r in _q(db, "select d.name from findings f join devices d on d.id = f.device_id "
                                "where f.check_id = 'EOL-001'")}
    old = {c.name for c in samba_dc.computers if not c.disabled and c.os and
           (c.os.startswith("Windows 7") or c.os.startswith("Windows Server 2008"))}
    assert old <= eol
    # Nothing secret: the LAPS passwords the DC holds are nowhere in the database.
    raw = db.read_bytes() + (db.with_suffix(".db-wal").read_bytes() if db.with_suffix(".db-wal").exists() else b"")
    assert not [c.laps_password for c in samba_dc.computers if c.laps_password and c.laps_password.encode() in raw]


def test_reconciliation(city):
    assert city["imported"].returncode == 0, city["imported"].stderr
    r = run_cli("directory", "-c", str(city["cfg"]), "--json", env=city["env"])
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["last_read"]["status"] == "ok"
    only = {row["name"] for row in rec["directory_only"]}
    assert "PC-0005" in only and city["host"] not in only
    assert rec["not_in_directory"] == []  # the only scanned machine is in the directory
    assert [row["hostname"] for row in rec["register_only"]] == ["ghost-pc-99"]
    # The register row for PC-0005 matched its directory device by its short name.
    assert _q(city["db"], "select department, purchase_date from devices where name = 'PC-0005'") == \
        [("Finance", "2019-03-01")]
    text = run_cli("directory", "-c", str(city["cfg"]), env=city["env"]).stdout
    assert "In the directory but never scanned" in text and "ghost-pc-99" in text


def test_monthly_summary_counts_directory_only(city, samba_dc):
    out = city["work"] / "reports"
    r = run_cli("report", "monthly", "-c", str(city["cfg"]), "--as-of", city["as_of"], "--format", "md,html",
                "--out", str(out), env=city["env"])
    assert r.returncode == 0, r.stderr
    n = len(samba_dc.computers) + 1
    sentence = f"1 device was fully audited; {n} computers were judged from the directory only"
    for ext in ("md", "html"):
        text = "\n".join(p.read_text(encoding="utf-8") for p in out.rglob(f"*.{ext}"))
        assert sentence in text, ext


def test_failed_directory_read_keeps_every_device(city):
    db = city["db"]
    before = _q(db, "select count(*) from devices")[0][0]
    open_before = {r[0] for r in _q(db, "select id from findings where resolved_at is null")}
    r = run_cli("scan", "-c", str(city["cfg"]), "--as-of", city["as_of"], "--json",
                env={"E2E_DIR_PASSWORD": "wrong-password"})
    assert r.returncode == 3
    out = json.loads(r.stdout)[0]
    assert any("refused the bind account" in e["reason"] for e in out["errors"])
    assert "wrong-password" not in r.stdout + r.stderr
    assert _q(db, "select count(*) from devices")[0][0] == before
    # Nothing the directory said is forgotten: every open finding stays open (the unreachable
    # PC may gain one for failing again).
    assert open_before <= {r[0] for r in _q(db, "select id from findings where resolved_at is null")}
    assert _q(db, "select status from directory_reads order by id desc limit 1") == [("error",)]


def test_plan_includes_directory_only_machines_flagged(city, samba_dc):
    out = city["work"] / "plan"
    r = run_cli("report", "plan", "-c", str(city["cfg"]), "--as-of", city["as_of"], "--format", "csv",
                "--out", str(out), env=city["env"])
    assert r.returncode == 0, r.stderr
    text = "\n".join(p.read_text(encoding="utf-8") for p in out.rglob("*.csv"))
    # Old computer objects are due: their age is the directory's estimate, said so on each row.
    assert "in the directory since (estimate)" in text
    # The register's purchase date beats the estimate for the machine it matched.
    row = next(line for line in text.splitlines() if "PC-0005" in line)
    assert "purchase date" in row and "2019-03-01" in row
    # A disabled computer object is out of use: the scan judges only whether it lingers, so it
    # has no age finding, and the plan does not budget its replacement either.
    planned = {line.split(",")[1] for line in text.splitlines()[1:] if line}
    disabled = {c.name for c in samba_dc.computers if c.disabled}
    assert disabled and not planned & disabled
    html = run_cli("report", "plan", "-c", str(city["cfg"]), "--as-of", city["as_of"], "--format", "html",
                   "--out", str(out), env=city["env"])
    assert html.returncode == 0, html.stderr
    page = "\n".join(p.read_text(encoding="utf-8") for p in out.rglob("*.html"))
    assert "disabled in the directory" in page
