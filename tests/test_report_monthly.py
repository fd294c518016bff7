"""The monthly manager summary: numbers, words, escaping, empty months, formats."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import report_city
from markupsafe import escape

from itaudit.store import Store
from reports.model import build_monthly, month_bounds, risk_sentence, shift_month
from reports.model import month_label as report_city_month_label
from reports.monthly import summary_rows, write_monthly

AS_OF = dt.date(2026, 10, 25)


@pytest.fixture(scope="module")
def city_store(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("monthly") / "city.db"
    city, store = report_city.build(db, n=40, months=14, skip_months=(5,))
    yield city, store
    store.close()


def _refresh_share(store: Store, scan_id: int) -> float:
    """The refresh KPI worked out independently, straight from the verdict rows."""
    rows = store.db.execute(
        "select status, count(*) from check_results where scan_id = ? and check_id = 'HW-001' "
        "group by status",
        [scan_id],
    ).fetchall()
    counts = dict(rows)
    return 100.0 * counts.get("pass", 0) / (counts.get("pass", 0) + counts.get("fail", 0))


def test_monthly_numbers_match_the_store(city_store):
    city, store = city_store
    rep = build_monthly(city, store, as_of=AS_OF)
    last = store.report_scans()[-1]
    assert rep.has_data and rep.scan_date == last.as_of
    kpi = {k.key: k for k in rep.kpis}
    assert kpi["refresh"].actual == pytest.approx(_refresh_share(store, last.id))
    assert kpi["uncheckable"].actual == 2 and kpi["uncheckable"].rag in ("amber", "red")
    assert len(kpi["refresh"].trend) == 12
    assert rep.devices_checked == 38 and rep.devices_total == 40
    # Worked out from the findings table: per device, a replacement due this fiscal year is the
    # one purchase that covers its other fixes; otherwise each fix due this year counts.
    fy = city.policy.fiscal_year(AS_OF)
    rows = store.db.execute(
        "select device_id, cost_amount, coalesce(cost_fiscal_year, ?), cost_basis like 'replacement %' "
        "from findings where cost_amount is not null and (resolved_at is null or last_scan_id > ?)",
        [fy, last.id]).fetchall()
    open_cost = 0.0
    for device in {r[0] for r in rows}:
        mine = [r for r in rows if r[0] == device and r[2] <= fy]
        replaced = [amount for _, amount, _, repl in mine if repl]
        open_cost += replaced[0] if replaced else sum(amount for _, amount, _, _ in mine)
    assert any(r[2] > fy for r in rows), "the city has replacements due next fiscal year (HW-002), kept apart"
    assert rep.total_cost == pytest.approx(open_cost)
    assert sum(r.cost for r in rep.top_risks) <= rep.total_cost + 0.01
    # Every top risk names who pays and what it costs.
    for r in rep.top_risks:
        assert r.devices >= 1 and r.sentence.endswith(".")
        if r.cost:
            assert r.budget_lines


def test_html_has_key_numbers_escaped_device_text_and_gaps(city_store, tmp_path: Path):
    city, store = city_store
    paths = write_monthly(city, store, as_of=AS_OF, out_dir=tmp_path, formats=("html", "md", "json"))
    page = paths[0].read_text()
    rep = build_monthly(city, store, as_of=AS_OF)
    assert f">{rep.score:.0f}<" in page  # the score in the ring
    for k in rep.kpis:
        assert k.actual_text in page
    assert rep.total_cost and f"${rep.total_cost:,.0f}" in page
    # The hostile hostname is shown as text, never as markup.
    assert "<script>alert" not in page and "onerror=alert(1)>" not in page
    assert str(escape(report_city.HOSTILE)) in page
    # The unreachable devices are listed with the reason.
    assert "Could not be checked" in page and page.count("timeout: no answer within 20 s") == 2
    assert "2026-08-22" in page or "lifecycle" in page  # data dates line present
    assert "http://" not in page and "https://" not in page and "<script" not in page  # self-contained
    md = paths[1].read_text()
    assert "<script>" not in md and "Top risks" in md
    data = json.loads(paths[2].read_text())
    assert data["score"] == rep.score and data["month"] == "2026-10"


def test_data_dates_come_from_the_knowledge(city_store, tmp_path: Path):
    from itaudit.knowledge import Knowledge

    city, store = city_store
    dates = Knowledge.load().data_dates()
    page = write_monthly(city, store, as_of=AS_OF, out_dir=tmp_path)[0].read_text()
    assert f"lifecycle (end of support) {dates['lifecycle']}" in page
    assert dates["kev"] in page


def test_month_without_scans_says_so(city_store, tmp_path: Path):
    city, store = city_store
    skipped = shift_month("2026-10", -(14 - 1 - 5))
    rep = build_monthly(city, store, as_of=AS_OF, month=skipped)
    assert not rep.has_data and not rep.kpis and rep.score is None
    assert "No scan was run in" in rep.headline and rep.last_scan_date
    page = write_monthly(city, store, as_of=AS_OF, month=skipped, out_dir=tmp_path)[0].read_text()
    body = page.split("<body>", 1)[1]
    assert "No scan was run in" in body and "Scorecard" not in body and "0%" not in body
    # The month after the gap compares with the last month that had a scan.
    after = build_monthly(city, store, as_of=AS_OF, month=shift_month(skipped, 1))
    assert after.has_data and after.prev_label == report_city_month_label(shift_month(skipped, -1))
    assert after.kpis[0].trend[-2] is None and after.kpis[0].trend[-1] is not None  # a gap, not a zero


def test_score_change_is_in_words(city_store):
    city, store = city_store
    rep = build_monthly(city, store, as_of=AS_OF)
    assert rep.prev_score is not None
    delta = round(rep.score - rep.prev_score)
    if delta > 0:
        assert "safer" in rep.score_words and "up" in rep.headline
    elif delta < 0:
        assert "less safe" in rep.score_words and "down" in rep.headline
    else:
        assert "unchanged" in rep.headline


def test_changes_count_new_and_resolved(city_store):
    city, store = city_store
    rep = build_monthly(city, store, as_of=AS_OF)
    scans = store.report_scans()
    prev, last = scans[-2], scans[-1]
    new = store.db.execute(
        "select count(*) from findings where first_scan_id > ? and first_scan_id <= ?", [prev.id, last.id]
    ).fetchone()[0]
    assert rep.new_count == new
    assert rep.resolved_count == len(store.findings_changed(prev.id, last.id)["resolved"])
    assert rep.resolved_count > 0  # the synthetic city fixes patches every month


def test_summary_rows_for_the_terminal(city_store):
    city, store = city_store
    rows = dict(summary_rows(city, store, AS_OF))
    assert rows["Month"] == "October 2026" and rows["Could not check"] == "2"
    assert rows["Score"].endswith("/ 100")


def test_risk_sentences_are_plain_and_agree_in_number():
    assert risk_sentence("EOL-001", "OS past end of life", 1) == (
        "1 device runs unsupported software that no longer receives security fixes."
    )
    assert "are due for replacement" in risk_sentence("HW-001", "Past refresh age", 3)
    assert risk_sentence("VULN-001", "KEV", 2) == (
        "2 devices run software versions with flaws that criminals are actively exploiting."
    )
    # Unconfirmed flaws never read as a fact.
    assert risk_sentence("VULN-002", "KEV", 1) == (
        "1 device may be affected by flaws that criminals exploit — IT to confirm."
    )
    assert "SNMP answers" in risk_sentence("SEC-004", "SNMP answers the default community", 2)


def test_month_helpers():
    assert month_bounds("2024-02") == (dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert shift_month("2026-01", -1) == "2025-12" and shift_month("2025-12", 1) == "2026-01"


def test_unknown_format_is_refused(city_store, tmp_path: Path):
    city, store = city_store
    with pytest.raises(ValueError, match="unknown report format"):
        write_monthly(city, store, as_of=AS_OF, out_dir=tmp_path, formats=("docx",))


def _verdicts_scored(store: Store, scan_id: int) -> dict[int, list[dict]]:
    """The verdicts a city score counts, per device: the scan's own for a device it reached; for
    one it did not reach, its last known findings (still open: only a successful check resolves
    one). A device that did not answer still has age verdicts in the scan (judged on its dates
    on record): they are not what it is scored on."""
    unreached = {r["device_id"] for r in store.unreachable_devices(scan_id)}
    by_device: dict[int, list[dict]] = {}
    for r in store.check_results(scan_id):
        if r["device_id"] not in unreached:
            by_device.setdefault(r["device_id"], []).append(r)
    for r in store.findings_open_at(scan_id):
        if r["device_id"] in unreached:
            by_device.setdefault(r["device_id"], []).append(r)
    assert unreached and unreached <= set(by_device)
    return by_device


def test_city_score_agrees_with_the_score_module(city_store):
    from itaudit import score

    city, store = city_store
    rep = build_monthly(city, store, as_of=AS_OF)
    last = store.report_scans()[-1]
    by_device = _verdicts_scored(store, last.id)
    crit = {d["id"]: json.loads(d["criticality"]) if d["criticality"] else [] for d in store.devices()}
    expected = score.city_score(
        score.device_score(rows, crit[dev], weights=city.policy.criticality_weights)
        for dev, rows in by_device.items()
    )
    assert rep.score == pytest.approx(expected.score, abs=0.1)


def test_a_city_without_policy_scores_with_the_shipped_weights(city_store):
    """One criticality weight (itaudit.score): without a policy the reports used 1.0 for every
    device, so a public-safety device's findings counted less than the score module says."""
    from types import SimpleNamespace

    from itaudit import score

    city, store = city_store
    bare = SimpleNamespace(id=city.id, name=city.name, budget_lines=city.budget_lines)
    rep = build_monthly(bare, store, as_of=AS_OF)
    last = store.report_scans()[-1]
    by_device = _verdicts_scored(store, last.id)
    crit = {d["id"]: json.loads(d["criticality"]) if d["criticality"] else [] for d in store.devices()}
    assert any("public-safety" in c for c in crit.values())
    expected = score.city_score(score.device_score(rows, crit[dev]) for dev, rows in by_device.items())
    assert rep.score == pytest.approx(expected.score, abs=0.1)


