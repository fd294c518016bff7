"""Look at the reports as a person would: PDF pages, page count, text on the page, PNGs.

Needs headless Chromium and poppler-utils (Debian packages); skipped locally without
them, a failure under CI=true.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
import report_city
from conftest import need_peer

from reports.model import build_monthly
from reports.monthly import write_monthly
from reports.pdf import find_chromium, screenshot
from reports.plan import write_plan

AS_OF = dt.date(2026, 10, 25)


def _tools() -> None:
    need_peer(find_chromium() is not None, "headless Chromium not installed (apt-get install chromium)")
    need_peer(
        all(shutil.which(t) for t in ("pdftoppm", "pdfinfo", "pdftotext")),
        "poppler-utils not installed (apt-get install poppler-utils)",
    )


def _pages(pdf: Path) -> int:
    out = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in out.splitlines() if line.startswith("Pages:")))


def pdf_text(pdf: Path) -> str:
    """The PDF's text in reading order, whitespace collapsed (a sentence that wraps stays whole)."""
    out = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(out.split())


def assert_every_section_printed(text: str, rep) -> None:
    """Nothing may be dropped to make the summary fit two pages: every element of DESIGN.md's
    monthly summary is on the paper (``text`` from :func:`pdf_text`, ``rep`` the report model)."""
    from reports.common import money

    assert rep.data_warnings, "the layout must be tried with the data-age warnings on"
    assert "Data out of date:" in text
    for w in rep.data_warnings:
        assert " ".join(w.split()) in text
    assert f"risk score is {rep.score:.0f} out of 100" in text and "Why this score:" in text
    assert "Top risks and what fixing them costs" in text and rep.top_risks
    for k in rep.top_risks:
        assert k.sentence in text
        if k.cost:
            assert money(k.cost) in text
        for line in k.budget_lines[:1]:
            assert line.split(" ")[0] in text  # the account that pays
    assert f"costs in FY{rep.fiscal_year}, by budget line" in text and rep.cost_by_line
    for line, _kind, amount in rep.cost_by_line[:6]:
        assert line.split(" ")[0] in text and money(amount) in text
    assert f"Total FY{rep.fiscal_year}" in text and money(rep.total_cost) in text
    council = rep.council
    assert "Scorecard" in text and council and council.performance
    dense = "".join(text.split())  # "≤ 0" prints as "≤0"
    for m in council.performance:
        assert " ".join(m.why.split()) in text
        assert "".join(m.target_text.split()) in dense and "".join(m.actual_text.split()) in dense
    assert text.count(" manager:") >= len(council.performance)  # an owner on every measure
    assert "If we do nothing." in text and " ".join(council.projection.sentences[0].split()) in text
    assert "What we ask the council to approve." in text and council.decision.sentence in text
    assert "5-year plan:" in text
    ask = text[text.index("What we ask the council to approve."):text.index("5-year plan:")]
    for line in council.decision.lines:  # every line of the request, with its amount
        assert line.budget_line.split(" ")[0] in ask and money(line.amount) in ask
    assert "What changed since" in text and "new problems" in text and "still open" in text
    assert "What the data does not tell us" in text and rep.gaps_sentence in text
    listed = 6 if council else 8
    for name, _reason in rep.not_checked[:listed]:
        assert name in text
    if len(rep.not_checked) > listed:  # the rest named in the worklist, and counted here
        assert f"and {len(rep.not_checked) - listed} more (see the worklist)" in text
    assert "Data dates:" in text and "Report as of" in text


def _png_size(png: Path) -> tuple[int, int]:
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("visual") / "city.db"
    # 120 devices: enough that lists are long and the layout must cope with it.
    city, store = report_city.build(db, n=120, months=13)
    yield city, store
    store.close()


def test_monthly_pdf_is_two_pages_with_the_numbers(city, tmp_path: Path):
    _tools()
    c, store = city
    paths = write_monthly(c, store, as_of=AS_OF, out_dir=tmp_path, formats=("html", "pdf"))
    pdf = paths[-1]
    assert pdf.suffix == ".pdf" and _pages(pdf) <= 2
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    rep = build_monthly(c, store, as_of=AS_OF)
    assert_every_section_printed(pdf_text(pdf), rep)
    assert f"{rep.score:.0f}" in text and "October 2026" in text
    assert f"${rep.total_cost:,.0f}" in text
    for k in rep.kpis:
        assert k.actual_text in text
    assert "Could not be checked" in text and "timeout" in text
    assert '<script>alert("x")</script>' in text  # shown as text on the page, not run
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pngs = sorted(tmp_path.glob("page-*.png"))
    assert len(pngs) == _pages(pdf)
    w, h = _png_size(pngs[0])
    assert 400 < w < h  # portrait Letter pages


def test_html_screenshot_and_plan_pdf(city, tmp_path: Path):
    _tools()
    c, store = city
    html = write_monthly(c, store, as_of=AS_OF, out_dir=tmp_path)[0]
    png = screenshot(html, tmp_path / "monthly.png", width=900, height=1200)
    assert _png_size(png) == (900, 1200) and png.stat().st_size > 20_000  # not a blank page
    plan_pdf = write_plan(c, store, as_of=AS_OF, out_dir=tmp_path, formats=("pdf",))[-1]
    text = subprocess.run(
        ["pdftotext", str(plan_pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "FY2027" in text and "FY2031" in text and "Deferral scenario" in text
    # The printed totals are the sums of the plan's rows: each year's total and the five years'.
    from reports.common import money
    from reports.plan import build_plan

    plan = build_plan(c, store, as_of=AS_OF)
    flat = " ".join(text.split())
    assert money(sum(i.cost for i in plan.items)) in flat
    for fy in plan.fiscal_years:
        year = sum(i.cost for i in plan.items if i.fiscal_year == fy)
        assert (money(year) if year else "–") in flat, fy
    assert money(sum(plan.capital)) in flat  # the capital row
