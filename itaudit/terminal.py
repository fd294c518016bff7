"""What the CLI prints: tables that stay readable at 80 columns, plain lines for scripts.

Every cell is a ``rich.text.Text``: device-supplied text (names, banners, error messages)
is data and is never read as Rich markup. A table keeps its identifying columns (device
name, address) whole and lets the other columns wrap; ``wide`` lets every column take
its natural width, and ``tsv`` prints tab-separated lines with a header for scripts.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TextIO


@dataclass(frozen=True)
class Column:
    """A table column: ``keep`` columns are never cut or wrapped (names, addresses)."""

    header: str
    keep: bool = False
    weight: int | None = None  # share of the free width for long text (finding, system)


@cache
def console(stderr: bool = False) -> Any:
    """rich's ``Console`` for stdout (or stderr), made on first use: plain runs (cron, ``--json``,
    ``--tsv``) never import rich, a sizeable part of the CLI's start-up."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def is_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default stdout) is an interactive terminal."""
    stream = stream or sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def plain(text: str, *, stderr: bool = False, style: str | None = None) -> None:
    """Print ``text`` as it is (never read as markup); ``style`` colours it on a terminal."""
    from rich.text import Text

    console(stderr).print(Text(text, style=style or ""), soft_wrap=True)


def labelled(label: str, text: str, *, style: str = "red", stderr: bool = True) -> None:
    """``label: text`` with a coloured label; ``text`` is printed as it is (error messages)."""
    from rich.text import Text

    console(stderr).print(Text.assemble((f"{label}: ", style), text), soft_wrap=True)


def _tsv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def print_table(columns: Sequence[Column], rows: Iterable[Sequence[Any]], *, wide: bool = False,
                tsv: bool = False, title: str | None = None, styles: Sequence[str | None] | None = None) -> None:
    """Print rows under ``columns``.

    ``tsv``: one tab-separated line per row after a header line (tabs and newlines in a value
    are written as ``\\t`` and ``\\n``). Otherwise a table: ``keep`` columns at full width,
    the others wrapping; with ``wide`` nothing wraps and lines may be longer than the terminal.
    ``styles`` gives an optional style per row (e.g. a severity colour).
    """
    rows = [list(r) for r in rows]
    if tsv:
        out = sys.stdout
        out.write("\t".join(c.header for c in columns) + "\n")
        for r in rows:
            out.write("\t".join(_tsv_cell(v) for v in r) + "\n")
        out.flush()
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    con = console()
    if not wide and _stacked(columns, rows, con.width):
        _print_stacked(con, columns, rows, styles, title)
        return
    # Long-text columns share the room the others leave (ratio needs expand).
    expand = not wide and any(c.weight for c in columns)
    table = Table(title=title, pad_edge=False, expand=expand, box=box.SIMPLE_HEAD)
    for i, c in enumerate(columns):
        if wide:
            table.add_column(c.header, no_wrap=True, overflow="ignore")
        elif c.keep:
            width = max([len(c.header)] + [len(str(r[i] or "")) for r in rows])
            table.add_column(c.header, no_wrap=True, min_width=width, overflow="ignore")
        else:
            table.add_column(c.header, overflow="fold", ratio=c.weight)
    for n, r in enumerate(rows):
        style = styles[n] if styles else None
        table.add_row(*(Text("" if v is None else str(v)) for v in r), style=style)
    if wide:
        # As wide as the table wants: a pager or a wide terminal shows it whole.
        from rich.console import Console

        Console(width=max(con.width, _natural_width(columns, rows)), highlight=False).print(table, crop=False)
    else:
        con.print(table, crop=False)


MIN_TEXT_WIDTH = 36  # below this, long text goes on its own lines under each row


def _stacked(columns: Sequence[Column], rows: list[list[Any]], width: int) -> bool:
    """Whether the long-text columns would be squeezed below ``MIN_TEXT_WIDTH``."""
    if not any(c.weight for c in columns):
        return False
    fixed = sum(max([len(c.header)] + [len(str(r[i] or "")) for r in rows]) + 2
                for i, c in enumerate(columns) if not c.weight)
    return width - fixed < MIN_TEXT_WIDTH * sum(1 for c in columns if c.weight)


def _print_stacked(con: Any, columns: Sequence[Column], rows: list[list[Any]],
                   styles: Sequence[str | None] | None, title: str | None) -> None:
    """A narrow terminal: the short columns on one line, each long text wrapped beneath it."""
    from rich.text import Text

    short = [i for i, c in enumerate(columns) if not c.weight]
    long = [i for i, c in enumerate(columns) if c.weight]
    widths = {i: max([len(columns[i].header)] + [len(str(r[i] or "")) for r in rows]) for i in short}
    if title:
        con.print(Text(title, style="bold"))
    head = "  ".join(columns[i].header.ljust(widths[i]) for i in short).rstrip()
    con.print(Text(head, style="bold"), soft_wrap=True)
    con.print(Text("    " + " / ".join(columns[i].header for i in long), style="bold"), soft_wrap=True)
    for n, r in enumerate(rows):
        style = (styles[n] if styles else None) or ""
        line = "  ".join(str(r[i] or "").ljust(widths[i]) for i in short).rstrip()
        con.print(Text(line, style=style), soft_wrap=True, crop=False)
        for i in long:
            if r[i]:
                text = Text(str(r[i]))
                for part in text.wrap(con, max(20, con.width - 4)):
                    con.print(Text("    ") + part, crop=False)


def _natural_width(columns: Sequence[Column], rows: list[list[Any]]) -> int:
    widths = [max([len(c.header)] + [len(str(r[i] or "")) for r in rows]) for i, c in enumerate(columns)]
    return sum(widths) + 3 * len(widths) + 4
