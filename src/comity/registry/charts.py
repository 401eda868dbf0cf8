"""Charts of the resource distribution as hand-written SVG: top countries, Lorenz, Gini by year.

No plotting library: each chart is a few dozen SVG elements, written as
text. Every chart is a standalone SVG 1.1 document (valid XML) with a
``<title>`` and a ``<desc>`` (``role="img"``, ``aria-labelledby``) for
screen readers, text labels on every bar, axis and series (never colour
alone: series also differ by dash pattern), and a ``<title>`` tooltip on
every bar and point. The output depends only on the data: fixed sizes,
fixed number formats, no dates or random ids, so the same report gives the
same bytes.

Trust assumptions: labels may come from imported data (country codes) or
from an operator (authority names), so every text is escaped for XML, and
characters XML 1.0 forbids are replaced with U+FFFD; no text is ever
written into an attribute or element name. The documents contain no
scripts, styles or links.

Example::

    for name, svg in render_all(report).items():
        (directory / f"{name}.svg").write_text(svg, encoding="utf-8")
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from comity.registry.resources import Kind
from comity.registry.stats import UNIT_NAMES, Distribution, KindStats, units

__all__ = ["KIND_LABELS", "Bar", "Series", "bar_chart", "chart_names", "line_chart", "lorenz_chart",
           "render", "render_all"]

KIND_LABELS = {Kind.IPV4: "IPv4", Kind.IPV6: "IPv6", Kind.ASN: "AS numbers"}
_TITLES = {Kind.IPV4: "IPv4 addresses", Kind.IPV6: "IPv6 (/48 equivalents)",
           Kind.ASN: "AS numbers"}
_COLOURS = {Kind.IPV4: "#1f5fa8", Kind.IPV6: "#b8322b", Kind.ASN: "#2a7d3b"}
_DASHES = {Kind.IPV4: "", Kind.IPV6: "8 4", Kind.ASN: "2 3"}
_TOP_BARS = 15
_FONT = 'font-family="DejaVu Sans, Arial, sans-serif" font-size="12"'
# Characters XML 1.0 does not allow, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Bar:
    label: str
    share: float
    value: str


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[int, float]]
    colour: str
    dash: str = ""


def _esc(text: str) -> str:
    """Text safe as XML character data or a double-quoted attribute value."""
    return html.escape(_NOT_XML.sub("\ufffd", text), quote=True)


def _n(x: float) -> str:
    return f"{x:.1f}"


def _text(x: float, y: float, text: str, *, anchor: str = "start", extra: str = "") -> str:
    return (f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}"{extra}>'
            f"{_esc(text)}</text>")


def _document(width: int, height: int, title: str, desc: str, body: Sequence[str]) -> str:
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="chart-title chart-desc" {_FONT}>',
        f'<title id="chart-title">{_esc(title)}</title>',
        f'<desc id="chart-desc">{_esc(desc)}</desc>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        _text(width / 2, 24, title, anchor="middle", extra=' font-size="15" font-weight="bold"'),
        *body,
        "</svg>",
        "",
    ])


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def _amount(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


# -- generic charts --------------------------------------------------------------------------

def bar_chart(*, title: str, desc: str, bars: Sequence[Bar], unit: str = "") -> str:
    """Horizontal bars, in the order given, each labelled with its share and value
    (``unit`` is named in each bar's tooltip)."""
    left, bar_max, row = 80, 380, 24
    height = 60 + max(len(bars), 1) * row + 20
    body: list[str] = []
    top = max((b.share for b in bars), default=0.0)
    for i, b in enumerate(bars):
        y = 50 + i * row
        length = bar_max * b.share / top if top > 0 else 0.0
        body.append(_text(left - 8, y + 15, b.label, anchor="end"))
        tip = f"{b.label}: {b.value}{' ' + unit if unit else ''} ({_pct(b.share)})"
        body.append(f'<rect x="{left}" y="{y + 3}" width="{_n(length)}" height="{row - 6}" '
                    f'fill="#1f5fa8"><title>{_esc(tip)}</title></rect>')
        body.append(_text(left + length + 6, y + 15, f"{_pct(b.share)} · {b.value}"))
    if not bars:
        body.append(_text(left, 70, "No data."))
    return _document(720, height, title, desc, body)


def _axes(x0: float, y0: float, w: float, h: float, ticks: Sequence[tuple[float, str]],
          x_ticks: Sequence[tuple[float, str]]) -> list[str]:
    """A plot frame: y gridlines at fractions of ``h``, x ticks at fractions of ``w``."""
    body = [f'<rect x="{_n(x0)}" y="{_n(y0 - h)}" width="{_n(w)}" height="{_n(h)}" '
            'fill="none" stroke="#444444"/>']
    for frac, label in ticks:
        y = y0 - frac * h
        body.append(f'<line x1="{_n(x0)}" y1="{_n(y)}" x2="{_n(x0 + w)}" y2="{_n(y)}" '
                    'stroke="#dddddd"/>')
        body.append(_text(x0 - 6, y + 4, label, anchor="end"))
    for frac, label in x_ticks:
        x = x0 + frac * w
        body.append(f'<line x1="{_n(x)}" y1="{_n(y0)}" x2="{_n(x)}" y2="{_n(y0 + 5)}" '
                    'stroke="#444444"/>')
        body.append(_text(x, y0 + 18, label, anchor="middle"))
    return body


def lorenz_chart(*, title: str, desc: str, points: Sequence[tuple[float, float]],
                 note: str, y_label: str) -> str:
    """A Lorenz curve in the unit square, with the line of equality and a note (the Gini)."""
    x0, y0, side = 80.0, 440.0, 360.0
    quarters = [(f / 4, f"{25 * f}%") for f in range(5)]
    body = _axes(x0, y0, side, side, quarters, quarters)
    body.append(f'<line x1="{_n(x0)}" y1="{_n(y0)}" x2="{_n(x0 + side)}" '
                f'y2="{_n(y0 - side)}" stroke="#888888" stroke-dasharray="6 4"/>')
    if len(points) > 1:
        path = " ".join(f"{_n(x0 + x * side)},{_n(y0 - y * side)}" for x, y in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="#1f5fa8" '
                    'stroke-width="2"/>')
    body.append(_text(x0 + side / 2, y0 + 40, "Cumulative share of countries, smallest first",
                      anchor="middle"))
    body.append(_text(24, y0 - side / 2, y_label, anchor="middle",
                      extra=f' transform="rotate(-90 24 {_n(y0 - side / 2)})"'))
    body.append(_text(x0 + 12, y0 - side + 20, note))
    body.append(f'<line x1="{_n(x0 + 12)}" y1="{_n(y0 - side + 36)}" x2="{_n(x0 + 40)}" '
                f'y2="{_n(y0 - side + 36)}" stroke="#888888" stroke-dasharray="6 4"/>')
    body.append(_text(x0 + 46, y0 - side + 40, "line of equality"))
    body.append(f'<line x1="{_n(x0 + 12)}" y1="{_n(y0 - side + 54)}" x2="{_n(x0 + 40)}" '
                f'y2="{_n(y0 - side + 54)}" stroke="#1f5fa8" stroke-width="2"/>')
    body.append(_text(x0 + 46, y0 - side + 58, "Lorenz curve"))
    if len(points) <= 1:
        body.append(_text(x0 + side / 2, y0 - side / 2, "No data.", anchor="middle"))
    return _document(480, 500, title, desc, body)


def _year_ticks(first: int, last: int) -> list[int]:
    step = max(1, math.ceil((last - first + 1) / 10))
    return list(range(first, last + 1, step))


def line_chart(*, title: str, desc: str, series: Sequence[Series], y_label: str) -> str:
    """Lines over years, y from 0 to 1, each series labelled in a legend and at its end."""
    x0, y0, w, h = 80.0, 380.0, 520.0, 320.0
    years = [year for s in series for year, _ in s.points]
    first, last = (min(years), max(years)) if years else (0, 0)
    span = max(last - first, 1)

    def x_of(year: int) -> float:
        return x0 + (w / 2 if first == last else (year - first) / span * w)

    ticks = [(f / 5, f"{f / 5:.1f}") for f in range(6)]
    x_ticks = [((x_of(t) - x0) / w, str(t)) for t in _year_ticks(first, last)] if years else []
    body = _axes(x0, y0, w, h, ticks, x_ticks)
    body.append(_text(x0 + w / 2, y0 + 40, "Year (holdings at its end)", anchor="middle"))
    body.append(_text(24, y0 - h / 2, y_label, anchor="middle",
                      extra=f' transform="rotate(-90 24 {_n(y0 - h / 2)})"'))
    for i, s in enumerate(series):
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        coords = [(x_of(year), y0 - value * h) for year, value in s.points]
        if len(coords) > 1:
            path = " ".join(f"{_n(x)},{_n(y)}" for x, y in coords)
            body.append(f'<polyline points="{path}" fill="none" stroke="{s.colour}" '
                        f'stroke-width="2"{dash}/>')
        for (year, value), (x, y) in zip(s.points, coords, strict=True):
            body.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="2.5" fill="{s.colour}">'
                        f"<title>{_esc(f'{s.label} {year}: {value:.3f}')}</title></circle>")
        ly = y0 - h + 14 + 18 * i
        body.append(f'<line x1="{_n(x0 + w + 12)}" y1="{_n(ly)}" x2="{_n(x0 + w + 40)}" '
                    f'y2="{_n(ly)}" stroke="{s.colour}" stroke-width="2"{dash}/>')
        body.append(_text(x0 + w + 46, ly + 4, s.label))
    if not years:
        body.append(_text(x0 + w / 2, y0 - h / 2, "No data.", anchor="middle"))
    return _document(760, 440, title, desc, body)


