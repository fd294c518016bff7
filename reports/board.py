"""The live status board: a read-only web view of one city's store.

A Starlette application rendered with the reports' Jinja2 environment (autoescape on, the
same filters, score ring and sparklines) and the monthly summary's model
(``reports.model.build_monthly``): the board shows the report's figures, it never works
them out a second time. Every request opens the store read-only and closes it; nothing
changes state on any request, and only GET (and HEAD) is routed.

Security headers on every response: a CSP without inline script or style (the reports'
shared stylesheet is served as a file), frame denial, nosniff, no referrer. The command
(``itaudit serve``, in ``itaudit/board_cli.py``) serves it through reports/board_sites.py,
which adds the login (reports/board_auth.py), TLS or a reverse proxy, and an MSP's cities.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from itaudit import rules
from itaudit.config import CityConfig
from itaudit.errors import ItauditError
from itaudit.knowledge import STATUSES as LIFECYCLES
from itaudit.model import Severity
from itaudit.store import Store
from reports.board_auth import board_globals
from reports.common import data_dates, data_warnings, device_label, parse_day
from reports.export import safe_cell
from reports.render import TEMPLATES, environment

SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}
PAGE_SIZES = (25, 50, 100, 200, 500)
MAX_PAGE_SIZE = PAGE_SIZES[-1]
MAX_TEXT = 200  # longest free-text filter accepted
STATUSES = ("ok", "partial", "error", "retired")
SOURCES = ("scanned", "directory", "register", "discovered")
SEVERITIES = tuple(s.value for s in sorted(Severity, key=lambda s: s.rank))
SORTS = {  # column -> what it sorts on
    "name": lambda r: r["label"].lower(),
    "address": lambda r: tuple(int(p) if p.isdigit() else 0 for p in (r["address"] or "").split(".")),
    "department": lambda r: (r["department"] or "").lower(),
    "kind": lambda r: r["kind"] or "",
    "os": lambda r: (r["os_name"] or "").lower(),
    "status": lambda r: r["status"],
    "findings": lambda r: r["open_findings"],
    "severity": lambda r: Severity(r["worst"]).rank if r["worst"] in SEVERITIES else -1,
    "last_seen": lambda r: r["last_seen"] or "",
    "age": lambda r: r["age"] if r["age"] is not None else 0.0,  # unknown ages go last (apply_filters)
}
CSV_HEADER = ["id", "device", "address", "department", "kind", "os", "status", "open findings",
              "worst severity", "last checked", "last seen", "known from", "age (years)", "age counted from",
              "lifecycle"]
# The age filter: "unknown", "N+" (at least N years old) or "N-M" (at least N, under M), whole years.
AGE_FILTER = re.compile(r"unknown|([0-9]{1,2})\+|([0-9]{1,2})-([0-9]{1,2})")
AGE_CHOICES = (("0-3", "under 3 years"), ("3-5", "3 to 5 years"), ("5-7", "5 to 7 years"), ("7+", "7 years or more"),
               ("unknown", "unknown"))
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
REFRESH_SECONDS = 15  # the status page reloads itself this often while a scan is running
UPDATING_SECONDS = 2  # ... and this often while newer figures are being built
BUILD_WAIT_SECONDS = 120  # the first view waits this long at most for the figures being built


class BadFilter(Exception):
    """A query parameter the board does not accept (answered with 400 and the reason)."""


@dataclass
class Filters:
    department: str = ""
    kind: str = ""
    os: str = ""
    source: str = ""
    status: str = ""
    severity: str = ""  # at least this bad
    age: str = ""  # AGE_FILTER
    lifecycle: str = ""  # one of knowledge.STATUSES
    q: str = ""
    sort: str = "name"
    desc: bool = False
    page: int = 1
    per_page: int = 50

    def query(self, **change: Any) -> str:
        """This view's query string, with ``change`` applied (for links: sort, page)."""
        from urllib.parse import urlencode

        values = {**self.__dict__, **change}
        pairs = [(k, v) for k, v in (
            ("department", values["department"]), ("kind", values["kind"]), ("os", values["os"]),
            ("source", values["source"]), ("status", values["status"]),
            ("severity", values["severity"]), ("age", values["age"]), ("lifecycle", values["lifecycle"]),
            ("q", values["q"]), ("sort", values["sort"] if values["sort"] != "name" else ""),
            ("order", "desc" if values["desc"] else ""), ("page", values["page"] if values["page"] != 1 else ""),
            ("per_page", values["per_page"] if values["per_page"] != 50 else "")) if v != ""]
        return urlencode(pairs)


