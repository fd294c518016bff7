"""The status board (issue 20): routes, filters, CSV, device pages, bad input, security headers.

Over the synthetic city of tests/report_city.py (real store API, a hostile host name), through
Starlette's TestClient; the browser test is tests/test_board_browser.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
import report_city
from click.testing import CliRunner
from markupsafe import escape
from starlette.testclient import TestClient

from itaudit.board_cli import loopback
from itaudit.cli import cli
from itaudit.model import CollectResult, DeviceFacts, ResultStatus, Target
from itaudit.store import SCHEMA_VERSION, Store
from reports.board import MAX_PAGE_SIZE, create_app
from reports.model import build_monthly

AS_OF = dt.date(2026, 10, 25)


def _client(app, **kwargs) -> TestClient:
    """A test client that sends the Host header a browser on this machine sends."""
    return TestClient(app, base_url="http://127.0.0.1:8765", **kwargs)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("board") / "city.db"
    city, store = report_city.build(db, n=40, months=14, skip_months=(5,))
    store.close()
    return city


@pytest.fixture(scope="module")
def client(city):
    with _client(create_app(city, today=lambda: AS_OF), raise_server_exceptions=False) as c:
        yield c


def _sql(city, query: str, args: list | None = None) -> list[tuple]:
    conn = sqlite3.connect(f"file:{city.database}?mode=ro", uri=True)
    try:
        return conn.execute(query, args or []).fetchall()
    finally:
        conn.close()


def _device_ids(page: str) -> list[int]:
    import re

    table = page[page.index('<table id="devices">'):]
    return [int(x) for x in re.findall(r'<a href="/devices/(\d+)">', table)]


def test_status_shows_the_monthly_figures(city, client):
    page = client.get("/").text
    store = Store(city.database, readonly=True)
    try:
        rep = build_monthly(city, store, as_of=AS_OF)
    finally:
        store.close()
    assert f">{rep.score:.0f}<" in page  # the same score ring as the report
    for k in rep.kpis:
        assert k.label in page and k.actual_text in page
    assert f"{rep.devices_checked} / {rep.devices_total}" in page
    assert "No scan is running" in page and 'http-equiv="refresh"' not in page
    for name, day in rep.data_dates.items():
        assert name in page and day in page
    # Two devices could not be checked: the report's reason is on the board too.
    assert page.count("timeout: no answer within 20 s") == 2


def test_status_early_in_a_month_shows_the_last_scanned_month(city):
    with _client(create_app(city, today=lambda: dt.date(2026, 12, 3))) as c:
        page = c.get("/").text
    assert "No scan was run in December 2026" in page
    assert "figures below are those of the last scanned month" in page and "October 2026" in page


def test_a_running_scan_is_shown_and_the_page_refreshes(city, tmp_path: Path, monkeypatch):
    import reports.model

    builds = []
    real = reports.model.build_monthly
    monkeypatch.setattr(reports.model, "build_monthly", lambda *a, **k: builds.append(1) or real(*a, **k))
    db = tmp_path / "city.db"
    shutil.copy(city.database, db)
    store = Store(db)
    scan_id = store.begin_scan(city.id, AS_OF, 40)
    running = report_city.city_config(db)
    with _client(create_app(running, today=lambda: AS_OF)) as c:
        page = c.get("/").text
        assert f"A scan is running</strong> (scan {scan_id}" in page
        assert 'http-equiv="refresh"' in page and "0 of 40 targets done" in page
        # The scan stores devices as it goes: the next reload counts them.
        for i, ok in ((1, True), (2, True), (3, False)):
            target = Target(address=f"10.20.0.{i}", protocol="ssh", city_id=city.id)
            res = (CollectResult(target, ResultStatus.OK, facts=DeviceFacts()) if ok else
                   CollectResult(target, ResultStatus.ERROR, error_kind="timeout", error="no answer"))
            store.record_result(scan_id, res, [])
        page = c.get("/").text
        assert "3 of 40 targets done</span>, 1 could not be checked" in page
        # The scan's writes do not rebuild the month's model (it reads finished scans only).
        assert len(builds) == 1
        store.finish_scan(scan_id)
        # The scan has finished: the figures it had are shown at once, marked, while the new ones
        # are built once in the background; the page reloads itself until they are in.
        page = c.get("/").text
        assert "A scan is running" not in page and "newer figures are being built" in page
        assert 'http-equiv="refresh" content="2"' in page
        page = _settled(c)
        assert 'http-equiv="refresh"' not in page and "newer figures" not in page
        assert len(builds) == 2
        c.get("/")
        assert len(builds) == 2  # nothing changed: the same model
        # A retirement (no scan running) changes the figures as soon as they are rebuilt.
        total = int(page.split("/ ", 1)[1].split("<", 1)[0].replace(",", ""))
        store.retire_device(1)
        assert "newer figures are being built" in c.get("/").text
        page = _settled(c)
        assert len(builds) == 3 and f"/ {total - 1}<" in page
    store.close()


def _settled(c: TestClient) -> str:
    """The status page once the month's figures built in the background are in (bounded wait)."""
    deadline = time.monotonic() + 60
    while True:
        page = c.get("/").text
        if "newer figures are being built" not in page or time.monotonic() > deadline:
            return page
        time.sleep(0.05)