# -- the registry's charts -------------------------------------------------------------------

def chart_names(kinds: Sequence[Kind] = tuple(Kind)) -> list[str]:
    """The charts of a report: ``top-<kind>``, ``lorenz-<kind>``, ``gini-by-year``."""
    return ([f"top-{k.value}" for k in kinds] + [f"lorenz-{k.value}" for k in kinds]
            + ["gini-by-year"])


def _scope(dist: Distribution) -> str:
    parts = [f"authority {dist.authority}" if dist.authority else "all authorities"]
    if dist.as_of is not None:
        parts.append(f"as of {dist.as_of.isoformat()}")
    return ", ".join(parts)


def _top(dist: Distribution, k: KindStats) -> str:
    unit = UNIT_NAMES[k.kind]
    shown = k.countries[:_TOP_BARS]
    bars = [Bar(r.country, r.size / k.country_size, _amount(units(k.kind, r.size)))
            for r in shown]
    title = f"{_TITLES[k.kind]}: top countries by share ({_scope(dist)})"
    desc = (f"The {len(shown)} largest of {len(k.countries)} countries holding "
            f"{KIND_LABELS[k.kind]} resources (allocated or assigned), by share of the "
            f"{_amount(units(k.kind, k.country_size))} {unit} that countries hold.")
    return bar_chart(title=title, desc=desc, bars=bars, unit=unit)


