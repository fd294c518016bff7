"""Framework data: every check mapped to NIST CSF 2.0 and CISA CPG 2.0 with a source and date;
identifiers checked against the shipped catalogs; templates and attestations as data."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from itaudit import frameworks as fw
from itaudit import plugins


@pytest.fixture(scope="module")
def registry():
    return plugins.load_checks()


def test_csf_catalog_is_the_106_csf_2_0_subcategories_with_its_source() -> None:
    cat = fw.csf_catalog()
    subs = cat["subcategories"]
    assert len(subs) == len(set(subs)) == 106  # CSF 2.0 has 106 subcategories (CSWP 29)
    assert all(fw.CSF_ID_RE.match(s) for s in subs)
    # Withdrawn CSF 1.1 identifiers are not in it; CSF 2.0-only ones are.
    assert "PR.AC-01" not in subs and "ID.AM-06" not in subs and "DE.CM-04" not in subs
    assert {"GV.OC-01", "PR.PS-02", "ID.AM-01", "RC.CO-04", "PR.DS-10"} <= set(subs)
    src = cat["source"]
    assert re.fullmatch(r"[0-9a-f]{40}", src["commit"]) and src["retrieved"]
    assert "oscal-content" in src["machine_readable"]
    assert set(cat["functions"]) == {"GV", "ID", "PR", "DE", "RS", "RC"}


def test_cpg_catalog_says_how_far_it_is_verified() -> None:
    cat = fw.cpg_catalog()
    ids = [g["id"] for g in cat["goals"]]
    assert len(ids) == len(set(ids)) == 34
    assert all(fw.CPG_ID_RE.match(i) for i in ids)
    assert cat["verification"] in ("verified", "secondary", "unverified")
    assert cat["verification_note"] and cat["retrieved"]
    # Goal function follows the number (1 Govern ... 6 Recover).
    for g in cat["goals"]:
        assert cat["functions"][g["id"][0]] == g["function"]


def test_every_registered_check_has_a_dated_sourced_mapping(registry) -> None:
    maps = fw.check_mappings()
    checks = maps["checks"]
    assert set(registry) <= set(checks), f"checks without a mapping: {sorted(set(registry) - set(checks))}"
    assert set(checks) <= set(registry), f"mappings for checks that do not exist: {sorted(set(checks) - set(registry))}"
    subs = set(fw.csf_catalog()["subcategories"])
    goals = {g["id"] for g in fw.cpg_catalog()["goals"]}
    verifications = set(maps["verification_values"])
    for cid, m in checks.items():
        assert m["csf"], f"{cid}: every check maps to at least one CSF 2.0 subcategory"
        for s in m["csf"]:
            assert fw.CSF_ID_RE.match(s), f"{cid}: {s} is not a CSF 2.0 subcategory ID"
            assert s in subs, f"{cid}: {s} is not in the shipped CSF 2.0 list"
        for g in m["cpg2"]:
            assert g in goals, f"{cid}: {g} is not a CPG 2.0 goal"
        assert m["csf_verification"] in verifications and m["cpg2_verification"] in verifications
        # An empty CPG list says "none"; a non-empty one carries the catalog's verification, never "verified"
        # while the catalog itself is only secondary.
        assert (m["cpg2_verification"] == "none") == (not m["cpg2"])
        if m["cpg2"]:
            assert m["cpg2_verification"] == fw.cpg_catalog()["verification"]
        dt.date.fromisoformat(m["date"])
        assert m["why"] and m["mapped_by"]


def test_shipped_templates_load_cleanly_and_ask_the_common_questions(registry) -> None:
    city = type("C", (), {"database": Path("/nonexistent/x.db")})()
    templates, problems = fw.templates_for(city, set(registry))
    assert problems == []
    by_id = {t.id: t for t in templates}
    assert set(by_id) == {"insurance", "cpg2"}
    ins = {q.id: q for q in by_id["insurance"].questions}
    for topic in ("EOL", "PATCH", "ENDPOINT", "ENCRYPT", "LAPS", "DEFAULT", "REMOTE", "INVENTORY", "MFA-REMOTE",
                  "BACKUP", "BACKUP-TEST", "IRP", "TRAINING"):
        assert f"INS-{topic}" in ins
    for person in ("INS-MFA-REMOTE", "INS-BACKUP-TEST", "INS-IRP", "INS-TRAINING"):
        assert ins[person].answered_by == "person" and not ins[person].checks
    assert all(q.checks for q in ins.values() if q.answered_by == "data")
    cpg = by_id["cpg2"]
    assert len(cpg.questions) == 34
    # The CPG template's checks are exactly the mapped ones (generated from the mappings, kept in step).
    maps = fw.check_mappings()["checks"]
    for q in cpg.questions:
        goal = q.cpg2[0]
        assert sorted(q.checks) == sorted(c for c, m in maps.items() if goal in m["cpg2"])
        assert q.answered_by == ("data" if q.checks else "person")


def _tpl(path: Path, questions: list, **extra) -> Path:
    path.write_text(json.dumps({"format": fw.TEMPLATE_FORMAT, "id": "my-insurer", "title": "Acme Mutual",
                                "questions": questions, **extra}))
    return path


def test_a_bad_template_question_is_named_not_dropped(registry, tmp_path: Path) -> None:
    p = _tpl(tmp_path / "t.json", [
        {"id": "Q1", "text": "Do you scan monthly?", "answered_by": "data"},
        {"id": "Q2", "text": "Unsupported OS?", "checks": ["EOL-001", "EOL-999"]},
        {"id": "Q3", "text": "MFA?", "answered_by": "person", "csf": ["PR.AA-03", "PR.AC-07"]},
        {"id": "Q3", "text": "again"},
        {"text": "no id"},
    ])
    tpl, problems = fw.load_template(p, set(registry))
    assert [q.id for q in tpl.questions] == ["Q1", "Q2", "Q3"]
    text = "\n".join(problems)
    assert "Q1: maps to no check" in text
    assert "Q2: names checks itaudit does not have (EOL-999)" in text
    assert "Q3: not NIST CSF 2.0 subcategories: PR.AC-07" in text
    assert "Q3: the id is used twice" in text and "question 5: has no \"id\"" in text
    assert tpl.questions[1].checks == ["EOL-001"]


@pytest.mark.parametrize("content,message", [
    ("not json", "not valid JSON"),
    ('{"format": "something-else"}', "not an evidence template"),
    ('{"format": "itaudit-evidence-template/1", "id": "BAD ID", "questions": [{"id": "a"}]}', "\"id\" must be"),
    ('{"format": "itaudit-evidence-template/1", "id": "ok", "questions": []}', "non-empty list"),
])
def test_a_file_that_is_not_a_template_is_a_clear_error(content: str, message: str, tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    p.write_text(content)
    with pytest.raises(fw.FrameworkError, match=message) as exc:
        fw.load_template(p, set())
    assert str(p) in str(exc.value)


def test_a_city_template_reusing_a_shipped_question_id_is_a_problem(registry, tmp_path: Path) -> None:
    p = _tpl(tmp_path / "t.json", [{"id": "INS-EOL", "text": "Dup", "checks": ["EOL-001"]},
                                   {"id": "ACME-1", "text": "New", "checks": ["HW-001"]}])
    city = type("C", (), {"database": tmp_path / "x.db",
                          "evidence": type("E", (), {"templates": (p,), "attestations": None})()})()
    templates, problems = fw.templates_for(city, set(registry))
    assert [t.id for t in templates] == ["insurance", "cpg2", "my-insurer"]
    assert [q.id for q in templates[-1].questions] == ["ACME-1"]
    assert any("INS-EOL: the id is already used by template insurance" in p for p in problems)


def test_attestations_append_and_the_newest_carries_forward(tmp_path: Path) -> None:
    path = tmp_path / "city" / "attestations.json"
    assert fw.load_attestations(path) == ([], [])
    for at, ans in (("2025-06-01", "no"), ("2026-03-01", "yes"), ("2026-12-01", "partly")):
        fw.record_attestation(path, fw.Attestation("INS-MFA-REMOTE", ans, "J. Doe", at, "policy doc"))
    assert path.stat().st_mode & 0o777 == 0o600
    atts, problems = fw.load_attestations(path)
    assert len(atts) == 3 and problems == []
    cur = fw.current_attestations(atts, dt.date(2026, 10, 25))
    assert cur["INS-MFA-REMOTE"].answer == "yes"  # the December one is after the as-of date
    assert cur["INS-MFA-REMOTE"].age_days(dt.date(2026, 10, 25)) == 238
    assert fw.current_attestations(atts, dt.date(2025, 5, 1)) == {}


def test_bad_attestation_rows_are_named_and_a_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"format": fw.ATTESTATION_FORMAT, "attestations": [
        {"question": "INS-IRP", "answer": "maybe", "by": "x", "at": "2026-01-01"},
        {"question": "INS-IRP", "answer": "yes", "by": "x", "at": "last week"},
        {"question": "INS-IRP", "answer": "yes", "at": "2026-01-01"},
        {"question": "INS-IRP", "answer": "yes", "by": "x", "at": "2026-01-01"},
    ]}))
    atts, problems = fw.load_attestations(path)
    assert len(atts) == 1 and len(problems) == 3
    assert all(str(path) in p for p in problems)
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(fw.FrameworkError, match="not an attestation file"):
        fw.load_attestations(other)
    with pytest.raises(fw.FrameworkError, match="not overwriting"):
        fw.record_attestation(other, fw.Attestation("INS-IRP", "yes", "x", "2026-01-01"))
    assert other.read_text() == '{"hello": 1}'
