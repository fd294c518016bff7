"""``itaudit data update`` for the version-range data: CVE records (and OSV records) per KEV CVE.

What it does, for the KEV CVEs of every product family itaudit matches (``kev_products.json``):

- asks the CVE Services API for each CVE JSON 5 record, **conditionally** (``If-None-Match`` /
  ``If-Modified-Since`` from ``http-cache.json``): an unchanged record costs a 304 and no
  parsing, so a month's update fetches only what changed;
- **verifies** every record before using it: valid JSON (a truncated body is not), a CVE
  record of the requested ID, state PUBLISHED; a record that fails keeps the previous copy;
- refreshes the distribution (OSV) records already in the data the same way;
- rebuilds ``vulns.json`` from the shipped data overlaid with the downloaded records (same
  conversion as ``itaudit.vulntools``), writes it atomically and keeps a **dated snapshot**
  (``snapshots/vulns-YYYY-MM-DD.json``, the last ``KEEP_SNAPSHOTS``). The data date becomes
  the update's day only when every wanted record was checked; otherwise it stays older.

Offline, nothing here runs and the shipped, dated ``vulns.json`` is used. ``get`` is
injectable; the tests serve recorded records from a loopback HTTP server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itaudit.errors import KnowledgeError
from itaudit.knowledge import Knowledge, shipped_data_dir
from itaudit.vulns import package_record, validate_vulns
from itaudit.vulntools import add_osv_record, osv_cves, products_of

CVE_API = "https://cveawg.mitre.org/api/cve/{cve}"
OSV_API = "https://api.osv.dev/v1/vulns/{id}"
MAX_RECORD = 8 * 1024 * 1024
KEEP_SNAPSHOTS = 6


@dataclass
class HttpResult:
    """One HTTP answer: status, body and the validators for the next conditional request."""

    status: int
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None


Get = Callable[[str, dict[str, str]], HttpResult]


def http_get(url: str, headers: dict[str, str], *, timeout: float = 30.0, loopback_http: bool = False) -> HttpResult:
    """GET over https (plain http only to 127.0.0.1 when ``loopback_http``), size-bounded."""
    import urllib.error
    import urllib.request

    if not (url.startswith("https://") or (loopback_http and url.startswith("http://127.0.0.1:"))):
        raise KnowledgeError(f"refusing URL {url} (https only)")
    req = urllib.request.Request(url, headers={"User-Agent": "itaudit-data-update", **headers})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - scheme checked above
            body = resp.read(MAX_RECORD + 1)
            if len(body) > MAX_RECORD:
                raise KnowledgeError(f"{url}: larger than {MAX_RECORD} bytes")
            return HttpResult(resp.status, body, resp.headers.get("ETag"), resp.headers.get("Last-Modified"))
    except urllib.error.HTTPError as exc:
        if exc.code in (304, 404):
            return HttpResult(exc.code)
        raise


@dataclass
class VulnUpdateReport:
    """What ``update_vulns`` did: counts, and each refusal with its reason."""

    fetched: int = 0  # new or changed records accepted
    unchanged: int = 0  # 304 Not Modified
    missing: int = 0  # 404: no such record (yet)
    refused: dict[str, str] = field(default_factory=dict)  # record -> why (previous copy kept)
    written: Path | None = None
    snapshot: str | None = None

    @property
    def ok(self) -> bool:
        return not self.refused


class _Cache:
    """ETag / Last-Modified per URL, so the next update asks only for changes."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.data: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.data = {}

    def headers(self, url: str) -> dict[str, str]:
        v = self.data.get(url) or {}
        h = {}
        if v.get("etag"):
            h["If-None-Match"] = v["etag"]
        if v.get("last_modified"):
            h["If-Modified-Since"] = v["last_modified"]
        return h

    def remember(self, url: str, r: HttpResult) -> None:
        self.data[url] = {k: v for k, v in (("etag", r.etag), ("last_modified", r.last_modified)) if v}

    def save(self) -> None:
        _write_atomic(self.path, json.dumps(self.data, indent=1, sort_keys=True).encode())


