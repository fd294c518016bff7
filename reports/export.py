"""Tabular and text exports: CSV, XLSX (openpyxl), JSON and Markdown helpers.

Spreadsheet cells are guarded against formula injection: device-supplied text that
starts with ``=``, ``+``, ``-`` or ``@`` is prefixed with an apostrophe in CSV, and in XLSX
stored as a plain string with Excel's "quote prefix" (the text stays text even when someone
edits the cell), so a hostile hostname cannot run a formula in finance's Excel. Control
characters (which XML 1.0, hence XLSX, cannot hold) are dropped from XLSX cells.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# What XML 1.0 cannot carry (openpyxl raises IllegalCharacterError on it): C0 controls but tab, LF, CR.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def check_formats(formats: Iterable[str], allowed: Sequence[str]) -> None:
    """Refuse a format a report does not write (the CLI turns this into a usage error)."""
    bad = [f for f in formats if f not in allowed]
    if bad:
        raise ValueError(f"unknown report format {', '.join(bad)} (choose from {', '.join(allowed)})")


def write_html_report(stem: Path, html: str, to_json: Any, formats: Iterable[str]) -> list[Path]:
    """``stem``.html always, then .json (``to_json()``) and .pdf (printed from the HTML) on request."""
    from reports.pdf import html_to_pdf

    formats = tuple(formats)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [write_text(stem.with_suffix(".html"), html)]
    if "json" in formats:
        paths.append(write_text(stem.with_suffix(".json"), to_json()))
    if "pdf" in formats:
        paths.append(html_to_pdf(paths[0], stem.with_suffix(".pdf")))
    return paths


def write_text(path: Path, text: str) -> Path:
    """Write a report file readable by its owner only (reports describe the city's weak spots)."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    return path


def safe_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet will not evaluate as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a CSV (UTF-8 with BOM so Excel opens accents correctly)."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in rows:
            w.writerow([safe_cell(v) for v in row])
    return path


class Formula(str):
    """An XLSX cell formula written by the report itself ("=SUM(C2:C9)"), never device text:
    ``write_xlsx`` writes only these as formulas."""


def write_xlsx(
    path: Path,
    sheets: list[tuple[str, Sequence[str], Iterable[Sequence[Any]]]],
    *,
    money_columns: dict[str, set[int]] | None = None,
    total_rows: dict[str, int] | None = None,
    landscape: bool = True,
) -> Path:
    """Write an XLSX workbook, one sheet per (title, header, rows). Needs openpyxl.

    Every sheet gets an autofilter on its header row, a frozen header, and print setup (landscape,
    fit to one page wide, header row repeated on each page); ``total_rows`` trailing rows of a sheet
    (its totals) stay out of the filter. ``Formula`` values become formulas; every other string is text."""
    try:
        from openpyxl import Workbook
        from openpyxl.styles import Font, PatternFill
        from openpyxl.utils import get_column_letter
    except ImportError:
        from itaudit.errors import ItauditError

        raise ItauditError("XLSX output needs openpyxl (pip install openpyxl)") from None
    wb = Workbook()
    wb.remove(wb.active)
    head_font = Font(bold=True, color="FFFFFF")
    head_fill = PatternFill("solid", fgColor="1D4F91")
    for title, header, rows in sheets:
        ws = wb.create_sheet(title[:31])
        ws.append(list(header))
        for cell in ws[1]:
            cell.font, cell.fill = head_font, head_fill
        widths = [len(h) for h in header]
        money_cols = (money_columns or {}).get(title, set())
        for row in rows:
            values = [_XML_ILLEGAL.sub("", v) if isinstance(v, str) and not isinstance(v, Formula) else v
                      for v in row]
            ws.append(values)
            r = ws.max_row
            for i, v in enumerate(values):
                cell = ws.cell(row=r, column=i + 1)
                if isinstance(v, Formula):
                    if i in money_cols:
                        cell.number_format = '"$"#,##0'
                    continue
                if isinstance(v, str):
                    cell.data_type = "s"  # never a formula, whatever the text starts with
                    if v.startswith(_FORMULA_START):
                        cell.quotePrefix = True  # and stays text when someone edits the cell
                    if i < len(widths):
                        widths[i] = max(widths[i], min(len(v), 60))
                elif i in money_cols:
                    cell.number_format = '"$"#,##0'
        for i, w in enumerate(widths, 1):
            ws.column_dimensions[get_column_letter(i)].width = w + 2
        ws.freeze_panes = "A2"
        if header:
            last = max(1, ws.max_row - (total_rows or {}).get(title, 0))
            ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{last}"
        ws.print_title_rows = "1:1"
        ws.page_setup.orientation = "landscape" if landscape else "portrait"
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        wb.save(fh)
    return Path(path)


def write_json(path: Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def md_text(text: Any) -> str:
    """Device text made inert in Markdown: no HTML, no links, no table breaks."""
    s = str(text if text is not None else "")
    for ch, rep in (
        ("\\", "\\\\"),
        ("<", "&lt;"),
        (">", "&gt;"),
        ("|", "\\|"),
        ("[", "\\["),
        ("]", "\\]"),
        ("`", "\\`"),
        ("*", "\\*"),
        ("_", "\\_"),
        ("\n", " "),
        ("\r", " "),
    ):
        s = s.replace(ch, rep)
    return s
