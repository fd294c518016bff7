"""The status board in a real browser (issue 20): Playwright for Python driving Debian's chromium
against `itaudit serve` started as a real process on 127.0.0.1, over the synthetic city of
tests/report_city.py. Screenshots go to the test's folder (ITAUDIT_BOARD_SHOTS=DIR keeps them).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import report_city
from conftest import need_peer

pytestmark = pytest.mark.peers

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need_browser() -> None:
    """Playwright for Python and Debian's chromium are here (a skip or, under CI, a failure)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        need_peer(False, "playwright (Python) is not installed")
    need_peer(os.path.exists(CHROMIUM), "Debian's chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory):
    need_browser()
    tmp = tmp_path_factory.mktemp("board-browser")
    db = tmp / "city.db"
    city, store = report_city.build(db, n=60, months=14)
    sweep = store.begin_discovery(city.id, ["10.60.0.0/24"], 256, now="2026-10-22T01:00:00+00:00")
    store.record_sighting(sweep, {"address": "10.60.0.77", "open_ports": [22, 9100], "managed": False,
                                  "guess": "printer", "ssh_banner": report_city.HOSTILE},
                          now="2026-10-22T01:00:04+00:00")
    store.finish_discovery(sweep, now="2026-10-22T01:05:00+00:00")
    from reports.worklist import write_worklist

    write_worklist(city, store, as_of=dt.date(2026, 10, 25), out_dir=tmp / "springfield" / "reports" / "2026-10",
                   formats=("html", "csv"))
    store.close()
    cfg = tmp / "config.toml"
    cfg.write_text(f'[settings]\ndata_dir = "{tmp}"\n[cities.springfield]\nname = "Springfield"\n'
                   f'database = "{db}"\n')
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "itaudit.cli", "serve", "-c", str(cfg), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"itaudit serve exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("itaudit serve did not listen within 30 s")
    yield f"http://127.0.0.1:{port}", db
    proc.terminate()
    proc.wait(timeout=10)
    if proc.stdout:
        proc.stdout.close()


@pytest.fixture(scope="module")
def page(board):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless", "--disable-gpu"])
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        pg = context.new_page()
        errors: list[str] = []
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("dialog", lambda d: (errors.append("dialog: " + d.message), d.dismiss()))
        pg.errors = errors  # type: ignore[attr-defined]
        yield pg
        browser.close()


def _shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("ITAUDIT_BOARD_SHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_status_filters_device_page_and_hostile_name(board, page, tmp_path: Path):
    base, _ = board
    shots = _shots(tmp_path)
    page.goto(base + "/")
    assert page.title().startswith("Status · Springfield")
    # The generated city's last scan is in October 2026: the board says whose figures it shows.
    assert page.locator("svg.ring").count() == 1
    assert "last scanned month" in page.content() or "Measures" in page.content()
    page.screenshot(path=str(shots / "board-status.png"), full_page=True)

    # The devices list, filtered with the form (a real GET submission).
    page.click("text=Devices")
    page.select_option("select[name=department]", "Fire")
    page.select_option("select[name=kind]", "laptop")
    page.click("button[type=submit]")
    page.wait_for_url("**/devices?*department=Fire*")
    page.wait_for_load_state()
    rows = page.locator("#devices tr").all()[1:]
    assert len(rows) == 4  # the generated city's Fire laptops (report_city.make_devices(60), seed 7)
    for row in rows:
        cells = row.locator("td").all_inner_texts()
        assert cells[2] == "Fire" and cells[3] == "laptop"
    assert page.locator("#count").inner_text().startswith(f"{len(rows)} of 60 devices")

    # Sort by open findings, worst first, by clicking the header twice.
    page.goto(base + "/devices?per_page=100")
    page.click("#devices th >> text=Open findings")
    page.wait_for_url("**/devices?*sort=findings*")
    page.wait_for_load_state()
    page.click("#devices th >> text=Open findings")
    page.wait_for_url("**/devices?*order=desc*")
    page.wait_for_load_state()
    counts = [int(t) for t in page.locator("#devices td:nth-child(7)").all_inner_texts()]
    assert counts == sorted(counts, reverse=True) and len(counts) == 60
    page.goto(base + "/devices?sort=findings&order=desc&per_page=25")
    page.screenshot(path=str(shots / "board-devices.png"), full_page=True)

    # The hostile host name: shown as text in the list and on its page, never run.
    page.goto(base + "/devices?q=script")
    link = page.locator("#devices td a").first
    assert link.inner_text() == report_city.HOSTILE
    link.click()
    page.wait_for_url("**/devices/*")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == report_city.HOSTILE
    assert page.locator("img").count() == 0  # the <img onerror> stayed text
    assert page.locator("#findings tr").count() > 1
    page.screenshot(path=str(shots / "board-device.png"), full_page=True)
    assert not page.errors, page.errors  # type: ignore[attr-defined]


def test_no_inline_script_runs_and_styles_load(board, page):
    base, _ = board
    page.goto(base + "/devices")
    # The stylesheet is served from the board itself and applied (CSP default-src 'self').
    colour = page.evaluate("getComputedStyle(document.querySelector('header.top')).borderBottomColor")
    assert colour == "rgb(29, 79, 145)"
    # An unknown device: a clear page in the browser too.
    resp = page.goto(base + "/devices/424242")
    assert resp is not None and resp.status == 404
    assert "no device 424242" in page.content()


def test_worklist_reports_discovery_and_device_evidence(board, page, tmp_path: Path):
    base, _ = board
    shots = _shots(tmp_path)
    page.errors.clear()  # type: ignore[attr-defined]  # (the 404 page of the test before is expected)
    # The worklist, filtered with its form: every device shown is a Police device.
    page.goto(base + "/worklist")
    page.select_option("select[name=department]", "Police")
    page.click("button[type=submit]")
    page.wait_for_url("**/worklist?*department=Police*")
    page.wait_for_load_state()
    names = page.locator("#worklist h3 a").all_inner_texts()
    assert names and page.locator("#count").inner_text().startswith(f"{len(names)} of ")
    for href in page.locator("#worklist h3 a").evaluate_all("els => els.map(e => e.getAttribute('href'))")[:3]:
        page.goto(base + href)
        assert "Police" in page.locator("p.small.muted").first.inner_text()
    page.goto(base + "/worklist?per_page=25")
    assert page.locator("img").count() == 0  # the hostile device's name stays text here too
    page.screenshot(path=str(shots / "board-worklist.png"), full_page=True)

    # The device page: facts with their source and time, evidence folded until opened.
    page.goto(base + "/devices?q=script")
    page.locator("#devices td a").first.click()
    page.wait_for_url("**/devices/*")
    page.wait_for_load_state()
    assert page.locator("#facts tr").count() > 1 and "scan" in page.locator("#facts").inner_text()
    page.locator("#facts-json summary").click()
    assert report_city.HOSTILE.replace('"', '\\"') in page.locator("#facts-json pre").inner_text()
    assert page.locator("img").count() == 0
    page.screenshot(path=str(shots / "board-device-facts.png"), full_page=True)

    # Discovery: the sweep and the stray's hostile banner as text.
    page.goto(base + "/discovery")
    assert "10.60.0.77" in page.locator("#sightings").inner_text()
    assert report_city.HOSTILE in page.locator("#sightings").inner_text() and page.locator("img").count() == 0
    page.screenshot(path=str(shots / "board-discovery.png"), full_page=True)

    # Reports: the generated worklist opens (its own styles apply, no script, no console error)
    # and downloads.
    page.goto(base + "/reports")
    assert page.locator("#reports tr").count() == 3  # header, the worklist's HTML and CSV
    page.screenshot(path=str(shots / "board-reports.png"), full_page=True)
    with page.expect_download() as got:
        page.locator("#reports a", has_text="download").last.click()
    assert got.value.suggested_filename.startswith("springfield-worklist-2026-10-25.")
    page.locator("#reports a", has_text=".html").click()
    page.wait_for_url("**/reports/open/**")
    page.wait_for_load_state()
    assert "Worklist" in page.title() or "worklist" in page.content().lower()
    assert page.locator("img").count() == 0
    page.screenshot(path=str(shots / "board-report-open.png"))
    assert not page.errors, page.errors  # type: ignore[attr-defined]


def _listening(port: int, proc: subprocess.Popen, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{what} did not listen within {seconds:.0f} s")


@pytest.mark.slow
def test_live_progress_during_a_real_scan_of_the_simulated_city(page, tmp_path: Path):
    """`itaudit demo --keep-running` keeps the simulated city up (real SSH and SNMP peers, one host
    switched off); the board shows the scan run by `itaudit scan` while it runs, reloads itself,
    and shows the finished scan after."""
    out = tmp_path / "demo"
    procs: list[subprocess.Popen] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "itaudit.cli", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
        procs.append(proc)
        return proc

    try:
        demo = start("demo", "--keep-running", "--out", str(out), "--as-of", "2026-11-23")
        deadline = time.monotonic() + 300
        while not (out / "demo.env").exists():
            if demo.poll() is not None:
                pytest.fail(f"itaudit demo exited: {demo.stdout.read() if demo.stdout else ''}")
            assert time.monotonic() < deadline, "the simulated city did not come up within 300 s"
            time.sleep(0.5)
        env = dict(os.environ)
        for line in (out / "demo.env").read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
        port = _free_port()
        serve = start("serve", "-c", str(out / "config.toml"), "--port", str(port))
        _listening(port, serve, "itaudit serve")
        base = f"http://127.0.0.1:{port}"
        page.errors.clear()  # type: ignore[attr-defined]
        page.goto(base + "/")
        assert "No scan is running" in page.content()
        before = page.locator("p.small.muted").first.inner_text()

        scan = start("scan", "-c", str(out / "config.toml"), "--as-of", "2026-11-23", env=env)
        seen: list[str] = []
        reloaded = False
        while scan.poll() is None:
            page.goto(base + "/")
            if page.locator(".running").count():
                seen.append(page.locator(".running .progress").first.inner_text())
                assert page.locator('meta[http-equiv="refresh"]').count() == 1
                if not reloaded and len(seen) == 1:
                    # The page reloads by itself while the scan runs (no script: a meta refresh).
                    with page.expect_event("load", timeout=25_000):
                        pass
                    reloaded = True
            time.sleep(0.2)
        assert scan.returncode in (0, 3), scan.stdout.read() if scan.stdout else ""
        assert seen, "the scan ended before the board saw it running"
        done = [int(s.split()[0]) for s in seen]
        assert done == sorted(done) and all(s.endswith("targets done") for s in seen)
        assert reloaded
        page.goto(base + "/")
        assert "No scan is running" in page.content()
        after = page.locator("p.small.muted").first.inner_text()
        assert after != before and "could not be checked" in after  # the switched-off host
        assert not page.errors, page.errors  # type: ignore[attr-defined]
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout:
                proc.stdout.close()