def parse_filters(params: Any) -> Filters:
    """The device list's filters from GET parameters, or ``BadFilter`` saying which one is wrong."""
    known = {"department", "kind", "os", "source", "status", "severity", "age", "lifecycle", "q", "sort", "order",
             "page", "per_page"}
    unknown = sorted(set(params.keys()) - known)
    if unknown:
        raise BadFilter(f"unknown filter {unknown[0]!r} (the filters are: {', '.join(sorted(known))})")
    f = Filters()
    for name in ("department", "kind", "os", "q"):
        value = params.get(name, "").strip()
        if len(value) > MAX_TEXT:
            raise BadFilter(f"{name} is longer than {MAX_TEXT} characters")
        setattr(f, name, value)
    f.source = params.get("source", "")
    if f.source and f.source not in SOURCES:
        raise BadFilter(f"source must be one of {', '.join(SOURCES)}")
    f.status = params.get("status", "")
    if f.status and f.status not in STATUSES:
        raise BadFilter(f"status must be one of {', '.join(STATUSES)}")
    f.severity = params.get("severity", "")
    if f.severity and f.severity not in SEVERITIES:
        raise BadFilter(f"severity must be one of {', '.join(SEVERITIES)}")
    f.age = params.get("age", "")
    if f.age and not AGE_FILTER.fullmatch(f.age):
        raise BadFilter("age must be unknown, N+ (at least N years old) or N-M (at least N, under M years), "
                        "in whole years under 100")
    low_high = AGE_FILTER.fullmatch(f.age)
    if low_high and low_high.group(2) is not None and int(low_high.group(2)) >= int(low_high.group(3)):
        raise BadFilter("age N-M needs N below M")
    f.lifecycle = params.get("lifecycle", "")
    if f.lifecycle and f.lifecycle not in LIFECYCLES:
        raise BadFilter(f"lifecycle must be one of {', '.join(LIFECYCLES)}")
    f.sort = params.get("sort", "name") or "name"
    if f.sort not in SORTS:
        raise BadFilter(f"sort must be one of {', '.join(SORTS)}")
    order = params.get("order", "")
    if order not in ("", "asc", "desc"):
        raise BadFilter("order must be asc or desc")
    f.desc = order == "desc"
    f.page = _int(params.get("page", ""), "page", 1, 1_000_000, 1)
    f.per_page = _int(params.get("per_page", ""), "per_page", 1, MAX_PAGE_SIZE, 50)
    return f


def _int(text: str, name: str, low: int, high: int, default: int) -> int:
    if text == "":
        return default
    if not re.fullmatch(r"[0-9]{1,9}", text):
        raise BadFilter(f"{name} must be a whole number")
    value = int(text)
    if not low <= value <= high:
        raise BadFilter(f"{name} must be between {low} and {high}")
    return value


def device_rows(store: Store, as_of: dt.date) -> list[dict[str, Any]]:
    """The device list's rows: the store's devices with a label, a status word, an age on
    ``as_of`` (``rules.age_basis`` and ``rules.age_years``, the refresh plan's and HW-001's
    rules; None when unknown) and a lifecycle word (``lifecycle_of``)."""
    rows = store.board_devices()
    extras = store.board_device_extras()
    for r in rows:
        r["label"] = device_label(r)
        r["status"] = "retired" if r["retired_at"] else (r["last_status"] or "unknown")
        x = extras.get(r["id"], {})
        found = rules.age_basis(x.get("purchase_date"), *(x.get("age_dates") or (None, None, None)))
        r["age"] = rules.age_years(found[0], as_of) if found else None
        r["age_basis"] = found[1] if found else ""
        r["lifecycle"] = lifecycle_of(x.get("eol_open", set()), x.get("eol_verdict"))
    return rows


