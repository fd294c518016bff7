"""Site collectors for an MSP: a site scans its own city and ships signed snapshots outbound.

The transport and the signatures are OpenSSH's own, not a protocol of ours:

- **site** (``itaudit site push``, and the agent after each scan): a consistent copy of the
  city's database (SQLite online backup), a manifest (city, site, sequence number, schema
  version, scan IDs, row counts, sha256) signed with the site's SSH key (``ssh-keygen -Y
  sign``), pushed with OpenSSH ``sftp`` in batch mode to the MSP's chrooted, SFTP-only inbox
  (key login, the MSP's host key pinned in a known_hosts file, never trusted on first use).
  Each file goes up as ``.part`` (resumed with ``put -a`` after a cut link) and is renamed
  when whole; the manifest is renamed last, so its arrival means the rest is there.
  Snapshots that could not be delivered stay in the outbox and go out in order, with
  backoff. The site only puts files: it never reads commands or data from the centre.
- **centre** (``itaudit central ingest``): for each city's inbox, complete manifests in
  sequence order: signature checked against the allowed-signers file with the *inbox's*
  city as the principal (``ssh-keygen -Y verify``), the manifest must name that city, the
  database's sha256, schema, integrity and row counts must match; then the snapshot is
  swapped in atomically as the city's database, the last N are kept, and the site's last
  contact is recorded. Anything refused is moved aside with the reason; the city's
  previous database stays.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itaudit import __version__
from itaudit.config import CentralConfig, CityConfig, Config, SiteConfig
from itaudit.errors import ItauditError
from itaudit.store import SCHEMA_VERSION

log = logging.getLogger("itaudit.site")

FORMAT = "itaudit-site-snapshot/1"
NAMESPACE = "itaudit-site-snapshot"  # ssh-keygen -Y signature namespace: a signature for nothing else
_STEM = re.compile(r"^[a-z0-9_-]+-\d{8}T\d{6}Z-\d{6}$")


class SiteLinkError(ItauditError):
    """A snapshot could not be made, pushed or ingested; the message says why."""


def _utc(now: dt.datetime | None = None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [r[0] for r in conn.execute(
        "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name")]
    return {n: conn.execute(f'select count(*) from "{n}"').fetchone()[0] for n in names}  # noqa: S608 - names from sqlite_master


def _run(cmd: list[str], *, timeout: float, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise SiteLinkError(f"{cmd[0]} is not installed (OpenSSH's client tools are needed)") from None
    except subprocess.TimeoutExpired:
        raise SiteLinkError(f"{Path(cmd[0]).name} did not finish in {timeout:g}s") from None


def _tail(proc: subprocess.CompletedProcess[bytes]) -> str:
    text = (proc.stderr or proc.stdout or b"").decode("utf-8", "replace").strip().splitlines()
    return text[-1] if text else f"exit code {proc.returncode}"


# --- the site ---------------------------------------------------------------------------


@dataclass
class Outbox:
    """Snapshots made at the site and not delivered yet (``<data_dir>/<city>/site-outbox``)."""

    folder: Path

    @property
    def state_path(self) -> Path:
        return self.folder / "state.json"

    def state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.state_path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}

    def save_state(self, state: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.state_path)

    def pending(self) -> list[str]:
        """Stems of complete, undelivered snapshots, oldest first (by sequence number)."""
        if not self.folder.is_dir():
            return []
        stems = [p.name[:-5] for p in self.folder.glob("*.json") if p.name != "state.json"
                 and (self.folder / (p.name[:-5] + ".db")).exists()
                 and (self.folder / (p.name + ".sig")).exists()]
        return sorted(stems, key=lambda s: int(s.rsplit("-", 1)[1]))

    def files(self, stem: str) -> list[Path]:
        """The three files of a snapshot, in upload order (the manifest last)."""
        return [self.folder / f"{stem}.db", self.folder / f"{stem}.json.sig", self.folder / f"{stem}.json"]

    def drop(self, stem: str) -> None:
        for p in self.files(stem):
            p.unlink(missing_ok=True)


def outbox_for(cfg: Config, city: CityConfig) -> Outbox:
    return Outbox(cfg.settings.data_dir / city.id / "site-outbox")


def make_snapshot(cfg: Config, *, now: dt.datetime | None = None) -> str:
    """Copy the site's city database consistently, write and sign its manifest; return its stem."""
    site = _site(cfg)
    city = cfg.city(site.city)
    if not Path(city.database).exists():
        raise SiteLinkError(f"no database at {city.database} yet: scan the city first")
    box = outbox_for(cfg, city)
    box.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    state = box.state()
    seq = int(state.get("seq", 0)) + 1
    when = _utc(now)
    stem = f"{city.id}-{when.strftime('%Y%m%dT%H%M%SZ')}-{seq:06d}"
    db_path, sig_path, manifest_path = box.files(stem)
    tmp_db = db_path.with_suffix(".db.tmp")
    src = sqlite3.connect(f"file:{city.database}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(tmp_db)
        try:
            src.backup(dst)  # SQLite's online backup: a consistent copy while scans may run
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
            counts = _row_counts(dst)
            version = dst.execute("select value from meta where key = 'schema_version'").fetchone()
            scans = [r[0] for r in dst.execute("select id from scans order by id")]
            last = dst.execute("select id, started_at, finished_at, status from scans order by id desc limit 1"
                               ).fetchone()
        finally:
            dst.close()
    except sqlite3.DatabaseError as exc:
        tmp_db.unlink(missing_ok=True)
        raise SiteLinkError(f"cannot copy {city.database}: {exc}") from None
    finally:
        src.close()
    os.replace(tmp_db, db_path)
    manifest = {
        "format": FORMAT, "city": city.id, "site": site.name, "seq": seq, "created_at": when.isoformat(),
        "itaudit_version": __version__, "schema_version": int(version[0]) if version else 0,
        "snapshot": db_path.name, "bytes": db_path.stat().st_size, "sha256": _sha256(db_path),
        "scan_ids": scans, "row_counts": counts,
        "last_scan": dict(zip(("id", "started_at", "finished_at", "status"), last, strict=True)) if last else None,
    }
    tmp_manifest = manifest_path.with_suffix(".json.tmp")
    tmp_manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    _sign(site, tmp_manifest, sig_path)
    os.replace(tmp_manifest, manifest_path)
    state["seq"] = seq
    box.save_state(state)
    _trim(box, site.keep_undelivered)
    log.info("%s: snapshot %s made (%d bytes, %d scans)", city.id, stem, manifest["bytes"], len(scans))
    return stem


def _sign(site: SiteConfig, manifest: Path, sig_path: Path) -> None:
    if not site.signing_key.exists():
        raise SiteLinkError(f"the signing key {site.signing_key} does not exist (site.signing_key)")
    proc = _run(["ssh-keygen", "-q", "-Y", "sign", "-f", str(site.signing_key), "-n", NAMESPACE, str(manifest)],
                timeout=30)
    made = manifest.with_name(manifest.name + ".sig")
    if proc.returncode != 0 or not made.exists():
        raise SiteLinkError(f"cannot sign the manifest with {site.signing_key}: {_tail(proc)}")
    os.replace(made, sig_path)


def _trim(box: Outbox, keep: int) -> None:
    """Each snapshot is the whole database: past ``keep``, the oldest undelivered ones go."""
    pending = box.pending()
    for stem in pending[:-keep] if len(pending) > keep else []:
        log.warning("site outbox over %d snapshots: dropping the undelivered %s (newer ones hold its data)",
                    keep, stem)
        box.drop(stem)


@dataclass
class PushResult:
    delivered: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    error: str | None = None
    skipped_until: str | None = None  # backing off after a failure


def push(cfg: Config, *, now: dt.datetime | None = None, force: bool = False) -> PushResult:
    """Deliver every undelivered snapshot, oldest first; stop at the first failure (kept, retried)."""
    site = _site(cfg)
    city = cfg.city(site.city)
    box = outbox_for(cfg, city)
    state = box.state()
    when = _utc(now)
    result = PushResult(pending=box.pending())
    retry_at = state.get("retry_at")
    if retry_at and not force and when < dt.datetime.fromisoformat(retry_at):
        result.skipped_until = retry_at
        return result
    for stem in list(result.pending):
        try:
            _sftp_put(site, box.files(stem))
        except SiteLinkError as exc:
            failures = int(state.get("failures", 0)) + 1
            delay = min(site.retry_backoff * (2 ** (failures - 1)), site.retry_backoff_max)
            state.update(failures=failures, last_error=str(exc), last_attempt=when.isoformat(),
                         retry_at=(when + dt.timedelta(seconds=delay)).isoformat())
            box.save_state(state)
            result.error = str(exc)
            log.warning("%s: snapshot %s not delivered (%s); %d waiting, next try in %ds", city.id, stem, exc,
                        len(result.pending), int(delay))
            return result
        box.drop(stem)
        result.delivered.append(stem)
        result.pending.remove(stem)
        state.update(failures=0, last_error=None, retry_at=None, last_delivered=stem,
                     last_delivered_at=when.isoformat())
        box.save_state(state)
        log.info("%s: snapshot %s delivered to %s", city.id, stem, site.host)
    return result


def _sftp(site: SiteConfig, lines: list[str], *, size: int = 0) -> str:
    """Run one OpenSSH sftp session in batch mode; return what it printed, or raise."""
    if not site.known_hosts.exists():
        raise SiteLinkError(f"no pinned host key for the MSP: {site.known_hosts} does not exist (site.known_hosts)")
    with tempfile.NamedTemporaryFile("w", prefix="itaudit-sftp-", suffix=".batch", delete=False) as fh:
        fh.write("\n".join(lines) + "\n")
        batch = fh.name
    try:
        limit = ["-l", str(site.bandwidth_kbps)] if site.bandwidth_kbps else []
        cmd = ["sftp", "-q", "-b", batch, *limit, "-P", str(site.port), "-i", str(site.identity_file),
               "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
               "-o", f"UserKnownHostsFile={site.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
               "-o", "UpdateHostKeys=no", "-o", f"ConnectTimeout={int(min(site.timeout, 60))}",
               "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=2",
               "-F", "/dev/null", f"{site.user}@{site.host}"]
        rate = site.bandwidth_kbps * 125 if site.bandwidth_kbps else 200_000  # bytes/s we allow for
        proc = _run(cmd, timeout=site.timeout + size / rate * 2)
    finally:
        os.unlink(batch)
    if proc.returncode != 0:
        raise SiteLinkError(f"sftp to {site.user}@{site.host}:{site.port} failed: {_tail(proc)}")
    return proc.stdout.decode("utf-8", "replace")


def _sftp_put(site: SiteConfig, files: list[Path]) -> None:
    """Upload one snapshot: each file goes up as ``.part`` (a part left by a cut link is resumed,
    ``put -a``), then is renamed; the manifest is renamed last. First a listing of the inbox
    says which parts are there already (sftp's resume needs an existing file)."""
    listing = _sftp(site, [f'cd "{site.directory}"', "ls -l"])
    have: dict[str, int] = {}
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 9 and parts[4].isdigit():
            have[parts[-1]] = int(parts[4])
    lines = [f'cd "{site.directory}"']
    for f in files:
        size, part = f.stat().st_size, f"{f.name}.part"
        if part not in have or have[part] > size:
            lines.append(f'put "{f}" "{part}"')
        elif have[part] < size:
            lines.append(f'put -a "{f}" "{part}"')  # resume where the cut left it
        lines.append(f'rename "{part}" "{f.name}"')
    _sftp(site, lines, size=sum(f.stat().st_size for f in files))


def _site(cfg: Config) -> SiteConfig:
    if cfg.site is None:
        raise SiteLinkError(f"{cfg.path} has no [site] table: this install is not an MSP's site collector")
    return cfg.site


def site_status(cfg: Config) -> dict[str, Any]:
    site = _site(cfg)
    box = outbox_for(cfg, cfg.city(site.city))
    return {"city": site.city, "site": site.name, "msp": f"{site.user}@{site.host}:{site.port}",
            "pending": box.pending(), **box.state()}


# --- the centre -------------------------------------------------------------------------


@dataclass
class Ingested:
    city: str
    stem: str
    ok: bool
    reason: str = ""


def _central(cfg: Config) -> CentralConfig:
    if cfg.central is None:
        raise SiteLinkError(f"{cfg.path} has no [central] table: this install does not receive site snapshots")
    return cfg.central


def _central_dir(cfg: Config, city: CityConfig) -> Path:
    return cfg.settings.data_dir / "central" / city.id


def central_state_path(cfg: Config) -> Path:
    return cfg.settings.data_dir / "central" / "state.json"


def central_state(cfg: Config) -> dict[str, Any]:
    try:
        return dict(json.loads(central_state_path(cfg).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _save_central_state(cfg: Config, state: dict[str, Any]) -> None:
    path = central_state_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def ingest(cfg: Config, *, now: dt.datetime | None = None) -> list[Ingested]:
    """Ingest every complete snapshot waiting in every city's inbox, in sequence order."""
    central = _central(cfg)
    state = central_state(cfg)
    out: list[Ingested] = []
    for city in cfg.cities.values():
        inbox = central.inbox_root / city.id / "inbox"
        if not inbox.is_dir():
            continue
        manifests = []
        for m in inbox.glob("*.json"):
            try:
                seq = int(m.name[:-5].rsplit("-", 1)[1])
            except (IndexError, ValueError):
                seq = -1
            manifests.append((seq, m))
        for _, manifest in sorted(manifests):
            res = _ingest_one(cfg, central, city, manifest, state.setdefault(city.id, {}), now)
            out.append(res)
            _save_central_state(cfg, state)
    return out


def _ingest_one(cfg: Config, central: CentralConfig, city: CityConfig, manifest_path: Path,
                cstate: dict[str, Any], now: dt.datetime | None) -> Ingested:
    stem = manifest_path.name[:-5]
    files = [manifest_path.with_name(f"{stem}.db"), manifest_path.with_name(f"{stem}.json.sig"), manifest_path]
    when = _utc(now).isoformat()
    try:
        manifest = _verify(central, city, stem, files, cstate)
    except SiteLinkError as exc:
        _set_aside(cfg, city, files, str(exc))
        cstate.update(last_refused=stem, last_refused_at=when, last_refused_reason=str(exc))
        log.error("%s: snapshot %s refused: %s; the city's previous database stays", city.id, stem, exc)
        return Ingested(city.id, stem, False, str(exc))
    try:
        _swap_in(cfg, city, files[0], central.keep, stem)
    except OSError as exc:
        reason = f"cannot write the city's database: {exc.strerror or exc}"
        cstate.update(last_refused=stem, last_refused_at=when, last_refused_reason=reason)
        log.error("%s: snapshot %s not ingested: %s; the previous database stays (the snapshot waits)",
                  city.id, stem, reason)
        return Ingested(city.id, stem, False, reason)
    for f in files:
        f.unlink(missing_ok=True)
    cstate.update(site=manifest["site"], seq=manifest["seq"], snapshot_created_at=manifest["created_at"],
                  last_contact=when, last_scan=manifest.get("last_scan"), schema_version=manifest["schema_version"],
                  devices=manifest["row_counts"].get("devices"))
    log.info("%s: snapshot %s from site %s ingested", city.id, stem, manifest["site"])
    return Ingested(city.id, stem, True)


def _verify(central: CentralConfig, city: CityConfig, stem: str, files: list[Path],
            cstate: dict[str, Any]) -> dict[str, Any]:
    db, sig, manifest_path = files
    if not _STEM.match(stem):
        raise SiteLinkError(f"unexpected file name {manifest_path.name}")
    for f in (db, sig):
        if not f.exists():
            raise SiteLinkError(f"{f.name} is missing beside its manifest")
    raw = manifest_path.read_bytes()
    proc = _run(["ssh-keygen", "-q", "-Y", "verify", "-f", str(central.allowed_signers), "-I", city.id,
                 "-n", NAMESPACE, "-s", str(sig)], timeout=30, stdin=raw)
    if proc.returncode != 0:
        raise SiteLinkError(f"the signature is not from a key allowed for city {city.id} "
                            f"(ssh-keygen: {_tail(proc)})")
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise SiteLinkError("the manifest is not JSON") from None
    if manifest.get("format") != FORMAT:
        raise SiteLinkError(f"unknown manifest format {manifest.get('format')!r}")
    if manifest.get("city") != city.id:
        raise SiteLinkError(f"the manifest names city {manifest.get('city')!r}, but it arrived in {city.id}'s inbox")
    if manifest.get("snapshot") != db.name:
        raise SiteLinkError("the manifest names another database file")
    if int(manifest.get("seq", 0)) <= int(cstate.get("seq", 0)):
        raise SiteLinkError(f"sequence {manifest.get('seq')} is not newer than the snapshot in use "
                            f"({cstate.get('seq')}): a replay or a duplicate")
    if int(manifest.get("schema_version", 0)) > SCHEMA_VERSION:
        raise SiteLinkError(f"schema {manifest.get('schema_version')} is newer than this itaudit's "
                            f"({SCHEMA_VERSION}): upgrade the centre first")
    if db.stat().st_size != manifest.get("bytes") or _sha256(db) != manifest.get("sha256"):
        raise SiteLinkError("the database does not match the manifest's size and sha256 (incomplete or tampered)")
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            # The sha256 proves these are the bytes the site signed; quick_check proves the site
            # did not sign a broken file (integrity_check also re-reads every index: 3x slower).
            if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise SiteLinkError("the database fails SQLite's integrity check")
            version = conn.execute("select value from meta where key = 'schema_version'").fetchone()
            counts = _row_counts(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise SiteLinkError(f"the snapshot is not a readable database: {exc}") from None
    if not version or int(version[0]) != int(manifest["schema_version"]):
        raise SiteLinkError("the database's schema version differs from the manifest's")
    if counts != manifest.get("row_counts"):
        raise SiteLinkError("the database's row counts differ from the manifest's")
    return dict(manifest)


def _set_aside(cfg: Config, city: CityConfig, files: list[Path], reason: str) -> None:
    """Refused files leave the inbox (so they are not retried) and keep their reason beside them."""
    folder = _central_dir(cfg, city) / "refused"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for f in files:
        if f.exists():
            shutil.move(str(f), folder / f.name)
    (folder / (files[-1].name[:-5] + ".reason.txt")).write_text(reason + "\n", encoding="utf-8")


def _swap_in(cfg: Config, city: CityConfig, db: Path, keep: int, stem: str) -> None:
    """Copy the snapshot beside the city's database, then replace it in one rename."""
    target = Path(city.database)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    archive = _central_dir(cfg, city) / "snapshots"
    archive.mkdir(parents=True, exist_ok=True, mode=0o700)
    kept_copy = archive / f"{stem}.db"
    shutil.move(str(db), kept_copy)  # a rename when the inbox and the data share a file system
    incoming = target.with_name(target.name + ".incoming")
    try:
        shutil.copyfile(kept_copy, incoming)
        os.chmod(incoming, 0o600)
        with open(incoming, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(incoming, target)
    except OSError:
        # A full disk (or the like): the previous database stays, the snapshot goes back to wait.
        incoming.unlink(missing_ok=True)
        shutil.move(str(kept_copy), db)
        raise
    for suffix in ("-wal", "-shm"):  # the old file's; the snapshot is a self-contained file
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    kept = sorted(archive.glob("*.db"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    for old in kept[:-keep]:
        old.unlink()


def staleness(cfg: Config, *, now: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
    """Per city: the site's last contact, its age in hours and whether it is stale."""
    central = _central(cfg)
    state = central_state(cfg)
    when = _utc(now)
    out: dict[str, dict[str, Any]] = {}
    for cid in cfg.cities:
        s = state.get(cid, {})
        last = s.get("last_contact")
        age = (when - dt.datetime.fromisoformat(last)).total_seconds() / 3600 if last else None
        out[cid] = {"site": s.get("site"), "last_contact": last,
                    "age_hours": round(age, 1) if age is not None else None,
                    "stale": age is None or age > central.stale_after_hours, "seq": s.get("seq"),
                    "last_refused": s.get("last_refused"), "last_refused_reason": s.get("last_refused_reason")}
    return out
