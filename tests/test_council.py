"""The council page: measures with targets and owners, history, the decision, the cohort of peers."""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from itaudit.cohort import (
    FORMAT,
    CohortError,
    add_peer_file,
    cohort_view,
    read_peer_file,
    stand,
)
from itaudit.config import load
from itaudit.errors import ConfigError
from itaudit.measures import MEASURE_KEYS, measures_of
from itaudit.policy import parse_policy
from reports.council import PerfRow
from reports.model import build_monthly, shift_month
from reports.plan import build_plan
from tests import history_city
from tests.history_city import write_open_data

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2026, 11, 25)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("council") / "city.db"
    c, store = history_city.build(db, n=40, months=24)
    yield c, store
    store.close()


# --- measures in the config ------------------------------------------------------------------


def test_every_measure_has_a_default_target_owner_why_and_action():
    m = measures_of(parse_policy({}, "cities.x.policy"))
    assert list(m) == list(MEASURE_KEYS) and MEASURE_KEYS[0] == "score"
    for spec in m.values():
        assert spec.owner and spec.why and spec.action
    assert m["supported"].target == 100 and m["uncheckable"].target == 0


def test_the_city_sets_target_owner_why_and_action():
    pol = parse_policy({"kpi_targets": {"refresh": 85},
                        "measures": {"patched": {"target": 90, "owner": "Deputy CIO", "action": "Patch Tuesdays."},
                                     "score": {"target": 75, "owner": "City manager"}}}, "cities.x.policy")
    m = measures_of(pol)
    assert (m["patched"].target, m["patched"].owner, m["patched"].action) == (90, "Deputy CIO", "Patch Tuesdays.")
    assert m["patched"].why == measures_of(parse_policy({}, "p"))["patched"].why  # the default line stays
    assert m["refresh"].target == 85 and m["score"].target == 75 and m["score"].owner == "City manager"


@pytest.mark.parametrize(("table", "key", "words"), [
    ({"measures": {"patched": {"target": 101, "owner": "IT"}}}, "cities.x.policy.measures.patched.target",
     "cannot exceed 100"),
    ({"measures": {"score": {"target": 120, "owner": "IT"}}}, "cities.x.policy.measures.score.target", "100"),
    ({"kpi_targets": {"supported": 150}}, "cities.x.policy.kpi_targets.supported", "impossible"),
    ({"measures": {"patched": {"target": 90}}}, "cities.x.policy.measures.patched.owner", "owner"),
    ({"measures": {"patched": {"target": 90, "owner": "  "}}}, "cities.x.policy.measures.patched.owner", "owner"),
    ({"measures": {"uptime": {"owner": "IT"}}}, "cities.x.policy.measures.uptime", "unknown measure"),
    ({"measures": {"patched": {"owner": "IT", "deadline": "soon"}}},
     "cities.x.policy.measures.patched.deadline", "unknown key"),
    ({"measures": {"uncheckable": {"owner": "IT", "target": -1}}},
     "cities.x.policy.measures.uncheckable.target", "negative"),
])
def test_impossible_targets_and_missing_owners_are_config_errors_naming_the_key(table, key, words):
    with pytest.raises(ConfigError) as exc:
        parse_policy(table, "cities.x.policy")
    assert exc.value.key == key and words in str(exc.value)


def test_a_count_target_may_exceed_100(tmp_path: Path):
    pol = parse_policy({"measures": {"uncheckable": {"owner": "IT", "target": 150}}}, "p")
    assert measures_of(pol)["uncheckable"].target == 150


