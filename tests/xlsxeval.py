"""Evaluate the formulas itaudit writes into XLSX files, so tests compare what finance's
spreadsheet would show with the report's own numbers.

Covers the subset the reports write: numbers, cell references, ranges, ``+``, ``-``, ``*``,
parentheses, SUM, SUBTOTAL(9, ...) (a sum), MAX and MIN. Anything else raises, so a report
that starts writing a formula this cannot read fails its test rather than passing unchecked.
"""

from __future__ import annotations

import re
from typing import Any

from openpyxl.utils import column_index_from_string
from openpyxl.worksheet.worksheet import Worksheet

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<range>[A-Z]+\d+:[A-Z]+\d+)|(?P<ref>[A-Z]+\d+)"
                    r"|(?P<fn>[A-Z]+)\(|(?P<op>[-+*(),]))")


def value(ws: Worksheet, ref: str) -> float | str | None:
    """The value a spreadsheet shows in ``ref`` (formulas evaluated)."""
    cell = ws[ref]
    v = cell.value
    if isinstance(v, str) and v.startswith("=") and cell.data_type == "f":
        return _Eval(ws, v[1:]).run()
    return v


class _Eval:
    def __init__(self, ws: Worksheet, text: str):
        self.ws = ws
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ValueError(f"cannot read formula {text!r} at {pos}")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def run(self) -> float:
        out = self.expr()
        if self.i != len(self.tokens):
            raise ValueError(f"trailing tokens in formula: {self.tokens[self.i:]}")
        return out

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expr(self) -> float:
        total = self.term()
        while (tok := self.peek()) and tok[1] in "+-" and tok[0] == "op":
            self.take()
            total = total + self.term() if tok[1] == "+" else total - self.term()
        return total

    def term(self) -> float:
        total = self.atom()
        while (tok := self.peek()) and tok == ("op", "*"):
            self.take()
            total *= self.atom()
        return total

    def atom(self) -> float:
        kind, text = self.take()
        if kind == "num":
            return float(text)
        if kind == "ref":
            return _num(value(self.ws, text))
        if kind == "op" and text == "-":
            return -self.atom()
        if kind == "op" and text == "(":
            out = self.expr()
            self.take()
            return out
        if kind == "fn":
            args: list[list[float]] = []
            while True:
                tok = self.peek()
                if tok and tok[0] == "range":
                    self.take()
                    args.append(self._range(tok[1]))
                else:
                    args.append([self.expr()])
                sep = self.take()
                if sep[1] == ")":
                    break
            return _apply(text, args)
        raise ValueError(f"unexpected {text!r}")

    def _range(self, text: str) -> list[float]:
        a, b = text.split(":")
        ca, ra = re.match(r"([A-Z]+)(\d+)", a).groups()  # type: ignore[union-attr]
        cb, rb = re.match(r"([A-Z]+)(\d+)", b).groups()  # type: ignore[union-attr]
        out = []
        for r in range(int(ra), int(rb) + 1):
            for c in range(column_index_from_string(ca), column_index_from_string(cb) + 1):
                v = value(self.ws, f"{self.ws.cell(row=r, column=c).column_letter}{r}")
                if isinstance(v, int | float) and not isinstance(v, bool):
                    out.append(float(v))
        return out


def _num(v: Any) -> float:
    if v is None or v == "":
        return 0.0
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    raise ValueError(f"not a number: {v!r}")


def _apply(fn: str, args: list[list[float]]) -> float:
    flat = [x for a in args for x in a]
    if fn == "SUM":
        return sum(flat)
    if fn == "SUBTOTAL":
        if args[0] != [9.0]:
            raise ValueError("only SUBTOTAL(9, ...) (sum) is supported")
        return sum(x for a in args[1:] for x in a)
    if fn == "MAX":
        return max(flat)
    if fn == "MIN":
        return min(flat)
    raise ValueError(f"unsupported function {fn}")
