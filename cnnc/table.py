"""Text tables for the terminal, one style for every command (`summary`, `list`, `bench`, `weights map`).

Consumes columns and rows of cells; produces lines no wider than a width: a bold header, a box-drawing
rule, then one line per row, columns two spaces apart. A row is never wrapped onto a second line: when the
table is wider than the width, the columns that may shrink give up characters first (each cell decides
how: `Cell.fit`, by default cut at the right with `…`), then the columns that may be left out go, and a
line still too wide is cut. On a terminal the cells keep their styles (ANSI); elsewhere they are plain.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import IO, Callable, Sequence

Piece = tuple[str, str]  # text and its style: "", "bold", "dim", "italic", "cyan", or several, space-separated
GAP = 2
DEFAULT_WIDTH = 120  # a pipe or a file without COLUMNS: the full layer names of all but two shipped networks
_ANSI = {"bold": "1", "dim": "2", "italic": "3", "cyan": "36"}


@dataclass(frozen=True)
class Cell:
    """Styled text; `fit(width)` gives it no wider than `width` (None: cut at the right with `…`)."""

    pieces: tuple[Piece, ...]
    fit: Callable[[int], Cell] | None = None

    @property
    def width(self) -> int:
        return sum(len(text) for text, _ in self.pieces)

    def narrowed(self, width: int) -> Cell:
        if self.width <= width:
            return self
        fitted = self.fit(width) if self.fit is not None else self
        return fitted if fitted.width <= width else Cell(cut(fitted.pieces, width))


def cell(value: object, style: str = "") -> Cell:
    return value if isinstance(value, Cell) else Cell(((str(value), style),))


def tail(text: str, style: str = "") -> Cell:
    """A cell narrowed from the left, `…/branch1/conv`: for names, whose ends tell them apart."""
    return Cell(((text, style),), lambda width: Cell((("…" + text[len(text) - width + 1:], style),)))


def cut(pieces: Sequence[Piece], width: int) -> tuple[Piece, ...]:
    """`pieces` cut to `width` characters, the last of them `…` when anything was cut."""
    if sum(len(t) for t, _ in pieces) <= width:
        return tuple(pieces)
    out: list[Piece] = []
    room = max(width - 1, 0)
    for text, style in pieces:
        if room <= 0:
            break
        out.append((text[:room], style))
        room -= len(text[:room])
    return (*out, ("…", "")) if width > 0 else ()


@dataclass(frozen=True)
class Column:
    """A column: its header; right-aligned or not; `shrink`: the narrowest it may become (None: never
    narrower than its widest cell); `drop`: may be left out when nothing else helps, higher first (0:
    never)."""

    header: str
    right: bool = False
    shrink: int | None = None
    drop: int = 0


def width_for(file: IO[str] | None = None) -> int:
    """The width to fit: COLUMNS if set, else the terminal's when `file` (stdout) is one, else `DEFAULT_WIDTH`."""
    if os.environ.get("COLUMNS", "").strip().isdigit():
        return max(int(os.environ["COLUMNS"]), 20)
    stream = file or _stdout()
    try:
        if stream.isatty():
            return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        pass
    return DEFAULT_WIDTH


