"""`itaudit data update` for CVE and OSV records, against recorded records served on loopback.

A real HTTP server (http.server on 127.0.0.1) serves the real records of tests/fixtures/vuln
with ETags and 304s, so the conditional requests, the verification and the snapshots run as
they would against the CVE Services and OSV APIs. Nothing touches the network.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from itaudit import datatools, vulnupdate
from itaudit.errors import KnowledgeError
from itaudit.knowledge import Knowledge

FIX = Path(__file__).resolve().parent / "fixtures" / "vuln"
CVES = ["CVE-2024-3400", "CVE-2024-9474", "CVE-2022-42475", "CVE-2018-14847"]
# Every shipped distribution record (Ubuntu, AlmaLinux), served under its OSV ID.
OSV = json.loads((FIX / "osv" / "SOURCES.json").read_text(encoding="utf-8"))["records"]


class Feed:
    """What the server answers: path -> body, plus the requests it saw."""

    def __init__(self):
        self.bodies: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        for cve in CVES:
            for folder in ("cve5", "cvelist"):
                p = FIX / folder / f"{cve}.json"
                if p.exists():
                    self.bodies[f"/api/cve/{cve}"] = p.read_bytes()
        for osv_id, src in OSV.items():
            self.bodies[f"/v1/vulns/{osv_id}"] = (FIX / "osv" / src.get("file", f"{osv_id}.json")).read_bytes()


class Handler(BaseHTTPRequestHandler):
    feed: Feed

    def do_GET(self):  # noqa: N802 - http.server's name
        inm = self.headers.get("If-None-Match")
        self.feed.requests.append((self.path, inm))
        body = self.feed.bodies.get(self.path)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if inm == etag:
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def server():
    feed = Feed()
    handler = type("H", (Handler,), {"feed": feed})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield feed, base
    httpd.shutdown()
    httpd.server_close()


def run(tmp: Path, base: str, day=dt.date(2026, 12, 1), cves=CVES):
    get = functools.partial(vulnupdate.http_get, loopback_http=True, timeout=5)
    return vulnupdate.update_vulns(tmp, get=get, today=day, cves=cves, cve_api=base + "/api/cve/{cve}",
                                   osv_api=base + "/v1/vulns/{id}")


def test_first_update_fetches_verifies_and_snapshots(server, tmp_path):
    feed, base = server
    rep = run(tmp_path, base)
    assert rep.ok and rep.fetched == len(CVES) + len(OSV) and rep.snapshot == "2026-12-01"
    assert (tmp_path / "snapshots" / "vulns-2026-12-01.json").exists()
    doc = json.loads((tmp_path / "vulns.json").read_text())
    assert doc["cves"]["CVE-2024-3400"]["source"]["path"].endswith("/api/cve/CVE-2024-3400")
    # Debian's tracker entries are not OSV records: never asked of the OSV API.
    assert not [p for p, _ in feed.requests if "/v1/vulns/DSA-" in p or "/v1/vulns/DLA-" in p]
    # The AlmaLinux advisories came back through the OSV API and still judge the same way.
    kn_data = Knowledge.load(tmp_path).vulns()
    assert kn_data.assess_packages("CVE-2021-4034", "AlmaLinux:8", {"polkit": "0.115-13.el8_5.1"}).status == "affected"
    assert kn_data.snapshot == "2026-12-01"
    assert kn_data.assess("CVE-2024-3400", "pan-os", "10.2.9").status == "affected"


def test_second_update_is_incremental(server, tmp_path):
    feed, base = server
    run(tmp_path, base)
    feed.requests.clear()
    rep = run(tmp_path, base, day=dt.date(2026, 12, 2))
    assert rep.ok and rep.fetched == 0 and rep.unchanged == len(CVES) + len(OSV)
    assert all(inm for _, inm in feed.requests)  # every request was conditional
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["vulns-2026-12-01.json",
                                                                          "vulns-2026-12-02.json"]


def test_truncated_or_tampered_records_are_refused_and_the_old_copy_kept(server, tmp_path):
    feed, base = server
    run(tmp_path, base)
    good = (tmp_path / "records" / "cve" / "CVE-2024-3400.json").read_bytes()
    feed.bodies["/api/cve/CVE-2024-3400"] = good[: len(good) // 2]  # cut mid-transfer
    other = json.loads(feed.bodies["/api/cve/CVE-2024-9474"])
    other["cveMetadata"]["cveId"] = "CVE-2024-0000"  # a record swapped for another
    feed.bodies["/api/cve/CVE-2024-9474"] = json.dumps(other).encode()
    rep = run(tmp_path, base, day=dt.date(2026, 12, 3))
    assert not rep.ok
    assert "truncated" in rep.refused["CVE-2024-3400"] and "CVE-2024-0000" in rep.refused["CVE-2024-9474"]
    assert (tmp_path / "records" / "cve" / "CVE-2024-3400.json").read_bytes() == good
    # Not every record checked: the data keeps its older date.
    assert rep.snapshot == "2026-12-01"


def test_missing_record_is_counted_not_fatal(server, tmp_path):
    _, base = server
    rep = run(tmp_path, base, cves=["CVE-2099-0001"])
    assert rep.ok and rep.missing == 1


def test_https_only_outside_loopback():
    with pytest.raises(KnowledgeError, match="https only"):
        vulnupdate.http_get("http://example.org/x", {})
    with pytest.raises(KnowledgeError, match="https only"):
        vulnupdate.http_get("http://127.0.0.1:1/x", {})  # loopback http only when asked


def test_truncated_or_rolled_back_kev_feed_is_refused(tmp_path):
    feed = json.loads((Path(__file__).resolve().parents[1] / "itaudit" / "data" / "kev.json").read_text())
    real = {"count": len(feed["vulnerabilities"]), "dateReleased": "2026-11-30T00:00:00Z",
            "catalogVersion": "2026.11.30", "vulnerabilities": feed["vulnerabilities"]}
    cut = dict(real, vulnerabilities=real["vulnerabilities"][:100])
    with pytest.raises(KnowledgeError, match="truncated or tampered"):
        datatools.trim_kev(cut)
    old = dict(real, dateReleased="2024-01-01T00:00:00Z")

    def fetch(url):
        if url == datatools.KEV_FEED:
            return json.dumps(old).encode()
        raise OSError("offline")

    rep = datatools.update_data(tmp_path, fetch=fetch, products=["fortios"])
    assert "older than the one in use" in rep.failed["kev.json"]
    assert not (tmp_path / "kev.json").exists()