def _lorenz(dist: Distribution, k: KindStats) -> str:
    g = k.gini
    note = ("Gini: none (no holders)" if g is None
            else f"Gini {g:.3f} over {len(k.countries)} countries")
    title = f"{_TITLES[k.kind]}: Lorenz curve across countries ({_scope(dist)})"
    desc = (f"Cumulative share of {UNIT_NAMES[k.kind]} against cumulative share of the "
            f"{len(k.countries)} countries holding any, smallest holders first. {note}.")
    return lorenz_chart(title=title, desc=desc, points=k.lorenz(), note=note,
                        y_label=f"Cumulative share of {UNIT_NAMES[k.kind]}")


def _gini_by_year(dist: Distribution) -> str:
    series = [Series(KIND_LABELS[k.kind],
                     [(p.year, p.gini) for p in k.by_year if p.gini is not None],
                     _COLOURS[k.kind], _DASHES[k.kind]) for k in dist.kinds]
    title = f"Gini across countries at the end of each year ({_scope(dist)})"
    desc = ("Gini coefficient of countries' cumulative holdings at the end of each year, "
            "counting what is held now from its registration date, for "
            + ", ".join(KIND_LABELS[k.kind] for k in dist.kinds) + ".")
    return line_chart(title=title, desc=desc, series=series, y_label="Gini coefficient")


def render(dist: Distribution, name: str) -> str:
    """One chart of :func:`chart_names` for the kinds ``dist`` holds.

    Raises:
        KeyError: no such chart in this report.
    """
    if name == "gini-by-year":
        return _gini_by_year(dist)
    for k in dist.kinds:
        if name == f"top-{k.kind.value}":
            return _top(dist, k)
        if name == f"lorenz-{k.kind.value}":
            return _lorenz(dist, k)
    raise KeyError(name)


def render_all(dist: Distribution) -> dict[str, str]:
    """Every chart of the report, by name (without ``.svg``)."""
    return {name: render(dist, name) for name in chart_names([k.kind for k in dist.kinds])}
