"""The status board as served: one city, or an MSP's cities, behind login, TLS or a proxy.

``create_board`` wraps the city board (reports/board.py) for ``itaudit serve`` and the agent:

- **One city** is served at ``/`` as reports/board.py builds it.
- **Several cities** (an MSP's config, the one ``itaudit central ingest`` fills): each city
  at ``/city/<id>/…`` (its own board, its links carrying the prefix), and at ``/`` the
  cities the viewer may see, with their last scan and a scan under way.
- **Login** (reports/board_auth.py) whenever the board is reachable from other machines
  (``BoardConfig.login_required``): a user sees only the cities ``[board.users.NAME]``
  lists (403 for another), an admin sees all.
- **A reverse proxy** (``board.trusted_proxies``): only those addresses may connect (unless
  the board also serves TLS itself), their ``X-Forwarded-For`` names the client (for the
  attempt limits) and ``X-Forwarded-Proto`` must say https; nobody else's headers are believed.
- ``Strict-Transport-Security`` whenever the browser reaches the board over HTTPS.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import secrets
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from itaudit.board_config import BoardConfig
from itaudit.config import CityConfig
from itaudit.errors import ItauditError
from itaudit.store import Store
from reports.board import LOOPBACK_NAMES, SECURITY_HEADERS, _SecurityHeaders, _stylesheet, create_app
from reports.board_auth import COOKIE, Auth, Gate, board_globals, viewer
from reports.render import environment

HSTS = "max-age=31536000"
CITY_PREFIX = "/city/"


def city_of_path(path: str) -> str | None:
    """The city a path of the MSP board belongs to: "/city/springfield/devices" -> "springfield"."""
    if not path.startswith(CITY_PREFIX):
        return None
    return path[len(CITY_PREFIX):].split("/", 1)[0] or None


def create_board(cities: list[CityConfig], board: BoardConfig | None = None, *, host: str = "127.0.0.1",
                 title: str = "itaudit", secret_key: str | None = None,
                 today: Callable[[], dt.date] | None = None, data_dir: Path | None = None) -> Starlette:
    """The served board for ``cities`` (one: that city at /; several: one section per city).
    ``host``: the address it is bound to; ``secret_key`` signs session cookies (default: a
    random key of this process, which sessions do not outlive anyway); ``data_dir``: the
    settings' data folder, whose ``<city>/reports`` the Reports page lists (None: none)."""
    board = board or BoardConfig()
    names = tuple(sorted({*LOOPBACK_NAMES, host.lower(), *board.names}))
    login = board.login_required(host)
    msp = len(cities) > 1
    routes: list[BaseRoute] = []

    def reports(city: CityConfig) -> Path | None:
        return data_dir / city.id / "reports" if data_dir is not None else None

    city_of: Callable[[str], str | None]
    if msp:
        by_id = {c.id: c for c in cities}
        env = environment()
        board_globals(env)
        css = _stylesheet()
        routes += [
            Route("/", lambda request: _portfolio(env, title, by_id), methods=["GET"]),
            Route("/static/board.css", lambda request: Response(css, media_type="text/css; charset=utf-8"),
                  methods=["GET"]),
            Route("/favicon.ico", lambda request: Response(status_code=204), methods=["GET"]),
        ]
        apps = [create_app(c, today=today, hosts=names, prefix=f"{CITY_PREFIX}{c.id}", reports_dir=reports(c))
                for c in cities]
        routes += [Mount(f"{CITY_PREFIX}{c.id}", app=a) for c, a in zip(cities, apps, strict=True)]
        city_of = city_of_path
        shown_title = title
    else:
        only = cities[0]
        apps = [create_app(only, today=today, hosts=names, reports_dir=reports(only))]
        routes.append(Mount("", app=apps[0]))
        city_of = lambda path: only.id  # noqa: E731 - every page is this city's
        shown_title = only.name
    middleware = [Middleware(_SecurityHeaders, hosts=names)]
    if board.tls or board.trusted_proxies:
        middleware.append(Middleware(_Hsts))
    if board.trusted_proxies:
        middleware.append(Middleware(ProxyGuard, proxies=board.trusted_proxies, tls=board.tls))
    if login:
        auth = Auth(board.users, title=shown_title, session_seconds=board.session_hours * 3600)
        routes = auth.routes() + routes
        middleware += [
            Middleware(SessionMiddleware, secret_key=secret_key or secrets.token_urlsafe(48), session_cookie=COOKIE,
                       max_age=int(board.session_hours * 3600), same_site="strict", https_only=True),
            Middleware(Gate, auth=auth, city_of=city_of),
        ]
    env_err = environment()
    board_globals(env_err)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        html = env_err.get_template("board_error.html.j2").render(
            city=SimpleNamespace(name=shown_title), nav="", code=exc.status_code, bare=True,
            message=exc.detail if exc.status_code != 404 else "That page does not exist.")
        return HTMLResponse(html, status_code=exc.status_code)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # A mounted app's own start-up does not run: each city's figures are built from here,
        # before the server takes its first request (the cities side by side).
        threads = [threading.Thread(target=a.state.warm_up, daemon=True, name="board-warm-up") for a in apps]
        for t in threads:
            t.start()
        for t in threads:
            await anyio.to_thread.run_sync(t.join)
        yield

    return Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: on_http_error},
                     lifespan=lifespan)


