"""Issue 2 end to end: the real CLI scans a real sshd, a real snmpd and snmpsim, and what
lands in SQLite and in the report is checked. Unreachable and hostile devices become
error lines and escaped text, never crashes; a changed host key sends no credentials."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.peers

def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "itaudit.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **env, "COLUMNS": "200"}, timeout=180)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory, sshd, snmpd, snmpsim_fleet):
    work = tmp_path_factory.mktemp("e2e")
    env = {"E2E_SNMP_COMMUNITY": snmpd.community, "E2E_SNMP_AUTH": snmpd.auth_key,
           "E2E_SNMP_PRIV": snmpd.priv_key, "E2E_SIM_COMMUNITY": "public",
           "E2E_WRONG_COMMUNITY": "not-the-community-9x"}
    sim = {name: dev for name, dev in snmpsim_fleet.devices.items()}
    hostile = sim["hostile_values"]
    ups = sim["apc_smt1500_ap9631"]
    switch = sim["cisco_c9300_iosxe"]  # answers "public" only: the wrong community gets silence
    cfg = work / "config.toml"
    cfg.write_text(f"""
[settings]
data_dir = "data"
timeout = 12
concurrency = 8

[cities.testville]
name = "Testville"

[cities.testville.budget_lines."101-1410-5740"]
name = "IT capital"
kind = "capital"

[cities.testville.policy]
capital_budget_line = "101-1410-5740"

[cities.testville.credentials.key]
type = "ssh"
username = "{sshd.username}"
key_file = "{sshd.client_key}"

[cities.testville.credentials.v3]
type = "snmp"
version = "v3"
username = "{snmpd.v3_user}"
auth_protocol = "sha"
auth_key_env = "E2E_SNMP_AUTH"
priv_protocol = "aes128"
priv_key_env = "E2E_SNMP_PRIV"

[cities.testville.credentials.sim]
type = "snmp"
version = "v2c"
community_env = "E2E_SIM_COMMUNITY"

[cities.testville.credentials.wrong]
type = "snmp"
version = "v2c"
community_env = "E2E_WRONG_COMMUNITY"

[[cities.testville.targets]]
address = "{sshd.address}"
port = {sshd.port}
credential = "key"
name = "real-sshd"
department = "IT"

[[cities.testville.targets]]
address = "127.0.2.77"
port = 2222
credential = "key"
name = "switched-off-pc"

[[cities.testville.targets]]
address = "{snmpd.address}"
port = {snmpd.port}
protocol = "snmp"
credential = "v3"
name = "real-snmpd"

[[cities.testville.targets]]
address = "{switch.address}"
port = {switch.port}
protocol = "snmp"
credential = "wrong"
name = "wrong-community"
kind = "switch"

[[cities.testville.targets]]
address = "{ups.address}"
port = {ups.port}
protocol = "snmp"
credential = "sim"
name = "server-room-ups"

