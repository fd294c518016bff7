"""The status board's further pages: the worklist, the generated reports, discovery results,
and a device's facts with their source and time and the raw evidence they were judged on.

Each page is the matching report's own model or the store's own rows, never a second
computation: the worklist is ``reports.worklist.build_worklist`` narrowed by the device
list's filters (``reports.board.apply_filters``, the same rule), discovery results are the
store's sweeps and sightings, the report files are the agent's output folder as written.
Reads only, like the rest of the board.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from itaudit.config import CityConfig
from itaudit.model import DeviceFacts
from itaudit.store import Store
from reports.board import (
    AGE_CHOICES,
    LIFECYCLES,
    MAX_PAGE_SIZE,
    PAGE_SIZES,
    SEVERITIES,
    BadFilter,
    apply_filters,
    device_rows,
    parse_filters,
)

# How a probe name ("ssh:linux-probe", "snmp:system", "ldap:directory") reads to a person.
PROTOCOL_WORDS = {"ssh": "SSH", "snmp": "SNMP", "winrm": "WinRM", "ldap": "directory", "psutil": "this machine"}
# (label, [(section, attribute), ...]): the first non-empty value wins and names its section.
FACTS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Host name", (("identity", "hostname"),)),
    ("Kind", (("identity", "kind"),)),
    ("Vendor", (("hardware", "vendor"), ("identity", "vendor"))),
    ("Model", (("hardware", "model"), ("identity", "model"))),
    ("Serial", (("hardware", "serial"), ("identity", "serial"))),
    ("Operating system", (("software", "os_name"),)),
    ("Version", (("software", "os_version"),)),
    ("Build", (("software", "os_build"),)),
    ("Firmware", (("software", "firmware"),)),
    ("Virtualization", (("software", "virtualization"),)),
    ("Last boot", (("software", "last_boot"),)),
    ("Manufactured", (("hardware", "manufacture_date"),)),
    ("BIOS date", (("hardware", "bios_date"),)),
    ("CPU", (("hardware", "cpu_model"),)),
    ("Memory", (("hardware", "memory_bytes"),)),
    ("TPM", (("hardware", "tpm_version"),)),
    ("Secure boot", (("hardware", "secure_boot"),)),
    ("Pending security updates", (("patching", "security_updates"),)),
    ("Last patched", (("patching", "last_patched"),)),
    ("Reboot required", (("patching", "reboot_required"),)),
    ("Automatic updates", (("patching", "auto_updates"),)),
    ("Location", (("identity", "location"),)),
    ("Description", (("identity", "description"),)),
    ("Directory name", (("directory", "dn"),)),
    ("In the directory since", (("directory", "created"),)),
    ("Last logon (directory)", (("directory", "last_logon"),)),
    ("LAPS manages the admin password", (("directory", "laps_managed"),)),
    ("BitLocker recovery keys escrowed", (("directory", "bitlocker_keys"),)),
)
MAX_FACTS_JSON = 100_000  # characters of the stored facts shown raw; the rest is cut, saying so
# What the report folder may serve, and as what (anything else is not listed and answers 404).
REPORT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".pdf": "application/pdf",
    ".csv": "text/csv; charset=utf-8",
    ".json": "application/json",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".txt": "text/plain; charset=utf-8",
}
# A report opened in the browser: its own inline styles and images, no script, no form, no
# network, no framing; sandboxed as if it came from elsewhere (it cannot read the board).
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
              "base-uri 'none'; form-action 'none'; sandbox")
REPORT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")  # each part of a report's path
MAX_REPORT_DEPTH = 4


def protocol_words(probe: str | None, fallback: str) -> str:
    """ "ssh:linux-probe" -> "SSH (linux-probe)", "ldap:directory" -> "directory"; no probe
    recorded -> ``fallback``."""
    if not probe:
        return fallback
    proto, _, what = probe.partition(":")
    word = PROTOCOL_WORDS.get(proto, proto)
    return f"{word} ({what})" if what and what != word.lower() else word


def _shown(value: Any, attribute: str) -> str | None:
    if value in (None, "", [], {}):
        return None
    if attribute == "memory_bytes" and isinstance(value, int | float):
        return f"{value / 2**30:.1f} GiB"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def facts_with_sources(facts: DeviceFacts, observation: dict[str, Any], protocol: str | None) -> list[dict[str, str]]:
    """The facts a person reads first, each with where it came from and when: the probe that
    filled its section (``DeviceFacts.sources``), else the scan's source and the device's
    protocol; the time the device reported (``collected_at``), else when the scan reached it."""
    when = facts.collected_at or observation.get("started_at") or observation.get("as_of") or ""
    scanned = f"{PROTOCOL_WORDS.get(protocol or '', '')} scan".strip()
    fallback = (observation.get("source") or "scan").replace("scan", scanned)
    out = []
    for label, places in FACTS:
        for section, attribute in places:
            value = _shown(getattr(getattr(facts, section), attribute, None), attribute)
            if value is None:
                continue
            probe = facts.sources.get(section)
            if section == "directory":
                when_here = facts.directory.read_at or when
                source = protocol_words(probe or "ldap:directory", "directory")
            else:
                when_here, source = when, protocol_words(probe, fallback)
            out.append({"label": label, "value": value, "source": source,
                        "when": str(when_here)[:16].replace("T", " ")})
            break
    return out


def device_details(store: Store, device: dict[str, Any]) -> dict[str, Any]:
    """The device page's facts with their sources, the raw evidence stored with them, what the
    asset register and discovery sweeps say of it, and the facts' gaps (why a fact is unknown)."""
    row = store.latest_facts_row(int(device["id"]))
    out: dict[str, Any] = {"fact_rows": [], "evidence": [], "gaps": [], "facts_json": "", "facts_cut": False,
                           "facts_obs": row, "assets": store.device_assets(int(device["id"])),
                           "sightings": store.device_sightings(int(device["id"]))}
    if row is None:
        return out
    doc = json.loads(row["facts"])
    facts = DeviceFacts.from_dict(doc)
    out["fact_rows"] = facts_with_sources(facts, row, device.get("protocol"))
    out["evidence"] = sorted(facts.evidence.items())
    out["gaps"] = sorted(facts.gaps.items())
    text = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)
    out["facts_json"], out["facts_cut"] = text[:MAX_FACTS_JSON], len(text) > MAX_FACTS_JSON
    return out