def verify_cve_record(body: bytes, cve: str) -> dict[str, Any]:
    """The record in ``body`` if it is a whole, published CVE JSON 5 record of ``cve``; else raise."""
    try:
        rec = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KnowledgeError(f"not JSON (truncated or damaged: {exc})") from exc
    meta = rec.get("cveMetadata") if isinstance(rec, dict) else None
    if not isinstance(meta, dict) or rec.get("dataType") != "CVE_RECORD":
        raise KnowledgeError("not a CVE JSON 5 record")
    if meta.get("cveId") != cve:
        raise KnowledgeError(f"asked for {cve}, got {meta.get('cveId')!r}")
    if meta.get("state") != "PUBLISHED":
        raise KnowledgeError(f"record state {meta.get('state')!r}")
    if not isinstance((rec.get("containers") or {}).get("cna"), dict):
        raise KnowledgeError("record without a CNA container")
    return rec


def verify_osv_record(body: bytes, osv_id: str) -> dict[str, Any]:
    """The OSV record in ``body`` if it is whole and has the requested ID; else raise."""
    try:
        rec = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KnowledgeError(f"not JSON (truncated or damaged: {exc})") from exc
    if not isinstance(rec, dict) or rec.get("id") != osv_id or not isinstance(rec.get("affected"), list):
        raise KnowledgeError(f"not the OSV record {osv_id}")
    return rec


def wanted_cves(kn: Knowledge) -> list[str]:
    """KEV CVEs of every product family itaudit matches: the records the checks can use."""
    products = (kn._t.kev_map.get("products") or {}).keys()  # noqa: SLF001 - same package
    return sorted({e.cve for p in products for e in kn.kev_matches(p)})