@pytest.mark.parametrize(
    ("actual", "target", "better", "unit", "shown", "rag"),
    [
        (100 * 249 / 250, 100.0, "higher", "%", "99.6%", "amber"),  # not "100%" next to "Near target"
        (94.6, 95.0, "higher", "%", "94.6%", "amber"),
        (99.96, 100.0, "higher", "%", "99.9%", "amber"),
        (97.4, 95.0, "higher", "%", "97%", "green"),
        (89.6, 95.0, "higher", "%", "90%", "amber"),  # 90 still misses 95: whole numbers do
        (100.0, 100.0, "higher", "%", "100%", "green"),
        (0.4, 0.0, "lower", "%", "0.4%", "amber"),  # lower is better: never rounded down onto 0
        (2.0, 0.0, "lower", "", "2", "amber"),
        (0.0, 0.0, "lower", "", "0", "green"),
    ],
)
def test_kpi_actual_is_never_rounded_onto_a_missed_target(actual, target, better, unit, shown, rag):
    from reports.model import Kpi, _rag

    k = Kpi("m", "measure", target, actual, unit, better, _rag(actual, target, better, 10.0), [], [])
    assert (k.actual_text, k.rag) == (shown, rag)


@pytest.mark.parametrize(("euid", "sandboxed"), [(0, False), (1000, True)])
def test_chromium_keeps_its_sandbox_unless_root(monkeypatch: pytest.MonkeyPatch, euid: int, sandboxed: bool):
    import reports.pdf as pdf

    monkeypatch.setattr(pdf.os, "geteuid", lambda: euid)
    args = pdf.chromium_args("/usr/bin/chromium", "/tmp/profile")
    assert ("--no-sandbox" not in args) == sandboxed
    assert "--headless" in args and "--user-data-dir=/tmp/profile" in args


