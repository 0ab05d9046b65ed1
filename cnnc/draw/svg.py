"""SVG primitives: rectangles, text, arrows, circles, groups, and the document around them.

Consumes coordinates and text from the layouts; produces SVG text with inline styles, no scripts and no
fonts to fetch, every number rounded to 0.1 so the same picture is the same bytes every time. Also the
small shapes both pictures share: a function's pill and a repeat's `×N` badge.
"""
from __future__ import annotations

from xml.sax.saxutils import escape

from .labels import FONT, FuncKind, text_width
from .style import FUNC_COLOURS

Point = tuple[float, float]


def num(v: float) -> str:
    """A coordinate as short, stable text."""
    return f"{round(v, 1):g}"


class Svg:
    """SVG elements as text, in drawing order."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, s: str) -> None:
        self.parts.append(s)

    def rect(self, x: float, y: float, w: float, h: float, fill: str, stroke: str = "none", rx: float = 0,
             dash: bool = False, width: float = 1.0) -> None:
        extra = ' stroke-dasharray="4 3"' if dash else ""
        self.add(f'<rect x="{num(x)}" y="{num(y)}" width="{num(w)}" height="{num(h)}" rx="{num(rx)}" '
                 f'fill="{fill}" stroke="{stroke}" stroke-width="{width}"{extra}/>')

    def text(self, x: float, y: float, s: str, size: float = 10, anchor: str = "middle", bold: bool = False,
             fill: str = "#222", italic: bool = False, rotate: bool = False) -> None:
        style = ' font-weight="bold"' if bold else ""
        style += ' font-style="italic"' if italic else ""
        turn = f' transform="rotate(-90 {num(x)} {num(y)})"' if rotate else ""
        self.add(f'<text x="{num(x)}" y="{num(y)}" font-size="{num(size)}" text-anchor="{anchor}" '
                 f'fill="{fill}"{style}{turn}>{escape(s)}</text>')

    def centred(self, cx: float, cy: float, s: str, size: float = 10, bold: bool = False, fill: str = "#222",
                italic: bool = False, rotate: bool = False) -> None:
        """Text centred on (cx, cy), vertically by its x-height."""
        self.text(cx, cy + size * 0.36, s, size, bold=bold, fill=fill, italic=italic, rotate=rotate)

    def line(self, points: list[Point], stroke: str = "#555", dash: bool = False, arrow: bool = True,
             width: float = 1.2) -> None:
        d = " ".join(f"{'M' if i == 0 else 'L'}{num(x)} {num(y)}" for i, (x, y) in enumerate(points))
        extra = ' stroke-dasharray="4 3"' if dash else ""
        self.add(f'<path d="{d}" fill="none" stroke="{stroke}" stroke-width="{width}"{extra}/>')
        if arrow and len(points) >= 2:
            self.head(points[-2], points[-1], stroke)

    def head(self, frm: Point, to: Point, fill: str = "#555") -> None:
        """An arrowhead at `to`, pointing away from `frm`."""
        (x0, y0), (x1, y1) = frm, to
        length = max(((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5, 1e-9)
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        a = (x1 - 7 * ux + 3.5 * uy, y1 - 7 * uy - 3.5 * ux)
        b = (x1 - 7 * ux - 3.5 * uy, y1 - 7 * uy + 3.5 * ux)
        self.add(f'<path d="M{num(x1)} {num(y1)} L{num(a[0])} {num(a[1])} L{num(b[0])} {num(b[1])} Z" '
                 f'fill="{fill}"/>')

    def circle(self, cx: float, cy: float, r: float, fill: str, stroke: str) -> None:
        self.add(f'<circle cx="{num(cx)}" cy="{num(cy)}" r="{num(r)}" fill="{fill}" stroke="{stroke}" '
                 f'stroke-width="1.2"/>')

    def group(self, tooltip: str | None) -> None:
        self.add(f"<g><title>{escape(tooltip)}</title>" if tooltip else "<g>")

    def end(self) -> None:
        self.add("</g>")

    def document(self, width: float, height: float, title: str) -> str:
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{num(width)}" height="{num(height)}" '
                f'viewBox="0 0 {num(width)} {num(height)}" font-family="{FONT}">\n'
                f'<title>{escape(title)}</title>\n'
                f'<rect x="0" y="0" width="{num(width)}" height="{num(height)}" fill="#ffffff"/>\n')
        return head + "\n".join(self.parts) + "\n</svg>\n"


def pill(svg: Svg, cx: float, cy: float, label: str, kind: FuncKind, size: float = 8.5) -> None:
    """A function (batch norm, an activation, ...) as a small rounded label centred on (cx, cy)."""
    fill, stroke, ink = FUNC_COLOURS[kind]
    w, h = pill_width(label, size), size + 7
    svg.rect(cx - w / 2, cy - h / 2, w, h, fill, stroke, rx=h / 2)
    svg.centred(cx, cy, label, size, fill=ink, bold=kind == "norm")


def pill_width(label: str, size: float = 8.5) -> float:
    return text_width(label, size, bold=True) + 10


def badge(svg: Svg, cx: float, cy: float, count: int | str) -> None:
    """`×N` on a dark round badge centred on (cx, cy)."""
    label = f"×{count}"
    w = text_width(label, 10, bold=True) + 10
    svg.rect(cx - w / 2, cy - 8, w, 16, "#333333", "#ffffff", rx=8, width=1.5)
    svg.centred(cx, cy, label, 10, fill="#ffffff", bold=True)


def parallel_badge(svg: Svg, cx: float, cy: float, count: int | str) -> None:
    """`N ∥` on a white badge centred on (cx, cy): N parallel paths (towers), unlike the dark `×N` of N
    copies in sequence."""
    text = f"{count} ∥"
    w = text_width(text, 10, bold=True) + 10
    svg.rect(cx - w / 2, cy - 8, w, 16, "#ffffff", "#333333", rx=3, width=1.5)
    svg.centred(cx, cy, text, 10, bold=True)


def down_tag(svg: Svg, cx: float, cy: float, factor: int) -> None:
    """`/2` on a small square tag centred on (cx, cy): the module downsamples (a stride of 2 inside)."""
    text = f"/{factor}"
    w = text_width(text, 9, bold=True) + 8
    svg.rect(cx - w / 2, cy - 6.5, w, 13, "#ffffff", "#333333", rx=1.5, width=1.3)
    svg.centred(cx, cy, text, 9, bold=True)
