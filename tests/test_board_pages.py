"""The status board's further pages: the age and software-support filters, the worklist, the
report files, discovery results, a device's facts with their source and its raw evidence.

Over the synthetic city of tests/report_city.py (real store API, a hostile host name) plus a
device from the Debian 12 probe case (tests/fixtures/linux/debian-12, parsed by the
real parser), a discovery sweep and an asset-register row, through Starlette's TestClient.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest
import report_city
from markupsafe import escape
from starlette.testclient import TestClient
from test_board import _device_ids, _sql

from collectors.linux import parse_linux
from itaudit import rules
from itaudit.model import CollectResult, ResultStatus, Target
from itaudit.store import Store
from reports.board import create_app
from reports.worklist import build_worklist

AS_OF = dt.date(2026, 10, 25)
FIX = Path(__file__).parent / "fixtures" / "linux" / "debian-12"
HOSTILE_BANNER = 'SSH-2.0-<img src=x onerror=alert(2)>"&'


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("board-pages")
    city, store = report_city.build(root / "city.db", n=30, months=6)
    try:
        # A device scanned with a real probe's output, kept with its evidence.
        scan_id = store.begin_scan(city.id, AS_OF, 1, now="2026-10-21T02:00:00+00:00")
        target = Target(address="10.77.0.5", protocol="ssh", city_id=city.id, name="records-db")
        facts = parse_linux((FIX / "probe.txt").read_bytes())
        store.record_result(scan_id, CollectResult(target, ResultStatus.OK, facts=facts), [],
                            now="2026-10-21T02:00:05+00:00")
        store.finish_scan(scan_id, now="2026-10-21T02:01:00+00:00")
        device = store.find_device(address="10.77.0.5")
        assert device is not None
        # Its register row, and a sweep that saw it (its real banner) and an unmanaged, hostile one.
        store.put_asset({"key": "row-7", "address": "10.77.0.5", "purchase_date": "2018-03-01", "cost": 5400.0,
                         "department": "Clerk", "device_id": device["id"], "source": "assets.csv", "source_row": 7,
                         "imported_at": "2026-09-01T10:00:00+00:00"})
        sweep = store.begin_discovery(city.id, ["10.77.0.0/24"], 256, now="2026-10-22T01:00:00+00:00")
        store.record_sighting(sweep, {"address": "10.77.0.5", "open_ports": [22], "managed": True, "protocol": "ssh",
                                      "port": 22, "device_id": device["id"], "guess": "Linux server",
                                      "ssh_banner": (FIX / "banner.txt").read_text().strip()},
                              now="2026-10-22T01:00:03+00:00")
        store.record_sighting(sweep, {"address": "10.77.0.99", "open_ports": [22, 9100], "managed": False,
                                      "guess": "printer", "ssh_banner": HOSTILE_BANNER},
                              now="2026-10-22T01:00:04+00:00")
        store.finish_discovery(sweep, now="2026-10-22T01:05:00+00:00")
    finally:
        store.close()
    reports = root / "reports"
    (reports / "2026-10").mkdir(parents=True)
    (reports / "2026-10" / f"{city.id}-monthly-2026-10.html").write_text(
        "<html><head><style>h1{color:#123}</style></head><body><h1>Summary</h1></body></html>")
    (reports / "2026-10" / f"{city.id}-worklist-2026-10-25.csv").write_text("rank,device\n1,a\n")
    (reports / "2026-10" / ".hidden.html").write_text("no")
    (reports / "2026-10" / "notes.sh").write_text("echo no")
    (reports / "2026-10" / "two words.html").write_text("<p>a name the board does not serve</p>")
    (root / "outside.html").write_text("<p>outside the report folder</p>")
    os.symlink(root / "outside.html", reports / "2026-10" / "link.html")
    city.reports = reports  # type: ignore[attr-defined]
    return city


@pytest.fixture(scope="module")
def client(city):
    app = create_app(city, today=lambda: AS_OF, reports_dir=city.reports)
    with TestClient(app, base_url="http://127.0.0.1:8765", raise_server_exceptions=False) as c:
        yield c




def _ages(city) -> dict[int, float | None]:
    """Each device's age on AS_OF from the database's own dates, read here with SQL."""
    out = {}
    for device_id, purchase, made, bios in _sql(city, """
            select d.id, d.purchase_date, json_extract(o.facts, '$.hardware.manufacture_date'),
                   json_extract(o.facts, '$.hardware.bios_date')
            from devices d left join observations o on o.id = (select max(id) from observations
                 where device_id = d.id and facts is not null)"""):
        day = purchase or made or bios
        out[device_id] = (AS_OF - dt.date.fromisoformat(day[:10])).days / 365.25 if day else None
    return out


def test_age_filter_matches_the_database(city, client):
    ages = _ages(city)
    assert any(a is None for a in ages.values()) and sum(a is not None and a >= 5 for a in ages.values()) >= 3
    for value, want in (("5+", lambda a: a is not None and a >= 5), ("0-3", lambda a: a is not None and a < 3),
                        ("3-5", lambda a: a is not None and 3 <= a < 5), ("unknown", lambda a: a is None)):
        page = client.get("/devices", params={"age": value, "per_page": 500}).text
        assert sorted(_device_ids(page)) == sorted(d for d, a in ages.items() if want(a)), value
    # Sorted by age, oldest first when descending; unknown ages last either way.
    shown = _device_ids(client.get("/devices?sort=age&order=desc&per_page=500").text)
    known = [ages[d] for d in shown if ages[d] is not None]
    assert known == sorted(known, reverse=True) and all(ages[d] is None for d in shown[len(known):])
    # The same rule as the refresh plan and HW-001 (rules.age_years).
    assert rules.age_years(dt.date(2020, 10, 25), AS_OF) == pytest.approx(6.0, abs=0.01)


def test_software_support_filter_matches_the_verdicts(city, client):
    eol = {d for (d,) in _sql(city, "select distinct device_id from findings where check_id = 'EOL-001' "
                                    "and resolved_at is null")}
    assert eol
    page = client.get("/devices", params={"lifecycle": "eol", "per_page": 500}).text
    assert sorted(_device_ids(page)) == sorted(eol)
    supported = {d for (d,) in _sql(city, """select d.id from devices d join check_results c
        on c.scan_id = d.last_scan_id and c.device_id = d.id and c.check_id = 'EOL-001' and c.status = 'pass'
        where not exists (select 1 from findings f where f.device_id = d.id and f.check_id like 'EOL-%'
                          and f.resolved_at is null)""")}
    assert supported
    page = client.get("/devices", params={"lifecycle": "supported", "per_page": 500}).text
    assert sorted(_device_ids(page)) == sorted(supported)
    # The CSV of the view has the same rows and says the age and lifecycle of each.
    lines = client.get("/devices.csv", params={"lifecycle": "eol"}).text.strip().splitlines()
    assert len(lines) == len(eol) + 1 and lines[0].endswith("age (years),age counted from,lifecycle")
    assert all(line.endswith(",eol") for line in lines[1:])


def test_worklist_is_the_report_list_narrowed_by_the_same_filters(city, client):
    store = Store(city.database, readonly=True)
    try:
        wl = build_worklist(city, store, as_of=AS_OF)
    finally:
        store.close()
    page = client.get("/worklist?per_page=500").text
    order = [int(x) for x in re.findall(r'<h3><a href="/devices/(\d+)">', page)]
    assert order == [d.device_id for d in wl.devices]  # the report's risk order
    assert f"{sum(len(d.items) for d in wl.devices)} findings" in page
    police = {d for (d,) in _sql(city, "select id from devices where department = 'Police'")}
    page = client.get("/worklist", params={"department": "Police", "severity": "high", "per_page": 500}).text
    got = [int(x) for x in re.findall(r'<h3><a href="/devices/(\d+)">', page)]
    high = {d.device_id for d in wl.devices if any(i.severity in ("high", "critical") for i in d.items)}
    assert got == [d.device_id for d in wl.devices if d.device_id in police & high] and got
    # The hostile device's name is text on the worklist too.
    assert "<script>alert" not in client.get("/worklist?per_page=500").text


def test_device_page_facts_with_source_and_time_and_raw_evidence(city, client):
    (device_id,) = _sql(city, "select id from devices where address = '10.77.0.5'")[0]
    page = client.get(f"/devices/{device_id}").text
    facts = page[page.index('<table id="facts">'):page.index("</table>", page.index('<table id="facts">'))]
    assert "Debian GNU/Linux" in facts and "SSH (linux-probe)" in facts
    facts_row = parse_linux((FIX / "probe.txt").read_bytes())
    assert (facts_row.collected_at or "")[:16].replace("T", " ") in facts
    # The raw probe sections it was read from, escaped, and every stored fact.
    for name, text in facts_row.evidence.items():
        assert f"<summary>{name}</summary>" in page and str(escape(text)) in page
    assert page.count('id="facts-json"') == 1 and page.count('Raw evidence') == 1
    # What the register and the sweep say of it.
    assert "assets.csv, row 7" in page and "2018-03-01" in page
    assert "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u7" in page and "/discovery?run=" in page
    # The hostile device: its name, facts and evidence are text.
    hostile = client.get("/devices/1").text
    assert "<script>alert" not in hostile and "onerror=alert(1)>" not in hostile
    assert "&lt;script&gt;" in hostile


def test_discovery_page_shows_sweeps_and_escapes_banners(city, client):
    page = client.get("/discovery").text
    assert "10.77.0.0/24" in page and "10.77.0.99" in page and "printer" in page
    assert "<img src=x" not in page and str(escape(HOSTILE_BANNER)) in page
    unmanaged = client.get("/discovery?show=unmanaged").text
    assert "10.77.0.99" in unmanaged and "10.77.0.5<" not in unmanaged
    (sweep,) = _sql(city, "select max(id) from discoveries")[0]
    assert client.get(f"/discovery?run={sweep}&show=managed").text.count("<tr>") == 1 + 1 + 1  # sweeps, header, one


def test_reports_are_listed_and_served_safely(city, client):
    page = client.get("/reports").text
    assert f"{city.id}-monthly-2026-10.html" in page and f"{city.id}-worklist-2026-10-25.csv" in page
    assert ".hidden" not in page and "notes.sh" not in page and "link.html" not in page and "two words" not in page
    r = client.get(f"/reports/open/2026-10/{city.id}-monthly-2026-10.html")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "sandbox" in r.headers["content-security-policy"] and "script" not in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY" and "<h1>Summary</h1>" in r.text
    r = client.get(f"/reports/download/2026-10/{city.id}-worklist-2026-10-25.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment")
    assert r.headers["content-security-policy"].startswith("default-src 'self'")


@pytest.mark.parametrize("url, code", [
    ("/devices?age=old", 400), ("/devices?age=9-3", 400), ("/devices?age=100%2B", 400), ("/devices?age=5-5", 400),
    ("/devices?lifecycle=dead", 400), ("/worklist?sort=name", 400), ("/worklist?per_page=501", 400),
    ("/worklist?page=999", 404), ("/worklist?colour=red", 400), ("/worklist?age=x", 400),
    ("/discovery?run=abc", 400), ("/discovery?run=999999", 404), ("/discovery?show=all", 400),
    ("/discovery?page=99", 404), ("/discovery?per_page=100000", 400), ("/discovery?x=1", 400),
    ("/reports?x=1", 400), ("/reports/open/2026-10/.hidden.html", 404), ("/reports/open/2026-10/notes.sh", 404),
    ("/reports/open/2026-10/link.html", 404), ("/reports/open/../outside.html", 404),
    ("/reports/open/2026-10/..%2F..%2Foutside.html", 404), ("/reports/open/%2Fetc%2Fpasswd", 404),
    ("/reports/open/2026-10/missing.html", 404), ("/reports/view/2026-10/x.html", 404),
    ("/reports/open/2026-10", 404),
])
def test_bad_input_on_the_new_pages_gets_a_clear_4xx(client, url, code):
    r = client.get(url)
    assert r.status_code == code, r.text
    assert "Traceback" not in r.text and "outside the report folder" not in r.text and "root:" not in r.text


def test_no_report_folder_is_an_empty_list(city):
    with TestClient(create_app(city, today=lambda: AS_OF), base_url="http://127.0.0.1") as c:
        page = c.get("/reports").text
        assert "No report folder is known" in page
        assert c.get("/reports/open/x.html").status_code == 404


def test_probe_names_read_as_their_protocol():
    from reports.board_pages import protocol_words

    assert protocol_words("ssh:linux-probe", "scan") == "SSH (linux-probe)"
    assert protocol_words("snmp:system", "scan") == "SNMP (system)"
    assert protocol_words("winrm:windows-probe", "scan") == "WinRM (windows-probe)"
    assert protocol_words("ldap:directory", "scan") == "directory"
    assert protocol_words(None, "SNMP scan") == "SNMP scan"
