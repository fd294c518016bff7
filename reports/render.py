"""Jinja2 rendering: one environment with autoescape on, filters, and inline SVG charts.

Device-supplied text is data: autoescape is on for every template and nothing built from
device text is ever marked safe. The SVG helpers build markup from numbers only.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from reports.common import money, money_cents

TEMPLATES = Path(__file__).parent / "templates"
RAG_COLOURS = {"green": "#1f7a3a", "amber": "#b86e00", "red": "#b42318", "none": "#8a8f98"}
RAG_WORDS = {"green": "On target", "amber": "Near target", "red": "Off target", "none": "No data"}


@cache
def environment() -> Environment:
    """The shared Jinja2 environment (autoescape on for every template)."""
    env = Environment(  # noqa: S701 - autoescape is on, unconditionally
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = money
    env.filters["cents"] = money_cents
    env.filters["money0"] = lambda a: "–" if not a else money(a)
    env.filters["num"] = lambda n: f"{n:,.0f}" if n is not None else "—"
    env.globals.update(
        sparkline=sparkline,
        rag_dot=rag_dot,
        score_ring=score_ring,
        bar=bar,
        RAG_WORDS=RAG_WORDS,
        RAG_COLOURS=RAG_COLOURS,
    )
    return env


def render(template: str, **context: Any) -> str:
    """Render a template from ``reports/templates`` with the given context."""
    return environment().get_template(template).render(**context)


def _f(x: float) -> str:
    return f"{x:.1f}"


def sparkline(
    values: list[float | None],
    *,
    target: float | None = None,
    width: int = 120,
    height: int = 26,
    lo: float | None = None,
    hi: float | None = None,
    colour: str = "#1d4f91",
    min_span: float = 10.0,
) -> Markup:
    """A 12-month trend as inline SVG: a line (gaps for months without data), a dashed
    target line, and a dot on the latest value."""
    points = [(i, v) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    known = [v for _, v in points] + ([target] if target is not None else [])
    if not points:
        empty = f'<svg class="spark" width="{width}" height="{height}" role="img" aria-label="no data"></svg>'
        return Markup(empty)  # noqa: S704 - numbers only
    lo = min(known) if lo is None else lo
    hi = max(known) if hi is None else hi
    if hi - lo < min_span:
        # A flat-looking line must not exaggerate a tiny change: show at least ``min_span``.
        mid = (hi + lo) / 2
        lo, hi = mid - min_span / 2, mid + min_span / 2
    pad = 3.0
    n = max(len(values) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return pad + i * (width - 2 * pad) / n, height - pad - (v - lo) * (height - 2 * pad) / (hi - lo)

    parts = [
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="12-month trend">'
    ]
    if target is not None:
        _, ty = xy(0, target)
        parts.append(
            f'<line x1="{pad}" x2="{width - pad}" y1="{_f(ty)}" y2="{_f(ty)}" stroke="#9aa3ad" '
            f'stroke-width="1" stroke-dasharray="2,2"/>'
        )
    run: list[str] = []
    segments: list[list[str]] = []
    prev = None
    for i, v in points:
        if prev is not None and i != prev + 1:
            segments.append(run)
            run = []
        x, y = xy(i, v)
        run.append(f"{_f(x)},{_f(y)}")
        prev = i
    segments.append(run)
    for seg in segments:
        if len(seg) > 1:
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" '
                f'stroke-linejoin="round" points="{" ".join(seg)}"/>'
            )
    for seg in segments:
        if len(seg) == 1:
            cx, cy = seg[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="1.4" fill="{colour}"/>')
    li, lv = points[-1]
    x, y = xy(li, lv)
    parts.append(f'<circle cx="{_f(x)}" cy="{_f(y)}" r="2.6" fill="{colour}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers and constants only


def rag_dot(rag: str, size: int = 12) -> Markup:
    """A red/amber/green dot; the word beside it carries the meaning in black and white."""
    colour = RAG_COLOURS.get(rag, RAG_COLOURS["none"])
    r = size / 2
    dot = (
        f'<svg width="{size}" height="{size}" aria-hidden="true">'
        f'<circle cx="{r}" cy="{r}" r="{r - 0.5}" fill="{colour}"/></svg>'
    )
    return Markup(dot)  # noqa: S704 - numbers and constants only


def score_ring(score: float | None, size: int = 92) -> Markup:
    """The city score as a ring gauge with the number in the middle."""
    r = size / 2 - 7
    c = 2 * math.pi * r
    value = 0.0 if score is None else max(0.0, min(100.0, score))
    colour = "#1f7a3a" if value >= 80 else "#b86e00" if value >= 60 else "#b42318"
    text = "—" if score is None else f"{value:.0f}"
    mid = size / 2
    return Markup(  # noqa: S704 - numbers and constants only
        f'<svg class="ring" width="{size}" height="{size}" viewBox="0 0 {size} {size}" role="img" '
        f'aria-label="score {text} of 100">'
        f'<circle cx="{mid}" cy="{mid}" r="{_f(r)}" fill="none" stroke="#e3e7ec" stroke-width="9"/>'
        f'<circle cx="{mid}" cy="{mid}" r="{_f(r)}" fill="none" stroke="{colour}" stroke-width="9" '
        f'stroke-dasharray="{_f(c * value / 100)} {_f(c)}" transform="rotate(-90 {mid} {mid})" '
        f'stroke-linecap="butt"/>'
        f'<text x="{mid}" y="{mid + 9}" text-anchor="middle" font-size="28" font-weight="700" '
        f'fill="#14233c">{text}</text>'
        f'<text x="{mid}" y="{mid + 23}" text-anchor="middle" font-size="9" fill="#5b6574">of 100</text>'
        f"</svg>"
    )


def bar(value: float, maximum: float, width: int = 90, height: int = 9, colour: str = "#1d4f91") -> Markup:
    """A small horizontal bar (share of ``maximum``)."""
    w = 0.0 if maximum <= 0 else max(0.0, min(1.0, value / maximum)) * width
    return Markup(  # noqa: S704 - numbers and constants only
        f'<svg width="{width}" height="{height}" aria-hidden="true">'
        f'<rect width="{width}" height="{height}" fill="#e8ecf1"/>'
        f'<rect width="{_f(w)}" height="{height}" fill="{colour}"/></svg>'
    )
