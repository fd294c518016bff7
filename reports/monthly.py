"""The city manager's monthly summary: HTML always; PDF, Markdown and JSON on request."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from itaudit.config import CityConfig
from itaudit.store import Store
from reports import export
from reports.common import money
from reports.model import MonthlyReport, Risk, build_monthly
from reports.pdf import html_to_pdf
from reports.render import RAG_WORDS, render

FORMATS = ("html", "pdf", "md", "json")


def render_monthly_html(report: MonthlyReport) -> str:
    """The monthly summary as one self-contained HTML document."""
    return render("monthly.html.j2", r=report)


def write_monthly(
    city: CityConfig,
    store: Store,
    *,
    month: str | None = None,
    as_of: dt.date,
    out_dir: Path,
    formats: tuple[str, ...] = ("html",),
) -> list[Path]:
    """Write the manager summary for ``month`` (default: the month of ``as_of``) into ``out_dir``.

    HTML is always written (the PDF is printed from it); "pdf", "md" and "json" on request.
    Returns the paths written.
    """
    export.check_formats(formats, FORMATS)
    report = build_monthly(city, store, as_of=as_of, month=month)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{city.id}-monthly-{report.month}"
    html = stem.with_suffix(".html")
    export.write_text(html, render_monthly_html(report))
    paths = [html]
    if "md" in formats:
        paths.append(export.write_text(stem.with_suffix(".md"), monthly_markdown(report)))
    if "json" in formats:
        paths.append(export.write_text(stem.with_suffix(".json"), report.to_json()))
    if "pdf" in formats:
        paths.append(html_to_pdf(html, stem.with_suffix(".pdf")))
    return paths


def risk_cost_text(k: Risk, fiscal_year: int) -> str:
    """What fixing one risk costs, in words: this fiscal year's share of the total, then later years."""
    if not (k.cost or k.later_cost):
        if k.covered:
            return f"covered by replacing the device{'' if k.devices == 1 else 's'} (counted under another risk)"
        return "staff time"
    text = f"{money(k.cost)} in FY{fiscal_year}"
    if k.later_cost:
        text += f", {money(k.later_cost)} in {', '.join(k.later_years)}"
    return text


def monthly_markdown(r: MonthlyReport) -> str:
    """A plain-text (Markdown) version of the summary, for an email body."""
    out = [f"# {export.md_text(r.city_name)} — IT risk summary, {r.month_label}", ""]
    if not r.has_data:
        out += [export.md_text(r.headline), ""]
        out += [f"**Data out of date:** {export.md_text(w)}" for w in r.data_warnings]
        return "\n".join(out)
    out += [f"**{export.md_text(r.headline)}** {r.score_words}", ""]
    if r.score_why:
        out += ["Why this score: " + "; ".join(export.md_text(w) for w in r.score_why) + ".", ""]
    out += [export.md_text(r.score_coverage), "", "## Top risks", ""]
    for i, k in enumerate(r.top_risks, 1):
        pay = "; ".join(k.budget_lines) or ("the replacement's line" if k.covered else "IT operating (staff time)")
        cost = risk_cost_text(k, r.fiscal_year)
        out.append(f"{i}. {export.md_text(k.sentence)} Cost to fix: {cost}, paid from {export.md_text(pay)}.")
    out += ["", f"Fixing the open findings in FY{r.fiscal_year}: {money(r.total_cost)} "
                f"({money(r.capital_cost)} capital, {money(r.operating_cost)} operating):"]
    out += [f"- {money(amount)} {kind} from {export.md_text(line)}" for line, kind, amount in r.cost_by_line]
    if r.backlog_later:
        out += ["", f"The capital plan spreads {money(r.backlog_later)} of these overdue replacements over "
                    f"{r.backlog_years}, as the city's policy chooses."]
    if r.later_by_year:
        out += ["", "Due in later fiscal years (not in that total): "
                + "; ".join(f"{fy} {money(c + o)}" for fy, c, o in r.later_by_year) + "."]
    out += ["", "## Scorecard", "", "| Measure | Target | Actual | Status |", "|---|---|---|---|"]
    for kpi in r.kpis:
        actual = f"{kpi.actual_text} ({kpi.count_text})" if kpi.count_text else kpi.actual_text
        out.append(f"| {kpi.label} | {kpi.target_text} | {actual} | {RAG_WORDS[kpi.rag]} |")
    council = r.council
    if council is not None and council.projection is not None and council.projection.sentences:
        out += ["", "## If we do nothing", "", " ".join(council.projection.sentences)]
    if council is not None and council.decision is not None:
        out += ["", "## What we ask the council to approve", "", council.decision.sentence]
        out += [f"- {export.md_text(x.budget_line)}: {money(x.amount)} ({x.devices} devices)"
                for x in council.decision.lines]
    out += [
        "",
        "## What changed",
        "",
        f"{r.new_count} new, {r.resolved_count} fixed, "
        + (f"{r.worse_count} got worse, " if r.worse_count else "")
        + f"{r.still_open_count} still open since "
        f"{r.prev_label or 'the first scan'}.",
        "",
        "## What the data does not tell us",
        "",
        r.gaps_sentence,
    ]
    if r.audit_sentence:
        out += ["", r.audit_sentence]
    for name, reason in r.not_checked[:20]:
        out.append(f"- {export.md_text(name)}: {export.md_text(reason)}")
    dates = r.data_dates
    out += [
        "",
        f"Data dates: lifecycle {dates.get('lifecycle', 'unknown')}, CISA KEV {dates.get('kev', 'unknown')}, "
        f"CVE version data {dates.get('vulns', 'unknown')}.",
    ]
    out += [f"\n**Data out of date:** {export.md_text(w)}" for w in r.data_warnings]
    return "\n".join(out) + "\n"


def summary_rows(city: CityConfig, store: Store, as_of: dt.date) -> list[tuple[str, str]]:
    """A one-screen summary (label, value) of this month for the terminal."""
    r = build_monthly(city, store, as_of=as_of)
    if not r.has_data:
        return [("Month", r.month_label), ("Status", r.headline), *(("Data warning", w) for w in r.data_warnings)]
    rows = [
        ("City", r.city_name),
        ("Month", r.month_label),
        ("Scan", f"{r.scan_date} ({r.scan_status})"),
        ("Score", f"{r.score:.0f} / 100" if r.score is not None else "n/a"),
        ("Change", r.score_words),
        ("Devices checked", f"{r.devices_checked} of {r.devices_total}"),
        ("Could not check", str(len(r.not_checked))),
    ]
    rows += [("Data warning", w) for w in r.data_warnings]
    if r.directory_only:
        rows.append(("From the directory only", f"{r.directory_only} (fully audited: {r.fully_audited})"))
    for k in r.top_risks[:3]:
        rows.append(("Risk", f"{k.sentence} ({risk_cost_text(k, r.fiscal_year)})"))
    rows.append((f"Cost to fix, FY{r.fiscal_year}", f"{money(r.total_cost)} ({money(r.capital_cost)} capital)"))
    if r.later_cost:
        rows.append(("Due in later years", money(r.later_cost)))
    for kpi in r.kpis:
        status = RAG_WORDS[kpi.rag].lower()
        of = f", {kpi.count_text}" if kpi.count_text else ""
        rows.append((kpi.label, f"{kpi.actual_text}{of} (target {kpi.target_text}, {status})"))
    return rows
