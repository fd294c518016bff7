"""Scores are 0-100 (100 best) and every lost point traces to a finding."""

from __future__ import annotations

import pytest

from itaudit.model import Finding, Severity, Status
from itaudit.score import city_score, criticality_weight, device_score


def F(check_id: str, status: str, severity: str) -> Finding:
    return Finding(
        check_id=check_id,
        status=Status(status),
        severity=Severity(severity),
        title=check_id,
        summary=f"{check_id} summary",
    )


def test_device_score_sums_severity_points():
    s = device_score(
        [
            F("EOL-001", "fail", "high"),
            F("PATCH-004", "fail", "medium"),
            F("SEC-006", "pass", "medium"),
            F("SEC-008", "unknown", "high"),
        ],
        label="pc1",
    )
    assert s.score == 100 - 20 - 8
    assert [(i.check_id, i.points) for i in s.items] == [("EOL-001", 20), ("PATCH-004", 8)]
    assert (s.failed, s.passed, s.unknown) == (1 + 1, 1, 1)
    assert s.why()[0].startswith("−20.0: EOL-001") and "could not be judged" in s.why()[-1]


def test_criticality_weights_and_floor_keeps_items_traceable():
    assert criticality_weight(["public-safety", "finance"]) == 1.5
    assert criticality_weight(["unknown-tag"]) == 1.0
    s = device_score(
        [F("EOL-001", "fail", "critical"), F("VULN-001", "fail", "critical"), F("SEC-004", "fail", "high")],
        ["public-safety"],
    )
    assert s.score == 0
    assert sum(i.points for i in s.items) == pytest.approx(100)
    assert s.weight == 1.5


def test_dict_findings_and_custom_weights():
    s = device_score(
        [{"check_id": "HW-001", "status": "fail", "severity": "medium", "title": "old"}],
        ["water"],
        weights={"water": 2.0, "default": 1.0},
    )
    assert s.score == 100 - 16


def test_city_score_is_mean_and_aggregates_by_check():
    a = device_score([F("EOL-001", "fail", "high")], label="a")
    b = device_score([F("EOL-001", "fail", "high"), F("HW-001", "fail", "medium")], label="b")
    c = device_score([], label="c")
    city = city_score([a, b, c], label="springfield")
    assert city.score == pytest.approx(round((80 + 72 + 100) / 3, 1))
    eol = city.items[0]
    assert (eol.check_id, eol.count, eol.points) == ("EOL-001", 2, pytest.approx(40 / 3, abs=0.01))
    assert sum(i.points for i in city.items) == pytest.approx(100 - city.score, abs=0.1)
    assert "on 2 devices" in city.why()[0]
    assert city_score([]).score == 100


def test_city_line_names_the_worst_severity_among_its_devices():
    """VULN-001 is high by default and critical where ransomware uses the flaw: the city's "why
    this score" line for it says critical when any device's finding is critical, whatever the order."""
    high = {"check_id": "VULN-001", "title": "t", "severity": "high", "status": "fail"}
    critical = {**high, "severity": "critical"}
    for order in ([high, critical], [critical, high]):
        city = city_score([device_score([f]) for f in order])
        assert [(i.check_id, i.severity, i.count) for i in city.items] == [("VULN-001", "critical", 2)]
