"""Splitting probe output into its delimited sections (shared by the Linux and Windows parsers).

A probe prints ``=== SECTION name ===`` before each section and ``=== END ===`` last.
Output cut short (timeout, size bound) simply lacks the later sections and the end
marker; the last section seen is then flagged as possibly truncated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class ProbeOutput:
    """Sections of one probe run: name -> text, plus whether the run ended cleanly."""

    sections: dict[str, str] = field(default_factory=dict)
    complete: bool = False  # the end marker was seen
    last: str | None = None  # the last section started (suspect when not complete)
    kind: str | None = None  # "linux-probe", "windows-probe" from the header line


def to_text(data: str | bytes | None) -> str:
    """Decode probe bytes as UTF-8, replacing what is not (never raises)."""
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return str(data)


_MARKERS = re.compile(r"^=== (?:SECTION ([A-Za-z0-9_.-]{1,40})|(END)|ITAUDIT ([a-z0-9-]+) \d+) ===[ \t]*$", re.M)


def split_sections(data: str | bytes | None) -> ProbeOutput:
    """Split probe output into sections. A repeated section name keeps the first."""
    out = ProbeOutput()
    text = to_text(data).replace("\r\n", "\n")
    name: str | None = None
    start = 0
    # Jump from marker to marker with str.find and slice the text between them: the
    # output of a thousand hosts must not cost a Python loop (or regex) over every line.
    pos = 0 if text.startswith("=== ") else text.find("\n=== ") + 1
    while pos > 0 or (pos == 0 and text.startswith("=== ")):
        eol = text.find("\n", pos)
        eol = len(text) if eol < 0 else eol
        m = _MARKERS.match(text, pos, eol)
        if m:
            if name is not None and name not in out.sections:
                out.sections[name] = text[start:max(start, pos - 1)]
            name = None
            if m.group(1):
                name, start = m.group(1), eol + 1
                out.last = name
            elif m.group(2):
                out.complete = True
            elif out.kind is None:
                out.kind = m.group(3)
        nxt = text.find("\n=== ", eol - 1 if eol > pos else pos)
        pos = nxt + 1 if nxt >= 0 else -1
    if name is not None and name not in out.sections:
        out.sections[name] = text[start:].removesuffix("\n")
    return out


def kv_lines(text: str, sep: str = "=") -> dict[str, str]:
    """``key=value`` lines to a dict (first occurrence wins; other lines ignored)."""
    d: dict[str, str] = {}
    for line in text.splitlines():
        k, s, v = line.partition(sep)
        k = k.strip()
        if s and k and k not in d:
            d[k] = v.strip()
    return d
