"""The status board reachable from other machines, in a real browser: Playwright for Python
driving Debian's chromium against `itaudit serve` on a second loopback address that the config
declares reachable from other machines (``exposed = true``), over TLS with a certificate
made by the test (chromium accepts that certificate's key and no other:
``--ignore-certificate-errors-spki-list``), for an MSP with two cities.

Covered: every page refused before login, a wrong password limited, login, the session
cookie's flags, a city the user may not see (403), logout, and the TLS session itself.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import report_city
from peers_smtp import free_port, make_cert
from test_board_auth import _wait_listening
from test_board_browser import CHROMIUM, _shots, need_browser

from itaudit.board_config import hash_password
from reports.board_auth import COOKIE, USER_LIMIT

pytestmark = pytest.mark.peers

HOST = "127.0.13.4"
PASSWORD = "correct horse battery staple"


def _spki_pin(cert_path: Path) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory):
    need_browser()
    tmp = tmp_path_factory.mktemp("board-login")
    blocks = []
    for cid, name, seed in (("springfield", "Springfield", 7), ("shelbyville", "Shelbyville", 11)):
        db = tmp / cid / "city.db"
        db.parent.mkdir()
        _, store = report_city.build(db, n=12, months=3, seed=seed)
        store.close()
        blocks.append(f'[cities.{cid}]\nname = "{name}"\ndatabase = "{db}"\n')
    tls = make_cert(tmp / "tls", HOST)
    hashed = hash_password(PASSWORD)
    port = free_port(HOST)
    cfg = tmp / "config.toml"
    cfg.write_text(f'[settings]\ndata_dir = "{tmp}"\n' + "".join(blocks) +
                   f'[board]\nhost = "{HOST}"\nport = {port}\nexposed = true\n'
                   f'tls_cert = "{tls.cert}"\ntls_key = "{tls.key}"\n'
                   f'[board.users.alice]\npassword_hash = "{hashed}"\ncities = ["springfield"]\n'
                   f'[board.users.carol]\npassword_hash = "{hashed}"\ncities = ["springfield"]\n'
                   f'[board.users.root]\npassword_hash = "{hashed}"\nadmin = true\n')
    proc = subprocess.Popen([sys.executable, "-m", "itaudit.cli", "serve", "-c", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_listening(HOST, port, proc)
        yield f"https://{HOST}:{port}", tls, proc
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0]
        # The server's own output names no password, hash or cookie (the log is checked here).
        assert PASSWORD not in out and hashed not in out and COOKIE not in out, out


@pytest.fixture(scope="module")
def browser(board):
    from playwright.sync_api import sync_playwright

    _, tls, _ = board
    with sync_playwright() as p:
        pin = f"--ignore-certificate-errors-spki-list={_spki_pin(tls.cert)}"
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless", "--disable-gpu", pin])
        yield b
        b.close()


def _page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "401" not in m.text
            and "403" not in m.text and "429" not in m.text else None)
    return context, page, errors


def _log_in(page, base: str, user: str, password: str = PASSWORD) -> None:
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("form.login button[type=submit]")
    page.wait_for_load_state()


def test_refused_without_login_and_served_over_tls(board, browser, tmp_path: Path):
    base, _, _ = board
    context, page, errors = _page(browser)
    for path in ("/", "/city/springfield/", "/city/springfield/devices", "/city/springfield/devices/1"):
        response = page.goto(base + path)
        assert response is not None and response.status == 200  # the login page, after the redirect
        assert page.url.startswith(base + "/login?next="), page.url
        assert page.locator("input[type=password]").count() == 1
        assert page.locator("#devices").count() == 0 and page.locator("svg.ring").count() == 0
    # The CSV (a download once logged in): the login form, not the rows.
    page.goto(base + "/city/springfield/devices.csv")
    assert page.url.startswith(base + "/login?next=") and "10.20." not in page.content()
    # TLS with the test's certificate (chromium accepts this key only).
    response = page.goto(base + "/login")
    details = response.security_details() if response else None
    assert details and details.get("protocol") in ("TLS 1.3", "TLS 1.2") and details.get("subjectName") == HOST
    assert response.headers["strict-transport-security"].startswith("max-age=")
    page.screenshot(path=str(_shots(tmp_path) / "board-login.png"))
    assert not errors, errors
    context.close()


def test_wrong_passwords_are_limited(board, browser):
    base, _, _ = board
    context, page, _ = _page(browser)
    page.goto(base + "/")
    for _ in range(USER_LIMIT):
        _log_in(page, base, "carol", "not the password")
        assert page.locator(".login-message").inner_text() == "Wrong user name or password."
    _log_in(page, base, "carol")  # the right password, past the limit
    assert "Too many failed attempts" in page.locator(".login-message").inner_text()
    assert page.locator("input[type=password]").count() == 1 and "/login" in page.url
    context.close()


def test_login_city_access_cookie_and_logout(board, browser, tmp_path: Path):
    base, _, _ = board
    context, page, errors = _page(browser)
    page.goto(base + "/city/springfield/devices")
    _log_in(page, base, "alice")
    assert page.url == base + "/city/springfield/devices"  # back where the login began
    assert page.locator("#devices tr").count() > 1 and page.locator(".who").inner_text() == "alice"

    cookie = next(c for c in context.cookies() if c["name"] == COOKIE)
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert page.evaluate("document.cookie") == ""  # out of reach of any script

    # The portfolio lists the cities alice may see; another city's pages are refused.
    page.click("nav.board >> text=All cities")
    page.wait_for_load_state()
    assert page.locator("#cities a").all_inner_texts() == ["Springfield"]
    for path in ("/city/shelbyville/", "/city/shelbyville/devices"):
        response = page.goto(base + path)
        assert response is not None and response.status == 403
        assert "may not see this city" in page.content() and page.locator("#devices").count() == 0
    page.screenshot(path=str(_shots(tmp_path) / "board-403.png"))

    # Logout ends the session: the same browser is asked to log in again.
    page.goto(base + "/city/springfield/")
    page.click("nav.board button:text('Log out')")
    page.wait_for_url("**/login")
    page.goto(base + "/city/springfield/")
    assert "/login?next=" in page.url and page.locator("input[type=password]").count() == 1
    assert not errors, errors
    context.close()


def test_an_admin_sees_every_city(board, browser, tmp_path: Path):
    base, _, _ = board
    context, page, _ = _page(browser)
    page.goto(base + "/")
    _log_in(page, base, "root")
    assert page.locator("#cities a").all_inner_texts() == ["Shelbyville", "Springfield"]
    page.screenshot(path=str(_shots(tmp_path) / "board-cities.png"))
    page.click("#cities >> text=Shelbyville")
    page.wait_for_load_state()
    assert page.title().startswith("Status · Shelbyville")
    page.click("nav.board >> text=Devices")
    page.wait_for_url("**/city/shelbyville/devices")
    assert page.locator("#devices tr").count() > 1
    context.close()