def lifecycle_of(eol_open: set[str], eol_verdict: str | None) -> str:
    """A device's software lifecycle in ``knowledge.STATUSES`` words, from the lifecycle checks'
    own verdicts (never judged a second time): an open EOL-001 finding is "eol", EOL-003
    "extended", EOL-002 "ending_soon"; EOL-001 passed in its last scan is "supported"; else
    "unknown" (never checked, or its software not in the lifecycle tables)."""
    for check_id, word in (("EOL-001", "eol"), ("EOL-003", "extended"), ("EOL-002", "ending_soon")):
        if check_id in eol_open:
            return word
    return "supported" if eol_verdict == "pass" else "unknown"


def _age_matches(age: float | None, wanted: str) -> bool:
    if wanted == "unknown":
        return age is None
    if age is None:
        return False
    m = AGE_FILTER.fullmatch(wanted)
    assert m is not None  # parse_filters accepted it
    if m.group(1) is not None:
        return age >= int(m.group(1))
    return int(m.group(2)) <= age < int(m.group(3))


def apply_filters(rows: list[dict[str, Any]], f: Filters) -> list[dict[str, Any]]:
    """The rows this view shows, sorted (the CSV gets the same rows, every page of them)."""
    needle = f.q.lower()
    floor = Severity(f.severity).rank if f.severity else None
    out = []
    for r in rows:
        if f.department and (r["department"] or "") != f.department:
            continue
        if f.kind and (r["kind"] or "") != f.kind:
            continue
        if f.os and (r["os_name"] or "") != f.os:
            continue
        if f.source and f.source not in r["sources"]:
            continue
        if f.status and r["status"] != f.status:
            continue
        if floor is not None and (r["worst"] not in SEVERITIES or Severity(r["worst"]).rank < floor):
            continue
        if f.age and not _age_matches(r["age"], f.age):
            continue
        if f.lifecycle and r["lifecycle"] != f.lifecycle:
            continue
        if needle and not any(needle in str(r[k] or "").lower()
                              for k in ("label", "hostname", "address", "os_name", "serial", "model", "vendor")):
            continue
        out.append(r)
    out.sort(key=SORTS[f.sort], reverse=f.desc)
    if f.sort == "age":  # unknown ages last, whichever the order
        out = [r for r in out if r["age"] is not None] + [r for r in out if r["age"] is None]
    return out


def _stylesheet() -> str:
    """The reports' shared styles (from base.html.j2, one source) and the board's own, as one file."""
    base = (TEMPLATES / "base.html.j2").read_text(encoding="utf-8")
    start = base.index("<style>") + len("<style>")
    end = base.index("{% block style %}")
    return base[start:end] + (TEMPLATES / "board.css").read_text(encoding="utf-8")


