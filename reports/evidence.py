"""The evidence report: each question of a framework template answered from itaudit's own
data (yes / partly / no / unknown) with the numbers, dates and devices behind it; questions
only a person can answer carry that person's attestation (who, when, what) and its age.

Templates and mappings are data (``itaudit.frameworks``). The answer rule lives here, once:

* a device *meets* a question when one of its checks passed and none failed, *does not*
  when one failed, and *could not be checked* when its checks were all unknown or errors;
* "yes" needs every counted device to meet it, none unchecked, and a question whose checks
  cover all of it (``coverage = "full"``); "no" when no device meets it; "partly" between;
  "unknown" when no device could be checked at all;
* a person never overrides a measured answer: an attestation on a data question is shown
  beside it, not instead of it.
* a person's question takes the newest attestation dated on or before the report date; one
  older than a year is shown but not counted (the answer is "unknown" until someone answers again).

Formats: HTML (always; the PDF is printed from it), PDF, XLSX, JSON.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from itaudit import frameworks as fw
from itaudit.store import ScanInfo, Store
from reports import export
from reports.common import data_dates, device_label, plural
from reports.pdf import html_to_pdf
from reports.render import render

FORMATS = ("html", "pdf", "xlsx", "json")
ANSWER_WORDS = {"yes": "Yes", "partly": "Partly", "no": "No", "unknown": "Unknown"}


@dataclass
class DeviceItem:
    device: str
    check_id: str
    status: str  # fail / unknown / error
    since: str  # the date this finding was first seen (fails), else the scan date
    summary: str


@dataclass
class Tally:
    meets: int = 0
    fails: int = 0
    unchecked: int = 0

    @property
    def counted(self) -> int:
        return self.meets + self.fails + self.unchecked


@dataclass
class QuestionView:
    id: str
    text: str
    answered_by: str
    answer: str  # yes / partly / no / unknown
    basis: str  # the sentence behind the answer
    checks: list[str]
    coverage: str
    coverage_note: str
    csf: list[str]
    cpg2: list[str]
    tally: Tally | None = None
    devices: list[DeviceItem] = field(default_factory=list)  # devices concerned (fail), then unchecked
    attestation: dict[str, Any] | None = None  # answer, by, at, note, age_days, stale
    related: str = ""  # for a person's question: what itaudit's related checks show

    @property
    def refs(self) -> str:
        """'checks EOL-001, HW-004 · CSF PR.PS-02 · CPG 2.0 2.B' (the parts that exist)."""
        parts = [f"checks {', '.join(self.checks)}" if self.checks else "",
                 f"CSF {', '.join(self.csf)}" if self.csf else "",
                 f"CPG 2.0 {', '.join(self.cpg2)}" if self.cpg2 else ""]
        return " · ".join(p for p in parts if p)


@dataclass
class TemplateView:
    id: str
    title: str
    source: str
    shipped: bool
    questions: list[QuestionView]

    def count(self, answer: str) -> int:
        return sum(1 for q in self.questions if q.answer == answer)


@dataclass
class FunctionView:
    code: str
    name: str
    subcategories: int
    with_data: list[str]
    attested: list[str]
    devices_fail: int
    devices_known: int
    status: str  # "assessed" or "not assessed"
    sentence: str


@dataclass
class EvidenceReport:
    city_id: str
    city_name: str
    as_of: str
    has_data: bool
    scan_date: str | None = None
    scan_status: str | None = None
    devices_counted: int = 0
    not_checked: int = 0
    data_dates: dict[str, str] = field(default_factory=dict)
    templates: list[TemplateView] = field(default_factory=list)
    functions: list[FunctionView] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    attestation_file: str = ""
    mappings: list[dict[str, Any]] = field(default_factory=list)
    csf_source: dict[str, Any] = field(default_factory=dict)
    cpg_note: str = ""
    stale_days: int = fw.STALE_DAYS

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for t, tv in zip(d["templates"], self.templates, strict=True):
            t["answers"] = {a: tv.count(a) for a in ("yes", "partly", "no", "unknown")}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str) + "\n"


def _scan_at(store: Store, as_of: dt.date) -> ScanInfo | None:
    """The newest finished scan dated on or before ``as_of``."""
    scans = [s for s in store.report_scans() if s.as_of[:10] <= as_of.isoformat()]
    return scans[-1] if scans else None


def _answer(t: Tally, coverage: str) -> str:
    if t.meets + t.fails == 0:
        return "unknown"
    if t.fails == 0:
        return "yes" if t.unchecked == 0 and coverage == "full" else "partly"
    return "no" if t.meets == 0 else "partly"


def _tally(checks: list[str], by_device: dict[int, dict[str, tuple[str, str]]]) -> tuple[Tally, list[int], list[int]]:
    """Devices meeting, failing and not checkable for ``checks`` (one rule, see the module doc)."""
    t = Tally()
    failing: list[int] = []
    unchecked: list[int] = []
    wanted = set(checks)
    for device_id, res in by_device.items():
        statuses = [res[c][0] for c in wanted if c in res]
        if not statuses:
            continue
        if "fail" in statuses:
            t.fails += 1
            failing.append(device_id)
        elif "pass" in statuses:
            t.meets += 1
        else:
            t.unchecked += 1
            unchecked.append(device_id)
    return t, failing, unchecked


def _basis(t: Tally) -> str:
    if t.counted == 0:
        return "No device in the scan has a result for these checks (none is of a kind they apply to)."
    if t.meets + t.fails == 0:
        return f"None of the {plural(t.unchecked, 'device')} could be checked for this."
    parts = [f"{t.meets:,} of {plural(t.counted, 'device')} {'meets' if t.counted == 1 else 'meet'} this"]
    if t.fails:
        parts.append(f"{t.fails:,} do not")
    if t.unchecked:
        parts.append(f"{t.unchecked:,} could not be checked")
    return "; ".join(parts) + "."


def _att_view(a: fw.Attestation, as_of: dt.date) -> dict[str, Any]:
    age = a.age_days(as_of)
    return {"answer": a.answer, "by": a.by, "at": a.at, "note": a.note, "age_days": age,
            "stale": age > fw.STALE_DAYS}


def build_evidence(city: Any, store: Store, *, as_of: dt.date) -> EvidenceReport:
    """Build the evidence report's model for ``city`` as of ``as_of``."""
    from itaudit import plugins

    known_checks = set(plugins.load_checks())
    rep = EvidenceReport(city_id=city.id, city_name=city.name, as_of=as_of.isoformat(), has_data=False,
                         data_dates=data_dates())
    templates, rep.problems = fw.templates_for(city, known_checks)
    att_path = fw.attestations_path(city)
    rep.attestation_file = str(att_path)
    try:
        attestations, att_problems = fw.load_attestations(att_path)
    except fw.FrameworkError as exc:  # the report still shows what the data says, and why no attestation is
        attestations, att_problems = [], [f"{exc}; no attestation could be used"]
    rep.problems += att_problems
    current = fw.current_attestations(attestations, as_of)
    question_ids = {q.id for t in templates for q in t.questions}
    for qid in sorted(set(a.question for a in attestations) - question_ids):
        rep.problems.append(f"attestation for unknown question {qid} (in {att_path}): no template asks it; "
                            "it is not shown")
    later = sorted({a.question for a in attestations if a.at > as_of.isoformat()} & question_ids)
    if later:
        rep.problems.append(f"attestations dated after {as_of} were left out of this report: {', '.join(later)}")

    maps = fw.check_mappings()["checks"]
    titles = {cid: spec.title for cid, spec in plugins.load_checks().items()}
    for cid in sorted(known_checks):
        m = maps.get(cid)
        if m is None:
            rep.problems.append(f"check {cid} has no CSF 2.0 / CPG 2.0 mapping")
            continue
        rep.mappings.append({"check": cid, "title": titles.get(cid, ""), **m})
    rep.csf_source = dict(fw.csf_catalog()["source"])
    rep.cpg_note = str(fw.cpg_catalog()["verification_note"])

    scan = _scan_at(store, as_of)
    by_device: dict[int, dict[str, tuple[str, str]]] = defaultdict(dict)
    names: dict[int, str] = {}
    since: dict[tuple[int, str], str] = {}
    if scan is not None:
        rep.has_data = True
        rep.scan_date, rep.scan_status = scan.as_of[:10], scan.status
        rep.not_checked = int(scan.n_failed)
        for r in store.check_results(scan.id):
            by_device[int(r["device_id"])][r["check_id"]] = (r["status"], r["summary"] or "")
        names = {int(d["id"]): device_label(d) for d in store.devices()}
        for f in store.findings_open_at(scan.id):
            since[(int(f["device_id"]), f["check_id"])] = (f["first_seen"] or "")[:10]
        rep.devices_counted = len(by_device)

    def devices_for(checks: list[str], failing: list[int], unchecked: list[int]) -> list[DeviceItem]:
        items = []
        for status_set, ids in ((("fail",), failing), (("unknown", "error"), unchecked)):
            for d in ids:
                for c in checks:
                    st, summary = by_device[d].get(c, ("", ""))
                    if st in status_set:
                        items.append(DeviceItem(names.get(d, f"device {d}"), c, st,
                                                since.get((d, c), rep.scan_date or ""), summary))
        return sorted(items, key=lambda i: (i.status != "fail", i.device.lower(), i.check_id))

    for tpl in templates:
        views = []
        for q in tpl.questions:
            att = current.get(q.id)
            av = _att_view(att, as_of) if att else None
            if av and av["stale"]:
                rep.problems.append(f"{q.id}: the attestation by {att.by} dated {att.at} is {av['age_days']} days "
                                    f"old (older than a year); ask again")
            v = QuestionView(id=q.id, text=q.text, answered_by=q.answered_by, answer="unknown", basis="",
                             checks=q.checks, coverage=q.coverage, coverage_note=q.coverage_note, csf=q.csf,
                             cpg2=q.cpg2, attestation=av)
            if q.answered_by == "data":
                if not q.checks:
                    v.basis = "This question maps to no check itaudit has, so itaudit cannot answer it."
                elif scan is None:
                    v.basis = "No scan has been run yet."
                else:
                    t, failing, unchecked = _tally(q.checks, by_device)
                    v.tally, v.answer = t, _answer(t, q.coverage)
                    v.basis = _basis(t)
                    if v.answer == "partly" and t.fails == 0 and t.unchecked == 0:
                        v.basis += " itaudit's checks cover only part of this question."
                    v.devices = devices_for(q.checks, failing, unchecked)
            else:
                if av and av["stale"]:  # a year-old answer is shown, not counted: ask again
                    v.basis = (f"The last answer ({av['answer']}, by {att.by} on {att.at}) is {av['age_days']} "
                               "days old, older than a year; it needs answering again.")
                elif av:
                    v.answer = av["answer"]
                    v.basis = f"Answered by {att.by} on {att.at} ({av['age_days']} days ago)."
                else:
                    v.basis = "Only a person can answer this; no one has recorded an answer yet."
                if q.related_checks and scan is not None:
                    t, _, _ = _tally(q.related_checks, by_device)
                    v.related = f"Related itaudit checks ({', '.join(q.related_checks)}): {_basis(t)}"
            views.append(v)
        rep.templates.append(TemplateView(tpl.id, tpl.title, tpl.source, tpl.shipped, views))

    rep.functions = _functions(rep, maps, by_device, templates, current, as_of)
    return rep