def test_a_month_before_the_first_scan_never_says_no_scan_has_been_run(city_store):
    """Issue 13: the first agent report covered the month before the first scans and said
    "No scan has been run yet" right after three scans."""
    city, store = city_store
    first = min(s.as_of[:10] for s in store.report_scans())
    before = shift_month(first[:7], -1)
    rep = build_monthly(city, store, as_of=AS_OF, month=before)
    assert not rep.has_data and rep.last_scan_date is None
    assert "No scan has been run yet" not in rep.headline
    assert rep.headline.endswith(f"The first scan was on {first}, after this month.")


def test_no_scan_at_all_says_so(tmp_path: Path):
    store = Store(tmp_path / "empty.db")
    try:
        rep = build_monthly(report_city.city_config(tmp_path / "empty.db"), store, as_of=AS_OF)
    finally:
        store.close()
    assert rep.headline.endswith("No scan has been run yet.")


def test_reports_warn_when_exploited_vulnerability_data_is_old():
    from reports.common import data_age_warnings

    dates = {"kev": "2025-08-25", "vulns": "2025-01-24", "lifecycle": "2026-08-22"}
    warn = data_age_warnings(dates, dt.date(2025, 9, 10), 30)
    assert len(warn) == 1 and "2025-01-24" in warn[0] and "itaudit data update" in warn[0]
    assert data_age_warnings(dates, dt.date(2025, 2, 1), 30) == []
    assert len(data_age_warnings(dates, dt.date(2026, 11, 23), 30)) == 2
    assert data_age_warnings(dates, dt.date(2026, 11, 23), 1000) == []
    assert "no date" in data_age_warnings({"kev": "?", "vulns": "2025-01-24"}, dt.date(2025, 1, 30))[0]


