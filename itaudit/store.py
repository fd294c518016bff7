"""The SQLite store: one database file per city, WAL, a schema version, migrations.

Write path: ``begin_scan`` → ``record_result`` once per device (one transaction each,
so a killed scan leaves every earlier device whole) → ``finish_scan``. A scan left
``running`` by a killed process is marked ``incomplete`` the next time a scan starts.

Read path: small query methods used by the CLI and the reports. Secrets never reach
this module: a ``Target`` carries only a credential *name*.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import datetime as dt
import fcntl
import ipaddress
import json
import os
import sqlite3
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import sqlite_utils

from itaudit.checking import DeviceRecord
from itaudit.errors import ScanLocked, StoreError
from itaudit.model import CollectResult, DeviceFacts, Finding, Package, ResultStatus, Severity, Status

SCHEMA_VERSION = 8


def utcnow() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class ScanInfo:
    id: int
    started_at: str
    finished_at: str | None
    as_of: str
    status: str
    n_targets: int
    n_ok: int
    n_failed: int


def _migrate_v1(db: sqlite_utils.Database) -> None:
    db.table("meta").create({"key": str, "value": str}, pk="key", if_not_exists=True)
    db.table("scans").create(
        {"id": int, "city_id": str, "started_at": str, "finished_at": str, "as_of": str, "status": str,
         "n_targets": int, "n_ok": int, "n_failed": int, "pid": int},
        pk="id", if_not_exists=True,
    )
    db.table("devices").create(
        {"id": int, "city_id": str, "identity_key": str, "protocol": str, "address": str, "port": int,
         "name": str, "hostname": str, "kind": str, "vendor": str, "model": str, "serial": str, "mac": str,
         "ssh_host_key": str, "snmp_engine_id": str, "os_name": str, "os_version": str, "product": str,
         "department": str, "criticality": str, "purchase_date": str, "budget_line": str,
         "first_seen": str, "last_seen": str, "last_success": str, "last_status": str,
         "last_error": str, "consecutive_failures": int, "last_scan_id": int},
        pk="id", if_not_exists=True,
    )
    db.table("devices").create_index(["identity_key"], unique=True, if_not_exists=True)
    db.table("devices").create_index(["protocol", "address", "port"], if_not_exists=True)
    db.table("observations").create(
        {"id": int, "scan_id": int, "device_id": int, "target": str, "status": str, "error_kind": str,
         "error": str, "started_at": str, "duration_ms": int, "facts": str},
        pk="id", foreign_keys=[("scan_id", "scans", "id"), ("device_id", "devices", "id")], if_not_exists=True,
    )
    db.table("observations").create_index(["device_id", "scan_id"], if_not_exists=True)
    db.table("check_results").create(
        {"scan_id": int, "device_id": int, "check_id": str, "status": str, "severity": str, "summary": str},
        pk=("scan_id", "device_id", "check_id"), if_not_exists=True,
    )
    # One row per episode of a failing check on a device: opened, seen again, resolved.
    db.table("findings").create(
        {"id": int, "device_id": int, "check_id": str, "status": str, "severity": str, "title": str,
         "summary": str, "detail": str, "evidence": str, "remediation": str, "cost_amount": float,
         "cost_kind": str, "budget_line": str, "cost_basis": str, "refs": str, "first_seen": str,
         "last_seen": str, "resolved_at": str, "first_scan_id": int, "last_scan_id": int},
        pk="id", foreign_keys=[("device_id", "devices", "id")], if_not_exists=True,
    )
    db.table("findings").create_index(["device_id", "check_id", "resolved_at"], if_not_exists=True)


# --- discovery ----------------------------------------------------------------------------


def _migrate_v2(db: sqlite_utils.Database) -> None:
    """Discovery sweeps and what each responding address answered."""
    db.table("discoveries").create(
        {"id": int, "city_id": str, "started_at": str, "finished_at": str, "status": str, "ranges": str,
         "n_addresses": int, "n_responding": int, "n_managed": int, "n_unmanaged": int},
        pk="id", if_not_exists=True,
    )
    # One row per responding address per sweep. ``managed``: reachable with the city's
    # credentials (``protocol``/``port``/``credential`` say how); else "found, not managed".
    db.table("sightings").create(
        {"id": int, "discovery_id": int, "address": str, "seen_at": str, "open_ports": str,
         "snmp_sysobjectid": str, "ssh_banner": str, "ssh_host_key": str, "managed": int, "protocol": str,
         "port": int, "credential": str, "device_id": int, "guess": str},
        pk="id", foreign_keys=[("discovery_id", "discoveries", "id")], if_not_exists=True,
    )
    db.table("sightings").create_index(["address", "discovery_id"], if_not_exists=True)
    db.table("sightings").create_index(["discovery_id"], if_not_exists=True)


def _migrate_v3(db: sqlite_utils.Database) -> None:
    """The asset register as imported: one row per register line, matched or not."""
    db.table("assets").create(
        {"id": int, "key": str, "address": str, "serial": str, "hostname": str, "purchase_date": str,
         "cost": float, "department": str, "budget_line": str, "criticality": str, "device_id": int,
         "source": str, "source_row": int, "imported_at": str},
        pk="id", if_not_exists=True,
    )
    db.table("assets").create_index(["key"], unique=True, if_not_exists=True)
    db.table("observations").create_index(["scan_id"], if_not_exists=True)


def _migrate_v4(db: sqlite_utils.Database) -> None:
    """Index the identity columns a result is matched on (``Store._match_device``, twice per
    device and scan): without them each lookup reads the whole devices table."""
    for column in ("serial", "ssh_host_key", "snmp_engine_id", "mac"):
        db.table("devices").create_index([column], if_not_exists=True)


def _migrate_v5(db: sqlite_utils.Database) -> None:
    """One pricing rule and retirement: a device's config tags and register cost (the
    plan prices it as the checks do), the fiscal year of a finding's cost, and retirement."""
    columns = {c.name for c in db.table("devices").columns}
    for name, kind in (("tags", str), ("register_cost", float), ("retired_at", str), ("retired_note", str)):
        if name not in columns:
            db.table("devices").add_column(name, kind)
    if "cost_fiscal_year" not in {c.name for c in db.table("findings").columns}:
        db.table("findings").add_column("cost_fiscal_year", int)




def _migrate_v6(db: sqlite_utils.Database) -> None:
    """The latest installed-package list per device: a data update re-evaluates
    distribution packages without a rescan. One row per device, replaced by each scan that
    lists packages; zlib-compressed "name<TAB>version<TAB>arch" lines (observations keep the
    count only, so history does not multiply it)."""
    db.table("device_packages").create(
        {"device_id": int, "scan_id": int, "observed_at": str, "manager": str, "count": int, "packages": bytes},
        pk="device_id", foreign_keys=[("device_id", "devices", "id")], if_not_exists=True,
    )


# --- directory (migration 7) -------------------------------------------------------


def _migrate_v7(db: sqlite_utils.Database) -> None:
    """Directory computers: which computer object a device is, the short host name
    it is matched on, when it was last fully audited, where each observation's facts came
    from, and one row per directory read. Independent of migrations 5 and 6."""
    cols = db.table("devices").columns_dict
    for column in ("directory_dn", "host_key", "last_full_audit"):
        if column not in cols:
            db.table("devices").add_column(column, str)
    db.execute("update devices set host_key = lower(substr(hostname, 1, instr(hostname || '.', '.') - 1)) "
               "where hostname is not null and hostname != '' and host_key is null")
    db.execute("update devices set last_full_audit = last_success where last_full_audit is null")
    db.table("devices").create_index(["directory_dn"], if_not_exists=True)
    db.table("devices").create_index(["host_key"], if_not_exists=True)
    if "source" not in db.table("observations").columns_dict:
        db.table("observations").add_column("source", str)  # "scan", "directory", "scan+directory"
    db.table("directory_reads").create(
        {"id": int, "scan_id": int, "server": str, "read_at": str, "status": str, "error": str,
         "n_computers": int, "n_referrals": int, "laps_source": str, "recovery_objects": int},
        pk="id", if_not_exists=True,
    )


# --- recorded replacements (migration number 8) ---------------------------------------


def _migrate_v8(db: sqlite_utils.Database) -> None:
    """Replacements the city records (``itaudit devices retire --replaced-by --cost --date``):
    which device left service, what replaced it, what it cost and when. One row per retired
    device; the annual report uses them before inferring anything. Independent of 5-7."""
    db.table("replacements").create(
        {"device_id": int, "replaced_by_id": int, "replaced_by": str, "cost": float, "replaced_on": str,
         "recorded_at": str, "note": str},
        pk="device_id", foreign_keys=[("device_id", "devices", "id")], if_not_exists=True,
    )
    db.table("replacements").create_index(["replaced_on"], if_not_exists=True)