def _portfolio(env: Any, title: str, by_id: dict[str, CityConfig]) -> Response:
    """The cities this viewer may see, each with its last scan, a scan under way, its devices."""
    who = viewer()
    rows = []
    for city in sorted(by_id.values(), key=lambda c: c.name.lower()):
        if who is not None and not who.user.may_see(city.id):
            continue
        row: dict[str, Any] = {"id": city.id, "name": city.name, "problem": None}
        try:
            store = Store(city.database, readonly=True)
        except ItauditError as exc:
            row["problem"] = str(exc)
        else:
            try:
                row.update(last=store.latest_scan(), running=store.running_scans(),
                           devices=len(store.board_devices()))
            except sqlite3.Error:
                row["problem"] = "busy or unreadable right now (a scan may be writing to it); try again in a moment"
            finally:
                store.close()
        rows.append(row)
    html = env.get_template("board_portfolio.html.j2").render(
        city=SimpleNamespace(name=title), nav="", rows=rows, bare=True)
    return HTMLResponse(html)


class _Hsts:
    """Tells the browser to use HTTPS for this host from now on (sent only when it is served so)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start" and scope.get("scheme") == "https":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"strict-transport-security", HSTS.encode())]}
            await send(message)

        await self.app(scope, receive, wrapped if scope["type"] == "http" else send)


class ProxyGuard:
    """Behind a declared reverse proxy: refuse anyone but the proxy (unless TLS is served here
    too), believe ``X-Forwarded-For``/``-Proto`` from the proxy only (uvicorn's own middleware,
    given exactly those addresses), and refuse what the proxy says arrived over plain HTTP."""

    def __init__(self, app: ASGIApp, proxies: tuple[str, ...], tls: bool) -> None:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        self.nets = [ipaddress.ip_network(p, strict=False) for p in proxies]
        self.tls = tls
        self.app = app
        self.behind: Any = ProxyHeadersMiddleware(self._after_proxy, trusted_hosts=list(proxies))  # type: ignore[arg-type]

    def _from_proxy(self, scope: Scope) -> bool:
        client = scope.get("client")
        try:
            address = ipaddress.ip_address(str(client[0])) if client else None
        except ValueError:
            return False
        return address is not None and any(address in net for net in self.nets)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._from_proxy(scope):
            await self.behind(scope, receive, send)
        elif self.tls and scope.get("scheme") == "https":
            await self.app(scope, receive, send)
        else:
            await _refuse(scope, receive, send, "This board is served through its reverse proxy: open it by the "
                                                "proxy's address.")

    async def _after_proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("scheme") != "https":
            await _refuse(scope, receive, send, "The reverse proxy must serve this board over HTTPS and say so "
                                                "(X-Forwarded-Proto: https).")
            return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, text: str) -> None:
    await PlainTextResponse(text, status_code=403, headers=dict(SECURITY_HEADERS))(scope, receive, send)
