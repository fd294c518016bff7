"""Login for the status board when it is reachable from other machines (docs/board.md).

- Users and their Argon2id password hashes come from ``[board.users]`` (argon2-cffi
  verifies them; an unknown name is checked against a dummy hash, so both take as long).
- A session is a random id kept in this process (``Sessions``): logout ends it for good, a
  restart ends them all. The browser holds it in a cookie signed with the board's key
  (Starlette's ``SessionMiddleware``, itsdangerous), named ``__Host-…`` and sent with
  ``Secure; HttpOnly; SameSite=Strict``.
- The login form carries a CSRF token tied to the session; logging in gives a new session
  (no fixation) and a new token, which the logout form carries. POST is answered on
  ``/login`` and ``/logout`` only, and changes only the session: the board still writes
  nothing to the database.
- Failed attempts are limited per client address and per configured user name: past the
  limit the form answers 429 without checking the password until the window has passed.
- Who may see which city: ``BoardUser.may_see``; the gate answers 403 for a city's pages
  the user may not see (the MSP board, reports/board_sites.py, routes ``/city/<id>/…``).

Log lines name the configured user and the client address, never a password, a hash, a
cookie or the key; a name that is not a configured user is logged as "an unknown user".
"""

from __future__ import annotations

import contextvars
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from itaudit.board_config import BoardUser
from reports.render import environment

log = logging.getLogger("itaudit.board")

COOKIE = "__Host-itaudit-board"  # __Host-: Secure, path /, no Domain, or the browser refuses it
CLIENT_LIMIT = 10  # failed attempts per client address ...
USER_LIMIT = 5  # ... and per user name ...
WINDOW = 15 * 60  # ... in this many seconds
MAX_FORM = 4096  # bytes of a login form
OPEN_PATHS = ("/login", "/static/board.css", "/favicon.ico")

_viewer: contextvars.ContextVar[Viewer | None] = contextvars.ContextVar("board_viewer", default=None)


@dataclass(frozen=True)
class Viewer:
    """The logged-in user of this request (templates show the name and the logout form)."""

    name: str
    csrf: str
    user: BoardUser


def viewer() -> Viewer | None:
    """The logged-in user of the request being answered, if any (a Jinja global of the board)."""
    return _viewer.get()


def board_globals(env: Any) -> None:
    """The names every board template may use: ``root`` (the path prefix of a city's pages;
    each render of a city's page passes its own) and ``board_viewer``."""
    env.globals.update(root="", board_viewer=viewer)


class Attempts:
    """Failed attempts per key in a sliding window; thread-safe, bounded in memory."""

    def __init__(self, limit: int, window: float = WINDOW, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._fails: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> list[float]:
        kept = [t for t in self._fails.get(key, ()) if now - t < self.window]
        if kept:
            self._fails[key] = kept
        else:
            self._fails.pop(key, None)
        return kept

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: it may now)."""
        with self._lock:
            now = self.clock()
            kept = self._prune(key, now)
            return 0.0 if len(kept) < self.limit else max(1.0, kept[-self.limit] + self.window - now)

    def fail(self, key: str) -> None:
        with self._lock:
            now = self.clock()
            if len(self._fails) > 10_000:  # many addresses: forget the expired ones first
                for k in list(self._fails):
                    self._prune(k, now)
            self._fails.setdefault(key, []).append(now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._fails.pop(key, None)


class Sessions:
    """Logged-in sessions of this process: random id -> (user name, expiry)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds, self.clock = seconds, clock
        self._by_id: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def open(self, user: str) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            now = self.clock()
            for k, (_, until) in list(self._by_id.items()):
                if until <= now:
                    del self._by_id[k]
            self._by_id[sid] = (user, now + self.seconds)
        return sid

    def user(self, sid: Any) -> str | None:
        if not isinstance(sid, str):
            return None
        with self._lock:
            found = self._by_id.get(sid)
            if found is None or found[1] <= self.clock():
                self._by_id.pop(sid, None)
                return None
            return found[0]

    def close(self, sid: Any) -> None:
        if isinstance(sid, str):
            with self._lock:
                self._by_id.pop(sid, None)


