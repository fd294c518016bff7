"""Look at the evidence report as a person would: the printed PDF's text, its pages as
pixels (the answer badges must be visible in their colours), and a PNG of the HTML.

Needs headless Chromium and poppler-utils (Debian packages); skipped locally without them,
a failure under CI=true.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
import report_city
from conftest import need_peer

from itaudit import frameworks as fw
from reports.evidence import build_evidence, write_evidence
from reports.pdf import find_chromium, screenshot

AS_OF = dt.date(2026, 10, 25)
COLOURS = {"yes": (0x1F, 0x7A, 0x3A), "partly": (0xB8, 0x6E, 0x00), "no": (0xB4, 0x23, 0x18)}


def _tools() -> None:
    need_peer(find_chromium() is not None, "headless Chromium not installed (apt-get install chromium)")
    need_peer(all(shutil.which(t) for t in ("pdftoppm", "pdftotext")),
              "poppler-utils not installed (apt-get install poppler-utils)")


def _ppm_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and RGB bytes of a binary PPM (P6), as pdftoppm writes it."""
    data = path.read_bytes()
    fields: list[bytes] = []
    i = 0
    while len(fields) < 4:
        while data[i:i + 1].isspace():
            i += 1
        j = i
        while not data[j:j + 1].isspace():
            j += 1
        fields.append(data[i:j])
        i = j
    assert fields[0] == b"P6" and fields[3] == b"255"
    return int(fields[1]), int(fields[2]), data[i + 1:]


def _count(rgb: bytes, colour: tuple[int, int, int], tol: int = 24) -> int:
    r0, g0, b0 = colour
    return sum(1 for k in range(0, len(rgb) - 2, 3)
               if abs(rgb[k] - r0) <= tol and abs(rgb[k + 1] - g0) <= tol and abs(rgb[k + 2] - b0) <= tol)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("evidence-visual") / "city.db"
    city, store = report_city.build(db, n=80, months=4)
    fw.record_attestation(fw.attestations_path(city), fw.Attestation(
        "INS-MFA-REMOTE", "yes", "Pat Lee, IT manager", "2026-08-01", "Conditional access policy MFA-1"))
    yield city, store
    store.close()


def test_evidence_pdf_shows_answers_attestations_and_escaped_names(city, tmp_path: Path) -> None:
    _tools()
    c, store = city
    html, pdf = write_evidence(c, store, as_of=AS_OF, out_dir=tmp_path, formats=("html", "pdf"))
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    rep = build_evidence(c, store, as_of=AS_OF)
    assert "Cybersecurity evidence" in text and "SPRINGFIELD" in text
    flat = " ".join(text.split())
    assert "Attested Yes by Pat Lee, IT manager on 2026-08" in flat and "(85 days ago)" in flat
    assert '<script>alert("x")</script>' in text  # shown as text, not run
    assert "NCSR-style view" in text and "Not assessed" in text
    for t in rep.templates:
        assert t.title.split(" (")[0] in " ".join(text.split())
    # Every answer's badge is on the pages in its colour, and page 1 already starts the questionnaire
    # (a blank or unstyled page, or a section pushed whole onto page 2, fails here).
    subprocess.run(["pdftoppm", "-r", "40", str(pdf), str(tmp_path / "p")], check=True)
    pages = [_ppm_pixels(p) for p in sorted(tmp_path.glob("p-*.ppm"))]
    w, h, first = pages[0]
    assert 300 < w < h  # portrait Letter
    first_answer = rep.templates[0].questions[0].answer
    assert _count(first, COLOURS[first_answer]) > 40, "page 1 does not show the first answer"
    for answer in {q.answer for q in rep.templates[0].questions} & set(COLOURS):
        assert sum(_count(rgb, COLOURS[answer]) for _, _, rgb in pages) > 40, f"no {answer} badge visible"
    png = screenshot(html, tmp_path / "evidence.png", width=1000, height=1400)
    assert png.stat().st_size > 20_000
