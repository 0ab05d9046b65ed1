"""A convolution's connection table as a grid, as LeCun et al. 1998 print C3's (Table I).

Consumes a layer with a `connections` attribute (for each output map, the input maps it reads); produces
a panel for an expanded view: one row per input map, one column per output map, a filled cell where the
output reads the input, and the count of connections. A table too large to read as cells (more than
MAX_CELLS) is summarised in one line instead, so a picture stays proportional to what it can show.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .labels import text_width
from .style import MUTED
from .svg import Svg
from .views import VLayer, View, walk

CELL, HEAD, LEFT = 13.0, 30.0, 58.0  # a cell's side; the title and column numbers above; the row labels
MAX_CELLS = 4096
FILLED, EMPTY = "#4a6fa5", "#ffffff"


@dataclass(frozen=True)
class Table:
    layer: VLayer
    rows: tuple[tuple[int, ...], ...]  # for each output map, the input maps it reads
    inputs: int

    @property
    def links(self) -> int:
        return sum(len(r) for r in self.rows)

    @property
    def title(self) -> str:
        cells = len(self.rows) * self.inputs
        return f"{self.layer.path}: connection table, {self.links:,} of {cells:,} input–output pairs connected"

    @property
    def drawn(self) -> bool:
        return len(self.rows) * self.inputs <= MAX_CELLS

    @property
    def w(self) -> float:
        grid = LEFT + CELL * len(self.rows) if self.drawn else 0.0
        return max(grid, text_width(self.title, 9.5, True))

    @property
    def h(self) -> float:
        return HEAD + CELL * self.inputs + 16 if self.drawn else 16.0


def tables(view: View, channels: Mapping[str, int]) -> list[Table]:
    """The connection tables of the layers under `view`, in order; `channels`: each layer's input maps."""
    return [Table(v, tuple(tuple(r) for r in rows), channels.get(v.path) or max(max(r) for r in rows if r) + 1)
            for v, _ in walk(view, aux=False) if isinstance(v, VLayer) and (rows := v.attrs.get("connections"))]


def paint(svg: Svg, table: Table, x: float, y: float) -> None:
    """The table's title, then its grid: input maps down the side, output maps along the top."""
    svg.group(table.title)
    svg.text(x, y + 10, table.title, 9.5, anchor="start", bold=True)
    if not table.drawn:
        svg.text(x, y + 24, f"({len(table.rows)} outputs × {table.inputs} inputs: too many cells to draw)", 9,
                 anchor="start", fill=MUTED)
        svg.end()
        return
    gx, gy = x + LEFT, y + HEAD
    svg.text(gx - 6, gy - 4, "in \\ out", 8, anchor="end", fill=MUTED)
    for j in range(len(table.rows)):
        svg.centred(gx + CELL * (j + 0.5), gy - 6, str(j), 7.5, fill=MUTED)
    for i in range(table.inputs):
        svg.text(gx - 6, gy + CELL * (i + 0.5) + 2.7, str(i), 7.5, anchor="end", fill=MUTED)
    for j, row in enumerate(table.rows):
        read = set(row)
        for i in range(table.inputs):
            fill = FILLED if i in read else EMPTY
            svg.rect(gx + CELL * j, gy + CELL * i, CELL, CELL, fill, "#9aa5b5", width=0.6)
    svg.end()