def test_device_filters_match_the_database(city, client):
    expected = {r[0] for r in _sql(city, "select id from devices where department = 'Police'")}
    assert expected
    page = client.get("/devices", params={"department": "Police", "per_page": 500}).text
    assert set(_device_ids(page)) == expected
    servers = {r[0] for r in _sql(city, "select id from devices where kind = 'server' and department = 'Police'")}
    page = client.get("/devices", params={"department": "Police", "kind": "server"}).text
    assert set(_device_ids(page)) == servers
    failed = {r[0] for r in _sql(city, "select id from devices where last_status = 'error'")}
    assert len(failed) == 2
    assert set(_device_ids(client.get("/devices?status=error").text)) == failed
    # Free text: part of an address.
    assert _device_ids(client.get("/devices", params={"q": "10.20.0.17"}).text) == [
        r[0] for r in _sql(city, "select id from devices where address like '%10.20.0.17%'")]
    # Severity: devices with an open high or critical finding.
    high = {r[0] for r in _sql(city, "select distinct device_id from findings where resolved_at is null "
                                     "and severity in ('high', 'critical')")}
    assert set(_device_ids(client.get("/devices?severity=high&per_page=500").text)) == high


def test_os_and_source_filters(city, client, tmp_path: Path):
    win10 = {r[0] for r in _sql(city, "select id from devices where os_name = 'Windows 10 Pro'")}
    assert win10
    assert set(_device_ids(client.get("/devices", params={"os": "Windows 10 Pro", "per_page": 500}).text)) == win10
    # Every device of the generated city was scanned; none came from a register, directory or sweep.
    assert len(_device_ids(client.get("/devices?source=scanned&per_page=500").text)) == 40
    for source in ("register", "directory", "discovered"):
        assert "No device matches these filters" in client.get(f"/devices?source={source}").text
    # A register row tied to a device: that device (only) is known from the register.
    db = tmp_path / "city.db"
    shutil.copy(city.database, db)
    store = Store(db)
    with store.tx():
        store.put_asset({"key": "serial:SN000005", "serial": "SN000005", "device_id": 6,
                         "source": "register.csv", "source_row": 2, "imported_at": "2026-10-01T00:00:00+00:00"})
    store.close()
    with _client(create_app(report_city.city_config(db), today=lambda: AS_OF)) as c:
        assert _device_ids(c.get("/devices?source=register").text) == [6]
        rows = list(csv.DictReader(io.StringIO(c.get("/devices.csv?source=register").text)))
    assert [r["known from"] for r in rows] == ["scanned register"]


def test_device_list_sorts_and_pages(city, client):
    counts = dict(_sql(city, "select device_id, count(*) from findings where resolved_at is null group by device_id"))
    ids = _device_ids(client.get("/devices?sort=findings&order=desc&per_page=500").text)
    shown = [counts.get(i, 0) for i in ids]
    assert shown == sorted(shown, reverse=True) and len(ids) == 40
    first = _device_ids(client.get("/devices?sort=address&per_page=25").text)
    second = _device_ids(client.get("/devices?sort=address&per_page=25&page=2").text)
    assert len(first) == 25 and len(second) == 15 and not set(first) & set(second)
    assert client.get("/devices?per_page=25&page=3").status_code == 404


