"""How long `itaudit data update` takes for the CVE/OSV records (the goal: seconds, not minutes).

Serves the recorded records of tests/fixtures/vuln (123 CVE JSON 5 records, 86 OSV records:
Ubuntu and AlmaLinux)
from an HTTP server on loopback with ETags, then times three updates: the first (everything
new), a month with 10 changed records, and one with nothing changed (all 304). Wall time
and process CPU; network latency is not modelled (loopback), so the figures are the
client's own cost per record.

    python bench/vuln_update_speed.py
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from itaudit import vulnupdate  # noqa: E402

FIX = ROOT / "tests" / "fixtures" / "vuln"
BODIES: dict[str, bytes] = {}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = BODIES.get(self.path)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main() -> int:
    cves = []
    for folder in ("cve5", "cvelist"):
        for p in sorted((FIX / folder).glob("CVE-*.json")):
            BODIES[f"/api/cve/{p.stem}"] = p.read_bytes()
            cves.append(p.stem)
    osv = json.loads((FIX / "osv" / "SOURCES.json").read_text(encoding="utf-8"))["records"]
    for osv_id, src in osv.items():
        BODIES[f"/v1/vulns/{osv_id}"] = (FIX / "osv" / src.get("file", f"{osv_id}.json")).read_bytes()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    get = functools.partial(vulnupdate.http_get, loopback_http=True, timeout=10)
    with tempfile.TemporaryDirectory() as tmp:
        def run(day: int) -> tuple[float, float, vulnupdate.VulnUpdateReport]:
            w, c = time.perf_counter(), time.process_time()
            rep = vulnupdate.update_vulns(Path(tmp), get=get, today=dt.date(2026, 12, day), cves=cves,
                                          cve_api=base + "/api/cve/{cve}", osv_api=base + "/v1/vulns/{id}")
            return time.perf_counter() - w, time.process_time() - c, rep

        for label, day in (("first update (all new)", 1), ("a month later, 10 changed", 2), ("nothing changed", 3)):
            if day == 2:
                for cve in cves[:10]:  # a changed record: same content, new dateUpdated
                    rec = json.loads(BODIES[f"/api/cve/{cve}"])
                    rec["cveMetadata"]["dateUpdated"] = "2026-11-30T00:00:00.000Z"
                    BODIES[f"/api/cve/{cve}"] = json.dumps(rec).encode()
            wall, cpu, rep = run(day)
            print(f"{label:28} {len(cves) + 1} records: {wall:.2f} s wall, {cpu:.2f} s CPU; fetched {rep.fetched}, "
                  f"unchanged {rep.unchanged}, refused {len(rep.refused)}")
    httpd.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