def create_app(city: CityConfig, *, today: Callable[[], dt.date] | None = None,
               hosts: tuple[str, ...] = LOOPBACK_NAMES, reports_dir: Path | None = None,
               prefix: str = "") -> Starlette:
    """The board for ``city``. ``today`` gives the date the figures are as of (default: the
    local date; tests pin it to the generated city's month). ``hosts``: the names a request's
    Host header may carry (the rest get 400: a web page elsewhere that rebinds its own name to
    127.0.0.1 cannot read the board). ``reports_dir``: the folder of the city's generated
    reports, listed on the Reports page (None: no folder, an empty list). ``prefix``: the path
    the app is mounted at (an MSP's board serves each city under ``/city/<id>``,
    reports/board_sites.py); its links carry it."""
    from reports import board_pages

    env = environment()
    board_globals(env)
    css = _stylesheet()
    clock = today or dt.date.today

    def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(template).render(city=city, nav=context.pop("nav", ""), root=prefix, **context)
        return HTMLResponse(html, status_code=status_code)

    def open_store() -> Store:
        return Store(city.database, readonly=True)

    # The month's model takes about a second of CPU for a city of 5,000 devices with two years of
    # history: it is kept until something it reads can have changed (see ``_monthly_key``), so a
    # page reloading during a scan costs reads only. When it has changed, the page shows the
    # figures it has, marked as being updated, and the new ones are built once in the
    # background (their own read-only store); the page reloads itself until they are in. The
    # board's start builds them before it takes a request (``warm_up``); a view that still finds
    # none (a board mounted without its start-up, a failed build) waits for one.
    memo: dict[str, Any] = {}
    memo_lock = threading.Lock()

    def build(as_of: dt.date, last: Any) -> tuple[Any, str]:
        from reports.model import build_monthly

        store = open_store()
        try:
            rep = build_monthly(city, store, as_of=as_of, council=False)  # the board shows no council page
            month_note = ""
            if not rep.has_data and last is not None and last.as_of[:7] < as_of.strftime("%Y-%m"):
                # Early in a month before its scan: the figures of the last scanned month, said so.
                month_note = f"{rep.headline} The figures below are those of the last scanned month."
                rep = build_monthly(city, store, as_of=as_of, month=last.as_of[:7], council=False)
        finally:
            store.close()
        return rep, month_note

    def refresh(key: tuple[Any, ...], as_of: dt.date, last: Any, done: threading.Event) -> None:
        try:
            value = build(as_of, last)
        except Exception:  # noqa: BLE001 - the next view builds in the foreground and shows the error page
            with memo_lock:
                memo.clear()
            done.set()
            return
        with memo_lock:
            memo.update(key=key, value=value)
            memo.pop("building", None)
        done.set()

    def start_build(key: tuple[Any, ...], as_of: dt.date, last: Any) -> threading.Event:
        """Build the figures for ``key`` in the background (once); call with ``memo_lock`` held."""
        if memo.get("building") != key:
            memo.update(building=key, done=threading.Event())
            threading.Thread(target=refresh, args=(key, as_of, last, memo["done"]), daemon=True,
                             name="board-month").start()
        return memo["done"]

    def monthly(store: Store, as_of: dt.date, last: Any, running: bool) -> tuple[Any, str, bool]:
        """The month's model and its note, and whether newer figures are being built."""
        key = _monthly_key(store, as_of, running)
        with memo_lock:
            if memo.get("key") == key:
                return (*memo["value"], False)
            done = start_build(key, as_of, last)
            if "value" in memo:
                return (*memo["value"], True)
        done.wait(BUILD_WAIT_SECONDS)  # nothing to show yet: the first view waits for the build
        with memo_lock:
            if memo.get("key") == key:
                return (*memo["value"], False)
        value = build(as_of, last)  # the build failed (or took too long): here, so its error shows
        with memo_lock:
            memo.update(key=key, value=value)
        return (*value, False)

    def warm_up() -> None:
        """Build the month's figures and wait for them (at most ``BUILD_WAIT_SECONDS``): the
        board runs this before it takes its first request, so no view waits for a build."""
        try:
            store = open_store()
        except Exception:  # noqa: BLE001 - the first view shows the database's problem
            return
        try:
            as_of = clock()
            key = _monthly_key(store, as_of, bool(store.running_scans()))
            last = store.latest_scan()
        except Exception:  # noqa: BLE001 - likewise
            return
        finally:
            store.close()
        with memo_lock:
            done = start_build(key, as_of, last)
        done.wait(BUILD_WAIT_SECONDS)

    def status_page(request: Request) -> Response:
        _no_params(request)
        store = open_store()
        try:
            as_of = clock()
            running = [(s, *store.scan_progress(s.id)) for s in store.running_scans()]
            last = store.latest_scan()
            rep, month_note, updating = monthly(store, as_of, last, bool(running))
            n_devices = store.device_count()
        finally:
            store.close()
        # Ages on today's date (the report's month may be an earlier one): the reports' own rule.
        ages = {name: _age_days(day, as_of) for name, day in rep.data_dates.items()}
        warnings = data_warnings(city, as_of)
        return page("board_status.html.j2", nav="status", r=rep, running=running, last=last, ages=ages,
                    n_devices=n_devices, month_note=month_note, warnings=warnings, updating=updating,
                    run_refresh=REFRESH_SECONDS, today=as_of.isoformat(),
                    refresh=UPDATING_SECONDS if updating else REFRESH_SECONDS if running else None)

    def devices_page(request: Request) -> Response:
        f = _filters(request)
        store = open_store()
        try:
            rows = device_rows(store, clock())
        finally:
            store.close()
        shown = apply_filters(rows, f)
        pages = max(1, -(-len(shown) // f.per_page))
        if f.page > pages:
            raise HTTPException(404, f"page {f.page} is past the last page ({pages}) of this view")
        start = (f.page - 1) * f.per_page
        return page("board_devices.html.j2", nav="devices", f=f, rows=shown[start:start + f.per_page],
                    total=len(shown), all_total=len(rows), pages=pages, page_sizes=PAGE_SIZES,
                    departments=sorted({r["department"] for r in rows if r["department"]}),
                    kinds=sorted({r["kind"] for r in rows if r["kind"]}), statuses=STATUSES,
                    systems=sorted({r["os_name"] for r in rows if r["os_name"]}), sources=SOURCES,
                    severities=SEVERITIES[::-1], sorts=list(SORTS), ages=AGE_CHOICES, lifecycles=LIFECYCLES)

    def devices_csv(request: Request) -> Response:
        f = _filters(request)
        store = open_store()
        try:
            shown = apply_filters(device_rows(store, clock()), f)
        finally:
            store.close()
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(CSV_HEADER)
        for r in shown:
            w.writerow([safe_cell(v) for v in (
                r["id"], r["label"], r["address"], r["department"], r["kind"], r["os_name"], r["status"],
                r["open_findings"], r["worst"] or "", (r["last_success"] or "")[:10], (r["last_seen"] or "")[:10],
                " ".join(r["sources"]), "" if r["age"] is None else f"{r['age']:.1f}", r["age_basis"],
                r["lifecycle"])])
        name = f"{city.id}-devices-{clock().isoformat()}.csv"
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="{name}"'})

    def device_page(request: Request) -> Response:
        _no_params(request)
        raw = request.path_params["device_id"]
        if not re.fullmatch(r"[0-9]{1,12}", raw):
            raise HTTPException(404, "a device id is a number (see the device list)")
        store = open_store()
        try:
            dev = store.device_by_id(int(raw))
            if dev is None:
                raise HTTPException(404, f"there is no device {raw} in {city.name} (see the device list)")
            details = board_pages.device_details(store, dev)
            findings = store.device_findings(dev["id"])
            checks = store.device_observations(dev["id"])
            from reports.plan import build_plan

            plan = build_plan(city, store, as_of=clock())
        finally:
            store.close()
        item = next((i for i in plan.items if i.device_id == dev["id"]), None)
        latest = details["facts_obs"]
        facts_from = next((o for o in checks if latest and o["scan_id"] == latest["scan_id"]), None)
        return page("board_device.html.j2", nav="devices", d=dev, label=device_label(dev), **details,
                    checks=checks, facts_from=facts_from,
                    facts_scan=latest["scan_id"] if latest else None, findings=findings,
                    open_n=sum(1 for x in findings if x["resolved_at"] is None), plan_item=item,
                    age_unknown=any(name == device_label(dev) for name, _ in plan.unknown_age))

    def stylesheet(request: Request) -> Response:
        return Response(css, media_type="text/css; charset=utf-8")

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return page("board_error.html.j2", status_code=exc.status_code, code=exc.status_code,
                    message=exc.detail or "That page does not exist.")

    async def on_bad_filter(request: Request, exc: Exception) -> Response:
        return page("board_error.html.j2", status_code=400, code=400, message=str(exc))

    async def on_store_error(request: Request, exc: Exception) -> Response:
        # A missing database, one from a newer itaudit, one locked past the wait: the store's own words.
        return page("board_error.html.j2", status_code=503, code=503,
                    message=f"The city's database cannot be read right now: {exc}")

    async def on_busy(request: Request, exc: Exception) -> Response:
        # Locked past the store's wait (a scan writing), or a read error of SQLite itself.
        return page("board_error.html.j2", status_code=503, code=503,
                    message="The city's database is busy or could not be read (a scan may be writing to it): "
                            "try again in a moment.")

    async def on_crash(request: Request, exc: Exception) -> Response:
        # Never a traceback in the browser: a plain page; the details go to the server's log.
        return page("board_error.html.j2", status_code=500, code=500,
                    message="The board could not show this page (the details are in the server's log).")

    routes = [
        Route("/", status_page, methods=["GET"]),
        Route("/devices", devices_page, methods=["GET"]),
        Route("/devices.csv", devices_csv, methods=["GET"]),
        Route("/devices/{device_id}", device_page, methods=["GET"]),
        *board_pages.routes(city, page=page, open_store=open_store, clock=clock, reports_dir=reports_dir),
        Route("/static/board.css", stylesheet, methods=["GET"]),
        Route("/favicon.ico", lambda request: Response(status_code=204), methods=["GET"]),  # no icon, no 404
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(warm_up)  # the server takes requests once the figures are built
        yield

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(_SecurityHeaders, hosts=hosts)],
        exception_handlers={HTTPException: on_http_error, BadFilter: on_bad_filter, ItauditError: on_store_error,
                            sqlite3.Error: on_busy, Exception: on_crash},
    )
    app.state.warm_up = warm_up  # for a board that mounts this app (reports/board_sites.py)
    return app


def _monthly_key(store: Store, as_of: dt.date, running: bool) -> tuple[Any, ...]:
    """What the month's model depends on: the date, the reference data's dates, the finished
    scans, and (when no scan is running) the database files' size and time, which any write
    (a retirement, a data update's re-evaluation) changes. While a scan runs its own writes
    change the files every second, but the model reads finished scans only: the key then
    leaves the files out, and the figures are recomputed when the scan finishes."""
    scans = tuple((s.id, s.status, s.finished_at) for s in store.report_scans())
    files: tuple[Any, ...] = ()
    if not running:
        for path in (store.path, store.path.with_name(store.path.name + "-wal")):
            try:
                st = path.stat()
                files += (st.st_size, st.st_mtime_ns)
            except OSError:
                files += (None,)
    return as_of, tuple(sorted(data_dates().items())), scans, files


def _filters(request: Request) -> Filters:
    return parse_filters(request.query_params)


def _no_params(request: Request) -> None:
    if request.query_params:
        raise BadFilter("this page takes no query parameters")


def _age_days(day: str, as_of: dt.date) -> int | None:
    parsed = parse_day(day)
    return None if parsed is None else (as_of - parsed).days


def host_name(header: str) -> str:
    """The name part of a Host header: "127.0.0.1:8765" -> "127.0.0.1", "[::1]:8765" -> "::1"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else ""
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class _SecurityHeaders:
    """Refuses a request whose Host is not one of ``hosts`` (DNS rebinding), and adds the
    security headers to every response (errors included)."""

    def __init__(self, app: ASGIApp, hosts: tuple[str, ...] = LOOPBACK_NAMES) -> None:
        self.app = app
        self.hosts = {h.lower().strip("[]") for h in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), "")
        if host_name(host) not in self.hosts:
            refused = PlainTextResponse(
                "This board answers only to the names it was started for (for example 127.0.0.1); "
                "open it by that address.", status_code=400,
                headers={k: v for k, v in SECURITY_HEADERS.items()})
            await refused(scope, receive, send)
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A response may carry its own, stricter policy (a report file: sandboxed, no script).
                own_csp = [(k, v) for k, v in message.get("headers", [])
                           if k.decode("latin-1").lower() == "content-security-policy"][:1]
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.decode("latin-1").lower() not in SECURITY_HEADERS]
                headers += own_csp + [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
                                      if not (own_csp and k == "content-security-policy")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, wrapped)
