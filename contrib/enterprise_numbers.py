"""Regenerate itaudit/data/enterprise_numbers_iana.tsv.gz from a copy of the IANA registry.

    python contrib/enterprise_numbers.py enterprise-numbers.txt 2025-08-22 "https://www.iana.org/..."
    python contrib/enterprise_numbers.py /usr/share/wireshark/enterprises.tsv 2024-08-23 "Debian libwireshark-data ..."

Reads either IANA's text file (number line, then indented organisation) or Wireshark's
enterprises.tsv (number<TAB>organisation); writes number<TAB>organisation lines under a
header naming the source and date. Update "registry" in enterprise_numbers.json to match.
"""

from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "itaudit" / "data" / "enterprise_numbers_iana.tsv.gz"


def parse(text: str) -> list[tuple[int, str]]:
    rows: list[tuple[int, str]] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#") or not line.strip():
            continue
        tsv = re.match(r"^(\d+)\t+(.+)$", line)
        if tsv:
            rows.append((int(tsv.group(1)), tsv.group(2).strip()))
        elif line.strip().isdigit() and line == line.strip() and i + 1 < len(lines):
            rows.append((int(line), lines[i + 1].strip()))
    return rows


def main(src: str, date: str, source: str) -> None:
    rows = parse(Path(src).read_text(encoding="utf-8", errors="replace"))
    head = ("# IANA Private Enterprise Numbers (SMI Network Management Private Enterprise Codes):"
            " number<TAB>organisation.\n"
            f"# Registry: https://www.iana.org/assignments/enterprise-numbers/ (last updated {date}).\n"
            f"# Copy: {source}\n")
    body = "".join(f"{n}\t{name}\n" for n, name in rows if name)
    with gzip.GzipFile(OUT, "wb", mtime=0) as fh:
        fh.write((head + body).encode("utf-8"))
    print(f"{len(rows)} numbers -> {OUT}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