[[cities.testville.targets]]
address = "{hostile.address}"
port = {hostile.port}
protocol = "snmp"
credential = "sim"
""")
    cfg.chmod(0o600)
    proc = run_cli("scan", "-c", str(cfg), "--json", env=env)
    db = work / "data" / "testville" / "itaudit.db"
    return {"cfg": cfg, "db": db, "env": env, "scan": proc, "work": work, "sshd": sshd}


def q(db: Path, sql: str, *args: object) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def test_scan_exit_code_3_and_json_summary(city) -> None:
    proc = city["scan"]
    assert proc.returncode == 3, proc.stderr
    summary = json.loads(proc.stdout)[0]
    assert summary["targets"] == 6
    assert summary["failed"] == 2, summary["errors"]  # switched-off PC and wrong community
    reasons = {e["target"]: e["reason"] for e in summary["errors"]}
    assert any("127.0.2.77" in t and "refused" in r.lower() for t, r in reasons.items()), reasons


def test_real_sshd_facts_in_sqlite_match_this_machine(city) -> None:
    rows = q(city["db"], "select o.facts from observations o join devices d on d.id = o.device_id "
                         "where d.name = 'real-sshd' and o.status != 'error'")
    assert rows, "no facts stored for the real sshd"
    facts = json.loads(rows[0][0])
    os_release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    assert facts["software"]["os_version"].startswith(os_release["VERSION_ID"].strip('"').split(".")[0])
    assert facts["software"]["kernel"] == os.uname().release
    assert facts["identity"]["ssh_host_key"].startswith("ssh-ed25519 SHA256:")


def test_snmp_devices_identified(city) -> None:
    rows = dict(q(city["db"], "select name, vendor from devices where protocol = 'snmp' and last_status != 'error'"))
    assert "real-snmpd" in rows  # Net-SNMP answered over v3 authPriv
    assert "net-snmp" not in (rows["real-snmpd"] or "").lower()  # the agent's maker is not the device's vendor
    assert "APC" in (rows.get("server-room-ups") or "") or "Schneider" in (rows.get("server-room-ups") or "")


def test_unreachable_devices_are_error_rows_with_reasons(city) -> None:
    rows = dict(q(city["db"], "select d.name, o.error from observations o join devices d on d.id = o.device_id "
                              "where o.status = 'error'"))
    assert "refused" in rows["switched-off-pc"].lower()
    assert rows["wrong-community"]  # a reason, whatever the transport says


def test_findings_stored_with_evidence(city) -> None:
    rows = q(city["db"], "select check_id, severity, summary from findings where resolved_at is null")
    assert rows
    assert all(summary for _, _, summary in rows)
    # the hostile device answered 'public': a default community finding exists
    assert any(check_id == "NET-001" for check_id, _, _ in rows)


def test_report_escapes_device_text_and_lists_unreachable(city) -> None:
    out = city["work"] / "reports"
    proc = run_cli("report", "monthly", "-c", str(city["cfg"]), "--out", str(out), env=city["env"])
    assert proc.returncode == 0, proc.stderr
    html = next(out.glob("*.html")).read_text()
    assert "switched-off-pc" in html and "could not" in html.lower()
    assert "<script>alert" not in html and "<img src=x" not in html
    worklist = run_cli("report", "worklist", "-c", str(city["cfg"]), "--out", str(out), "--format", "html",
                       env=city["env"])
    assert worklist.returncode == 0, worklist.stderr
    for page in out.glob("*.html"):
        text = page.read_text()
        assert "<script>alert" not in text, page.name
        assert "lifecycle" in text.lower() or "data dates" in text.lower() or page.name.startswith("work")


def test_secrets_never_land_in_database_or_reports(city) -> None:
    secrets = [v for k, v in city["env"].items() if k != "E2E_SIM_COMMUNITY"]
    blobs = [city["db"].read_bytes()]
    wal = city["db"].with_name(city["db"].name + "-wal")
    if wal.exists():
        blobs.append(wal.read_bytes())
    blobs += [p.read_bytes() for p in (city["work"] / "reports").glob("*") if p.is_file()]
    blobs.append(city["scan"].stdout.encode() + city["scan"].stderr.encode())
    for secret in secrets:
        assert all(secret.encode() not in b for b in blobs), "a secret leaked"


def test_changed_host_key_sends_no_credentials_and_is_a_finding(city) -> None:
    sshd = city["sshd"]
    known = city["work"] / "data" / "testville" / "known_hosts"
    text = known.read_text()
    label = f"[{sshd.address}]:{sshd.port}"
    assert label in text, "first contact should have pinned the key"
    # Replace the pinned key with another valid Ed25519 key: the device now "changed" its key.
    from peers_ssh import write_ed25519

    other = write_ed25519(city["work"] / "other_key")
    lines = [f"{label} {' '.join(other.split()[:2])}" if line.startswith(label) else line
             for line in text.splitlines()]
    known.write_text("\n".join(lines) + "\n")
    before = sshd.log_text().count("Accepted publickey")
    proc = run_cli("scan", "-c", str(city["cfg"]), "--json", env=city["env"])
    assert proc.returncode == 3
    rows = q(city["db"], "select f.check_id, f.summary from findings f join devices d on d.id = f.device_id "
                         "where d.name = 'real-sshd' and f.resolved_at is null")
    assert any(c == "SEC-001" for c, _ in rows), rows
    err = q(city["db"], "select o.error_kind from observations o join devices d on d.id = o.device_id "
                        "where d.name = 'real-sshd' order by o.id desc limit 1")
    assert err[0][0] == "hostkey"
    assert sshd.log_text().count("Accepted publickey") == before  # no login happened
    known.write_text(text)  # restore for other tests