def _functions(rep: EvidenceReport, maps: dict[str, Any], by_device: dict[int, dict[str, tuple[str, str]]],
               templates: list[fw.Template], current: dict[str, fw.Attestation],
               as_of: dt.date) -> list[FunctionView]:
    """An NCSR-style view per CSF function: where itaudit has evidence, and where it has none."""
    cat = fw.csf_catalog()
    per_fn: dict[str, list[str]] = defaultdict(list)
    for s in cat["subcategories"]:
        per_fn[fw.csf_function(s)].append(s)
    with_data: dict[str, set[str]] = defaultdict(set)
    checks_of: dict[str, set[str]] = defaultdict(set)
    judged = {c for res in by_device.values() for c, (st, _) in res.items() if st in ("pass", "fail")}
    for cid, m in maps.items():
        for s in m["csf"]:
            checks_of[fw.csf_function(s)].add(cid)
            if cid in judged:
                with_data[fw.csf_function(s)].add(s)
    attested: dict[str, set[str]] = defaultdict(set)
    for tpl in templates:
        for q in tpl.questions:
            a = current.get(q.id)
            if q.answered_by == "person" and a and a.age_days(as_of) <= fw.STALE_DAYS:
                for s in q.csf:
                    attested[fw.csf_function(s)].add(s)
    out = []
    for code, name in cat["functions"].items():
        t, _, _ = _tally(sorted(checks_of[code]), by_device)
        data, att = sorted(with_data[code]), sorted(attested[code] - with_data[code])
        n = len(per_fn[code])
        if not data and not att:
            status = "not assessed"
            sentence = (f"Not assessed: itaudit has no data for the {n} {name} subcategories and no one has "
                        "attested to them. Answer them in the NCSR self-assessment.")
        else:
            status = "assessed"
            bits = []
            if data:
                bits.append(f"itaudit's scans give evidence for {len(data)} of {n} subcategories "
                            f"({t.fails:,} of {plural(t.meets + t.fails, 'device')} fail at least one check)")
            if att:
                bits.append(f"people attested to {len(att)} more")
            sentence = "; ".join(bits) + f"; the other {n - len(data) - len(att)} are not assessed here."
        out.append(FunctionView(code, name, n, data, att, t.fails, t.meets + t.fails, status, sentence))
    return out


