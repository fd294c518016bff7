"""PDF output: headless Chromium prints the same self-contained HTML.

Why Chromium and not WeasyPrint: Chromium is one Debian package (``apt-get install
chromium``) that the test suite already needs to look at the reports, and it renders
the HTML exactly as a browser shows it. WeasyPrint is pure Python on PyPI but needs
Pango/HarfBuzz system libraries that a fresh machine may lack. WeasyPrint is used as a
fallback when it is importable and no Chromium is found. Neither is required: without
them, asking for a PDF raises ``PdfUnavailable`` with a clear message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from itaudit.errors import ItauditError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 90


class PdfUnavailable(ItauditError):
    """No PDF renderer is installed."""


def find_chromium() -> str | None:
    """Path of a Chromium-family browser (``ITAUDIT_CHROMIUM`` overrides), or None."""
    override = os.environ.get("ITAUDIT_CHROMIUM")
    if override:
        return override if Path(override).exists() else shutil.which(override)
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_args(chromium: str, profile: str) -> list[str]:
    """Flags for a quiet, offline headless run.

    Chromium keeps its sandbox (it opens HTML made from device text) except when running as
    root, where it refuses to start with one (containers often run as root).
    """
    sandbox = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    return [
        chromium,
        "--headless",
        *sandbox,
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--mute-audio",
        f"--user-data-dir={profile}",
    ]


def html_to_pdf(html_path: Path, pdf_path: Path) -> Path:
    """Print ``html_path`` to ``pdf_path``; raises ``PdfUnavailable`` or ``ItauditError``."""
    chromium = find_chromium()
    if chromium:
        with tempfile.TemporaryDirectory(prefix="itaudit-chromium-") as profile:
            cmd = chromium_args(chromium, profile) + [
                "--no-pdf-header-footer",
                "--print-to-pdf-no-header",
                f"--print-to-pdf={pdf_path}",
                html_path.resolve().as_uri(),
            ]
            try:
                proc = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT_S, check=False)
            except subprocess.TimeoutExpired:
                raise ItauditError(f"Chromium did not finish printing {html_path} in {TIMEOUT_S}s") from None
        if proc.returncode != 0 or not pdf_path.exists() or pdf_path.stat().st_size == 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise ItauditError(f"Chromium could not print {html_path}: {tail[0]}")
        return pdf_path
    try:
        import weasyprint  # type: ignore[import-not-found]
    except (ImportError, OSError):
        raise PdfUnavailable(
            "PDF needs headless Chromium (Debian/Ubuntu: apt-get install chromium) or WeasyPrint "
            "(pip install weasyprint); the HTML report was written and prints to PDF from any browser"
        ) from None
    weasyprint.HTML(filename=str(html_path)).write_pdf(str(pdf_path))
    return pdf_path


def screenshot(html_path: Path, png_path: Path, *, width: int = 1000, height: int = 1400) -> Path:
    """A PNG of the HTML as a browser shows it (for docs and for looking at reports)."""
    chromium = find_chromium()
    if not chromium:
        raise PdfUnavailable("screenshots need headless Chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="itaudit-chromium-") as profile:
        cmd = chromium_args(chromium, profile) + [
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            f"--screenshot={png_path}",
            html_path.resolve().as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT_S, check=False)
    if proc.returncode != 0 or not png_path.exists():
        raise ItauditError(f"Chromium could not screenshot {html_path}")
    return png_path