def report_files(root: Path | None) -> list[dict[str, Any]]:
    """The report files under ``root`` (newest first): only regular files of ``REPORT_TYPES``
    with plain names (those ``report_path`` serves), none hidden, none reached through a link
    that leads outside ``root``."""
    if root is None or not root.is_dir():
        return []
    base = root.resolve()
    out = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if (len(rel.parts) > MAX_REPORT_DEPTH or path.suffix.lower() not in REPORT_TYPES
                or not all(REPORT_NAME.fullmatch(p) and ".." not in p for p in rel.parts)):
            continue  # hidden, another type, or a name report_path would refuse
        try:
            real = path.resolve(strict=True)
            st = real.stat()
        except OSError:
            continue
        if not real.is_relative_to(base) or not real.is_file():
            continue
        out.append({"path": rel.as_posix(), "folder": rel.parent.as_posix() if rel.parent.parts else "",
                    "name": path.name, "size": st.st_size, "kind": path.suffix.lower()[1:],
                    "modified": dt.datetime.fromtimestamp(st.st_mtime).strftime("%Y-%m-%d %H:%M")})
    out.sort(key=lambda f: (f["folder"], f["name"]), reverse=True)
    return out


def report_path(root: Path | None, rel: str) -> Path:
    """The file ``rel`` names under ``root``, or 404: every part a plain name (no "..", no
    hidden file, no separator tricks), a listed type, a regular file inside ``root`` once links
    are followed."""
    parts = rel.split("/")
    if root is None or not rel or len(parts) > MAX_REPORT_DEPTH or not all(REPORT_NAME.fullmatch(p) and ".." not in p
                                                           for p in parts):
        raise HTTPException(404, "there is no such report (see the list of reports)")
    path = root.joinpath(*parts)
    try:
        real = path.resolve(strict=True)
    except OSError:
        raise HTTPException(404, "there is no such report (see the list of reports)") from None
    if (not real.is_relative_to(root.resolve()) or not real.is_file()
            or path.suffix.lower() not in REPORT_TYPES):
        raise HTTPException(404, "there is no such report (see the list of reports)")
    return real