def test_monthly_report_names_the_old_data(city_store, tmp_path: Path):
    city, store = city_store
    r = build_monthly(city, store, as_of=AS_OF)
    assert any("CISA KEV catalog is dated 2026-08-07" in w for w in r.data_warnings)
    written = write_monthly(city, store, as_of=AS_OF, out_dir=tmp_path, formats=("html", "md"))
    for path in written:
        text = Path(path).read_text(encoding="utf-8")
        assert "Data out of date" in text and "2026-08-07" in text


def test_a_finding_replaced_by_a_worse_one_is_not_fixed(tmp_path: Path):
    """Support ending soon (EOL-002) closes because support has now ended (EOL-001): that is worse,
    and the summary says so instead of counting it as fixed. A DATA-003 finding has its own words."""
    from itaudit.model import CollectResult, DeviceFacts, Finding, ResultStatus, Severity, Status, Target

    city = report_city.city_config(tmp_path / "w.db")
    store = Store(city.database)
    target = Target(address="10.1.1.1", protocol="ssh", city_id=city.id, name="fs01", kind="server")
    facts = DeviceFacts()
    facts.identity.serial = "W1"

    def scan(day: str, verdicts: list[tuple[str, Status, Severity]]) -> None:
        sid = store.begin_scan(city.id, dt.date.fromisoformat(day), 1, now=f"{day}T02:00:00")
        store.record_result(sid, CollectResult(target, ResultStatus.OK, facts=facts),
                            [Finding(c, st, sev, c, f"{c} on fs01") for c, st, sev in verdicts],
                            now=f"{day}T02:00:00")
        store.finish_scan(sid, now=f"{day}T02:00:00")

    scan("2026-09-20", [("EOL-002", Status.FAIL, Severity.MEDIUM), ("PATCH-001", Status.FAIL, Severity.HIGH)])
    scan("2026-10-20", [("EOL-002", Status.PASS, Severity.MEDIUM), ("EOL-001", Status.FAIL, Severity.HIGH),
                        ("PATCH-001", Status.PASS, Severity.HIGH), ("DATA-003", Status.FAIL, Severity.LOW)])
    r = build_monthly(city, store, as_of=dt.date(2026, 10, 25))
    store.close()
    assert [c.title for c in r.resolved] == ["PATCH-001"] and r.resolved_count == 1
    assert [c.title for c in r.worse] == ["EOL-002"] and r.worse_count == 1
    assert "key facts" in risk_sentence("DATA-003", "Key facts missing", 1)
    assert "not checked recently" not in risk_sentence("DATA-003", "Key facts missing", 2)
