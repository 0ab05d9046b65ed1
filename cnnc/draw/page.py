"""The overview's page: its units cut into rows of about equal width, the arrows between them, the
title, the counts and the legend.

Consumes the `Unit`s overview.py makes of the chain (each with its extents about the chain's axis and
the function that paints it) and the shape written on the arrow into each; produces the SVG text.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..compiler.ir import Graph
from ..dsl.document import Document
from ..table import si
from .labels import text_width
from .legend import LegendKey, legend
from .style import MARGIN, MUTED
from .svg import Svg

Paint = Callable[[Svg, float, float], None]  # (svg, left x, axis y)


@dataclass
class Unit:
    """Something placed on the chain: `up` and `down` are its extents above and below the chain's axis."""

    w: float
    up: float
    down: float
    paint: Paint
    legend: set[LegendKey] = field(default_factory=set)
    aux: Unit | None = None  # a train-only head hanging below this (zero-width) tap
    tap: bool = False


# ---- the page --------------------------------------------------------------------------------------
MAX_ROW, ROW_GAP, AUX_DROP = 1500.0, 34.0, 22.0


def _gap(label: str | None) -> float:
    return max(28.0, text_width(label, 9) + 14) if label else 28.0


@dataclass
class _Row:
    units: list[tuple[Unit, float, str | None]] = field(default_factory=list)  # unit, x, label into it
    auxes: list[tuple[Unit, float]] = field(default_factory=list)  # branch, left x
    aux_end: float = 0.0

    @property
    def up(self) -> float:
        return max(u.up for u, _, _ in self.units)

    @property
    def down(self) -> float:
        return max(u.down for u, _, _ in self.units)

    @property
    def aux_h(self) -> float:
        return max((b.down for b, _ in self.auxes), default=0.0)


def _rows(units: list[Unit], into: list[str | None]) -> list[_Row]:
    """The chain cut into rows of about equal width, none wider than MAX_ROW."""
    total = sum(u.w + _gap(label) for u, label in zip(units, into))
    n = max(1, -(-int(total) // int(MAX_ROW - MARGIN)))
    target = total / n + MARGIN
    rows = _cut(units, into, min(target, MAX_ROW))
    while len(rows) > n and target < MAX_ROW:
        target += 20
        rows = _cut(units, into, min(target, MAX_ROW))
    return rows


def _cut(units: list[Unit], into: list[str | None], limit: float) -> list[_Row]:
    rows = [_Row()]
    x = MARGIN
    for item, label in zip(units, into):
        row = rows[-1]
        gap = _gap(label) if row.units else 0.0
        start = x + gap
        if item.tap and row.aux_end:
            start = max(start, row.aux_end + 16)  # keep side branches apart
        right = start + item.w + (item.aux.w if item.aux else 0)
        if row.units and right > limit:
            rows.append(_Row())
            row = rows[-1]
            start = MARGIN + _gap(label)
        row.units.append((item, start, label))
        if item.aux is not None:
            row.auxes.append((item.aux, start - 4))
            row.aux_end = start - 4 + item.aux.w
        x = start + item.w
    return rows


def compose(doc: Document, graph: Graph, units: list[Unit], into: list[str | None], used: set[LegendKey]) -> str:
    svg = Svg()
    rows = _rows(units, into)
    title, subtitle = doc.name, _subtitle(doc, graph)
    svg.text(MARGIN, MARGIN + 14, title, 18, anchor="start", bold=True)
    svg.text(MARGIN, MARGIN + 33, subtitle, 10.5, anchor="start", fill=MUTED)
    width = max(max(ux + u.w for u, ux, _ in row.units) for row in rows)
    width = max(width, max((bx + b.w for row in rows for b, bx in row.auxes), default=0))
    width = max(width, MARGIN + text_width(subtitle, 10.5), MARGIN + text_width(title, 18, True))
    y = _paint_rows(svg, rows, MARGIN + 48)
    y, right = legend(svg, used, y - ROW_GAP + 26, max(width, 640))
    return svg.document(max(width, right) + MARGIN, y + MARGIN, f"{doc.name}: overview drawn by cnnc")


def _subtitle(doc: Document, graph: Graph) -> str:
    """The description, then the counts `cnnc summary` gives (the train-only heads left out)."""
    macs = si(graph.macs)  # as `cnnc summary` and `cnnc list` write it
    heads = " (without the train-only heads)" if graph.aux_heads else ""
    return f"{doc.description + ' · ' if doc.description else ''}{graph.counts()['total']:,} parameters · " \
           f"{macs} MACs{heads}"


def _paint_rows(svg: Svg, rows: list[_Row], y: float) -> float:
    """Each row from `y` down, its heads hanging below it; returns where the next thing may start."""
    prev_exit: tuple[float, float] | None = None
    for row in rows:
        axis = y + row.up
        _paint_units(svg, row, y, axis, prev_exit)
        bottom = axis + row.down
        for branch, _ in row.auxes:
            tap = next(x for u, x, _ in row.units if u.aux is branch) + 5
            svg.line([(tap, axis + 4), (tap, bottom + AUX_DROP)], dash=True)
        for branch, bx in row.auxes:
            branch.paint(svg, bx, bottom + AUX_DROP)
        last, lx, _ = row.units[-1]
        prev_exit = (lx + last.w, axis)
        y = bottom + (AUX_DROP + row.aux_h if row.auxes else 0) + ROW_GAP
    return y


def _paint_units(svg: Svg, row: _Row, y: float, axis: float, prev_exit: tuple[float, float] | None) -> None:
    """A row's units and the arrows into them: the first comes down from the row above, in from the left."""
    for i, (item, x, label) in enumerate(row.units):
        if i > 0:
            px = row.units[i - 1][1] + row.units[i - 1][0].w
            svg.line([(px, axis), (x - 1, axis)], arrow=not item.tap)
            if label:
                svg.centred((px + x) / 2, axis + 11, label, 9, fill=MUTED)
        elif prev_exit is not None:
            ex, ey = prev_exit
            mid = y - ROW_GAP / 2
            svg.line([(ex, ey), (ex + 12, ey), (ex + 12, mid), (MARGIN / 2, mid), (MARGIN / 2, axis), (x - 1, axis)])
            if label:
                svg.centred((MARGIN / 2 + x) / 2 + 3, axis + 11, label, 9, fill=MUTED)
        item.paint(svg, x, axis)
