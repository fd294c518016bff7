"""DATA-00x: need scan history on the DeviceRecord."""

from __future__ import annotations

import pytest
from checkhelp import ctx, facts, run

FULL_HOST = dict(
    software={"os_name": "Ubuntu", "os_version": "22.04.4"},
    patching={"last_patched": __import__("datetime").date(2026, 11, 1)},
    identity={"serial": "ABC123"},
)
CASES = [
    ("DATA-001", "fail", facts(scanned=False), ctx("server", last_successful_scan="2026-09-01T03:00:00Z")),
    ("DATA-001", "fail", facts(scanned=False), ctx("server", consecutive_failures=4, last_error="timeout")),
    ("DATA-001", "pass", facts(), ctx("server")),
    ("DATA-001", "unknown", facts(scanned=False), ctx("server")),
    (
        "DATA-002",
        "fail",
        facts(scanned=False),
        ctx("server", consecutive_failures=3, last_error="auth refused"),
    ),
    ("DATA-002", "pass", facts(), ctx("server", consecutive_failures=0)),
    ("DATA-002", "unknown", facts(), ctx("server")),
    ("DATA-003", "fail", facts(software={"os_name": "Ubuntu"}), ctx("server")),
    ("DATA-003", "pass", facts(**FULL_HOST), ctx("server")),
    (
        "DATA-003",
        "pass",
        facts(software={"firmware": "7.2.5"}, identity={"model": "FG-60F", "serial": "X"}),
        ctx("firewall"),
    ),
    ("DATA-003", "unknown", facts(scanned=False), ctx("server")),
]


@pytest.mark.parametrize(
    ("check_id", "status", "f", "c"), CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)]
)
def test_dataquality_cases(check_id, status, f, c):
    finding = run(check_id, f, c)
    assert finding.status.value == status, finding.summary
    if status == "unknown":
        assert "missing facts:" in finding.detail


def test_data002_reports_last_error_and_data003_reason():
    f = run(
        "DATA-002", facts(scanned=False), ctx("server", consecutive_failures=5, last_error="auth refused")
    )
    assert f.detail == "auth refused" and "5 scans" in f.summary
    g = facts(software={"os_name": "Ubuntu", "os_version": "22.04"})
    g.gaps["identity.serial"] = "dmidecode needs root"
    d = run("DATA-003", g, ctx("server"))
    assert "dmidecode needs root" in d.detail and "patching.last_patched" in d.detail
