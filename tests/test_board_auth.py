"""The status board reachable from other machines: [board] config rules, login, sessions and
their cookies, CSRF, attempt limits, an MSP's per-city access, a reverse proxy, TLS.

Through Starlette's TestClient over the synthetic cities of tests/report_city.py; the same
in a real browser against a real `itaudit serve` is tests/test_board_login_browser.py.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import report_city
from click.testing import CliRunner
from starlette.testclient import TestClient

from itaudit import config as config_mod
from itaudit.board_config import BoardConfig, BoardUser, hash_password
from itaudit.cli import cli
from itaudit.errors import ConfigError
from reports.board_auth import CLIENT_LIMIT, COOKIE, USER_LIMIT, WINDOW, Attempts, Sessions
from reports.board_sites import create_board

AS_OF = dt.date(2026, 10, 25)
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def hashed() -> str:
    return hash_password(PASSWORD)


@pytest.fixture(scope="module")
def cities(tmp_path_factory: pytest.TempPathFactory):
    out = []
    for cid, name, seed in (("springfield", "Springfield", 7), ("shelbyville", "Shelbyville", 11)):
        db = tmp_path_factory.mktemp(cid) / "city.db"
        _, store = report_city.build(db, n=12, months=3, seed=seed, hostile=False)
        store.close()
        out.append(report_city.city_config(db, cid, name))
    return out


def _board(hashed: str, **kw) -> BoardConfig:
    users = {"alice": BoardUser("alice", hashed, cities=("springfield",)),
             "bob": BoardUser("bob", hashed, cities=("shelbyville",)),
             "root": BoardUser("root", hashed, admin=True)}
    return BoardConfig(host="127.0.13.1", exposed=True, tls_cert=Path("unused.crt"), tls_key=Path("unused.key"),
                       users=users, **kw)


def _client(app, **kw) -> TestClient:
    return TestClient(app, base_url="https://127.0.13.1:8765", raise_server_exceptions=False, **kw)


def _login(c: TestClient, user: str, password: str = PASSWORD, next_url: str = "/"):
    form = c.get("/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    return c.post("/login", data={"csrf": token, "user": user, "password": password, "next": next_url},
                  follow_redirects=False)


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


# --- config ----------------------------------------------------------------------------


def _cfg(tmp_path: Path, board: str, db: Path | None = None) -> Path:
    db = db or tmp_path / "city.db"
    p = tmp_path / "config.toml"
    p.write_text(f'[cities.springfield]\ndatabase = "{db}"\n[cities.shelbyville]\ndatabase = "{db}2"\n\n'
                 f'[board]\n{board}\n')
    return p


@pytest.mark.parametrize("board, key, words", [
    ('host = "0.0.0.0"', "board.tls_cert", "needs TLS"),
    ('exposed = true', "board.tls_cert", "declared reachable"),
    ('host = "192.0.2.7"\ntls_cert = "a.crt"\ntls_key = "a.key"', "board.users", "needs a login"),
    ('trusted_proxies = ["10.0.0.5"]', "board.users", "needs a login"),
    ('tls_cert = "a.crt"', "board.tls_key", "go together"),
    ('trusted_proxies = ["proxy.example"]', "board.trusted_proxies", "not an IP address"),
    ('[board.users.alice]\npassword_hash = "hunter2hunter2"\nadmin = true', "board.users.alice.password_hash",
     "--hash-password"),
    ('[board.users.alice]\npassword_hash = "$argon2id$v=19$m=65536,t=3,p=4$x$y"', "board.users.alice.cities",
     "would see nothing"),
    ('[board.users.alice]\npassword_hash = "$argon2id$v=19$m=65536,t=3,p=4$x$y"\ncities = ["ogdenville"]',
     "board.users.alice.cities", "no city 'ogdenville'"),
    ('port = 0', "board.port", "between 1 and 65535"),
    ('password = "x"', "board.password", "unknown key"),
])
def test_board_config_errors_name_the_key(tmp_path: Path, board: str, key: str, words: str):
    with pytest.raises(ConfigError) as err:
        config_mod.load(_cfg(tmp_path, board))
    assert f"key '{key}'" in str(err.value) and words in str(err.value), str(err.value)


def test_board_config_loads(tmp_path: Path, hashed: str):
    cfg = config_mod.load(_cfg(tmp_path, f'enabled = true\nhost = "0.0.0.0"\nport = 9443\ntls_cert = "b.crt"\n'
                                         f'tls_key = "b.key"\nnames = ["Board.City.Example"]\n'
                                         f'[board.users.alice]\npassword_hash = "{hashed}"\n'
                                         f'cities = ["springfield"]\n'))
    b = cfg.board
    assert b is not None and b.enabled and b.port == 9443 and b.tls and b.tls_cert == tmp_path / "b.crt"
    assert b.names == ("board.city.example",) and b.login_required()
    assert b.users["alice"].may_see("springfield") and not b.users["alice"].may_see("shelbyville")
    assert hashed not in repr(b)  # a hash stays out of logs and tracebacks
    # A loopback board without [board] needs nothing.
    assert not BoardConfig().login_required() and BoardConfig(exposed=True).login_required()


def test_hash_password_command(hashed: str):
    from argon2 import PasswordHasher

    r = CliRunner().invoke(cli, ["serve", "--hash-password"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert r.exit_code == 0, r.output
    line = r.output.strip().splitlines()[-1]
    assert line.startswith('password_hash = "$argon2id$') and PASSWORD not in r.output
    assert PasswordHasher().verify(line.split('"')[1], PASSWORD)
    r = CliRunner().invoke(cli, ["serve", "--hash-password"], input="short\nshort\n")
    assert r.exit_code != 0 and "at least 12 characters" in r.output
    r = CliRunner().invoke(cli, ["serve"])
    assert r.exit_code != 0 and "--config" in r.output


# --- login, sessions, cookies ----------------------------------------------------------


def test_login_required_then_session_cookie_flags_and_logout(cities, hashed):
    app = create_board(cities[:1], _board(hashed), host="127.0.13.1", today=lambda: AS_OF)
    with _client(app) as c:
        r = c.get("/devices?kind=laptop", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fdevices%3Fkind%3Dlaptop"
        page = c.get("/login")
        assert page.status_code == 200 and 'type="password"' in page.text
        cookie = page.headers["set-cookie"]
        assert cookie.startswith(COOKIE + "=")
        flags = {f.strip().split("=")[0].lower() for f in cookie.split(";")[1:]}
        assert {"path", "max-age", "httponly", "samesite", "secure"} <= flags and "domain" not in flags
        assert "samesite=strict" in cookie.lower() and "path=/;" in cookie.lower()
        before = c.cookies.get(COOKIE)

        r = c.post("/login", data={"csrf": _csrf(page.text), "user": "alice", "password": PASSWORD,
                                   "next": "/devices?kind=laptop"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/devices?kind=laptop"
        session_cookie = c.cookies.get(COOKIE)
        assert session_cookie != before  # a new session at login: a planted cookie is worth nothing
        page = c.get("/devices")
        assert page.status_code == 200 and "alice" in page.text and "Log out" in page.text
        assert hashed not in page.text and PASSWORD not in page.text
        assert page.headers["strict-transport-security"].startswith("max-age=")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]

        r = c.post("/logout", data={"csrf": _csrf(page.text)}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert c.get("/devices", follow_redirects=False).status_code == 303
    # The logged-out cookie, replayed, is refused: the session ended on the server.
    with _client(app) as replay:
        replay.cookies.set(COOKIE, session_cookie)
        assert replay.get("/devices", follow_redirects=False).status_code == 303


def test_csrf_origin_and_redirect_target(cities, hashed):
    app = create_board(cities[:1], _board(hashed), host="127.0.13.1", today=lambda: AS_OF)
    with _client(app) as c:
        form = c.get("/login").text
        ok = {"user": "alice", "password": PASSWORD}
        assert c.post("/login", data=ok).status_code == 403  # no token
        assert c.post("/login", data={**ok, "csrf": "forged"}).status_code == 403
        r = c.post("/login", data={**ok, "csrf": _csrf(form)}, headers={"origin": "https://evil.example"})
        assert r.status_code == 403 and "another site" in r.text
        assert c.post("/login", content=b"x" * 10_000,
                      headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 400
        r = c.post("/login", data={**ok, "csrf": _csrf(form), "next": "//evil.example/x"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"
        page = c.get("/")
        # Logout needs the session's token too (a cross-site form cannot log a user out).
        assert c.post("/logout", data={"csrf": "forged"}).status_code == 403
        assert c.get("/", follow_redirects=False).status_code == 200
        assert c.post("/logout", data={"csrf": _csrf(page.text)}, follow_redirects=False).status_code == 303
        # Nothing but the login and logout forms takes a POST.
        assert c.post("/devices").status_code in (303, 403)


def test_wrong_passwords_are_limited_per_user_and_per_client(cities, hashed, caplog):
    app = create_board(cities, _board(hashed), host="127.0.13.1", today=lambda: AS_OF)
    caplog.set_level(logging.INFO, logger="itaudit.board")
    with _client(app, client=("198.51.100.7", 50000)) as c:
        for _ in range(USER_LIMIT):
            assert _login(c, "alice", "wrong password!!").status_code == 401
        r = _login(c, "alice")  # the right password, but too late
        assert r.status_code == 429 and "Too many failed attempts" in r.text and int(r.headers["retry-after"]) > 60
        assert _login(c, "bob").status_code == 303  # another user from the same client still may
    with _client(app, client=("198.51.100.8", 50000)) as other:
        assert _login(other, "alice").status_code == 429  # the user's limit holds from any client
        for i in range(CLIENT_LIMIT):
            assert _login(other, f"nobody{i}", "guess guess guess").status_code == 401
        assert _login(other, "root").status_code == 429  # this client's limit, whatever the user
    with _client(app, client=("198.51.100.9", 50000)) as third:
        assert _login(third, "root").status_code == 303
    text = caplog.text
    assert "board login failed for user alice from 198.51.100.7" in text and "an unknown user" in text
    assert "nobody" not in text and "wrong password" not in text and PASSWORD not in text and hashed not in text


def test_attempts_and_sessions_expire():
    now = [1000.0]
    a = Attempts(3, WINDOW, clock=lambda: now[0])
    for _ in range(3):
        assert a.wait("k") == 0
        a.fail("k")
    assert WINDOW - 1 <= a.wait("k") <= WINDOW
    now[0] += WINDOW + 1
    assert a.wait("k") == 0
    s = Sessions(60, clock=lambda: now[0])
    sid = s.open("alice")
    assert s.user(sid) == "alice" and s.user("forged") is None and s.user(None) is None
    now[0] += 61
    assert s.user(sid) is None


# --- an MSP: one section per city, per-city access --------------------------------------


def test_msp_sections_and_per_city_access(cities, hashed):
    before = [c.database.read_bytes() for c in cities]
    app = create_board(cities, _board(hashed), host="127.0.13.1", title="All cities", today=lambda: AS_OF)
    with _client(app) as c:
        assert _login(c, "alice", next_url="/city/springfield/devices").headers["location"] == \
            "/city/springfield/devices"
        home = c.get("/").text
        assert 'href="/city/springfield/"' in home and "shelbyville" not in home.lower()
        page = c.get("/city/springfield/devices")
        assert page.status_code == 200 and 'href="/city/springfield/devices/' in page.text
        assert 'href="/city/springfield/static/board.css"' in page.text and 'href="/">All cities' in page.text
        assert c.get("/city/springfield/static/board.css").status_code == 200
        for url in ("/city/shelbyville/", "/city/shelbyville/devices", "/city/shelbyville/devices.csv",
                    "/city/shelbyville/devices/1"):
            r = c.get(url)
            assert r.status_code == 403 and "may not see this city" in r.text and "<table" not in r.text, url
        assert c.get("/city/ogdenville/").status_code == 403
    with _client(app) as admin:
        _login(admin, "root")
        home = admin.get("/").text
        assert 'href="/city/springfield/"' in home and 'href="/city/shelbyville/"' in home
        assert admin.get("/city/shelbyville/devices").status_code == 200
        assert admin.get("/city/ogdenville/").status_code == 404
        assert admin.post("/logout", data={"csrf": _csrf(home)}, follow_redirects=False).status_code == 303
    # Logins, logouts and refusals change the session only: the databases are byte for byte the same.
    assert [c.database.read_bytes() for c in cities] == before


def test_msp_on_loopback_needs_no_login(cities):
    app = create_board(cities, None, title="All cities", today=lambda: AS_OF)
    with TestClient(app, base_url="http://127.0.0.1:8765") as c:
        home = c.get("/")
        assert home.status_code == 200 and "set-cookie" not in home.headers
        assert "Springfield" in home.text and "Shelbyville" in home.text and "Log out" not in home.text
        assert c.get("/city/shelbyville/").status_code == 200
        assert "strict-transport-security" not in home.headers
        assert c.post("/login").status_code in (404, 405)


# --- a reverse proxy ---------------------------------------------------------------------


def test_only_the_declared_proxy_is_believed(cities, hashed):
    board = BoardConfig(host="127.0.0.1", trusted_proxies=("10.9.9.9",), users=_board(hashed).users)
    app = create_board(cities[:1], board, host="127.0.0.1", today=lambda: AS_OF)
    https = {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.50"}
    with TestClient(app, base_url="http://127.0.0.1:8765", client=("10.9.9.9", 4000)) as proxy:
        r = proxy.get("/login", headers=https)
        assert r.status_code == 200 and r.headers["strict-transport-security"].startswith("max-age")
        r = proxy.get("/login")
        assert r.status_code == 403 and "X-Forwarded-Proto: https" in r.text
    with TestClient(app, base_url="http://127.0.0.1:8765", client=("127.0.0.1", 4000)) as direct:
        r = direct.get("/login", headers=https)  # headers from anyone else are not believed
        assert r.status_code == 403 and "through its reverse proxy" in r.text


def test_forwarded_client_is_the_one_limited(cities, hashed):
    board = BoardConfig(host="127.0.0.1", trusted_proxies=("10.9.9.9",), users=_board(hashed).users)
    app = create_board(cities[:1], board, host="127.0.0.1", today=lambda: AS_OF)
    # (https: the browser's side of the proxy, where the Secure cookie travels)
    with TestClient(app, base_url="https://127.0.0.1:8765", client=("10.9.9.9", 4000)) as proxy:
        def attempt(client: str, user: str, password: str) -> int:
            h = {"x-forwarded-proto": "https", "x-forwarded-for": client}
            token = _csrf(proxy.get("/login", headers=h).text)
            return proxy.post("/login", headers=h, follow_redirects=False,
                              data={"csrf": token, "user": user, "password": password}).status_code

        for i in range(CLIENT_LIMIT):
            assert attempt("203.0.113.1", f"x{i}", "guess guess guess") == 401
        assert attempt("203.0.113.1", "root", PASSWORD) == 429
        assert attempt("203.0.113.2", "root", PASSWORD) == 303  # the proxy itself is not locked out


# --- `itaudit serve` over TLS, with a real certificate ---------------------------------


def _wait_listening(host: str, port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"itaudit serve exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail("itaudit serve did not listen within 30 s")


def test_serve_tls_with_a_real_certificate(tmp_path: Path, cities, hashed):
    from peers_smtp import free_port, make_cert

    host = "127.0.13.2"
    tls = make_cert(tmp_path / "tls", host)
    port = free_port(host)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[cities.springfield]\ndatabase = "{cities[0].database}"\n'
                   f'[board]\nhost = "{host}"\nport = {port}\nexposed = true\n'
                   f'tls_cert = "{tls.cert}"\ntls_key = "{tls.key}"\n'
                   f'secret_key_env = "ITAUDIT_TEST_BOARD_KEY"\n'
                   f'[board.users.alice]\npassword_hash = "{hashed}"\ncities = ["springfield"]\n')
    key = "k" * 40
    env = {**__import__("os").environ, "ITAUDIT_TEST_BOARD_KEY": key}
    proc = subprocess.Popen([sys.executable, "-m", "itaudit.cli", "serve", "-c", str(cfg)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_listening(host, port, proc)
        ctx = ssl.create_default_context(cafile=str(tls.cert))  # the test certificate, pinned
        with socket.create_connection((host, port)) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
            assert s.version() in ("TLSv1.2", "TLSv1.3")
            s.sendall(f"GET /devices HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        head = reply.split(b"\r\n\r\n")[0].decode().lower()
        assert head.startswith("http/1.1 303") and "location: /login?next=%2fdevices" in head
        assert "strict-transport-security: max-age=" in head and "server:" not in head
        # Plain HTTP to the TLS port gets no page.
        with socket.create_connection((host, port)) as plain:
            plain.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            plain.settimeout(5)
            try:
                answer = plain.recv(4096)
            except (ConnectionResetError, TimeoutError):
                answer = b""
        assert b"<html" not in answer.lower()
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0]
    assert f"https://{host}:{port}/ (login required)" in out
    assert key not in out and hashed not in out


def test_serve_refuses_a_certificate_that_does_not_load(tmp_path: Path, cities, hashed):
    from peers_smtp import make_cert

    a, b = make_cert(tmp_path / "a", "127.0.13.3"), make_cert(tmp_path / "b", "127.0.13.3")
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[cities.springfield]\ndatabase = "{cities[0].database}"\n'
                   f'[board]\nhost = "127.0.13.3"\nexposed = true\ntls_cert = "{a.cert}"\ntls_key = "{b.key}"\n'
                   f'[board.users.alice]\npassword_hash = "{hashed}"\ncities = ["springfield"]\n')
    r = CliRunner().invoke(cli, ["serve", "-c", str(cfg)])
    assert r.exit_code != 0 and "key 'board.tls_cert'" in r.output and "do not load together" in r.output
    assert "Traceback" not in r.output


# --- started by the agent ----------------------------------------------------------------


def test_the_agent_serves_the_board_beside_its_scans(tmp_path: Path, cities):
    import os
    import signal
    import urllib.request

    from peers_smtp import free_port

    port = free_port("127.0.0.1")
    cfg = tmp_path / "agent.toml"
    cities_toml = "".join(f'[cities.{c.id}]\nname = "{c.name}"\ndatabase = "{c.database}"\n'
                          f'[cities.{c.id}.schedule]\nscan = "off"\nreport = false\n' for c in cities)
    cfg.write_text(f'[settings]\ndata_dir = "{tmp_path / "data"}"\n{cities_toml}'
                   f'[board]\nenabled = true\nport = {port}\n')
    proc = subprocess.Popen([sys.executable, "-m", "itaudit.cli", "agent", "-c", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_listening("127.0.0.1", port, proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            home = r.read().decode()
        assert 'href="/city/springfield/"' in home and 'href="/city/shelbyville/"' in home
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/city/shelbyville/devices", timeout=10) as r:
            assert r.status == 200 and "Shelbyville" in r.read().decode()
        assert proc.poll() is None  # still scheduling
        os.kill(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert f"status board for 2 cities: http://127.0.0.1:{port}/" in out and "agent stopped" in out
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()  # the board stopped with it


def test_the_agent_carries_on_when_the_board_cannot_start(tmp_path: Path, cities, caplog):
    from itaudit.agent import Agent, ManualClock

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = tmp_path / "agent.toml"
        c = cities[0]
        cfg.write_text(f'[settings]\ndata_dir = "{tmp_path / "data"}"\n[cities.{c.id}]\ndatabase = "{c.database}"\n'
                       f'[cities.{c.id}.schedule]\nscan = "off"\nreport = false\n'
                       f'[board]\nenabled = true\nport = {port}\n')
        start = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
        agent = Agent(cfg, clock=ManualClock(start), poll=None)
        with caplog.at_level(logging.INFO, logger="itaudit"):
            assert agent.run(until=start + dt.timedelta(hours=1)) == 0
    assert f"status board not started: key 'board.port': cannot listen on 127.0.0.1:{port}" in caplog.text


def test_the_session_key_comes_from_its_reference(tmp_path: Path, monkeypatch):
    from itaudit.board_config import secret_key

    assert secret_key(BoardConfig()) is None  # none configured: the board makes a random one
    monkeypatch.delenv("ITAUDIT_TEST_BOARD_KEY", raising=False)
    with pytest.raises(ConfigError) as err:
        secret_key(BoardConfig(secret_key_env="ITAUDIT_TEST_BOARD_KEY"))
    assert "key 'board.secret_key_env'" in str(err.value) and "not set" in str(err.value)
    monkeypatch.setenv("ITAUDIT_TEST_BOARD_KEY", "short")
    with pytest.raises(ConfigError) as err:
        secret_key(BoardConfig(secret_key_env="ITAUDIT_TEST_BOARD_KEY"))
    assert "at least 32 characters" in str(err.value) and "short" not in str(err.value)
    (tmp_path / "board.key").write_text("f" * 64 + "\n")
    assert secret_key(BoardConfig(secret_key_file=tmp_path / "board.key")) == "f" * 64
    with pytest.raises(ConfigError) as err:
        secret_key(BoardConfig(secret_key_file=tmp_path / "missing.key"))
    assert "key 'board.secret_key_file'" in str(err.value)


def test_the_board_answers_to_its_configured_names(cities, hashed):
    board = BoardConfig(host="127.0.0.1", trusted_proxies=("10.9.9.9",), names=("board.city.example",),
                        users=_board(hashed).users)
    app = create_board(cities[:1], board, host="127.0.0.1", today=lambda: AS_OF)
    https = {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.50"}
    with TestClient(app, base_url="https://board.city.example", client=("10.9.9.9", 4000)) as proxy:
        assert proxy.get("/login", headers=https).status_code == 200
        assert proxy.get("/login", headers={**https, "host": "evil.example"}).status_code == 400


def test_every_link_of_a_city_page_carries_the_city_prefix():
    """An MSP's board serves each city under /city/<id>: a city page's link without {{ root }}
    would lead to another section (or nowhere). Only the board's own top-level pages are exempt:
    the cities page and its links, login and logout."""
    from reports.render import TEMPLATES

    exempt = ('href="/"', 'href="/city/', 'action="/login"', 'action="/logout"')
    bad = []
    for path in sorted(TEMPLATES.glob("board_*.j2")):
        for m in re.finditer(r'(?:href|action|src)="/[^"]*"?', path.read_text(encoding="utf-8")):
            if not m.group(0).startswith(exempt) or (m.group(0) == 'href="/"' and path.name != "board_base.html.j2"):
                bad.append(f"{path.name}: {m.group(0)}")
    assert not bad, bad