def test_csv_is_the_filtered_view_every_page(city, client):
    r = client.get("/devices.csv", params={"kind": "workstation", "per_page": 25})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    expected = {r[0] for r in _sql(city, "select id from devices where kind = 'workstation'")}
    assert {int(x["id"]) for x in rows} == expected and len(rows) > 25
    # The hostile host name is a text cell, never a formula or markup a spreadsheet runs.
    for row in rows:
        assert not row["device"].startswith(("=", "+", "-", "@"))


def test_device_page_escapes_device_text_and_shows_history(city, client):
    hostile_id = _sql(city, "select id from devices where hostname = ?", [report_city.HOSTILE])[0][0]
    page = client.get(f"/devices/{hostile_id}").text
    assert report_city.HOSTILE not in page and "<script>alert" not in page
    assert str(escape(report_city.HOSTILE)) in page
    open_n, resolved_n = _sql(city, "select sum(resolved_at is null), sum(resolved_at is not null) from findings "
                                    "where device_id = ?", [hostile_id])[0]
    assert f"{open_n} open, {resolved_n} resolved" in page
    first_seen = _sql(city, "select min(first_seen) from findings where device_id = ?", [hostile_id])[0][0]
    assert first_seen[:10] in page
    assert "Refresh plan" in page and "Replacement due" in page
    # Its check history: the latest scans that tried it, newest first.
    scans = [r[0] for r in _sql(city, "select scan_id from observations where device_id = ? "
                                      "order by scan_id desc limit 12", [hostile_id])]
    table = page[page.index('<table id="checks">'):]
    table = table[:table.index("</table>")]
    import re

    assert [int(x) for x in re.findall(r"<tr><td>(\d+)</td>", table)] == scans
    # The list escapes it as well.
    listing = client.get("/devices?per_page=500").text
    assert "<script>alert" not in listing and str(escape(report_city.HOSTILE)) in listing


@pytest.mark.parametrize(("url", "code", "words"), [
    ("/devices/999999", 404, "no device 999999"),
    ("/devices/abc", 404, "a device id is a number"),
    ("/devices/1%20or%201=1", 404, "a device id is a number"),
    (f"/devices?per_page={MAX_PAGE_SIZE + 1}", 400, "per_page must be between"),
    ("/devices?per_page=99999999999999999999", 400, "per_page must be a whole number"),
    ("/devices?page=-1", 400, "page must be a whole number"),
    ("/devices?sort=id;drop", 400, "sort must be one of"),
    ("/devices?order=sideways", 400, "order must be asc or desc"),
    ("/devices?status=broken", 400, "status must be one of"),
    ("/devices?severity=bad", 400, "severity must be one of"),
    ("/devices?source=rumour", 400, "source must be one of"),
    ("/devices?q=" + "x" * 201, 400, "longer than 200"),
    ("/devices?colour=red", 400, "unknown filter"),
    ("/devices.csv?per_page=0", 400, "per_page must be between"),
    ("/?refresh=1", 400, "takes no query parameters"),
    ("/nowhere", 404, "Not found"),
])
def test_bad_input_gets_a_clear_4xx(client, url, code, words):
    r = client.get(url)
    assert r.status_code == code, r.text
    assert words in r.text and "Traceback" not in r.text
    assert r.headers["content-security-policy"].startswith("default-src 'self'")


def test_security_headers_and_no_inline_script_or_remote_asset(client):
    for url in ("/", "/devices", "/devices/1", "/devices/999999", "/static/board.css"):
        r = client.get(url)
        h = r.headers
        assert "default-src 'self'" in h["content-security-policy"]
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert h["x-content-type-options"] == "nosniff" and h["referrer-policy"] == "no-referrer"
        assert "<script" not in r.text and "style=" not in r.text and "<style" not in r.text
        assert "http://" not in r.text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "https://" not in r.text