class Auth:
    """The login routes and the gate in front of every other page."""

    def __init__(self, users: dict[str, BoardUser], *, title: str, session_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        self.users = users
        self.title = title  # shown on the login page: the city's name, or the MSP board's
        self.sessions = Sessions(session_seconds, clock)
        self.clients = Attempts(CLIENT_LIMIT, WINDOW, clock)
        self.names = Attempts(USER_LIMIT, WINDOW, clock)
        self.env = environment()
        board_globals(self.env)
        self._dummy: str | None = None
        # Argon2id costs 64 MiB and tens of milliseconds per check: a flood of logins waits its
        # turn here instead of filling the memory of a small box.
        self._checking = threading.BoundedSemaphore(2)

    # --- who is asking -------------------------------------------------------------

    def who(self, session: dict[str, Any]) -> Viewer | None:
        name = self.sessions.user(session.get("sid"))
        user = self.users.get(name) if name else None
        csrf = session.get("csrf")
        if user is None or not isinstance(csrf, str):
            return None
        return Viewer(name=user.name, csrf=csrf, user=user)

    def page(self, template: str, status_code: int = 200, headers: dict[str, str] | None = None,
             **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(city=SimpleNamespace(name=self.title), nav="", **context)
        return HTMLResponse(html, status_code=status_code, headers=headers)

    def forbidden(self, message: str) -> HTMLResponse:
        return self.page("board_error.html.j2", status_code=403, code=403, message=message, bare=True)

    # --- the routes ----------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [Route("/login", self.login, methods=["GET", "POST"]),
                Route("/logout", self.logout, methods=["POST"])]

    def _form_page(self, session: dict[str, Any], next_url: str, *, status_code: int = 200, message: str = "",
                   user: str = "", headers: dict[str, str] | None = None) -> HTMLResponse:
        if not isinstance(session.get("csrf"), str):
            session["csrf"] = secrets.token_urlsafe(32)
        return self.page("board_login.html.j2", status_code=status_code, headers=headers, csrf=session["csrf"],
                         next_url=next_url, message=message, user=user, bare=True)

    async def login(self, request: Request) -> Response:
        session = request.session
        if request.method != "POST":
            next_url = _safe_next(request.query_params.get("next", "/"))
            if self.who(session) is not None:
                return RedirectResponse(next_url, status_code=303)
            return self._form_page(session, next_url)
        form = await _read_form(request)
        if form is None:
            return self.page("board_error.html.j2", status_code=400, code=400, bare=True,
                             message="That login form could not be read; reload the login page.")
        next_url = _safe_next(form.get("next", "/"))
        if not _same_origin(request) or not _token_ok(session.get("csrf"), form.get("csrf", "")):
            return self.forbidden("The login form has expired or came from another site: reload the login page "
                                  "and try again.")
        name = form.get("user", "").strip()[:64]
        client = request.client.host if request.client else "unknown"
        known = self.users.get(name)
        wait = max(self.clients.wait(client), self.names.wait(name) if known else 0.0)
        if wait:
            log.warning("board login refused: too many failed attempts (%s from %s)",
                        f"user {name}" if known else "an unknown user", client)
            minutes = max(1, round(wait / 60))
            return self._form_page(session, next_url, status_code=429, user=name,
                                   headers={"retry-after": str(int(wait) + 1)},
                                   message=f"Too many failed attempts: try again in about {minutes} "
                                           f"minute{'s' if minutes != 1 else ''}.")
        ok = await run_in_threadpool(self._verify, known, form.get("password", ""))
        if not ok:
            self.clients.fail(client)
            if known:
                self.names.fail(name)
            log.warning("board login failed for %s from %s", f"user {name}" if known else "an unknown user", client)
            return self._form_page(session, next_url, status_code=401, user=name,
                                   message="Wrong user name or password.")
        assert known is not None
        self.names.clear(name)
        self.sessions.close(session.get("sid"))
        session.clear()
        session["sid"] = self.sessions.open(name)
        session["csrf"] = secrets.token_urlsafe(32)
        log.info("board login: user %s from %s", name, client)
        return RedirectResponse(next_url, status_code=303)

    async def logout(self, request: Request) -> Response:
        session = request.session
        form = await _read_form(request)
        if form is None or not _same_origin(request) or not _token_ok(session.get("csrf"), form.get("csrf", "")):
            return self.forbidden("That logout form has expired or came from another site: reload the page and "
                                  "use its Log out button.")
        who = self.who(session)
        self.sessions.close(session.get("sid"))
        session.clear()
        if who:
            log.info("board logout: user %s", who.name)
        return RedirectResponse("/login", status_code=303)

    def _verify(self, user: BoardUser | None, password: str) -> bool:
        from argon2 import PasswordHasher
        from argon2.exceptions import InvalidHashError, VerificationError

        hasher = PasswordHasher()
        with self._checking:
            if self._dummy is None:
                self._dummy = hasher.hash(secrets.token_urlsafe(16))
            try:
                hasher.verify(user.password_hash if user else self._dummy, password)
            except (VerificationError, InvalidHashError):
                return False
        return user is not None


class Gate:
    """Lets a request through only with a live session (else: the login page), and only to a
    city the user may see (else 403). ``city_of`` names the city a path belongs to (None: no city)."""

    def __init__(self, app: ASGIApp, auth: Auth, city_of: Callable[[str], str | None]) -> None:
        self.app, self.auth, self.city_of = app, auth, city_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        who = self.auth.who(scope["session"])
        if path not in OPEN_PATHS and path != "/logout":
            response: Response | None = None
            if who is None:
                if scope["method"] in ("GET", "HEAD"):
                    query = scope.get("query_string", b"").decode("latin-1")
                    target = path + (f"?{query}" if query else "")
                    response = RedirectResponse("/login?next=" + quote(target, safe=""), status_code=303)
                else:
                    response = self.auth.forbidden("Log in first.")
            else:
                city = self.city_of(path)
                if city is not None and not who.user.may_see(city):
                    log.warning("board: user %s refused city %s", who.name, city)
                    token = _viewer.set(who)
                    try:
                        response = self.auth.forbidden("Your account may not see this city's board.")
                    finally:
                        _viewer.reset(token)
            if response is not None:
                await response(scope, receive, send)
                return
        token = _viewer.set(who)
        try:
            await self.app(scope, receive, send)
        finally:
            _viewer.reset(token)


async def _read_form(request: Request) -> dict[str, str] | None:
    """A small url-encoded form (first value of each field), or None when it is not one."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return None
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return None
    return {k: v[0] for k, v in fields.items()}


def _token_ok(expected: Any, given: str) -> bool:
    return isinstance(expected, str) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())


def _same_origin(request: Request) -> bool:
    """A form posted from a page of this board, by the Origin browsers send with a POST. Under
    ``Referrer-Policy: no-referrer`` a browser sends "null" (and old ones none): then the
    session's token and the SameSite=Strict cookie decide."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    host = request.headers.get("host", "")
    return origin in (f"https://{host}", f"http://{host}")


def _safe_next(target: str) -> str:
    """Where to go after login: a path of this board, never another site ("//evil", "https://…")."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or len(target) > 2000:
        return "/"
    if any(ord(c) < 32 for c in target):
        return "/"
    return target