# --- writers --------------------------------------------------------------------------------


def render_evidence_html(report: EvidenceReport) -> str:
    return render("evidence.html.j2", r=report, words=ANSWER_WORDS)


def _xlsx_sheets(r: EvidenceReport) -> list[tuple[str, list[str], list[list[Any]]]]:
    sheets: list[tuple[str, list[str], list[list[Any]]]] = []
    for t in r.templates:
        rows = []
        for q in t.questions:
            a = q.attestation or {}
            rows.append([
                q.id, q.text, q.answered_by, ANSWER_WORDS[q.answer], q.basis,
                q.tally.meets if q.tally else None, q.tally.fails if q.tally else None,
                q.tally.unchecked if q.tally else None, ", ".join(q.checks), q.coverage_note or q.related,
                ", ".join(q.csf), ", ".join(q.cpg2),
                a.get("answer", ""), a.get("by", ""), a.get("at", ""), a.get("age_days", ""),
                "stale" if a.get("stale") else "", a.get("note", ""),
            ])
        sheets.append((t.id[:31],
                       ["question", "text", "answered by", "answer", "basis", "devices meeting", "devices failing",
                        "could not check", "checks", "note", "CSF 2.0", "CPG 2.0", "attested answer", "attested by",
                        "attested on", "age (days)", "stale", "attestation note"], rows))
    dev_rows = [[t.id, q.id, d.device, d.check_id, d.status, d.since, d.summary]
                for t in r.templates for q in t.questions for d in q.devices]
    sheets.append(("Devices concerned", ["template", "question", "device", "check", "status", "since", "detail"],
                   dev_rows))
    sheets.append(("CSF functions", ["function", "subcategories", "with itaudit data", "attested", "status",
                                     "summary"],
                   [[f"{f.name} ({f.code})", f.subcategories, ", ".join(f.with_data), ", ".join(f.attested),
                     f.status, f.sentence] for f in r.functions]))
    sheets.append(("Check mappings", ["check", "title", "CSF 2.0", "CSF verification", "CPG 2.0",
                                      "CPG verification", "why", "mapped by", "date"],
                   [[m["check"], m["title"], ", ".join(m["csf"]), m["csf_verification"], ", ".join(m["cpg2"]),
                     m["cpg2_verification"], m["why"], m["mapped_by"], m["date"]] for m in r.mappings]))
    sheets.append(("Problems", ["problem"], [[p] for p in r.problems] or [["none"]]))
    return sheets


def write_evidence(
    city: Any,
    store: Store,
    *,
    as_of: dt.date,
    out_dir: Path,
    formats: tuple[str, ...] = ("html",),
) -> list[Path]:
    """Write the evidence report into ``out_dir``: HTML always; "pdf", "xlsx", "json" on request."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown report format {', '.join(bad)} (choose from {', '.join(FORMATS)})")
    report = build_evidence(city, store, as_of=as_of)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{city.id}-evidence-{as_of.isoformat()}"
    html = export.write_text(stem.with_suffix(".html"), render_evidence_html(report))
    paths = [html]
    if "xlsx" in formats:
        paths.append(export.write_xlsx(stem.with_suffix(".xlsx"), _xlsx_sheets(report)))
    if "json" in formats:
        paths.append(export.write_text(stem.with_suffix(".json"), report.to_json()))
    if "pdf" in formats:
        paths.append(html_to_pdf(html, stem.with_suffix(".pdf")))
    return paths