def test_nothing_but_get(client):
    assert client.head("/devices").status_code == 200
    for method in ("post", "put", "delete", "patch"):
        r = client.request(method.upper(), "/devices")
        assert r.status_code == 405 and "Traceback" not in r.text


def test_the_board_writes_nothing(city, client):
    before = Path(city.database).read_bytes()
    for url in ("/", "/devices", "/devices.csv", "/devices/1", "/devices/999999"):
        client.get(url)
    assert Path(city.database).read_bytes() == before


def test_missing_newer_and_foreign_databases_get_a_clear_page(tmp_path: Path, city):
    missing = report_city.city_config(tmp_path / "none.db")
    with _client(create_app(missing, today=lambda: AS_OF), raise_server_exceptions=False) as c:
        r = c.get("/devices")
    assert r.status_code == 503 and "no database at" in r.text and "Traceback" not in r.text

    newer = tmp_path / "newer.db"
    shutil.copy(city.database, newer)
    conn = sqlite3.connect(newer)
    conn.execute("update meta set value = ? where key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    conn.commit()
    conn.close()
    with _client(create_app(report_city.city_config(newer), today=lambda: AS_OF),
                    raise_server_exceptions=False) as c:
        r = c.get("/")
    assert r.status_code == 503 and "newer than this itaudit" in r.text

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with _client(create_app(report_city.city_config(junk), today=lambda: AS_OF),
                    raise_server_exceptions=False) as c:
        r = c.get("/devices/1")
    assert r.status_code == 503 and "cannot be read" in r.text and "Traceback" not in r.text


def test_serve_refuses_a_non_loopback_address(tmp_path: Path, city):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[cities.springfield]\nname = "Springfield"\ndatabase = "{city.database}"\n')
    for host in ("0.0.0.0", "192.0.2.10", "::"):
        r = CliRunner().invoke(cli, ["serve", "-c", str(cfg), "--host", host])
        assert r.exit_code != 0 and "key 'board.tls_cert'" in r.output and "needs TLS" in r.output, r.output
    r = CliRunner().invoke(cli, ["serve", "-c", str(tmp_path / "missing.toml")])
    assert r.exit_code != 0 and "Traceback" not in r.output
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = CliRunner().invoke(cli, ["serve", "-c", str(cfg), "--port", str(port)])
    assert r.exit_code != 0 and f"cannot listen on 127.0.0.1:{port}" in r.output, r.output


def test_loopback_addresses():
    assert loopback("127.0.0.1") and loopback("127.0.0.2") and loopback("::1") and loopback("localhost")
    assert not loopback("0.0.0.0") and not loopback("10.0.0.1") and not loopback("::")
    assert not loopback("no-such-host.invalid")


def test_an_unexpected_error_is_a_plain_500_and_a_locked_database_a_503(city, monkeypatch):
    import reports.model

    def boom(*args, **kwargs):
        raise RuntimeError("internal detail /secret/path")

    monkeypatch.setattr(reports.model, "build_monthly", boom)
    with _client(create_app(city, today=lambda: AS_OF), raise_server_exceptions=False) as c:
        r = c.get("/")
        assert r.status_code == 500 and "could not show this page" in r.text
        assert "/secret/path" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(reports.model, "build_monthly", locked)
    with _client(create_app(city, today=lambda: AS_OF), raise_server_exceptions=False) as c:
        r = c.get("/")
        assert r.status_code == 503 and "busy" in r.text and "database is locked" not in r.text


def test_a_foreign_host_name_is_refused(city, client):
    """DNS rebinding: a page on evil.example that points its name at 127.0.0.1 cannot read the board."""
    r = client.get("/devices", headers={"host": "evil.example:8765"})
    assert r.status_code == 400 and "answers only to the names" in r.text and "<table" not in r.text
    assert r.headers["x-content-type-options"] == "nosniff"
    for ok in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765", "LOCALHOST"):
        assert client.get("/devices", headers={"host": ok}).status_code == 200, ok
    for bad in ("", "127.0.0.1.evil.example", "[::1", "evil.example"):
        assert client.get("/devices", headers={"host": bad}).status_code == 400, bad