def update_vulns(
    data_dir: Path,
    *,
    get: Get = http_get,
    today: dt.date | None = None,
    cve_api: str = CVE_API,
    osv_api: str = OSV_API,
    cves: list[str] | None = None,
) -> VulnUpdateReport:
    """Refresh the CVE and OSV records in ``data_dir`` and rebuild its ``vulns.json``."""
    day = (today or dt.date.today()).isoformat()
    kn = Knowledge.load(data_dir) if (data_dir / "kev.json").exists() else Knowledge.load()
    report = VulnUpdateReport()
    cache = _Cache(data_dir / "http-cache.json")
    rec_dir = data_dir / "records"
    sources_path = rec_dir / "SOURCES.json"
    try:
        sources: dict[str, Any] = json.loads(sources_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        sources = {"cve": {}, "osv": {}}
    base = json.loads((shipped_data_dir() / "vulns.json").read_text(encoding="utf-8"))
    checked = 0
    todo = cves if cves is not None else wanted_cves(kn)
    for cve in todo:
        url = cve_api.format(cve=cve)
        ok = _refresh(get, url, cache, report, cve, rec_dir / "cve" / f"{cve}.json",
                      functools.partial(_verify_cve, cve=cve), sources["cve"], day)
        checked += ok
    for osv_id, filed in sorted(_osv_records(base).items()):
        url = osv_api.format(id=osv_id)
        _refresh(get, url, cache, report, osv_id, rec_dir / "osv" / f"{osv_id.replace(':', '-')}.json",
                 functools.partial(_verify_osv, osv_id=osv_id), sources["osv"], day, cves=sorted(filed))
    cache.save()
    _write_atomic(sources_path, json.dumps(sources, indent=1, sort_keys=True).encode())
    doc = _overlay(base, rec_dir, sources)
    # The date of the data in use: the last complete update, else the shipped snapshot.
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        doc["snapshot"] = max(doc["snapshot"], json.loads((data_dir / "vulns.json").read_text())["snapshot"])
    if checked == len(todo) and todo:
        doc["snapshot"] = day
    validate_vulns(doc, where="updated vulns.json")
    body = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
    _write_atomic(data_dir / "vulns.json", body)
    snap = data_dir / "snapshots" / f"vulns-{day}.json"
    _write_atomic(snap, body)
    old = sorted((data_dir / "snapshots").glob("vulns-*.json"))
    for p in old[:-KEEP_SNAPSHOTS]:
        p.unlink()
    report.written, report.snapshot = data_dir / "vulns.json", doc["snapshot"]
    # A long-running process (the agent) must see the new files, not its cached copies.
    from itaudit import knowledge as _knowledge
    from itaudit import vulns as _vulns

    _knowledge._load_cached.cache_clear()  # noqa: SLF001 - same package
    _vulns._load.cache_clear()  # noqa: SLF001
    return report


def _osv_records(doc: dict[str, Any]) -> dict[str, set[str]]:
    """OSV record ID -> the CVEs it is filed under, over the package data of ``doc``."""
    out: dict[str, set[str]] = {}
    for cve, rec in (doc.get("packages") or {}).items():
        for osv_id, r in package_record(rec)["records"].items():
            if r.get("feed") != "debian-tracker":  # Debian's tracker lists are not OSV records
                out.setdefault(osv_id, set()).add(cve)
    return out


def _verify_cve(body: bytes, *, cve: str) -> dict[str, Any]:
    return verify_cve_record(body, cve)


def _verify_osv(body: bytes, *, osv_id: str) -> dict[str, Any]:
    return verify_osv_record(body, osv_id)


def _refresh(get: Get, url: str, cache: _Cache, report: VulnUpdateReport, key: str, path: Path,
             verify: Callable[[bytes], dict[str, Any]], sources: dict[str, Any], day: str,
             cves: list[str] | None = None) -> bool:
    """One conditional GET; True when the record is known current (new, 304 or 404)."""
    headers = cache.headers(url) if path.exists() else {}
    try:
        r = get(url, headers)
    except Exception as exc:  # network: keep what we have
        report.refused[key] = f"{type(exc).__name__}: {exc}"
        return False
    if r.status == 304:
        report.unchanged += 1
        return True
    if r.status == 404:
        report.missing += 1
        return True
    if r.status != 200:
        report.refused[key] = f"HTTP {r.status}"
        return False
    try:
        verify(r.body)
    except KnowledgeError as exc:
        report.refused[key] = f"{exc}; the previous copy stays"
        return False
    _write_atomic(path, r.body)
    cache.remember(url, r)
    sources[key] = {"repo": re.sub(r"^https?://([^/]+)/.*$", r"\1", url), "path": url,
                    "commit": f"retrieved {day}" + (f" etag {r.etag}" if r.etag else ""),
                    "sha256": hashlib.sha256(r.body).hexdigest(), **({"cves": cves} if cves else {})}
    report.fetched += 1
    return True


def _overlay(base: dict[str, Any], rec_dir: Path, sources: dict[str, Any]) -> dict[str, Any]:
    """The shipped data with every downloaded record converted over it."""
    doc = json.loads(json.dumps(base))
    for cve, src in sources.get("cve", {}).items():
        p = rec_dir / "cve" / f"{cve}.json"
        if not p.exists():
            continue
        rec = json.loads(p.read_text(encoding="utf-8"))
        meta = rec.get("cveMetadata") or {}
        doc["cves"][cve] = {
            "published": str(meta.get("datePublished", ""))[:10] or None,
            "updated": str(meta.get("dateUpdated", ""))[:10] or None,
            "source": {k: src[k] for k in ("repo", "path", "commit")},
            "products": products_of(rec),
        }
    for osv_id, src in sources.get("osv", {}).items():
        p = rec_dir / "osv" / f"{osv_id.replace(':', '-')}.json"
        cves = osv_cves({}, src)
        if not p.exists() or not cves:
            continue
        rec = json.loads(p.read_text(encoding="utf-8"))
        add_osv_record(doc.setdefault("packages", {}), rec, cves, src)
    return doc


def _write_atomic(path: Path, body: bytes) -> None:
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