def test_the_config_file_error_names_file_and_key(tmp_path: Path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[cities.x]\nname = "X"\n[cities.x.policy.measures.patched]\ntarget = 140\nowner = "IT"\n')
    with pytest.raises(ConfigError) as exc:
        load(cfg)
    assert "cities.x.policy.measures.patched.target" in str(exc.value) and str(cfg) in str(exc.value)


def test_config_example_documents_measures():
    text = (ROOT / "config.example.toml").read_text()
    assert "[cities.springfield.policy.measures.patched]" in text
    pkg = ROOT / "itaudit" / "data" / "config.example.toml"
    if pkg.exists():
        assert pkg.read_text() == text


# --- the performance table and history ----------------------------------------------------------


def test_performance_rows_score_first_every_kpi_with_owner_and_history(city):
    c, store = city
    rep = build_monthly(c, store, as_of=AS_OF)
    rows = rep.council.performance
    assert [r.key for r in rows] == ["score", *[k.key for k in rep.kpis]]
    assert all(r.owner and r.action and r.why for r in rows)
    # N of M: the share shown is N/M.
    for r in rows[1:]:
        if r.actual is not None and r.key not in ("uncheckable",):
            n, m = (int(x.replace(",", "")) for x in r.n_of_m.split(" of "))
            assert r.actual == pytest.approx(100 * n / m)
    # A quarter and a year ago are the reports of those months.
    for months, attr in ((3, "quarter_ago"), (12, "year_ago")):
        then = build_monthly(c, store, as_of=AS_OF, month=shift_month(rep.month, -months))
        assert getattr(rep, attr)["score"] == then.score
        for k in then.kpis:
            assert getattr(rep, attr)[k.key] == k.actual
    assert rows[0].year_ago == f"{rep.year_ago['score']:,.0f}"


def test_the_decision_equals_the_plans_fiscal_year_to_the_cent(city):
    c, store = city
    budget = {"101-1410-5740": {2027: 5000.0}, "101-1410-5310": {2027: 1234.56}}
    c.policy.budgeted = budget
    try:
        rep = build_monthly(c, store, as_of=AS_OF)
        plan = build_plan(c, store, as_of=AS_OF)
    finally:
        c.policy.budgeted = {}
    d = rep.council.decision
    assert d.fiscal_year == plan.fiscal_years[0] == 2027
    assert round(d.total * 100) == round(plan.total.cost[0] * 100) == round(sum(x.amount for x in d.lines) * 100)
    assert d.devices == plan.total.devices[0] == sum(x.devices for x in d.lines)
    assert round(d.budgeted * 100) == 623456
    assert round(d.gap * 100) == round(sum(plan.total.gap[:1]) * 100)
    assert f"${d.total:,.0f}" in d.sentence


def test_the_summary_carries_the_two_projection_sentences(city, tmp_path: Path):
    c, store = city
    from reports.monthly import write_monthly

    html = write_monthly(c, store, as_of=AS_OF, out_dir=tmp_path)[0].read_text()
    rep = build_monthly(c, store, as_of=AS_OF)
    assert len(rep.council.projection.sentences) == 2
    import html as h

    for s in rep.council.projection.sentences:
        assert h.escape(s, quote=False) in html
    assert "What we ask the council to approve" in html and rep.council.performance[0].owner in html


# --- the cohort -------------------------------------------------------------------------------


def _peer(folder: Path, name: str, values: dict[str, float], *, devices: int = 40, period: str = "2026-10",
          fmt: str | None = None) -> Path:
    rows = [{"period": period, "measure": k, "target": 90, "actual": v, "numerator": round(v * devices / 100),
             "denominator": devices, "unit": "%"} for k, v in values.items()]
    path = write_open_data(folder / f"{name.lower()}.csv", name, rows)
    if fmt:
        path.write_text(path.read_text().replace(FORMAT, fmt))
    return path


def _row(key: str, actual: float, better: str = "higher", unit: str = "%") -> PerfRow:
    return PerfRow(key=key, label=key, why="", target_text="", actual_text="", n_of_m="", rag="none",
                   actual=actual, better=better, unit=unit, trend=[], target=0, quarter_ago="", year_ago="",
                   owner="", action="")


@pytest.mark.parametrize("n", [3, 4, 5, 7, 10])
def test_cohort_statistics_by_hand(tmp_path: Path, n: int):
    folder = tmp_path / "cohort"
    folder.mkdir()
    values = [50.0 + 5 * i for i in range(n)]  # 50, 55, 60, ...
    for i, v in enumerate(values):
        _peer(folder, f"Peer{i}", {"patched": v, "uncheckable": float(i)})
    c = type("C", (), {"id": "springfield", "name": "Springfield", "database": tmp_path / "x.db"})()
    ours = 62.0
    view = cohort_view(c, [_row("patched", ours), _row("uncheckable", 1.0, "lower", "")], as_of=AS_OF,
                       devices=40, folder=folder)
    s = view.stats["patched"]
    # By hand: the median of n values, quartiles by the inclusive method, rank = 1 + peers above us.
    ordered = sorted(values)
    assert s["median"] == pytest.approx(statistics.median(values))
    assert s["median"] == pytest.approx((ordered[(n - 1) // 2] + ordered[n // 2]) / 2)
    pos = (n - 1) * 0.25
    q1 = ordered[int(pos)] + (ordered[min(int(pos) + 1, n - 1)] - ordered[int(pos)]) * (pos - int(pos))
    assert s["q1"] == pytest.approx(q1)
    assert s["rank"] == 1 + sum(1 for v in values if v > ours) and s["of"] == n + 1
    # Lower is better for "uncheckable": rank counts peers with fewer.
    assert view.stats["uncheckable"]["rank"] == 1 + sum(1 for i in range(n) if i < 1)
    assert f"{s['rank']}/{n + 1}" in view.by_measure["patched"]


def test_stand_quartiles():
    peers = [10.0, 20.0, 30.0, 40.0, 50.0]  # q1 20, median 30, q3 40
    assert stand(45, peers, "higher")["quartile"] == "top"
    assert stand(35, peers, "higher")["quartile"] == "second"
    assert stand(25, peers, "higher")["quartile"] == "third"
    assert stand(5, peers, "higher")["quartile"] == "bottom"
    assert stand(5, peers, "lower")["quartile"] == "top" and stand(5, peers, "lower")["rank"] == 1


def test_fewer_than_three_peers_says_so(tmp_path: Path):
    folder = tmp_path / "cohort"
    folder.mkdir()
    _peer(folder, "A", {"patched": 80})
    _peer(folder, "B", {"patched": 70})
    _peer(folder, "Huge", {"patched": 60}, devices=4000)  # not of similar size
    c = type("C", (), {"id": "springfield", "name": "Springfield", "database": tmp_path / "x.db"})()
    view = cohort_view(c, [_row("patched", 75)], as_of=AS_OF, devices=40, folder=folder)
    assert view.stats == {} and "at least 3" in view.sentence and "too few" in view.by_measure["patched"]
    assert [e.name for e in view.excluded] == ["Huge"] and "similar size" in view.excluded[0].reason


def test_bad_files_are_named_and_left_out(tmp_path: Path):
    folder = tmp_path / "cohort"
    folder.mkdir()
    for i in range(3):
        _peer(folder, f"Good{i}", {"patched": 60 + i})
    _peer(folder, "Old", {"patched": 99}, period="2025-01")
    _peer(folder, "Springfield", {"patched": 1})
    _peer(folder, "Future", {"patched": 1}, fmt="itaudit-opendata/2")
    (folder / "junk.csv").write_text("hello,world\n1,2\n")
    c = type("C", (), {"id": "springfield", "name": "Springfield", "database": tmp_path / "x.db"})()
    view = cohort_view(c, [_row("patched", 75)], as_of=AS_OF, devices=40, folder=folder)
    assert len(view.peers) == 3 and view.stats["patched"]["median"] == 61
    reasons = {e.name: e.reason for e in view.excluded}
    assert "older than 18 months" in reasons["Old"] and reasons["Springfield"] == "the city's own file"
    assert "newer" in reasons["future.csv"] and "missing column" in reasons["junk.csv"]


@pytest.mark.parametrize(("content", "words"), [
    ("period,measure,actual,denominator\n2026-10,patched,abc,40\n", "not a number"),
    ("period,measure,actual,denominator\n2026-10,patched,140,40\n", "impossible"),
    ("period,measure,actual,denominator\n10/2026,patched,40,40\n", "not a month"),
    ("period,measure,actual,denominator\n2026-10,uptime,40,40\n", "no rows for any known measure"),
    ("period,measure\n2026-10,patched\n", "missing column"),
    ("period,actual,denominator\n2026-10,4,4\n", "missing column(s) measure_id"),
    ("format,city,period,measure,actual,denominator\nitaudit-opendata/1,A,2026-10,patched,4,4\n"
     "itaudit-opendata/1,B,2026-10,score,4,4\n", "several cities"),
])
def test_unusable_files_get_a_clear_error(tmp_path: Path, content: str, words: str):
    f = tmp_path / "peer.csv"
    f.write_text(content)
    with pytest.raises(CohortError) as exc:
        read_peer_file(f)
    assert "peer.csv" in str(exc.value) and words in str(exc.value)


def test_binary_file_is_a_clear_error(tmp_path: Path):
    f = tmp_path / "peer.csv"
    f.write_bytes(b"\xff\xfe\x00garbage\x00")
    with pytest.raises(CohortError, match="not UTF-8"):
        read_peer_file(f)


def test_missing_measures_are_recorded_not_fatal(tmp_path: Path):
    p = read_peer_file(_peer(tmp_path, "Partial", {"patched": 80}))
    assert p.values == {"patched": 80} and "score" in p.missing and p.devices == 40


def test_add_refuses_own_and_stale_files(tmp_path: Path):
    c = type("C", (), {"id": "springfield", "name": "Springfield", "database": tmp_path / "d" / "x.db"})()
    with pytest.raises(CohortError, match="own file"):
        add_peer_file(c, _peer(tmp_path, "Springfield", {"patched": 80}), as_of=AS_OF)
    with pytest.raises(CohortError, match="months old"):
        add_peer_file(c, _peer(tmp_path, "Oldtown", {"patched": 80}, period="2025-04"), as_of=AS_OF)
    peer, dest = add_peer_file(c, _peer(tmp_path, "Shelbyville", {"patched": 80}), as_of=AS_OF)
    assert dest == tmp_path / "d" / "cohort" / "shelbyville.csv" and dest.read_text().startswith("format,")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ITAUDIT_")}
    return subprocess.run([sys.executable, "-m", "itaudit.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**env, "PYTHONPATH": str(ROOT)}, timeout=120, stdin=subprocess.DEVNULL)


def test_cli_cohort_add_and_list(tmp_path: Path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[settings]\ndata_dir = "{tmp_path / "data"}"\n[cities.springfield]\nname = "Springfield"\n')
    good = _peer(tmp_path, "Shelbyville", {"patched": 80, "score": 70})
    r = _cli("cohort", "add", "-c", str(cfg), str(good), "--as-of", "2026-11-25", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Shelbyville: 40 devices (0-99 devices), latest month 2026-10" in r.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("not,a,cohort\n")
    r = _cli("cohort", "add", "-c", str(cfg), str(bad), cwd=tmp_path)
    assert r.returncode == 2 and "bad.csv: missing column" in r.stderr and "Traceback" not in r.stderr
    r = _cli("cohort", "list", "-c", str(cfg), cwd=tmp_path)
    assert r.returncode == 0 and "Shelbyville: 40 devices" in r.stdout


def test_reads_the_file_itaudit_report_opendata_writes(tmp_path: Path):
    # The exact layout of `itaudit report opendata` (issue 19): no format or city column; the city
    # comes from the file name; the key is measure_id, the label is measure.
    f = tmp_path / "shelbyville-it-measures-2026-10.csv"
    f.write_text(
        "period,measure_id,measure,target,better,actual,status,numerator,denominator,unit,data_date\n"
        "2026-09,patched,Devices patched within policy,95,higher,80.5,Off target,161,200,percent,2026-09-20\n"
        "2026-10,patched,Devices patched within policy,95,higher,88,Near target,176,200,percent,2026-10-20\n"
        "2026-10,uncheckable,Devices we could not check,0,lower,3,Off target,3,,devices,2026-10-20\n"
        "2026-10,completeness,Inventory completeness,95,higher,,No data,,,percent,\n")
    p = read_peer_file(f)
    assert p.city == "shelbyville" and p.period == "2026-10" and p.devices == 200
    assert p.values == {"patched": 88.0, "uncheckable": 3.0}
    assert "completeness" in p.missing and "score" in p.missing


def test_the_email_body_carries_the_projection_and_the_request(city):
    from reports.monthly import monthly_markdown

    c, store = city
    rep = build_monthly(c, store, as_of=AS_OF)
    md = monthly_markdown(rep)
    assert "## If we do nothing" in md and rep.council.projection.sentences[0] in md
    assert rep.council.decision.sentence in md


def test_a_hostile_city_name_is_plain_text(tmp_path: Path):
    f = write_open_data(tmp_path / "evil.csv", "Evil\x1b[31m<script>alert(1)</script>",
                        [{"period": "2026-10", "measure": "patched", "actual": 80.0, "denominator": 40}])
    p = read_peer_file(f)
    assert "\x1b" not in p.city and p.city.startswith("Evil[31m")


def test_our_counts_agree_with_the_scorecards(city):
    from reports.council import kpi_counts
    from reports.model import report_scan

    c, store = city
    rep = build_monthly(c, store, as_of=AS_OF)
    scan = report_scan(store.report_scans(), rep.month, AS_OF)
    counts = kpi_counts(store, c, scan)
    for k in rep.kpis:
        if getattr(k, "denominator", None) is not None:
            assert counts[k.key] == (k.numerator, k.denominator), k.key


def test_reads_a_file_written_by_itaudit_report_opendata(tmp_path: Path):
    from reports.opendata import write_opendata

    c, store = history_city.build(tmp_path / "peer.db", n=20, months=4, city_id="shelbyville", name="Shelbyville")
    try:
        csv_path = write_opendata(c, store, as_of=AS_OF, out_dir=tmp_path / "od")[0]
        rep = build_monthly(c, store, as_of=AS_OF)
    finally:
        store.close()
    p = read_peer_file(csv_path)
    assert p.city == "shelbyville" and p.period == "2026-11"
    for k in rep.kpis:
        if k.actual is not None:
            assert p.values[k.key] == pytest.approx(k.actual, abs=0.01)
    me = type("C", (), {"id": "springfield", "name": "Springfield", "database": tmp_path / "x.db"})()
    peer, dest = add_peer_file(me, csv_path, as_of=AS_OF)
    assert dest.exists() and peer.devices == max(k.denominator for k in rep.kpis if k.denominator)


def test_a_peer_missing_a_measure_is_named_and_left_out_of_that_statistic(tmp_path: Path):
    folder = tmp_path / "cohort"
    folder.mkdir()
    for i in range(3):
        _peer(folder, f"Full{i}", {"patched": 60 + i, "score": 70 + i})
    _peer(folder, "Partial", {"patched": 90})  # no score in its file
    c = type("C", (), {"id": "springfield", "name": "Springfield", "database": tmp_path / "x.db"})()
    view = cohort_view(c, [_row("patched", 75), _row("score", 72, unit="")], as_of=AS_OF, devices=40,
                       folder=folder)
    assert view.stats["patched"]["n"] == 4 and view.stats["patched"]["median"] == statistics.median([60, 61, 62, 90])
    assert view.stats["score"]["n"] == 3 and view.stats["score"]["median"] == 71  # Partial left out
    assert [(e.name, e.reason) for e in view.partial] == [("Partial", "no value for score: left out of that "
                                                                      "comparison")]
    assert view.excluded == []  # still a peer for the measures it gives


def test_the_summary_with_a_cohort_and_every_council_part_stays_two_printed_pages(city, tmp_path: Path):
    import shutil

    from reports.monthly import write_monthly
    from reports.pdf import find_chromium

    if not (find_chromium() and shutil.which("pdfinfo") and shutil.which("pdftotext")):
        pytest.skip("needs chromium and poppler-utils (pdfinfo, pdftotext)")
    c, store = city
    folder = Path(c.database).parent / "cohort"
    folder.mkdir(exist_ok=True)
    try:
        # The longest council page: peers on every measure, one missing measures, two left out.
        every = {k: 60.0 + i for i, k in enumerate(MEASURE_KEYS) if k != "uncheckable"}
        for i in range(5):
            _peer(folder, f"Peer{i}", {k: v + 3 * i for k, v in every.items()} | {"uncheckable": float(i)})
        _peer(folder, "Partial", {"patched": 70})
        _peer(folder, "Old", {"patched": 99}, period="2024-01")
        _peer(folder, "Springfield", {"patched": 1})
        paths = write_monthly(c, store, as_of=AS_OF, out_dir=tmp_path, formats=("html", "pdf"))
    finally:
        shutil.rmtree(folder)
    pdf = paths[-1]
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    assert pages <= 2
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    assert "If we do nothing" in text and "Peers: 6 cities of similar size" in text  # Partial counts
    assert "Left out: Old" in text and "Left out of some measures (no value in their file): Partial" in text
