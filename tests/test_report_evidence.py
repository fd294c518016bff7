"""The evidence report: answers from the store's check results by one rule, devices and dates
behind them, attestations carried forward with their age, problems named, device text inert."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import report_city
from click.testing import CliRunner
from openpyxl import load_workbook

from itaudit import frameworks as fw
from itaudit.cli import cli
from itaudit.config import Evidence
from itaudit.model import CollectResult, DeviceFacts, Finding, ResultStatus, Severity, Status, Target
from itaudit.store import Store
from reports.evidence import build_evidence, write_evidence

AS_OF = dt.date(2026, 10, 25)
HOSTILE = report_city.HOSTILE + "\x07bell"

# device -> {check: status}; the answers below follow from these by the report's rule.
VERDICTS = {
    "alpha": {"EOL-001": "pass", "SEC-008": "pass", "NET-001": "pass", "VULN-001": "pass", "SEC-009": "fail"},
    "bravo": {"EOL-001": "fail", "SEC-008": "pass", "VULN-001": "fail"},
    HOSTILE: {"EOL-001": "unknown", "SEC-008": "pass", "VULN-001": "fail"},
}


def _city(tmp_path: Path, **evidence) -> tuple[object, Store]:
    db = tmp_path / "city" / "itaudit.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    city = report_city.city_config(db)
    city.evidence = Evidence(**evidence)
    store = Store(db)
    for month, day in ((9, 20), (10, 20)):
        now = f"2026-{month:02d}-{day}T09:00:00+00:00"
        scan = store.begin_scan(city.id, dt.date(2026, month, day), len(VERDICTS), now=now)
        for i, (name, verdicts) in enumerate(VERDICTS.items()):
            facts = DeviceFacts()
            facts.identity.hostname = name
            facts.identity.serial = f"SER{i:04d}"
            target = Target(address=f"10.9.0.{i + 1}", protocol="ssh", city_id=city.id, kind="workstation")
            findings = [Finding(check_id=c, status=Status(s), severity=Severity.HIGH, title=c,
                                summary=f"{c} on {name}: {s}") for c, s in verdicts.items()]
            store.record_result(scan, CollectResult(target, ResultStatus.OK, facts=facts), findings, now=now)
        store.finish_scan(scan, now=now)
    return city, store


def _q(rep, qid):
    return next(q for t in rep.templates for q in t.questions if q.id == qid)


def test_answers_follow_the_rule_with_numbers_devices_and_dates(tmp_path: Path) -> None:
    city, store = _city(tmp_path)
    rep = build_evidence(city, store, as_of=AS_OF)
    assert rep.scan_date == "2026-10-20" and rep.devices_counted == 3
    eol = _q(rep, "INS-EOL")  # one meets, one fails, one unknown -> partly
    assert (eol.answer, eol.tally.meets, eol.tally.fails, eol.tally.unchecked) == ("partly", 1, 1, 1)
    assert eol.basis == "1 of 3 devices meet this; 1 do not; 1 could not be checked."
    assert [(d.device, d.status, d.since) for d in eol.devices] == [
        ("bravo", "fail", "2026-09-20"), (HOSTILE, "unknown", "2026-10-20")]
    assert _q(rep, "INS-ENDPOINT").answer == "yes"  # all pass, full coverage
    assert _q(rep, "INS-DEFAULT").answer == "partly"  # all pass, but the checks cover part of it
    assert "cover only part" in _q(rep, "INS-DEFAULT").basis
    kev = _q(rep, "INS-KEV")
    assert (kev.answer, kev.tally.meets, kev.tally.fails) == ("partly", 1, 2)
    assert _q(rep, "INS-FIREWALL").answer == "unknown"  # no device has a SEC-006 result
    mfa = _q(rep, "INS-MFA-REMOTE")
    assert mfa.answer == "unknown" and mfa.attestation is None and "no one has recorded" in mfa.basis
    laps = _q(rep, "INS-LAPS")  # a person's question shows the related check's numbers beside it
    assert laps.answer == "unknown" and "SEC-009" in laps.related and "0 of 1 device meets" in laps.related
    fns = {f.code: f for f in rep.functions}
    assert fns["GV"].status == "not assessed" and fns["RS"].status == "not assessed"
    assert fns["PR"].status == "assessed" and "PR.PS-02" in fns["PR"].with_data
    assert rep.problems == []


def test_attestations_are_carried_forward_with_age_and_problems_named(tmp_path: Path) -> None:
    city, store = _city(tmp_path)
    path = fw.attestations_path(city)
    assert path == tmp_path / "city" / "attestations.json"  # beside the database by default
    for q, ans, at in (("INS-MFA-REMOTE", "yes", "2026-07-17"), ("INS-IRP", "yes", "2025-06-01"),
                       ("INS-NOPE", "no", "2026-01-01"), ("INS-TRAINING", "no", "2026-11-01"),
                       ("INS-EOL", "yes", "2026-10-01")):
        fw.record_attestation(path, fw.Attestation(q, ans, "Pat Lee, IT manager", at, "see policy IT-7"))
    rep = build_evidence(city, store, as_of=AS_OF)
    mfa = _q(rep, "INS-MFA-REMOTE")
    assert mfa.answer == "yes" and mfa.attestation["age_days"] == 100 and not mfa.attestation["stale"]
    assert mfa.attestation["by"] == "Pat Lee, IT manager" and "100 days ago" in mfa.basis
    irp = _q(rep, "INS-IRP")  # shown with its age, but a year-old answer no longer counts
    assert irp.attestation["stale"] and irp.attestation["age_days"] == 511
    assert irp.answer == "unknown" and "older than a year" in irp.basis
    assert _q(rep, "INS-TRAINING").answer == "unknown"  # dated after the report: not used
    eol = _q(rep, "INS-EOL")  # a person never overrides a measured answer
    assert eol.answer == "partly" and eol.attestation["answer"] == "yes"
    text = "\n".join(rep.problems)
    assert "INS-IRP: the attestation by Pat Lee, IT manager dated 2025-06-01 is 511 days old" in text
    assert "unknown question INS-NOPE" in text
    assert "dated after 2026-10-25" in text and "INS-TRAINING" in text
    # An attested person's question counts as evidence in the CSF view.
    assert "PR.AA-03" in {f.code: f for f in rep.functions}["PR"].attested


def test_a_city_template_question_without_a_check_is_shown_unknown(tmp_path: Path) -> None:
    tpl = tmp_path / "acme.json"
    tpl.write_text(json.dumps({"format": fw.TEMPLATE_FORMAT, "id": "acme", "title": "Acme Mutual 2027", "questions": [
        {"id": "ACME-1", "text": "Do you run a SIEM?", "answered_by": "data"},
        {"id": "ACME-2", "text": "Any unsupported systems?", "checks": ["EOL-001"]}]}))
    city, store = _city(tmp_path, templates=(tpl,))
    rep = build_evidence(city, store, as_of=AS_OF)
    assert [t.id for t in rep.templates][-1] == "acme"
    a1 = _q(rep, "ACME-1")
    assert a1.answer == "unknown" and "maps to no check" in a1.basis
    assert any("ACME-1: maps to no check" in p for p in rep.problems)
    assert _q(rep, "ACME-2").answer == "partly"


def test_no_scan_yet_is_unknown_everywhere(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    city = report_city.city_config(db)
    rep = build_evidence(city, Store(db), as_of=AS_OF)
    assert not rep.has_data
    assert all(q.answer == "unknown" for t in rep.templates for q in t.questions)
    assert all(f.status == "not assessed" for f in rep.functions)


def test_files_escape_device_text(tmp_path: Path) -> None:
    city, store = _city(tmp_path)
    paths = write_evidence(city, store, as_of=AS_OF, out_dir=tmp_path / "out", formats=("html", "xlsx", "json"))
    html, xlsx, js = paths
    page = html.read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert html.stat().st_mode & 0o777 == 0o600
    wb = load_workbook(xlsx)
    assert {"insurance", "cpg2", "Devices concerned", "CSF functions", "Check mappings", "Problems"} <= set(
        wb.sheetnames)
    devs = [row for row in wb["Devices concerned"].iter_rows(values_only=True)]
    hostile = [r for r in devs if r[2] and "script" in r[2]]
    assert hostile and hostile[0][2] == report_city.HOSTILE + "bell"  # control character dropped, text kept
    data = json.loads(js.read_text())
    ins = next(t for t in data["templates"] if t["id"] == "insurance")
    assert ins["answers"]["yes"] >= 1 and data["as_of"] == "2026-10-25"
    with pytest.raises(ValueError, match="unknown report format"):
        write_evidence(city, store, as_of=AS_OF, out_dir=tmp_path, formats=("docx",))


def test_cli_attest_then_report(tmp_path: Path) -> None:
    city, store = _city(tmp_path)
    store.close()
    cfg = tmp_path / "itaudit.toml"
    cfg.write_text(f'[cities.springfield]\nname = "Springfield"\ndatabase = "{city.database}"\n')
    run = CliRunner().invoke
    ok = run(cli, ["attest", "-c", str(cfg), "INS-BACKUP-TEST", "--by", "Sam Ortiz", "--answer", "yes",
                   "--note", "restore test ticket 4411", "--date", "2026-09-30"])
    assert ok.exit_code == 0, ok.output
    assert "recorded: INS-BACKUP-TEST = yes by Sam Ortiz on 2026-09-30" in ok.output
    bad = run(cli, ["attest", "-c", str(cfg), "INS-BACKUP-TSET", "--by", "x", "--answer", "yes"])
    assert bad.exit_code == 2 and "did you mean INS-BACKUP-TEST" in bad.output
    noby = run(cli, ["attest", "-c", str(cfg), "INS-IRP", "--answer", "yes"])
    assert noby.exit_code == 2 and "--by is required" in noby.output
    future = run(cli, ["attest", "-c", str(cfg), "INS-IRP", "--by", "x", "--answer", "yes", "--date", "2999-01-01"])
    assert future.exit_code == 2 and "future" in future.output
    listed = run(cli, ["attest", "-c", str(cfg), "--list"])
    assert "INS-MFA-REMOTE\tinsurance\tperson" in listed.output
    out = tmp_path / "reports"
    rep = run(cli, ["report", "evidence", "-c", str(cfg), "--as-of", "2026-10-25", "--out", str(out),
                    "--format", "html,json"])
    assert rep.exit_code == 0, rep.output
    data = json.loads((out / "springfield-evidence-2026-10-25.json").read_text())
    q = next(q for t in data["templates"] for q in t["questions"] if q["id"] == "INS-BACKUP-TEST")
    assert q["answer"] == "yes" and q["attestation"]["by"] == "Sam Ortiz" and q["attestation"]["age_days"] == 25


def test_the_agent_attaches_the_evidence_report_and_the_summary_links_it(tmp_path: Path, monkeypatch) -> None:
    from agentkit import city_block, local_target, write_config

    from itaudit.agent import Agent, ManualClock
    from itaudit.delivery import read_message

    chi = dt.timezone(dt.timedelta(hours=-6))
    cfg_path = write_config(tmp_path / "c.toml", [city_block(
        "springfield", schedule={"scan": "off", "report_day": 1},
        delivery={"recipients": ["manager@springfield.example.org"], "attach": ["evidence"]},
        targets=[local_target("city-hall-server")])])
    agent = Agent(cfg_path, clock=ManualClock(dt.datetime(2026, 12, 1, 5, 0, tzinfo=chi)), poll=None,
                  dry_run=True)
    agent.run(until=dt.datetime(2026, 12, 1, 7, 0, tzinfo=chi))
    out = tmp_path / "data" / "springfield" / "reports" / "2026-11"
    msg = read_message(out / "springfield-monthly-2026-11.eml")
    names = [p.get_filename() for p in msg.iter_attachments()]
    assert len(names) == 1 and names[0].startswith("springfield-evidence-2026-11-30.")
    assert (out / "springfield-evidence-2026-11-30.html").exists()
    monthly = (out / "springfield-monthly-2026-11.html").read_text()
    assert 'href="springfield-evidence-2026-11-30.html"' in monthly


def test_an_unreadable_attestation_file_is_named_and_the_data_still_answers(tmp_path: Path) -> None:
    city, store = _city(tmp_path)
    fw.attestations_path(city).write_text("{not json")
    rep = build_evidence(city, store, as_of=AS_OF)
    assert any("attestations.json: attestation is not valid JSON" in p for p in rep.problems)
    assert _q(rep, "INS-EOL").answer == "partly" and _q(rep, "INS-IRP").answer == "unknown"


def test_evidence_config_errors_name_the_key(tmp_path: Path) -> None:
    from itaudit.config import load
    from itaudit.errors import ConfigError

    cfg = tmp_path / "c.toml"
    cfg.write_text('[cities.x]\n[cities.x.evidence]\ntemplates = ["missing.json"]\n')
    with pytest.raises(ConfigError, match=r"cities\.x\.evidence\.templates\[0\].*template file not found"):
        load(cfg, env={})
    cfg.write_text('[cities.x]\n[cities.x.evidence]\ntemplate = ["a.json"]\n')
    with pytest.raises(ConfigError, match=r"cities\.x\.evidence\.template"):
        load(cfg, env={})
    (tmp_path / "mine.json").write_text("{}")
    cfg.write_text('[cities.x]\n[cities.x.evidence]\ntemplates = ["mine.json"]\nattestations = "att/a.json"\n')
    city = load(cfg, env={}).cities["x"]
    assert city.evidence.templates == (tmp_path / "mine.json",)
    assert fw.attestations_path(city) == tmp_path / "att" / "a.json"
    # A configured file that is not a template stops the report with the file named (exit 2 in the CLI).
    scanned, store = _city(tmp_path)
    store.close()
    cfg.write_text(f'[cities.x]\ndatabase = "{scanned.database}"\n[cities.x.evidence]\ntemplates = ["mine.json"]\n')
    res = CliRunner().invoke(cli, ["report", "evidence", "-c", str(cfg), "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "not an evidence template" in str(res.exception)
