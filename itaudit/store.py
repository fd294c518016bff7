"""The SQLite store: one database file per city, WAL, a schema version, migrations.

Write path: ``begin_scan`` → ``record_result`` once per device (one transaction each,
so a killed scan leaves every earlier device whole) → ``finish_scan``. A scan left
``running`` by a killed process is marked ``incomplete`` the next time a scan starts.

Read path: small query methods used by the CLI and the reports. Secrets never reach
this module: a ``Target`` carries only a credential *name*.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from itaudit.checking import DeviceRecord
from itaudit.errors import ScanLocked, StoreError
from itaudit.model import CollectResult, DeviceFacts, Finding, ResultStatus, Status

SCHEMA_VERSION = 1


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
    db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
    db["scans"].create(
        {"id": int, "city_id": str, "started_at": str, "finished_at": str, "as_of": str, "status": str,
         "n_targets": int, "n_ok": int, "n_failed": int, "pid": int},
        pk="id", if_not_exists=True,
    )
    db["devices"].create(
        {"id": int, "city_id": str, "identity_key": str, "protocol": str, "address": str, "port": int,
         "name": str, "hostname": str, "kind": str, "vendor": str, "model": str, "serial": str, "mac": str,
         "ssh_host_key": str, "snmp_engine_id": str, "os_name": str, "os_version": str, "product": str,
         "department": str, "criticality": str, "purchase_date": str, "budget_line": str,
         "first_seen": str, "last_seen": str, "last_success": str, "last_status": str,
         "last_error": str, "consecutive_failures": int, "last_scan_id": int},
        pk="id", if_not_exists=True,
    )
    db["devices"].create_index(["identity_key"], unique=True, if_not_exists=True)
    db["devices"].create_index(["protocol", "address", "port"], if_not_exists=True)
    db["observations"].create(
        {"id": int, "scan_id": int, "device_id": int, "target": str, "status": str, "error_kind": str,
         "error": str, "started_at": str, "duration_ms": int, "facts": str},
        pk="id", foreign_keys=[("scan_id", "scans", "id"), ("device_id", "devices", "id")], if_not_exists=True,
    )
    db["observations"].create_index(["device_id", "scan_id"], if_not_exists=True)
    db["check_results"].create(
        {"scan_id": int, "device_id": int, "check_id": str, "status": str, "severity": str, "summary": str},
        pk=("scan_id", "device_id", "check_id"), if_not_exists=True,
    )
    # One row per episode of a failing check on a device: opened, seen again, resolved.
    db["findings"].create(
        {"id": int, "device_id": int, "check_id": str, "status": str, "severity": str, "title": str,
         "summary": str, "detail": str, "evidence": str, "remediation": str, "cost_amount": float,
         "cost_kind": str, "budget_line": str, "cost_basis": str, "refs": str, "first_seen": str,
         "last_seen": str, "resolved_at": str, "first_scan_id": int, "last_scan_id": int},
        pk="id", foreign_keys=[("device_id", "devices", "id")], if_not_exists=True,
    )
    db["findings"].create_index(["device_id", "check_id", "resolved_at"], if_not_exists=True)


MIGRATIONS = {1: _migrate_v1}


class Store:
    """One city's database."""

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        try:
            if readonly:
                if not self.path.exists():
                    raise StoreError(f"no database at {self.path}: run 'itaudit scan' first")
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                if not self.path.exists():
                    # Owner-only from the first byte: the database describes the city's weak spots.
                    os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
                conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            conn.execute("PRAGMA busy_timeout = 30000")
            self.db = sqlite_utils.Database(conn)
            if not readonly:
                self.db.enable_wal()
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute("PRAGMA foreign_keys = ON")
                self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot create database {self.path}: {exc.strerror}") from None

    # --- schema -----------------------------------------------------------------------

    def _migrate(self) -> None:
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema {current}, newer than this itaudit ({SCHEMA_VERSION})")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            with self.tx():
                MIGRATIONS[version](self.db)
                self.db["meta"].upsert({"key": "schema_version", "value": str(version)}, pk="key")

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
            raise StoreError(f"cannot write {self.path}: {exc}") from None

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

    def finish_scan(self, scan_id: int, *, complete: bool = True, now: str | None = None) -> None:
        with self.tx():
            ok, failed = self.db.execute(
                "select sum(status != 'error'), sum(status = 'error') from observations where scan_id = ?",
                [scan_id]).fetchone()
            self._update("scans", scan_id, {"finished_at": now or utcnow(),
                                              "status": "complete" if complete else "incomplete",
                                              "n_ok": ok or 0, "n_failed": failed or 0})

    # --- devices ----------------------------------------------------------------------

    def device_record(self, result: CollectResult) -> DeviceRecord:
        """The record a check sees for this target: config facts merged with history."""
        row = self._match_device(result)
        t = result.target
        return DeviceRecord(
            id=row["id"] if row else None,
            kind=t.kind or (row["kind"] if row else None) or result.facts.identity.kind,
            department=t.department or (row["department"] if row else None),
            criticality=list(t.criticality) or (json.loads(row["criticality"]) if row and row["criticality"] else []),
            purchase_date=t.purchase_date or (dt.date.fromisoformat(row["purchase_date"])
                                              if row and row["purchase_date"] else None),
            first_seen=row["first_seen"] if row else None,
            last_seen=row["last_seen"] if row else None,
            budget_line=row["budget_line"] if row else None,
            tags=list(t.tags),
            last_successful_scan=row["last_success"] if row else None,
            # This result counts: a failure now is one more in the run of failures.
            consecutive_failures=(((row["consecutive_failures"] or 0) if row else 0) + 1
                                  if result.status == ResultStatus.ERROR else 0),
            last_error=result.error if result.status == ResultStatus.ERROR else (row["last_error"] if row else None),
            collector_findings=dict(result.collector_findings),
        )

    def _match_device(self, result: CollectResult) -> dict[str, Any] | None:
        """Find the device this result belongs to: strong identity first, then address."""
        ident = result.facts.identity
        t = result.target
        for column, value in (("serial", ident.serial or result.facts.hardware.serial),
                              ("ssh_host_key", ident.ssh_host_key),
                              ("snmp_engine_id", ident.snmp_engine_id), ("mac", ident.mac)):
            if value and value.strip() and value.lower() not in _JUNK_IDS:
                rows = list(self.db.query(f"select * from devices where {column} = ? "  # noqa: S608 - fixed names
                                          "order by last_seen desc limit 1", [value]))
                if rows:
                    return rows[0]
        rows = list(self.db.query(
            "select * from devices where protocol = ? and address = ? and coalesce(port, 0) = ? "
            "order by last_seen desc limit 1", [t.protocol, t.address, t.port or 0]))
        return rows[0] if rows else None

    def record_result(self, scan_id: int, result: CollectResult, findings: list[Finding], *,
                      now: str | None = None) -> int:
        """Store one device's result and its findings in ONE transaction; return the device id.

        ``now`` (UTC ISO) replaces the clock, for tests and benchmarks that build history.
        """
        now = now or utcnow()
        facts = result.facts
        ident = facts.identity
        t = result.target
        ok = result.status != ResultStatus.ERROR
        with self.tx():
            row = self._match_device(result)
            values: dict[str, Any] = {
                "city_id": t.city_id, "protocol": t.protocol, "address": t.address, "port": t.port,
                "name": t.name, "department": t.department,
                "criticality": json.dumps(t.criticality) if t.criticality else None,
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
            # Keep what we knew when this scan could not see it (None never overwrites).
            values = {k: v for k, v in values.items() if v is not None or k in ("last_error",)}
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
                "facts": json.dumps(facts.to_dict(), separators=(",", ":")) if ok else None,
            })
            self._apply_findings(scan_id, device_id, findings, now, full=ok)
        return device_id

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
        open_rows = {r["check_id"]: r for r in self.db.query(
            "select id, check_id from findings where device_id = ? and resolved_at is null", [device_id])}
        for f in findings:
            if f.status == Status.FAIL:
                values = {
                    "status": f.status.value, "severity": f.severity.value, "title": f.title, "summary": f.summary,
                    "detail": f.detail, "evidence": f.evidence, "remediation": f.remediation,
                    "cost_amount": f.cost.amount if f.cost else None, "cost_kind": f.cost.kind if f.cost else None,
                    "budget_line": f.cost.budget_line if f.cost else None,
                    "cost_basis": f.cost.basis if f.cost else None, "refs": json.dumps(f.references),
                    "last_seen": now, "last_scan_id": scan_id,
                }
                if f.check_id in open_rows:
                    self._update("findings", open_rows[f.check_id]["id"], values)
                else:
                    self._insert("findings", {**values, "device_id": device_id, "check_id": f.check_id,
                                                "first_seen": now, "first_scan_id": scan_id})
            elif f.status == Status.PASS and f.check_id in open_rows:
                self._update("findings", open_rows[f.check_id]["id"], {"resolved_at": now, "last_scan_id": scan_id})

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

    def latest_facts(self, device_id: int) -> DeviceFacts | None:
        row = self.db.execute("select facts from observations where device_id = ? and facts is not null "
                              "order by id desc limit 1", [device_id]).fetchone()
        return DeviceFacts.from_dict(json.loads(row[0])) if row else None

    def open_findings(self, *, as_of_time: str | None = None) -> list[dict[str, Any]]:
        """Findings open now (or at ``as_of_time``), joined with their device, worst first."""
        args: list[Any] = []
        where = "f.resolved_at is null"
        if as_of_time:
            where = "f.first_seen <= ? and (f.resolved_at is null or f.resolved_at > ?)"
            args = [as_of_time, as_of_time]
        sql = f"""select f.*, d.address, d.name as device_name, d.hostname, d.kind, d.department,
                  d.vendor, d.model, d.os_name, d.os_version, d.criticality
                  from findings f join devices d on d.id = f.device_id where {where}
                  order by case f.severity when 'critical' then 4 when 'high' then 3 when 'medium' then 2
                  when 'low' then 1 else 0 end desc, f.check_id, d.address"""  # noqa: S608 - fixed fragments
        return list(self.db.query(sql, args))

    def findings_between(self, start: str, end: str) -> dict[str, list[dict[str, Any]]]:
        """Episodes opened and resolved in [start, end): what changed in a period."""
        new = list(self.db.query("select f.*, d.address, d.name as device_name from findings f join devices d "
                                 "on d.id = f.device_id where f.first_seen >= ? and f.first_seen < ?", [start, end]))
        resolved = list(self.db.query("select f.*, d.address, d.name as device_name from findings f join devices d "
                                      "on d.id = f.device_id where f.resolved_at >= ? and f.resolved_at < ?",
                                      [start, end]))
        return {"new": new, "resolved": resolved}

    def check_results(self, scan_id: int) -> list[dict[str, Any]]:
        return list(self.db.query("select * from check_results where scan_id = ?", [scan_id]))

    def failed_targets(self, scan_id: int) -> list[dict[str, Any]]:
        return list(self.db.query(
            "select o.target, o.error_kind, o.error, d.name as device_name, d.address, d.department "
            "from observations o join devices d on d.id = o.device_id where o.scan_id = ? and o.status = 'error' "
            "order by d.address", [scan_id]))

    def observations(self, scan_id: int) -> list[dict[str, Any]]:
        return list(self.db.query("select * from observations where scan_id = ?", [scan_id]))

    # --- report queries (reports helper) ----------------------------------------------
    # Read-only queries for reports/. They aggregate in SQL so a 5,000-device city with
    # two years of monthly history still renders in well under a second.

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
        return list(self.db.query(
            """select f.*, d.address, d.name as device_name, d.hostname, d.kind, d.department,
               d.vendor, d.model, d.os_name, d.os_version, d.criticality, d.budget_line as device_budget_line
               from findings f join devices d on d.id = f.device_id
               where f.first_scan_id <= ? and (f.resolved_at is null or f.last_scan_id > ?)""",
            [scan_id, scan_id]))

    def findings_changed(self, after_scan_id: int, upto_scan_id: int) -> dict[str, list[dict[str, Any]]]:
        """Episodes opened, and episodes resolved, by scans in (after, upto]."""
        base = ("select f.*, d.address, d.name as device_name, d.hostname, d.kind, d.department "
                "from findings f join devices d on d.id = f.device_id where ")
        new = list(self.db.query(base + "f.first_scan_id > ? and f.first_scan_id <= ?",
                                 [after_scan_id, upto_scan_id]))
        resolved = list(self.db.query(base + "f.resolved_at is not null and f.last_scan_id > ? "
                                      "and f.last_scan_id <= ?", [after_scan_id, upto_scan_id]))
        return {"new": new, "resolved": resolved}

    def scan_measures(self, scan_id: int, groups: dict[str, list[str]],
                      weights: dict[str, float]) -> dict[str, float]:
        """Per-scan device counts for the KPI scorecard, aggregated in SQL.

        For each group of check IDs: how many devices have a known verdict (pass or fail)
        and how many fail any of them. Also: devices checked, devices with a critical
        failure, and the mean device score (100 minus severity ``weights`` of failures).
        """
        cols, args = [], []
        for name, ids in groups.items():
            marks = ",".join("?" * len(ids)) or "''"
            cols.append(f"max(case when check_id in ({marks}) and status in ('pass','fail') "
                        f"then 1 else 0 end) as {name}_known")
            args += ids
            cols.append(f"max(case when check_id in ({marks}) and status = 'fail' then 1 else 0 end)"
                        f" as {name}_fail")
            args += ids
        wcase = " ".join("when ? then ?" for _ in weights)
        for sev, w in weights.items():
            args += [sev, w]
        cols.append(f"sum(case when status = 'fail' then (case severity {wcase} else 0 end) else 0 end)"
                    " as penalty")
        cols.append("max(case when status = 'fail' and severity = 'critical' then 1 else 0 end) as crit")
        outer = ["count(*) as checked", "sum(crit) as critical",
                 "avg(100.0 - min(100.0, penalty)) as score"]
        for name in groups:
            outer += [f"sum({name}_known) as {name}_known", f"sum({name}_fail) as {name}_fail"]
        sql = (f"select {', '.join(outer)} from (select device_id, {', '.join(cols)} "  # noqa: S608
               "from check_results where scan_id = ? group by device_id)")
        row = self.db.execute(sql, [*args, scan_id]).fetchone()
        names = ["checked", "critical", "score"] + [f"{n}_{k}" for n in groups for k in ("known", "fail")]
        return {k: (v or 0) for k, v in zip(names, row, strict=True)}

    def device_penalties(self, scan_id: int, weights: dict[str, float]) -> dict[int, float]:
        """Per device checked in ``scan_id``: the severity points of its failed checks (0 when none)."""
        wcase = " ".join("when ? then ?" for _ in weights)
        args: list[Any] = [x for sev, w in weights.items() for x in (sev, w)]
        sql = (f"select device_id, sum(case when status = 'fail' then (case severity {wcase} else 0 end) "  # noqa: S608
               "else 0 end) from check_results where scan_id = ? group by device_id")
        rows = self.db.execute(sql, [*args, scan_id]).fetchall()
        return {int(d): float(p or 0) for d, p in rows}

    def inventory_freshness(self, scan_ids: list[int], window_days: int = 30) -> dict[int, tuple[int, int]]:
        """Per scan: (devices checked successfully within ``window_days`` up to it, devices known then).

        One query for all scans: SQLite builds a temporary index on observations.scan_id.
        """
        if not scan_ids:
            return {}
        marks = ",".join("?" * len(scan_ids))
        fresh = dict(self.db.execute(
            f"""select s.id, count(distinct o.device_id) from scans s
                join scans x on x.as_of > date(s.as_of, ?) and x.as_of <= s.as_of and x.id <= s.id
                 and x.status != 'running'
                join observations o on o.scan_id = x.id
                where o.status != 'error' and s.id in ({marks}) group by s.id""",  # noqa: S608 - marks only
            [f"-{int(window_days)} days", *scan_ids]).fetchall())
        known = dict(self.db.execute(
            f"""select s.id, (select count(*) from devices d where d.first_seen is null
                 or d.first_seen <= coalesce(s.finished_at, s.started_at)) from scans s
                where s.id in ({marks})""", scan_ids).fetchall())  # noqa: S608 - marks only
        return {i: (int(fresh.get(i, 0)), int(known.get(i, 0))) for i in scan_ids}

    def unreachable_devices(self, scan_id: int) -> list[dict[str, Any]]:
        """Devices whose collection failed in ``scan_id``, with the names a person knows them by."""
        return list(self.db.query(
            "select o.target, o.error_kind, o.error, d.name as device_name, d.hostname, d.address, d.kind, "
            "d.department, d.last_success from observations o join devices d on d.id = o.device_id "
            "where o.scan_id = ? and o.status = 'error' order by d.department, d.address", [scan_id]))

    def device_inventory(self) -> list[dict[str, Any]]:
        """Every device with the dates a refresh plan needs, taken from its latest facts."""
        return list(self.db.query(
            """select d.id, d.name, d.address, d.hostname, d.kind, d.department, d.vendor, d.model,
               d.os_name, d.os_version, d.product, d.purchase_date, d.budget_line, d.criticality,
               d.first_seen, d.last_success, d.last_status,
               json_extract(o.facts, '$.hardware.manufacture_date') as manufacture_date,
               json_extract(o.facts, '$.hardware.bios_date') as bios_date,
               json_extract(o.facts, '$.software.release') as release,
               json_extract(o.facts, '$.hardware.tpm_version') as tpm_version
               from devices d left join observations o on o.id =
                 (select max(id) from observations where device_id = d.id and facts is not null)
               order by d.id"""))


_JUNK_IDS = {"", "0", "none", "n/a", "na", "unknown", "default string", "to be filled by o.e.m.",
             "system serial number", "0123456789", "not specified", "<private>"}


def _identity_key(result: CollectResult) -> str | None:
    ident = result.facts.identity
    serial = ident.serial or result.facts.hardware.serial
    if serial and serial.strip().lower() not in _JUNK_IDS:
        return f"serial:{(ident.vendor or '').lower()}:{serial.strip()}"
    if ident.ssh_host_key:
        return f"hostkey:{ident.ssh_host_key}"
    if ident.snmp_engine_id:
        return f"engine:{ident.snmp_engine_id}"
    if ident.mac:
        return f"mac:{ident.mac.lower()}"
    t = result.target
    return f"{t.protocol}:{t.address}:{t.port or 0}"