def colour_for(file: IO[str] | None = None) -> bool:
    """ANSI styles: on a terminal (not TERM=dumb), or with FORCE_COLOR; never with NO_COLOR."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    stream = file or _stdout()
    return bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"


def _stdout() -> IO[str]:
    import sys
    return sys.stdout


def render(columns: Sequence[Column], rows: Sequence[Sequence[object]], width: int | None = None,
           colour: bool = False, styles: Sequence[str] | None = None) -> list[str]:
    """The table's lines, each at most `width` characters (None: as wide as its cells); `styles`: one per
    row, applied to the whole row (e.g. "bold")."""
    cells = [[cell(c) for c in row] for row in rows]
    keep = list(range(len(columns)))
    widths = _fit(columns, cells, keep, width)
    while widths is None:  # even the narrowest columns are too wide: leave one out
        droppable = [i for i in keep if columns[i].drop]
        if not droppable:  # the narrowest it can be, and the lines cut at the width (`_clip`)
            widths = {i: _narrowest(columns[i], cells, i) for i in keep}
            break
        keep.remove(max(droppable, key=lambda i: columns[i].drop))
        widths = _fit(columns, cells, keep, width)
    lines = [_line([Cell(((columns[i].header, "bold"),)) for i in keep], [columns[i] for i in keep],
                   [widths[i] for i in keep], colour, "")]
    total = sum(widths[i] for i in keep) + GAP * (len(keep) - 1)
    lines.append("─" * (min(total, width) if width else total))
    for n, row in enumerate(cells):
        lines.append(_line([row[i].narrowed(widths[i]) for i in keep], [columns[i] for i in keep],
                           [widths[i] for i in keep], colour, styles[n] if styles else ""))
    return [_clip(line, width, colour) for line in lines]


def _narrowest(column: Column, cells: list[list[Cell]], i: int) -> int:
    widest = max([len(column.header)] + [r[i].width for r in cells])
    return widest if column.shrink is None else min(widest, max(column.shrink, len(column.header)))


def _fit(columns: Sequence[Column], cells: list[list[Cell]], keep: list[int],
         width: int | None) -> dict[int, int] | None:
    """Each kept column's width, the shrinkable ones narrowed in order until the table fits; None when it
    cannot."""
    widths = {i: max([len(columns[i].header)] + [r[i].width for r in cells]) for i in keep}
    if width is None:
        return widths
    excess = sum(widths.values()) + GAP * (len(keep) - 1) - width
    for i in keep:
        floor = columns[i].shrink
        if excess <= 0:
            break
        if floor is not None and widths[i] > floor:
            give = min(widths[i] - max(floor, len(columns[i].header)), excess)
            widths[i] -= give
            excess -= give
    return widths if excess <= 0 else None


def _line(row: list[Cell], columns: list[Column], widths: list[int], colour: bool, style: str) -> str:
    parts = []
    for c, column, w in zip(row, columns, widths):
        pad = " " * (w - c.width)
        text = "".join(_styled(t, f"{style} {s}".strip(), colour) for t, s in c.pieces)
        parts.append(pad + text if column.right else text + pad)
    return (" " * GAP).join(parts).rstrip()


def _styled(text: str, style: str, colour: bool) -> str:
    codes = [_ANSI[s] for s in style.split() if s in _ANSI]
    if not colour or not codes or not text:
        return text
    return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"


def _clip(line: str, width: int | None, colour: bool) -> str:
    """The last guard: a line wider than `width` is cut (styles dropped from such a line)."""
    if width is None or len(line) <= width:
        return line
    if colour:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", line)
        if len(plain) <= width:
            return line
        line = plain
    return line[:width - 1] + "…"


def print_table(columns: Sequence[Column], rows: Sequence[Sequence[object]], file: IO[str] | None = None,
                styles: Sequence[str] | None = None, width: int | None = -1) -> None:
    """`render` to `file` (stdout), fitted to `width_for(file)` unless `width` is given (None: unlimited)."""
    stream = file or _stdout()
    fit = width_for(stream) if width == -1 else width
    stream.write("\n".join(render(columns, rows, fit, colour_for(stream), styles)) + "\n")


def wrap(line: str, width: int | None, indent: int = 2) -> list[str]:
    """Prose beside a table (totals, notes) in lines of at most `width`, the later ones indented."""
    import textwrap
    if width is None or len(line) <= width:
        return [line]
    return textwrap.wrap(line, width, subsequent_indent=" " * indent, break_on_hyphens=False)


def si(value: float, unit: str = "", like: float | None = None) -> str:
    """A count in K, M or G with four significant digits (`487.7 M`, `5.713 G`), or as it is below 1,000;
    `like`: in the prefix `like` would have (a span's lower end, `0.386` of `0.386 … 37.75 G`)."""
    scale, prefix = _prefix(value if like is None else like)
    if not prefix:
        return f"{value:,.0f}" + (f" {unit}" if unit else "")
    scaled = value / scale
    digits = 3 - len(str(int(abs(scaled)))) + 1
    return f"{scaled:.{max(digits, 0)}f} {prefix}{unit}"


def si_span(low: float, high: float) -> str:
    """`2.239 … 6.331 M`: both ends in the prefix of the larger (`0.386 … 37.75 G`); one value when both
    are written the same."""
    top = si(high)
    if si(low) == top:
        return top
    number, _, prefix = top.partition(" ")
    return f"{si(low, like=high).partition(' ')[0]} … {number}" + (f" {prefix}" if prefix else "")


def _prefix(value: float) -> tuple[float, str]:
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale * 0.9995:
            return scale, prefix
    return 1.0, ""
