"""The store: WAL, schema version, one transaction per device, finding episodes, identity."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from itaudit.errors import ScanLocked, StoreError
from itaudit.model import CollectResult, DeviceFacts, Finding, ResultStatus, Severity, Status, Target
from itaudit.store import SCHEMA_VERSION, Store

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2026, 11, 1)


def result(address: str, serial: str | None = None, status: ResultStatus = ResultStatus.OK) -> CollectResult:
    facts = DeviceFacts()
    facts.identity.hostname = f"host-{address}"
    facts.identity.serial = serial
    t = Target(address=address, protocol="ssh", city_id="c", port=2222, department="Finance")
    return CollectResult(t, status, facts=facts, error="refused" if status == ResultStatus.ERROR else None)


def finding(check_id: str, status: Status) -> Finding:
    return Finding(check_id=check_id, status=status, severity=Severity.HIGH, title="t", summary=f"{check_id} s")


def test_new_database_is_wal_versioned_and_private(tmp_path: Path) -> None:
    store = Store(tmp_path / "a" / "city.db")
    assert store.schema_version() == SCHEMA_VERSION
    assert store.db.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert (tmp_path / "a" / "city.db").stat().st_mode & 0o077 == 0


def test_finding_episodes_open_refresh_resolve(tmp_path: Path) -> None:
    store = Store(tmp_path / "city.db")
    s1 = store.begin_scan("c", AS_OF, 1)
    store.record_result(s1, result("10.0.0.1", "SN1"),
                        [finding("EOL-001", Status.FAIL), finding("HW-001", Status.PASS)])
    store.finish_scan(s1)
    first = store.open_findings()
    assert [f["check_id"] for f in first] == ["EOL-001"]

    s2 = store.begin_scan("c", AS_OF, 1)
    store.record_result(s2, result("10.0.0.1", "SN1"), [finding("EOL-001", Status.FAIL)])
    store.finish_scan(s2)
    again = store.open_findings()
    assert len(again) == 1 and again[0]["first_seen"] == first[0]["first_seen"] and again[0]["last_scan_id"] == s2

    # unknown does not resolve; an error result does not resolve; pass does.
    s3 = store.begin_scan("c", AS_OF, 1)
    store.record_result(s3, result("10.0.0.1", "SN1"), [finding("EOL-001", Status.UNKNOWN)])
    store.record_result(s3, result("10.0.0.1", status=ResultStatus.ERROR), [])
    assert len(store.open_findings()) == 1
    store.record_result(s3, result("10.0.0.1", "SN1"), [finding("EOL-001", Status.PASS)])
    assert store.open_findings() == []
    row = store.db.execute("select resolved_at from findings").fetchone()
    assert row[0] is not None


def test_device_keeps_identity_across_address_change(tmp_path: Path) -> None:
    store = Store(tmp_path / "city.db")
    s = store.begin_scan("c", AS_OF, 2)
    a = store.record_result(s, result("10.0.0.5", "SERIAL-42"), [])
    b = store.record_result(s, result("10.0.0.99", "SERIAL-42"), [])
    c = store.record_result(s, result("10.0.0.7", "SERIAL-43"), [])
    assert a == b != c
    assert {d["address"] for d in store.devices()} == {"10.0.0.99", "10.0.0.7"}


def test_cloned_servers_sharing_a_host_key_stay_two_devices(tmp_path: Path) -> None:
    """Two servers cloned from one template present the same SSH host key: serial, MAC and address
    decide who is who, so they stay two devices, and each is told it shares its key (SEC-010)."""
    store = Store(tmp_path / "city.db")
    s = store.begin_scan("c", AS_OF, 2)
    clones = []
    for address in ("10.0.0.21", "10.0.0.22"):
        r = result(address)
        r.facts.identity.ssh_host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClonedTemplateKey"
        clones.append(r)
        store.record_result(s, r, [])
    assert len(store.devices()) == 2
    assert store.device_record(clones[0]).shares_host_key_with == ["host-10.0.0.22"]
    assert store.device_record(clones[1]).shares_host_key_with == ["host-10.0.0.21"]
    # Seen again, each finds its own record (by address), not its twin's.
    again = store.record_result(s, clones[1], [])
    assert again == max(d["id"] for d in store.devices())
    # A sweep seeing the shared key at a new address cannot tell which twin moved: no match.
    key = clones[0].facts.identity.ssh_host_key
    assert store.device_for_sighting("10.0.0.99", key) is None
    assert store.device_for_sighting("10.0.0.21", key)["address"] == "10.0.0.21"  # type: ignore[index]
    # One device with a key of its own is found wherever DHCP put it.
    solo = result("10.0.0.30")
    solo.facts.identity.ssh_host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOwnKey"
    solo_id = store.record_result(s, solo, [])
    assert store.device_for_sighting("10.0.0.77", solo.facts.identity.ssh_host_key)["id"] == solo_id  # type: ignore[index]


def test_failures_count_up_and_reset(tmp_path: Path) -> None:
    store = Store(tmp_path / "city.db")
    s = store.begin_scan("c", AS_OF, 1)
    for _ in range(3):
        d = store.record_result(s, result("10.0.0.8", status=ResultStatus.ERROR), [])
    assert store.db["devices"].get(d)["consecutive_failures"] == 3
    store.record_result(s, result("10.0.0.8", "S8"), [])
    assert store.db["devices"].get(d)["consecutive_failures"] == 0


def test_second_scan_of_same_city_is_refused(tmp_path: Path) -> None:
    one, two = Store(tmp_path / "city.db"), Store(tmp_path / "city.db")
    with one.scan_lock(), pytest.raises(ScanLocked, match="another scan"), two.scan_lock():
        pass


def test_read_only_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "city.db"
    Store(path).close()
    ro = Store(path, readonly=True)
    with pytest.raises(StoreError, match="cannot write"):
        ro.begin_scan("c", AS_OF, 1)
    with pytest.raises(StoreError, match="no database"):
        Store(tmp_path / "missing.db", readonly=True)


def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "city.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open database"):
        Store(path)


WRITER = textwrap.dedent("""
    import sys, datetime as dt
    sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
    from test_store import result, finding
    from itaudit.model import Status
    from itaudit.store import Store
    store = Store({db!r})
    with store.scan_lock():
        scan = store.begin_scan("c", dt.date(2026, 11, 1), 100000)
        print(scan, flush=True)
        i = 0
        while True:
            i += 1
            store.record_result(scan, result("10.%d.%d.%d" % (i // 65536 % 256, i // 256 % 256, i % 256),
                                "S%d" % i), [finding("EOL-001", Status.FAIL), finding("HW-001", Status.PASS)])
""")


@pytest.mark.slow
def test_sigkill_mid_scan_leaves_database_whole(tmp_path: Path) -> None:
    db = tmp_path / "city.db"
    code = WRITER.format(root=str(ROOT), tests=str(ROOT / "tests"), db=str(db))
    counts = []
    for round_ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        scan_id = int(proc.stdout.readline())
        time.sleep(0.2 + 0.1 * round_)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        conn = sqlite3.connect(db)
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        n_obs, n_find = conn.execute(
            "select (select count(*) from observations where scan_id = ?), "
            "(select count(*) from findings where last_scan_id = ?)", [scan_id, scan_id]).fetchone()
        # one transaction per device: every stored device has its finding, none is half-written
        assert n_obs == n_find and n_obs > 0
        counts.append(conn.execute("select count(*) from observations").fetchone()[0])
        conn.close()
    assert counts == sorted(counts) and len(set(counts)) == len(counts)  # earlier scans kept whole
    store = Store(db)
    with store.scan_lock():  # taking the lock marks the killed scans incomplete
        pass
    assert {s.status for s in store.scans()} == {"incomplete"}


def test_latest_package_list_is_kept_per_device_and_replaced(tmp_path: Path) -> None:
    from collectors.linux import parse_linux  # recorded Ubuntu 18.04 probe output

    probe = (ROOT / "tests" / "fixtures" / "linux" / "ubuntu-18.04" / "probe.txt").read_text(encoding="utf-8")
    facts = parse_linux(probe)
    assert len(facts.patching.packages) > 1000
    store = Store(tmp_path / "city.db")
    s1 = store.begin_scan("c", AS_OF, 1)
    r = result("10.0.0.9", "SNP")
    r.facts.patching = facts.patching
    dev = store.record_result(s1, r, [])
    store.finish_scan(s1)
    pkgs, manager, _ = store.latest_packages(dev)
    assert manager == "apt" and [(p.name, p.version, p.arch) for p in pkgs] == [
        (p.name, p.version, p.arch) for p in facts.patching.packages]
    # A later scan replaces the list; a failed scan leaves it.
    s2 = store.begin_scan("c", AS_OF, 1)
    r2 = result("10.0.0.9", "SNP")
    r2.facts.patching.packages = facts.patching.packages[:3]
    r2.facts.patching.package_manager = "apt"
    store.record_result(s2, r2, [])
    store.record_result(s2, result("10.0.0.9", "SNP", ResultStatus.ERROR), [])
    store.finish_scan(s2)
    assert len(store.latest_packages(dev)[0]) == 3
    assert store.db.execute("select count(*) from device_packages").fetchone()[0] == 1
    assert store.latest_packages(dev + 100) is None


def test_recheck_judges_stored_facts_and_packages_without_a_rescan(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from itaudit.knowledge import Knowledge
    from itaudit.model import Package
    from itaudit.policy import Policy
    from itaudit.recheck import recheck_vulns

    store = Store(tmp_path / "city.db")
    city = SimpleNamespace(id="c", policy=Policy(), database=tmp_path / "city.db")
    s1 = store.begin_scan("c", AS_OF, 1)
    r = result("10.0.0.7", "SNU")
    sw = r.facts.software
    sw.os_family, sw.os_name, sw.os_version, sw.product = "linux", "Ubuntu 18.04.6 LTS", "18.04", "ubuntu"
    r.facts.identity.kind = "server"
    r.facts.patching.package_manager = "apt"
    # UBUNTU-CVE-2021-3156: 18.04's sudo fixed in 1.8.21p2-3ubuntu1.4.
    r.facts.patching.packages = [Package("sudo", "1.8.21p2-3ubuntu1.2", "amd64"), Package("bash", "4.4.18-2ubuntu1")]
    dev = store.record_result(s1, r, [])  # judged before the data knew the flaw: no VULN verdicts
    store.finish_scan(s1)
    latest = store.latest_facts(dev)
    assert latest is not None and latest[1].patching.packages == []  # the observation keeps only the count

    rep = recheck_vulns(store, city, as_of=AS_OF, knowledge=Knowledge.load())
    assert rep.devices == 1 and (dev, "VULN-001", "-", "fail") in rep.changed
    vuln = [f for f in store.open_findings() if f["check_id"] == "VULN-001"]
    assert len(vuln) == 1 and "CVE-2021-3156" in vuln[0]["evidence"] and vuln[0]["last_scan_id"] == s1
    again = recheck_vulns(store, city, as_of=AS_OF, knowledge=Knowledge.load())
    assert again.changed == []
    assert len([f for f in store.open_findings() if f["check_id"] == "VULN-001"]) == 1  # same episode


def test_a_report_on_an_older_database_upgrades_it_first(tmp_path: Path) -> None:
    """Reports open the store read-only; on a database an older itaudit wrote (schema 4, without
    this version's columns) they upgrade it first instead of failing on a missing column."""
    path = tmp_path / "city.db"
    store = Store(path)
    s = store.begin_scan("c", AS_OF, 1)
    store.record_result(s, result("10.0.0.5", "SER-1"), [finding("HW-001", Status.FAIL)])
    store.finish_scan(s)
    store.close()
    db = sqlite3.connect(path)
    for column in ("tags", "register_cost", "retired_at", "retired_note"):
        db.execute(f"alter table devices drop column {column}")
    db.execute("alter table findings drop column cost_fiscal_year")
    db.execute("update meta set value = '4' where key = 'schema_version'")
    db.commit()
    db.close()
    ro = Store(path, readonly=True)
    try:
        assert ro.schema_version() == SCHEMA_VERSION
        assert [d["address"] for d in ro.device_inventory()] == ["10.0.0.5"]
        assert [f["check_id"] for f in ro.open_findings()] == ["HW-001"]
    finally:
        ro.close()