MIGRATIONS = {1: _migrate_v1, 2: _migrate_v2, 3: _migrate_v3, 4: _migrate_v4, 5: _migrate_v5, 6: _migrate_v6,
              7: _migrate_v7, 8: _migrate_v8}


class Store:
    """One city's database."""

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        # A read-only store keeps each finished scan's outcomes once read (``_scan_outcomes``).
        self._outcomes: dict[int, list[tuple[int, bool]]] = {}
        try:
            if readonly:
                if not self.path.exists():
                    raise StoreError(f"no database at {self.path}: run 'itaudit scan' first")
                conn = self._open_readonly()
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                if not self.path.exists():
                    # Owner-only from the first byte: the database describes the city's weak spots.
                    os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
                conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            conn.execute("PRAGMA busy_timeout = 30000")
            self.db = sqlite_utils.Database(conn)
            if readonly:
                self._check_readable()
                if self.schema_version() < SCHEMA_VERSION:
                    # A report on a database written by an older itaudit: upgrade it first (the
                    # migrations only add), so the report's queries find the columns they read.
                    conn.close()
                    Store(self.path).close()
                    conn = self._open_readonly()
                    conn.execute("PRAGMA busy_timeout = 30000")
                    self.db = sqlite_utils.Database(conn)
            else:
                self.db.enable_wal()
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute("PRAGMA foreign_keys = ON")
                self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot create database {self.path}: {exc.strerror}") from None

    def _open_readonly(self) -> sqlite3.Connection:
        """A read-only connection. A database in a folder we cannot write (a copy on read-only
        media, another user's folder) cannot get its WAL index: read it as an immutable file."""
        uri = f"file:{self.path}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            conn.execute("select count(*) from sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:
            if "unable to open" not in str(exc) or os.access(self.path.parent, os.W_OK):
                raise
            conn.close()
            conn = sqlite3.connect(uri + "&immutable=1", uri=True, check_same_thread=False)
        return conn

    def _check_readable(self) -> None:
        """A read-only open is an itaudit database of this version, or a clear error."""
        version = self.schema_version()
        if version == 0:
            raise StoreError(f"{self.path} is not an itaudit database (it has no itaudit schema)")
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema {version}, newer than this itaudit ({SCHEMA_VERSION}): "
                             "upgrade itaudit to read it")

    # --- schema -----------------------------------------------------------------------

    def _migrate(self) -> None:
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema {current}, newer than this itaudit ({SCHEMA_VERSION})")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            if version not in MIGRATIONS:
                continue  # a number reserved for another branch's migration (filled in at merge)
            with self.tx():
                MIGRATIONS[version](self.db)
                self.db.table("meta").upsert({"key": "schema_version", "value": str(version)}, pk="key")
        if current < SCHEMA_VERSION:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def schema_version(self) -> int:
        if "meta" not in self.db.table_names():
            return 0
        row = self.db.execute("select value from meta where key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    @contextlib.contextmanager
    def tx(self) -> Iterator[None]:
        """One transaction; disk-full and read-only errors become ``StoreError``."""
        conn = self.db.conn
        try:
            with conn:
                yield
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot write {self.path}: {exc}{_hint(str(exc))}") from None

    def close(self) -> None:
        self.db.conn.close()

    # --- scans ------------------------------------------------------------------------

    @contextlib.contextmanager
    def scan_lock(self) -> Iterator[None]:
        """Refuse a second scan of the same city. flock dies with its process: no stale locks."""
        lock_path = self.path.with_suffix(self.path.suffix + ".lock")
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                raise ScanLocked(f"another scan of this city is running (pid {holder or '?'}); "
                                 f"wait for it to finish") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            self._mark_interrupted()
            yield
        finally:
            os.close(fd)

    def _mark_interrupted(self) -> None:
        """Scans still 'running' while we hold the lock were killed: mark them incomplete."""
        with self.tx():
            self.db.execute(
                "update scans set status = 'incomplete', finished_at = coalesce(finished_at, ?) "
                "where status = 'running'", [utcnow()],
            )

    def begin_scan(self, city_id: str, as_of: dt.date, n_targets: int, *, now: str | None = None) -> int:
        with self.tx():
            return self._insert("scans", {"city_id": city_id, "started_at": now or utcnow(),
                                          "as_of": as_of.isoformat(), "status": "running", "n_targets": n_targets,
                                          "n_ok": 0, "n_failed": 0, "pid": os.getpid()})

    def finish_scan(self, scan_id: int, *, complete: bool = True, now: str | None = None,
                    reason: str | None = None) -> None:
        """Close a scan; an incomplete one keeps ``reason`` (why it is incomplete) in ``meta``."""
        with self.tx():
            ok, failed = self.db.execute(
                "select sum(status != 'error'), sum(status = 'error') from observations where scan_id = ?",
                [scan_id]).fetchone()
            self._update("scans", scan_id, {"finished_at": now or utcnow(),
                                              "status": "complete" if complete else "incomplete",
                                              "n_ok": ok or 0, "n_failed": failed or 0})
            if reason and not complete:
                self.db.execute("insert or replace into meta (key, value) values (?, ?)",
                                [f"scan_incomplete_reason:{scan_id}", reason[:2000]])

    def scan_incomplete_reason(self, scan_id: int) -> str | None:
        """Why a scan was marked incomplete, when the scan said so (None for a kill or power loss)."""
        row = self.db.execute("select value from meta where key = ?",
                              [f"scan_incomplete_reason:{scan_id}"]).fetchone()
        return row[0] if row else None

    # --- devices ----------------------------------------------------------------------

    def device_record(self, result: CollectResult, *, now: str | None = None) -> DeviceRecord:
        """The record a check sees for this target: config facts merged with history.

        The result being judged counts as history already: a successful one is the latest
        successful scan, a failed one adds to the run of failures.
        """
        row = self._match_device(result)
        t = result.target
        # A register row waiting for this device (first seen now) prices it already, as the plan will.
        reg = self._pending_register(result) if row is None or row["register_cost"] is None else None
        if reg is not None:
            row = {**(row or {}), **{col: reg[k] for k, col in self.REGISTER_FIELDS.items()
                                     if reg.get(k) is not None and not (row or {}).get(col)}} or None
        return DeviceRecord(
            id=row.get("id") if row else None,
            name=t.name or (row.get("name") if row else None),
            kind=t.kind or (row.get("kind") if row else None) or result.facts.identity.kind,
            department=t.department or (row.get("department") if row else None),
            criticality=list(t.criticality) or (json.loads(row["criticality"]) if row and row.get("criticality")
                                                else []),
            purchase_date=t.purchase_date or (dt.date.fromisoformat(row["purchase_date"])
                                              if row and row.get("purchase_date") else None),
            first_seen=row.get("first_seen") if row else None,
            last_seen=row.get("last_seen") if row else None,
            budget_line=row.get("budget_line") if row else None,
            register_cost=row.get("register_cost") if row else None,
            tags=list(t.tags) or (json.loads(row["tags"]) if row and row.get("tags") else []),
            last_successful_scan=(row.get("last_success") if row else None) if result.status == ResultStatus.ERROR
            else (now or result.facts.collected_at or utcnow()),
            # This result counts: a failure now is one more in the run of failures.
            consecutive_failures=(((row.get("consecutive_failures") or 0) if row else 0) + 1
                                  if result.status == ResultStatus.ERROR else 0),
            last_error=result.error if result.status == ResultStatus.ERROR
            else (row.get("last_error") if row else None),
            collector_findings=dict(result.collector_findings),
            shares_host_key_with=self._shared_host_key(result, row.get("id") if row else None),
        )

    def find_device(self, *, serial: str | None = None, engine_id: str | None = None, mac: str | None = None,
                    protocol: str | None = None, address: str | None = None, port: int | None = None,
                    hostname: str | None = None, host_key: str | None = None,
                    nocase: bool = False) -> dict[str, Any] | None:
        """The store's one device-matching rule, for scan results, register rows and sightings alike.

        Strong identity first: serial number, SNMP engine ID, MAC address; then the address (the
        exact target when protocol and port are known, else any device there); then the host or
        configured name. The SSH host key decides only when exactly one device in service has it
        (a device that moved address): servers cloned from one template share a key, and matching
        on it would merge two machines (SEC-010 reports the shared key). ``nocase`` matches
        serials and names regardless of case (a hand-typed register)."""
        for column, value in (("serial", serial), ("snmp_engine_id", engine_id), ("mac", mac)):
            if value and value.strip() and value.strip().lower() not in _JUNK_IDS:
                where = f"lower({column}) = lower(?)" if nocase else f"{column} = ?"
                row = self._one(f"select * from devices where {where} "  # noqa: S608 - fixed names
                                "order by last_seen desc limit 1", [value.strip() if nocase else value])
                if row:
                    return row
        if address and protocol:
            row = self._one("select * from devices where protocol = ? and address = ? and coalesce(port, 0) = ? "
                            "order by last_seen desc limit 1", [protocol, address, port or 0])
            if row:
                return row
        elif address:
            row = self._one("select * from devices where address = ? order by last_seen desc limit 1", [address])
            if row:
                return row
        if hostname:
            row = self._one("select * from devices where lower(hostname) = lower(?) or lower(name) = lower(?) "
                            "order by last_seen desc limit 1", [hostname, hostname])
            if row:
                return row
            short = short_host_key(hostname)  # "PD-MDT-04" in the register, "pd-mdt-04.city.local" in the directory
            row = self._one("select * from devices where host_key = ? order by last_seen desc limit 1", [short])
            if row:
                return row
        if host_key:
            rows = self._rows("select * from devices where ssh_host_key = ? and retired_at is null limit 2",
                              [host_key])
            if len(rows) == 1:
                return rows[0]
        return None

    def _match_device(self, result: CollectResult) -> dict[str, Any] | None:
        """The device a result belongs to: its directory object first, then ``find_device`` with
        what the result says, then (directory and scanned facts of one machine) its short host name."""
        ident = result.facts.identity
        t = result.target
        d = result.facts.directory
        if d.dn:
            row = self._one("select * from devices where directory_dn = ? order by last_seen desc limit 1", [d.dn])
            if row:
                return row
        row = self.find_device(serial=ident.serial or result.facts.hardware.serial, engine_id=ident.snmp_engine_id,
                               mac=ident.mac, protocol=t.protocol, address=t.address, port=t.port)
        if row:
            return row
        key = host_key(ident.hostname) if t.protocol == "directory" or d.dn else None
        if key:
            return self._one("select * from devices where host_key = ? order by (protocol = 'directory'), "
                             "last_seen desc limit 1", [key])
        key = host_key(ident.hostname or t.name)
        if key:
            return self._one("select * from devices where host_key = ? and protocol = 'directory' "
                             "order by last_seen desc limit 1", [key])
        return None

    def _shared_host_key(self, result: CollectResult, device_id: int | None) -> list[str]:
        """Names of the other devices in service that presented this result's SSH host key."""
        key = result.facts.identity.ssh_host_key
        if not key:
            return []
        rows = self.db.execute("select coalesce(name, hostname, address) from devices where ssh_host_key = ? "
                               "and id != ? and retired_at is null order by 1", [key, device_id or -1])
        return [str(r[0]) for r in rows]

    def _one(self, sql: str, params: list[Any]) -> dict[str, Any] | None:
        """The first row of a query as a dict (``db.query`` without sqlite-utils' per-call overhead)."""
        cur = self.db.conn.execute(sql, params)
        row = cur.fetchone()
        return None if row is None else dict(zip([d[0] for d in cur.description], row, strict=True))

    def record_result(self, scan_id: int, result: CollectResult, findings: list[Finding], *,
                      now: str | None = None) -> int:
        """Store one device's result and its findings in ONE transaction; return the device id.

        ``now`` (UTC ISO) replaces the clock, for tests and benchmarks that build history.
        """
        with self.tx():
            return self._record(scan_id, result, findings, now or utcnow())

    def record_results(self, scan_id: int, items: list[tuple[CollectResult, list[Finding]]], *,
                       now: str | None = None) -> list[int]:
        """Store several devices' results in ONE transaction (each device whole, or none of them).

        For directory computers judged from the directory alone: thousands of them arrive at
        once, and a commit per device was most of their cost (bench/directory_scale.py, 10,000 objects).
        """
        with self.tx():
            return [self._record(scan_id, r, f, now or utcnow()) for r, f in items]

    def _record(self, scan_id: int, result: CollectResult, findings: list[Finding], now: str) -> int:
        facts = result.facts
        ident = facts.identity
        t = result.target
        ok = result.status != ResultStatus.ERROR
        from_directory = t.protocol == "directory"
        in_directory = bool(facts.directory.dn)
        source = "directory" if from_directory or (in_directory and not ok) else \
            ("scan+directory" if in_directory else "scan")
        # (the transaction is the caller's: record_result or record_results)
        row = self._match_device(result)
        values: dict[str, Any] = {
            "city_id": t.city_id, "protocol": t.protocol, "address": t.address, "port": t.port,
            "name": t.name, "department": t.department,
            "criticality": json.dumps(t.criticality) if t.criticality else None,
            "tags": json.dumps(list(t.tags)),
            "purchase_date": t.purchase_date.isoformat() if t.purchase_date else None,
            "last_seen": now, "last_status": result.status.value, "last_error": result.error,
            "last_scan_id": scan_id,
        }
        if ok:
            values.update({
                "hostname": ident.hostname, "kind": t.kind or ident.kind, "vendor": ident.vendor or
                facts.hardware.vendor, "model": ident.model or facts.hardware.model,
                "serial": ident.serial or facts.hardware.serial, "mac": ident.mac,
                "ssh_host_key": ident.ssh_host_key, "snmp_engine_id": ident.snmp_engine_id,
                "os_name": facts.software.os_name, "os_version": facts.software.os_version,
                "product": facts.software.product, "last_success": now, "consecutive_failures": 0,
            })
        else:
            values["consecutive_failures"] = ((row["consecutive_failures"] or 0) if row else 0) + 1
            values["kind"] = t.kind or (row["kind"] if row else None)
        if in_directory:
            values["directory_dn"] = facts.directory.dn
        values["host_key"] = host_key(ident.hostname)
        if ok and not from_directory:
            values["last_full_audit"] = now
        if from_directory and row and row["protocol"] != "directory":
            # A scanned machine seen in the directory only this time: keep what its scan said.
            values = {k: values[k] for k in ("last_seen", "last_scan_id", "directory_dn", "host_key")}
        # Keep what we knew when this scan could not see it (None never overwrites).
        values = {k: v for k, v in values.items() if v is not None or k in ("last_error", "retired_at")}
        if row and row.get("retired_at") and ok:
            # A retired device answered again: back in the counts, with a note saying so.
            values["retired_at"] = None
            values["retired_note"] = (f"retired {row['retired_at'][:10]}"
                                      + (f" ({row['retired_note']})" if row.get("retired_note") else "")
                                      + f"; answered again {now[:10]}: back in the counts")
        if row:
            device_id = int(row["id"])
            self._update("devices", device_id, values)
        else:
            values["first_seen"] = now
            values["identity_key"] = _identity_key(result)
            if values["identity_key"] is None or self._key_taken(values["identity_key"]):
                values["identity_key"] = f"{t.protocol}:{t.address}:{t.port or 0}:{now}"
            device_id = self._insert("devices", values)

        self._insert("observations", {
            "scan_id": scan_id, "device_id": device_id, "target": t.label, "status": result.status.value,
            "error_kind": result.error_kind, "error": result.error, "started_at": result.started_at,
            "duration_ms": result.duration_ms,
            # A failed scan of a machine the directory lists keeps what the directory says.
            "facts": _facts_json(facts) if ok or in_directory else None, "source": source,
        })
        if ok and facts.patching.packages:
            self._keep_packages(device_id, scan_id, now, facts)
        self._apply_findings(scan_id, device_id, findings, now, full=ok)
        return device_id

    def latest_facts(self, device_id: int) -> tuple[int, DeviceFacts] | None:
        """The device's latest stored facts and the scan they came from (None: never checked)."""
        row = self.db.execute("select scan_id, facts from observations where device_id = ? and facts is not null "
                              "order by id desc limit 1", [device_id]).fetchone()
        return (int(row[0]), DeviceFacts.from_dict(json.loads(row[1]))) if row else None

    def stored_record(self, device_id: int) -> DeviceRecord:
        """What the store knows of a device, as a check sees it when it is judged again on
        stored facts (``itaudit data recheck``): the device row, no new scan result."""
        row = self.db.execute("select * from devices where id = ?", [device_id]).fetchone()
        d = dict(zip([c[0] for c in self.db.execute("select * from devices limit 0").description], row,
                     strict=True)) if row else {}
        return DeviceRecord(
            id=device_id, name=d.get("name"), kind=d.get("kind"), department=d.get("department"),
            criticality=json.loads(d["criticality"]) if d.get("criticality") else [],
            purchase_date=dt.date.fromisoformat(d["purchase_date"]) if d.get("purchase_date") else None,
            first_seen=d.get("first_seen"), last_seen=d.get("last_seen"), budget_line=d.get("budget_line"),
            register_cost=d.get("register_cost"), tags=json.loads(d["tags"]) if d.get("tags") else [],
            last_successful_scan=d.get("last_success"), consecutive_failures=d.get("consecutive_failures"),
            last_error=d.get("last_error"),
        )

    def check_statuses(self, scan_id: int, device_id: int, prefix: str) -> dict[str, str]:
        """The verdicts recorded for a device in a scan, for checks whose ID starts with ``prefix``."""
        return {c: s for c, s in self.db.execute(
            "select check_id, status from check_results where scan_id = ? and device_id = ? and check_id like ?",
            [scan_id, device_id, prefix + "%"])}

    def reapply_findings(self, scan_id: int, device_id: int, findings: list[Finding], now: str) -> None:
        """Record verdicts judged again on the facts of ``scan_id`` (``itaudit.recheck``), in one
        transaction: that scan's check results and the finding episodes, as a scan would."""
        with self.tx():
            self._apply_findings(scan_id, device_id, findings, now, full=True)

    def _keep_packages(self, device_id: int, scan_id: int, now: str, facts: DeviceFacts) -> None:
        pkgs = facts.patching.packages
        text = "\n".join(f"{p.name}\t{p.version}\t{p.arch or ''}" for p in pkgs)
        self.db.conn.execute(
            "insert or replace into device_packages (device_id, scan_id, observed_at, manager, count, packages) "
            "values (?, ?, ?, ?, ?, ?)",
            [device_id, scan_id, now, facts.patching.package_manager, len(pkgs),
             zlib.compress(text.encode("utf-8"), 1)],
        )

    def latest_packages(self, device_id: int) -> tuple[list[Package], str | None, str | None] | None:
        """The device's latest installed-package list: (packages, package manager, observed at),
        or None when no scan has listed its packages."""
        if "device_packages" not in self.db.table_names():
            return None
        row = self.db.execute("select packages, manager, observed_at from device_packages where device_id = ?",
                              [device_id]).fetchone()
        if row is None:
            return None
        lines = zlib.decompress(row[0]).decode("utf-8").split("\n") if row[0] else []
        pkgs = [Package(n, v, a or None) for n, v, a in (ln.split("\t") for ln in lines if ln)]
        return pkgs, row[1], row[2]

    # sqlite-utils' insert()/update() commit on their own ("with conn:"), which would split a
    # device's result over several transactions; the write path uses these instead.
    def _insert(self, table: str, values: dict[str, Any]) -> int:
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cur = self.db.conn.execute(f"insert into {table} ({cols}) values ({marks})",  # noqa: S608 - own names
                                   list(values.values()))
        return int(cur.lastrowid or 0)

    def _update(self, table: str, row_id: int, values: dict[str, Any]) -> None:
        sets = ", ".join(f"{k} = ?" for k in values)
        self.db.conn.execute(f"update {table} set {sets} where id = ?",  # noqa: S608 - own names
                             [*values.values(), row_id])

    def _key_taken(self, key: str) -> bool:
        return self.db.execute("select 1 from devices where identity_key = ?", [key]).fetchone() is not None

    def _apply_findings(self, scan_id: int, device_id: int, findings: list[Finding], now: str, *,
                        full: bool) -> None:
        """Open, refresh or resolve finding episodes. Only a full result can resolve one."""
        if findings:
            self.db.conn.executemany(
                "insert or replace into check_results (scan_id, device_id, check_id, status, severity, summary) "
                "values (?, ?, ?, ?, ?, ?)",
                [(scan_id, device_id, f.check_id, f.status.value, f.severity.value, f.summary) for f in findings],
            )
        open_ids = {check_id: row_id for row_id, check_id in self.db.conn.execute(
            "select id, check_id from findings where device_id = ? and resolved_at is null", [device_id])}
        for f in findings:
            if f.status == Status.FAIL:
                values = {
                    "status": f.status.value, "severity": f.severity.value, "title": f.title, "summary": f.summary,
                    "detail": f.detail, "evidence": f.evidence, "remediation": f.remediation,
                    "cost_amount": f.cost.amount if f.cost else None, "cost_kind": f.cost.kind if f.cost else None,
                    "budget_line": f.cost.budget_line if f.cost else None,
                    "cost_fiscal_year": f.cost.fiscal_year if f.cost else None,
                    "cost_basis": f.cost.basis if f.cost else None, "refs": json.dumps(f.references),
                    "last_seen": now, "last_scan_id": scan_id,
                }
                if f.check_id in open_ids:
                    self._update("findings", open_ids[f.check_id], values)
                else:
                    self._insert("findings", {**values, "device_id": device_id, "check_id": f.check_id,
                                                "first_seen": now, "first_scan_id": scan_id})
            elif f.status == Status.PASS and f.check_id in open_ids:
                self._update("findings", open_ids[f.check_id], {"resolved_at": now, "last_scan_id": scan_id})

    # --- reads ------------------------------------------------------------------------

    def scans(self, limit: int = 100) -> list[ScanInfo]:
        rows = self.db.query("select id, started_at, finished_at, as_of, status, n_targets, n_ok, n_failed "
                             "from scans order by id desc limit ?", [limit])
        return [ScanInfo(**r) for r in rows]

    def latest_scan(self, *, before: str | None = None) -> ScanInfo | None:
        """The newest scan (started before ``before``, an ISO time, when given)."""
        sql = ("select id, started_at, finished_at, as_of, status, n_targets, n_ok, n_failed from scans "
               "where status != 'running'")
        args: list[Any] = []
        if before:
            sql += " and started_at < ?"
            args.append(before)
        rows = list(self.db.query(sql + " order by id desc limit 1", args))
        return ScanInfo(**rows[0]) if rows else None

    def devices(self) -> list[dict[str, Any]]:
        return list(self.db.query("select * from devices order by address, port"))

    def open_findings(self, *, as_of_time: str | None = None) -> list[dict[str, Any]]:
        """Findings open now (or at ``as_of_time``), joined with their device, worst first."""
        args: list[Any] = []
        where = "f.resolved_at is null"
        if as_of_time:
            where = "f.first_seen <= ? and (f.resolved_at is null or f.resolved_at > ?)"
            args = [as_of_time, as_of_time]
        sql = f"""select f.*, d.address, d.name as device_name, d.hostname, d.kind, d.department,
                  d.vendor, d.model, d.os_name, d.os_version, d.criticality
                  from findings f join devices d on d.id = f.device_id where {where} and d.retired_at is null
                  """  # noqa: S608 - fixed fragments
        rows = self._rows(sql, args)
        # Worst first by the one severity order (``Severity.rank``), then check and address.
        rows.sort(key=lambda r: (-_severity_rank(r["severity"]), r["check_id"], r["address"] or ""))
        return rows

    def check_results(self, scan_id: int) -> list[dict[str, Any]]:
        return list(self.db.query("select * from check_results where scan_id = ?", [scan_id]))

    def observations(self, scan_id: int) -> list[dict[str, Any]]:
        return list(self.db.query("select * from observations where scan_id = ?", [scan_id]))

    # --- report queries -------------------------------------------------------------------
    # Read-only queries for reports/. They aggregate in SQL and reach observations through
    # the (device_id, scan_id) index, so a 5,000-device city with two years of monthly
    # history renders in about a second.

    def report_scans(self) -> list[ScanInfo]:
        """Every finished scan (complete or incomplete), oldest first."""
        rows = self.db.query("select id, started_at, finished_at, as_of, status, n_targets, n_ok, n_failed "
                             "from scans where status != 'running' order by id")
        return [ScanInfo(**r) for r in rows]

    def findings_open_at(self, scan_id: int) -> list[dict[str, Any]]:
        """Finding episodes open as of scan ``scan_id``, joined with their device.

        Open at S: opened at or before S, and not resolved, or resolved by a later scan
        (a resolved episode's ``last_scan_id`` is the scan that resolved it).
        """
        return self._rows(
            """select f.*, d.address, d.name as device_name, d.hostname, d.kind, d.department,
               d.vendor, d.model, d.os_name, d.os_version, d.criticality, d.budget_line as device_budget_line
               from findings f join devices d on d.id = f.device_id
               where f.first_scan_id <= ? and (f.resolved_at is null or f.last_scan_id > ?)
               and d.retired_at is null""",
            [scan_id, scan_id])

    def open_checks(self) -> dict[int, dict[str, int | None]]:
        """The checks each device in service has an open finding of, each with the fiscal year its
        cost falls in (the plan's pull-forward risks, placed where their findings place them)."""
        out: dict[int, dict[str, int | None]] = {}
        for device_id, check_id, fiscal_year in self.db.execute(
                "select f.device_id, f.check_id, f.cost_fiscal_year from findings f join devices d "
                "on d.id = f.device_id where f.resolved_at is null and d.retired_at is null"):
            out.setdefault(int(device_id), {})[str(check_id)] = None if fiscal_year is None else int(fiscal_year)
        return out

    def open_verdicts_by_scan(self, scan_ids: list[int]) -> dict[int, list[tuple[Any, ...]]]:
        """Per scan, the short form of ``findings_open_at`` a score needs: (device_id, check_id,
        severity, title) of the same episodes (open at S: first seen at or before S, and not
        resolved or resolved by a scan after S), read in one pass over the findings."""
        out: dict[int, list[tuple[Any, ...]]] = {i: [] for i in scan_ids}
        if not scan_ids:
            return out
        ids = sorted(set(scan_ids))
        for device_id, check_id, severity, title, first, last, open_now in self.db.conn.execute(
                """select f.device_id, f.check_id, f.severity, f.title, f.first_scan_id, f.last_scan_id,
                f.resolved_at is null from findings f join devices d on d.id = f.device_id
                where d.retired_at is null and f.first_scan_id <= ?
                and (f.resolved_at is null or f.last_scan_id > ?)""",
                [ids[-1], ids[0]]):
            row = (device_id, check_id, severity, title)
            for scan_id in ids[bisect.bisect_left(ids, first):len(ids) if open_now else bisect.bisect_left(ids, last)]:
                out[scan_id].append(row)
        return out

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        """Every row of a query as a dict (``db.query`` without sqlite-utils' per-row overhead)."""
        cur = self.db.conn.execute(sql, params)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur]

    def findings_changed(self, after_scan_id: int, upto_scan_id: int) -> dict[str, list[dict[str, Any]]]:
        """Episodes opened, and episodes resolved, by scans in (after, upto]."""
        base = ("select f.*, d.address, d.name as device_name, d.hostname, d.kind, d.department "
                "from findings f join devices d on d.id = f.device_id where ")
        new = list(self.db.query(base + "f.first_scan_id > ? and f.first_scan_id <= ?",
                                 [after_scan_id, upto_scan_id]))
        resolved = list(self.db.query(base + "f.resolved_at is not null and f.last_scan_id > ? "
                                      "and f.last_scan_id <= ?", [after_scan_id, upto_scan_id]))
        return {"new": new, "resolved": resolved}

    def scan_devices(self, scan_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        """Per scan, the devices it tried that are in service (not retired): ``device_id``, ``ok`` (facts
        collected), ``checked_before`` (facts collected by an earlier scan: its last known findings
        still stand) and ``criticality`` (decoded, shared by the scans)."""
        if not scan_ids:
            return {}
        out: dict[int, list[dict[str, Any]]] = {i: [] for i in scan_ids}
        tags = {device_id: json.loads(text) if text else [] for device_id, text in self.db.execute(
            "select id, criticality from devices where retired_at is null")}
        # The first scan that collected facts from each device (driven from devices: the index is used).
        first_ok = dict(self.db.execute(
            "select d.id, (select min(o.scan_id) from observations o where o.device_id = d.id "
            "and o.status != 'error') from devices d where d.retired_at is null").fetchall())
        outcomes = self._scan_outcomes(scan_ids)
        for scan_id in scan_ids:
            for device_id, ok in outcomes[scan_id]:
                criticality = tags.get(device_id)
                if criticality is None:
                    continue  # retired
                first = first_ok.get(device_id)
                out[scan_id].append({"device_id": device_id, "ok": ok, "criticality": criticality,
                                     "checked_before": first is not None and first < scan_id})
        return out

    def _scan_outcomes(self, scan_ids: list[int]) -> dict[int, list[tuple[int, bool]]]:
        """Per scan, (device_id, facts collected) of every device it tried, by device id. A
        read-only store reads each finished scan once (a finished scan's observations never
        change; ``scan_devices`` and ``inventory_freshness`` read the same months)."""
        finished = {i for (i,) in self.db.execute("select id from scans where status != 'running'")}
        missing = sorted({i for i in scan_ids if i not in self._outcomes})
        got: dict[int, list[tuple[int, bool]]] = {i: [] for i in missing}
        if missing:
            marks = ",".join("?" * len(missing))
            for scan_id, device_id, ok in self.db.execute(
                    f"select scan_id, device_id, status != 'error' from observations "  # noqa: S608 - marks only
                    f"where scan_id in ({marks}) order by scan_id, device_id", missing):
                got[scan_id].append((device_id, bool(ok)))
            if self.readonly:
                self._outcomes.update({i: v for i, v in got.items() if i in finished})
        return {i: self._outcomes[i] if i in self._outcomes else got[i] for i in scan_ids}

    def scan_device_measures(self, scan_ids: list[int], groups: dict[str, list[str]],
                             weights: dict[str, float]) -> dict[int, list[tuple[Any, ...]]]:
        """Per scan, one row per device checked: (device_id, penalty, critical, then for each
        group of check IDs: known, fail).

        ``penalty`` sums ``weights`` (severity -> points) over the device's failed checks;
        ``critical`` is 1 when one of them is critical; a group is "known" when one of its
        checks passed or failed, and "fail" when one failed. One query for every scan.
        """
        if not scan_ids:
            return {}
        cols, args = [], []
        wcase = " ".join("when ? then ?" for _ in weights)
        for sev, w in weights.items():
            args += [sev, w]
        cols.append(f"sum(case when status = 'fail' then (case severity {wcase} else 0 end) else 0 end)")
        cols.append("max(case when status = 'fail' and severity = 'critical' then 1 else 0 end)")
        for ids in groups.values():
            marks = ",".join("?" * len(ids)) or "''"
            cols.append(f"max(case when check_id in ({marks}) and status in ('pass','fail') then 1 else 0 end)")
            cols.append(f"max(case when check_id in ({marks}) and status = 'fail' then 1 else 0 end)")
            args += [*ids, *ids]
        sql = (f"select scan_id, device_id, {', '.join(cols)} from check_results "  # noqa: S608 - marks only
               f"where scan_id in ({','.join('?' * len(scan_ids))}) and device_id not in "
               f"(select id from devices where retired_at is not null) group by scan_id, device_id")
        out: dict[int, list[tuple[Any, ...]]] = {i: [] for i in scan_ids}
        for row in self.db.execute(sql, [*args, *scan_ids]):
            out[row[0]].append(tuple(row[1:]))
        return out

    def inventory_freshness(self, scan_ids: list[int], window_days: int = 30) -> dict[int, tuple[int, int]]:
        """Per scan: (devices checked successfully within ``window_days`` up to it, devices in service then)."""
        if not scan_ids:
            return {}
        scans = {r[0]: (r[1][:10], r[2] or "") for r in self.db.execute(
            "select id, as_of, coalesce(finished_at, started_at) from scans where status != 'running'")}
        ok_by_scan: dict[int, set[int]] = {}
        lo = min(scan_ids)
        window_start = {i: (dt.date.fromisoformat(scans[i][0]) - dt.timedelta(days=window_days)).isoformat()
                        for i in scan_ids if i in scans}
        earliest = min(window_start.values(), default="9999")
        wanted = [i for i, (as_of, _) in scans.items() if i <= max(scan_ids) and as_of > earliest] or [lo]
        for scan_id, tried in self._scan_outcomes(wanted).items():
            ok_by_scan[scan_id] = {device_id for device_id, ok in tried if ok}
        devices = [(r[0], r[1] or "", r[2]) for r in self.db.execute("select id, first_seen, retired_at from devices")]
        out = {}
        for i in scan_ids:
            if i not in scans:
                out[i] = (0, 0)
                continue
            as_of, t = scans[i]
            fresh: set[int] = set()
            for j, (j_as_of, _) in scans.items():
                if j <= i and window_start[i] < j_as_of <= as_of:
                    fresh |= ok_by_scan.get(j, set())
            # Devices in service: known by then and not retired.
            in_service = {d for d, f, r in devices if f <= t and r is None}
            out[i] = (len(fresh & in_service), len(in_service))
        return out

    def unreachable_devices(self, scan_id: int) -> list[dict[str, Any]]:
        """Devices whose collection failed in ``scan_id``, with the names a person knows them by."""
        return list(self.db.query(
            "select o.target, o.error_kind, o.error, d.id as device_id, d.name as device_name, d.hostname, "
            "d.address, d.kind, d.department, d.last_success from devices d join observations o "
            "on o.device_id = d.id and o.scan_id = ? where o.status = 'error' and d.retired_at is null "
            "order by d.department, d.address", [scan_id]))

    def device_inventory(self, *, retired: bool = False) -> list[dict[str, Any]]:
        """Every device in service (retired ones too with ``retired=True``) with the dates and
        facts a refresh plan needs, taken from its latest facts; ``tags`` and ``criticality``
        decoded."""
        rows = self._rows(
            f"""select d.id, d.name, d.address, d.hostname, d.kind, d.department, d.vendor, d.model,
               d.os_name, d.os_version, d.product, d.purchase_date, d.budget_line, d.criticality,
               d.tags, d.register_cost, d.retired_at, d.first_seen, d.last_success, d.last_status,
               json_extract(o.facts, '$.hardware.manufacture_date') as manufacture_date,
               json_extract(o.facts, '$.hardware.bios_date') as bios_date,
               json_extract(o.facts, '$.directory.created') as directory_created,
               json_extract(o.facts, '$.directory.disabled') as directory_disabled,
               json_extract(o.facts, '$.sources') as sources,
               json_extract(o.facts, '$.software.release') as release,
               json_extract(o.facts, '$.software.virtualization') as virtualization,
               json_extract(o.facts, '$.hardware.tpm_version') as tpm_version
               from devices d left join observations o on o.id =
                 (select id from observations where device_id = d.id and facts is not null
                  order by scan_id desc limit 1)
               {'' if retired else 'where d.retired_at is null'}
               order by d.id""", [])  # noqa: S608 - a fixed fragment
        for r in rows:
            r["tags"] = json.loads(r["tags"]) if r["tags"] else []
            r["criticality"] = json.loads(r["criticality"]) if r["criticality"] else []
        return rows

    # --- the status board: reads only ---------------------------------------------------

    def running_scans(self) -> list[ScanInfo]:
        """Scans under way (status 'running'), newest first."""
        rows = self.db.query("select id, started_at, finished_at, as_of, status, n_targets, n_ok, n_failed "
                             "from scans where status = 'running' order by id desc")
        return [ScanInfo(**r) for r in rows]

    def scan_progress(self, scan_id: int) -> tuple[int, int]:
        """How far a scan has got: (devices stored so far, of them could not be checked). A scan
        stores each device as it finishes it, so this counts while the scan runs."""
        done, failed = self.db.execute(
            "select count(*), coalesce(sum(status = 'error'), 0) from observations where scan_id = ?",
            [scan_id]).fetchone()
        return int(done), int(failed)

    def device_count(self) -> int:
        """How many devices the database holds, retired ones included."""
        return int(self.db.execute("select count(*) from devices").fetchone()[0])

    def board_devices(self) -> list[dict[str, Any]]:
        """Every device (retired ones too) with its open findings: ``open_findings`` (a count) and
        ``worst`` (the worst open severity by ``Severity.rank``, or None); and where it is known
        from (``sources``): "scanned" (a scan reached it), "directory" (a directory computer),
        "register" (an asset-register row is tied to it), "discovered" (a discovery sweep saw it)."""
        rows = self._rows(
            """select d.id, d.name, d.address, d.hostname, d.kind, d.department, d.vendor, d.model, d.os_name,
               d.os_version, d.serial, d.last_status, d.last_error, d.last_success, d.last_seen, d.first_seen,
               d.retired_at, d.directory_dn is not null as src_directory,
               exists(select 1 from observations o where o.device_id = d.id
                      and (o.source is null or o.source like 'scan%')) as src_scanned,
               exists(select 1 from assets a where a.device_id = d.id) as src_register,
               exists(select 1 from sightings s where s.device_id = d.id) as src_discovered
               from devices d order by d.id""", [])
        counts: dict[int, int] = {}
        worst: dict[int, str] = {}
        for device_id, severity, n in self.db.execute(
                "select device_id, severity, count(*) from findings where resolved_at is null "
                "group by device_id, severity"):
            counts[device_id] = counts.get(device_id, 0) + int(n)
            if device_id not in worst or _severity_rank(severity) > _severity_rank(worst[device_id]):
                worst[device_id] = severity
        for r in rows:
            r["open_findings"] = counts.get(r["id"], 0)
            r["worst"] = worst.get(r["id"])
            r["sources"] = [name for name in ("scanned", "directory", "register", "discovered")
                            if r.pop("src_" + name)]
        return rows

    def board_device_extras(self) -> dict[int, dict[str, Any]]:
        """Per device (retired ones too): what its age is counted from and its support verdicts.

        ``purchase_date`` (register or config), ``age_dates`` (manufacture date, BIOS date,
        directory creation from its latest facts: ``rules.age_basis``'s other inputs, as
        ``device_inventory`` reads them; read only without a purchase date, which comes first),
        ``eol_open`` (the lifecycle checks, EOL-*, it has an open finding of) and ``eol_verdict``
        (EOL-001's verdict in the last scan that tried it)."""
        out: dict[int, dict[str, Any]] = {}
        for device_id, purchase, dates, eol_open, verdict in self.db.execute(
                """select d.id, d.purchase_date,
                   case when d.purchase_date is null or d.purchase_date = '' then json_extract(o.facts,
                     '$.hardware.manufacture_date', '$.hardware.bios_date', '$.directory.created') end,
                   (select group_concat(f.check_id) from findings f where f.device_id = d.id
                    and f.check_id like 'EOL-%' and f.resolved_at is null),
                   (select c.status from check_results c where c.scan_id = d.last_scan_id and c.device_id = d.id
                    and c.check_id = 'EOL-001')
                   from devices d left join observations o on o.id = case when d.purchase_date is null
                     or d.purchase_date = '' then (select id from observations where device_id = d.id
                     and facts is not null order by scan_id desc limit 1) end"""):
            out[int(device_id)] = {"purchase_date": purchase,
                                   "age_dates": json.loads(dates) if dates else [None, None, None],
                                   "eol_open": set(eol_open.split(",")) if eol_open else set(), "eol_verdict": verdict}
        return out

    def device_sightings(self, device_id: int, limit: int = 5) -> list[dict[str, Any]]:
        """The latest discovery sightings tied to a device, newest first (``open_ports`` decoded)."""
        if "sightings" not in self.db.table_names():
            return []
        rows = self._rows("select s.address, s.seen_at, s.open_ports, s.snmp_sysobjectid, s.ssh_banner, s.protocol, "
                          "s.port, s.guess, s.discovery_id from sightings s where s.device_id = ? "
                          "order by s.id desc limit ?", [device_id, limit])
        for r in rows:
            r["open_ports"] = json.loads(r["open_ports"] or "[]")
        return rows

    def device_assets(self, device_id: int) -> list[dict[str, Any]]:
        """The asset-register rows tied to a device (what the register says and where it came from)."""
        if "assets" not in self.db.table_names():
            return []
        return self._rows("select purchase_date, cost, department, budget_line, serial, hostname, address, source, "
                          "source_row, imported_at from assets where device_id = ? order by id", [device_id])

    def latest_facts_row(self, device_id: int) -> dict[str, Any] | None:
        """The observation the device's latest facts came from: scan, when, source, and the facts as stored."""
        return self._one("select o.scan_id, o.started_at, o.source, o.facts, s.as_of from observations o "
                         "join scans s on s.id = o.scan_id where o.device_id = ? and o.facts is not null "
                         "order by o.id desc limit 1", [device_id])

    def device_observations(self, device_id: int, limit: int = 12) -> list[dict[str, Any]]:
        """A device's latest checks, newest first: scan, when, outcome, error, where the facts came from."""
        return self._rows(
            "select o.scan_id, o.started_at, o.status, o.error_kind, o.error, o.source, o.duration_ms, "
            "o.facts is not null as has_facts, s.as_of from observations o join scans s on s.id = o.scan_id "
            "where o.device_id = ? order by o.scan_id desc limit ?", [device_id, limit])

    def device_by_id(self, device_id: int) -> dict[str, Any] | None:
        """One device row by its id (None when there is none)."""
        return self._one("select * from devices where id = ?", [device_id])

    def device_findings(self, device_id: int) -> list[dict[str, Any]]:
        """Every finding episode of one device: open ones first (worst first), then resolved ones (newest first)."""
        rows = self._rows(
            "select id, check_id, status, severity, title, summary, detail, evidence, remediation, cost_amount, "
            "cost_kind, budget_line, first_seen, last_seen, resolved_at from findings where device_id = ?", [device_id])
        rows.sort(key=lambda r: (r["resolved_at"] or "", r["check_id"]), reverse=True)  # newest resolved first
        rows.sort(key=lambda r: (r["resolved_at"] is not None,
                                 -_severity_rank(r["severity"]) if r["resolved_at"] is None else 0))
        return rows

    # --- directory -------------------------------------------------------------------

    def record_directory_read(self, scan_id: int, *, server: str, read_at: str, error: str | None = None,
                              n_computers: int = 0, n_referrals: int = 0, laps_source: str | None = None,
                              recovery_objects: int | None = None) -> int:
        """One read of the directory (or its failure, which changes no device)."""
        with self.tx():
            return self._insert("directory_reads", {
                "scan_id": scan_id, "server": server, "read_at": read_at, "status": "error" if error else "ok",
                "error": error, "n_computers": n_computers, "n_referrals": n_referrals,
                "laps_source": laps_source, "recovery_objects": recovery_objects})

    def directory_reads(self, limit: int = 20) -> list[dict[str, Any]]:
        """Recent directory reads, newest first."""
        return list(self.db.query("select * from directory_reads order by id desc limit ?", [limit]))

    def audit_sources(self, scan_id: int) -> dict[str, int]:
        """Devices of one scan by where their facts came from: ``directory`` (judged from the
        directory only), ``scan+directory`` and ``scan`` (fully audited), ``failed``."""
        out = {"directory": 0, "scan+directory": 0, "scan": 0, "failed": 0}
        for source, status, n in self.db.execute(
                "select coalesce(source, 'scan'), status, count(distinct device_id) from observations "
                "where scan_id = ? group by 1, 2", [scan_id]):
            key = "failed" if status == "error" and source == "scan" else source
            out[key] = out.get(key, 0) + n
        return out

    def reconciliation(self) -> dict[str, list[dict[str, Any]]]:
        """What the directory, the scans and the asset register disagree on.

        ``directory_only``: computers in the directory never fully audited by a scan.
        ``not_in_directory``: Windows machines a scan audited that the directory does not list
        (empty until a directory read succeeded). ``register_only``: asset register rows that
        match no device at all (in neither the directory nor a scan).
        """
        cols = "id, name, hostname, address, kind, department, os_name, os_version, directory_dn, last_full_audit"
        out: dict[str, list[dict[str, Any]]] = {}
        out["directory_only"] = list(self.db.query(
            f"select {cols} from devices where directory_dn is not null and last_full_audit is null "  # noqa: S608
            "order by host_key"))
        read_ok = self.db.execute("select 1 from directory_reads where status = 'ok' limit 1").fetchone()
        out["not_in_directory"] = list(self.db.query(
            f"select {cols} from devices where directory_dn is null and last_full_audit is not null "  # noqa: S608
            "and product in ('windows', 'windows-server') order by address")) if read_ok else []
        out["register_only"] = list(self.db.query(
            "select key, address, serial, hostname, department, source, source_row from assets "
            "where device_id is null order by source_row")) if "assets" in self.db.table_names() else []
        return out

    # --- end of the directory block ---------------------------------------------------



    # --- discovery ------------------------------------------------------------------------
    # Sweeps write through ``_insert``/``_update`` inside ``tx()`` like scans do: one
    # transaction per responding address, so a killed sweep keeps what it recorded.

    def begin_discovery(self, city_id: str, ranges: list[str], n_addresses: int, *, now: str | None = None) -> int:
        """Open a discovery run over ``ranges`` (CIDR strings); return its id."""
        with self.tx():
            return self._insert("discoveries", {"city_id": city_id, "started_at": now or utcnow(),
                                                "status": "running", "ranges": json.dumps(ranges),
                                                "n_addresses": n_addresses, "n_responding": 0,
                                                "n_managed": 0, "n_unmanaged": 0})

    def record_sighting(self, discovery_id: int, sighting: dict[str, Any], *, now: str | None = None) -> int:
        """Store what one responding address answered (one transaction); return the row id."""
        values = {k: sighting.get(k) for k in ("address", "snmp_sysobjectid", "ssh_banner", "ssh_host_key",
                                                "protocol", "port", "credential", "device_id", "guess")}
        values.update({"discovery_id": discovery_id, "seen_at": now or utcnow(),
                       "open_ports": json.dumps(sorted(sighting.get("open_ports") or [])),
                       "managed": 1 if sighting.get("managed") else 0})
        with self.tx():
            return self._insert("sightings", values)

    def finish_discovery(self, discovery_id: int, *, complete: bool = True, now: str | None = None) -> None:
        """Close a discovery run with its counts."""
        with self.tx():
            n, managed = self.db.execute(
                "select count(*), coalesce(sum(managed), 0) from sightings where discovery_id = ?",
                [discovery_id]).fetchone()
            self._update("discoveries", discovery_id, {
                "finished_at": now or utcnow(), "status": "complete" if complete else "incomplete",
                "n_responding": n, "n_managed": managed, "n_unmanaged": n - managed})

    def discoveries(self, limit: int = 20) -> list[dict[str, Any]]:
        """Recent discovery runs, newest first."""
        return list(self.db.query("select * from discoveries order by id desc limit ?", [limit]))

    def sightings(self, discovery_id: int) -> list[dict[str, Any]]:
        """What each responding address answered in one run (``open_ports`` decoded)."""
        rows = list(self.db.query("select * from sightings where discovery_id = ? order by id", [discovery_id]))
        for r in rows:
            r["open_ports"] = json.loads(r["open_ports"] or "[]")
            r["managed"] = bool(r["managed"])
        return rows

    def device_for_sighting(self, address: str, ssh_host_key: str | None = None) -> dict[str, Any] | None:
        """The known device behind a sighting (``find_device``): its address, else a host key only one
        device has (DHCP moved it)."""
        return self.find_device(address=address, host_key=ssh_host_key)

    def discovered_candidates(self) -> list[dict[str, Any]]:
        """Managed sightings of the latest complete discovery: reachable with a city credential."""
        row = self.db.execute("select max(id) from discoveries where status = 'complete'").fetchone()
        if not row or row[0] is None:
            return []
        return [r for r in self.sightings(int(row[0])) if r["managed"] and r["protocol"]]

    def has_swept(self) -> bool:
        """Has a discovery sweep of this city ever finished?"""
        return self.db.execute("select 1 from discoveries where status = 'complete' limit 1").fetchone() is not None

    def unmanaged_sightings(self) -> list[dict[str, Any]]:
        """Addresses the latest complete sweep found that nobody manages and no device matches."""
        row = self.db.execute("select max(id) from discoveries where status = 'complete'").fetchone()
        if not row or row[0] is None:
            return []
        return [r for r in self.sightings(int(row[0])) if not r["managed"] and r["device_id"] is None]

    def recent_sightings(self, since: str) -> list[tuple[str, int | None]]:
        """(address, device id) of every sighting since ``since`` (ISO time)."""
        return [(str(a), d) for a, d in self.db.execute(
            "select address, device_id from sightings where seen_at >= ?", [since])]

    def asset_rows(self) -> list[dict[str, Any]]:
        """Every row of the imported asset register."""
        return list(self.db.query("select * from assets order by id"))

    def inventory_completeness(self, as_of: dt.date) -> tuple[int, int]:
        """KPI for the monthly summary: ``(managed, found_not_managed)`` as of a date.

        ``managed``: devices in the inventory (first seen by then). ``found_not_managed``:
        addresses that answered the latest discovery finished by then and match no device.
        """
        end = (as_of + dt.timedelta(days=1)).isoformat()
        managed = self.db.execute("select count(*) from devices where (first_seen is null or first_seen < ?) "
                                  "and retired_at is null", [end]).fetchone()[0]
        if "discoveries" not in self.db.table_names():
            return int(managed), 0
        row = self.db.execute("select max(id) from discoveries where status = 'complete' and finished_at < ?",
                              [end]).fetchone()
        if not row or row[0] is None:
            return int(managed), 0
        unmanaged = self.db.execute(
            "select count(distinct s.address) from sightings s where s.discovery_id = ? and s.device_id is null "
            "and s.address not in (select address from devices where address is not null "
            "and (first_seen is null or first_seen < ?))", [row[0], end]).fetchone()[0]
        return int(managed), int(unmanaged)

    # --- end of the discovery block -----------------------------------------------------

    # --- retirement -----------------------------------------------------------------------

    def find_devices(self, text: str) -> list[dict[str, Any]]:
        """Devices a person means by ``text``: id, configured name, host name, address or serial."""
        if text.isdigit():
            rows = list(self.db.query("select * from devices where id = ?", [int(text)]))
            if rows:
                return rows
        return list(self.db.query(
            "select * from devices where lower(name) = lower(?) or lower(hostname) = lower(?) or address = ? "
            "or lower(serial) = lower(?) order by id", [text, text, text, text]))

    def retire_device(self, device_id: int, *, note: str | None = None, now: str | None = None) -> None:
        """Take a decommissioned device out of KPIs, plan and worklist; its history stays."""
        with self.tx():
            self._update("devices", device_id, {"retired_at": now or utcnow(), "retired_note": note})

    def unretire_device(self, device_id: int) -> None:
        """Undo a retirement made by mistake."""
        with self.tx():
            self._update("devices", device_id, {"retired_at": None, "retired_note": None})

    def record_replacement(self, device_id: int, *, cost: float | None, replaced_on: str,
                           replaced_by: str | None = None, replaced_by_id: int | None = None,
                           note: str | None = None) -> None:
        """Record that ``device_id`` was replaced (by ``replaced_by``, for ``cost``, on ``replaced_on``,
        YYYY-MM-DD) and retire it as of that day; recording again replaces the earlier record."""
        with self.tx():
            self.db.table("replacements").upsert(
                {"device_id": device_id, "replaced_by_id": replaced_by_id, "replaced_by": replaced_by,
                 "cost": cost, "replaced_on": replaced_on, "recorded_at": utcnow(), "note": note},
                pk="device_id")
            self._update("devices", device_id, {"retired_at": f"{replaced_on}T00:00:00+00:00",
                                                "retired_note": note or (f"replaced by {replaced_by}"
                                                                         if replaced_by else "replaced")})

    def remove_replacement(self, device_id: int) -> None:
        """Drop a replacement recorded by mistake (with ``unretire_device``)."""
        with self.tx():
            self.db.execute("delete from replacements where device_id = ?", [device_id])

    def replacements(self, since: str, until: str) -> list[dict[str, Any]]:
        """Recorded replacements with ``since <= replaced_on <= until`` (YYYY-MM-DD), with the
        replaced device's row (``id``, names, kind, department, address, tags, register fields)."""
        return list(self.db.query(
            "select r.device_id, r.replaced_by_id, r.replaced_by, r.cost, r.replaced_on, r.note, d.* "
            "from replacements r join devices d on d.id = r.device_id "
            "where r.replaced_on >= ? and r.replaced_on <= ? order by r.replaced_on, r.device_id",
            [since, until]))

    def returned_devices(self, since: str) -> list[dict[str, Any]]:
        """Retired devices that answered again since ``since`` (ISO time), with their note."""
        return list(self.db.query(
            "select id, name as device_name, hostname, address, retired_note from devices "
            "where retired_at is null and retired_note like '%answered again%' and last_success >= ? "
            "order by id", [since]))

    # --- asset register -------------------------------------------------------------------
    # Callers hold ``tx()``: a register row and the device fields it fills are one transaction.

    # Register fields a matched row writes onto its device (``cost`` as ``register_cost``).
    REGISTER_FIELDS = {"purchase_date": "purchase_date", "department": "department",
                       "budget_line": "budget_line", "criticality": "criticality", "cost": "register_cost"}

    def _pending_register(self, result: CollectResult) -> dict[str, Any] | None:
        """A register row not tied to a device yet that describes this result (the same order as
        ``match_asset``: serial, address, host name or configured name)."""
        ident = result.facts.identity
        for column, value in (("serial", ident.serial or result.facts.hardware.serial),
                              ("address", result.target.address), ("hostname", ident.hostname),
                              ("hostname", result.target.name)):
            if value:
                hit = self._one(f"select * from assets where device_id is null and lower({column}) = lower(?) "  # noqa: S608
                                "order by id limit 1", [value])
                if hit:
                    return hit
        return None

    def match_asset(self, row: dict[str, Any]) -> int | None:
        """The device a register row describes (``find_device``: serial, address, host or configured name)."""
        hit = self.find_device(serial=row.get("serial"), address=row.get("address"), hostname=row.get("hostname"),
                               nocase=True)
        return int(hit["id"]) if hit else None

    def put_asset(self, values: dict[str, Any]) -> None:
        """Store one register row (replacing an earlier import of the same key) and, when it is
        matched (``device_id``), fill its device's register fields."""
        self.db.execute("delete from assets where key = ?", [values["key"]])
        self._insert("assets", values)
        if values.get("device_id") is not None:
            self._fill_register(int(values["device_id"]), values)

    def pending_assets(self) -> list[dict[str, Any]]:
        """Register rows not matched to a device yet."""
        if "assets" not in self.db.table_names():
            return []
        return list(self.db.query("select * from assets where device_id is null order by id"))

    def tie_asset(self, key: str, device_id: int, row: dict[str, Any]) -> None:
        """Tie a pending register row to the device it now matches and fill its register fields."""
        self.db.execute("update assets set device_id = ? where key = ?", [device_id, key])
        self._fill_register(device_id, row)

    def _fill_register(self, device_id: int, row: dict[str, Any]) -> None:
        register = {col: row[k] for k, col in self.REGISTER_FIELDS.items() if row.get(k) is not None}
        if register:
            self._update("devices", device_id, register)


def _facts_json(facts: DeviceFacts) -> str:
    """Facts as stored. The full package list (often 2,000 entries) would multiply the
    database by every scan; the count is kept and the list is left out, saying so."""
    packages = facts.patching.packages
    # The list is left out BEFORE converting (asdict on 2,000 packages was most of a scan's
    # CPU), and json's C encoder walks the rest: only dataclasses, dates and enums come back
    # to Python (``_jsonable``), the same JSON as ``DeviceFacts.to_dict`` gives.
    doc = _fields(facts)
    doc["patching"] = {**_fields(facts.patching), "packages": []}
    if packages:
        doc["gaps"] = {**facts.gaps, "patching.packages": f"not stored: {len(packages)} packages (count kept)"}
    return json.dumps(doc, separators=(",", ":"), default=_jsonable)


def _hint(message: str) -> str:
    """What a person can do about an SQLite write error (devices stored so far are kept)."""
    m = message.lower()
    if "full" in m or "disk i/o" in m:
        return " (is the disk full, or a file size limit reached? free space and scan again; devices stored " \
               "so far are kept)"
    if "readonly" in m or "read-only" in m:
        return " (the database file or its folder is read-only: check permissions and attributes)"
    return ""


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _fields(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as a shallow dict (``asdict`` without its deep copies)."""
    names = _FIELD_NAMES.get(type(obj))
    if names is None:
        names = _FIELD_NAMES[type(obj)] = tuple(f.name for f in dataclasses.fields(obj))
    return {n: getattr(obj, n) for n in names}


def _jsonable(obj: Any) -> Any:
    """``json.dumps``'s ``default``: what the encoder cannot write itself, as ``to_dict`` does."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _fields(obj)
    if isinstance(obj, dt.date):  # datetime too
        return obj.isoformat()
    if isinstance(obj, Enum):
        return obj.value
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _severity_rank(severity: str | None) -> int:
    try:
        return Severity(severity or "").rank
    except ValueError:
        return -1


_JUNK_IDS = {"", "0", "none", "n/a", "na", "unknown", "default string", "to be filled by o.e.m.",
             "system serial number", "0123456789", "not specified", "<private>"}


def host_key(hostname: str | None) -> str | None:
    """The short, lower-case host name a directory computer and a scanned machine share."""
    if not hostname or not hostname.strip():
        return None
    first = hostname.strip().split(".")[0].lower()
    try:  # an IP address is no host name
        ipaddress.ip_address(hostname.strip())
        return None
    except ValueError:
        pass
    return first or None


def _identity_key(result: CollectResult) -> str | None:
    ident = result.facts.identity
    serial = ident.serial or result.facts.hardware.serial
    if serial and serial.strip().lower() not in _JUNK_IDS:
        return f"serial:{(ident.vendor or '').lower()}:{serial.strip()}"
    if ident.snmp_engine_id:
        return f"engine:{ident.snmp_engine_id}"
    if ident.mac:
        return f"mac:{ident.mac.lower()}"
    t = result.target
    return f"{t.protocol}:{t.address}:{t.port or 0}"


short_host_key = host_key  # (find_device's parameter host_key is an SSH host key)