def routes(city: CityConfig, *, page: Callable[..., HTMLResponse], open_store: Callable[[], Store],
           clock: Callable[[], dt.date], reports_dir: Path | None) -> list[Route]:
    """The pages of this module, for ``reports.board.create_app``."""

    def worklist_page(request: Request) -> Response:
        from reports.worklist import build_worklist

        f = parse_filters(request.query_params)
        if "sort" in request.query_params or "order" in request.query_params:
            raise BadFilter("the worklist is in risk order (riskiest device first); it takes no sort")
        as_of = clock()
        store = open_store()
        try:
            rows = device_rows(store, as_of)
            wl = build_worklist(city, store, as_of=as_of)
        finally:
            store.close()
        wanted = {r["id"] for r in apply_filters(rows, f)}
        shown = [d for d in wl.devices if d.device_id in wanted]
        pages = max(1, -(-len(shown) // f.per_page))
        if f.page > pages:
            raise HTTPException(404, f"page {f.page} is past the last page ({pages}) of this view")
        start = (f.page - 1) * f.per_page
        filtered = any((f.department, f.kind, f.os, f.source, f.status, f.severity, f.age, f.lifecycle, f.q))
        return page("board_worklist.html.j2", nav="worklist", f=f, wl=wl, devices=shown[start:start + f.per_page],
                    total=len(shown), findings=sum(len(d.items) for d in shown), all_total=len(wl.devices),
                    pages=pages, page_sizes=PAGE_SIZES, filtered=filtered, rows=rows,
                    severities=SEVERITIES[::-1], ages=AGE_CHOICES, lifecycles=LIFECYCLES)

    def reports_page(request: Request) -> Response:
        if request.query_params:
            raise BadFilter("this page takes no query parameters")
        return page("board_reports.html.j2", nav="reports", files=report_files(reports_dir), folder=reports_dir)

    def report_file(request: Request) -> Response:
        if request.query_params:
            raise BadFilter("this page takes no query parameters")
        if request.path_params["how"] not in ("open", "download"):
            raise HTTPException(404, "there is no such page")
        path = report_path(reports_dir, request.path_params["path"])
        media = REPORT_TYPES[path.suffix.lower()]
        if request.path_params["how"] == "download":
            return FileResponse(path, media_type=media, filename=path.name)
        headers = {"content-security-policy": REPORT_CSP}
        return FileResponse(path, media_type=media, headers=headers,
                            content_disposition_type="inline", filename=path.name)

    def discovery_page(request: Request) -> Response:
        known = {"run", "show", "page", "per_page"}
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise BadFilter(f"unknown filter {unknown[0]!r} (the filters are: {', '.join(sorted(known))})")
        params = request.query_params
        run_text = params.get("run", "")
        if run_text and not re.fullmatch(r"[0-9]{1,9}", run_text):
            raise BadFilter("run must be a sweep number (see the list of sweeps)")
        show = params.get("show", "")
        if show not in ("", "managed", "unmanaged"):
            raise BadFilter("show must be managed or unmanaged")
        probe = parse_filters({k: v for k, v in params.items() if k in ("page", "per_page")})
        store = open_store()
        try:
            runs = store.discoveries(limit=50)
            run = next((r for r in runs if str(r["id"]) == run_text), None) if run_text else (runs[0] if runs else None)
            if run_text and run is None:
                raise HTTPException(404, f"there is no sweep {run_text} among the last 50 (see the list of sweeps)")
            sightings = store.sightings(int(run["id"])) if run else []
        finally:
            store.close()
        if show:
            sightings = [s for s in sightings if s["managed"] == (show == "managed")]
        pages = max(1, -(-len(sightings) // probe.per_page))
        if probe.page > pages:
            raise HTTPException(404, f"page {probe.page} is past the last page ({pages}) of this view")
        start = (probe.page - 1) * probe.per_page
        for r in runs:
            try:
                r["ranges_text"] = ", ".join(json.loads(r["ranges"] or "[]"))
            except (TypeError, ValueError):
                r["ranges_text"] = str(r["ranges"] or "")
        return page("board_discovery.html.j2", nav="discovery", runs=runs, run=run, show=show,
                    sightings=sightings[start:start + probe.per_page], total=len(sightings), page_no=probe.page,
                    pages=pages, per_page=probe.per_page, max_page=MAX_PAGE_SIZE)

    return [
        Route("/worklist", worklist_page, methods=["GET"]),
        Route("/reports", reports_page, methods=["GET"]),
        Route("/reports/{how:str}/{path:path}", report_file, methods=["GET"]),
        Route("/discovery", discovery_page, methods=["GET"]),
    ]

