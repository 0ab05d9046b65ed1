"""The legend under both pictures: a swatch and a name for each kind of thing the picture shows.

Consumes the legend keys the layouts collect (`(group, kind)`: a module, frame, layer or function kind,
a merge's name, or the identity shortcut) and the merge registry (each `MergeDef`'s `legend` name and
`module` kind); produces the legend's SVG elements, in lines no wider than asked.
"""
from __future__ import annotations

from typing import Mapping, TypeVar

from ..compiler.ops import MERGES
from .labels import text_width
from .style import (AUX_FILL, AUX_STROKE, FUNC_COLOURS, FUNC_NAMES, GROUP_FILL, GROUP_STROKE,
                    LAYER_COLOURS, LAYER_NAMES, MARGIN, MARK_NAMES, MODULE_COLOURS, MODULE_NAMES)
from .svg import Svg, badge, down_tag, parallel_badge

LegendKey = tuple[str, str]  # (group, kind); groups: module, frame, layer, func, merge, shortcut, mark

ORDER: list[LegendKey] = [("module", k) for k in MODULE_COLOURS] + [("frame", "group"), ("frame", "aux")] + \
    [("layer", k) for k in LAYER_COLOURS] + [("func", k) for k in FUNC_COLOURS] + \
    [("merge", name) for name in MERGES] + [("shortcut", "identity")] + [("mark", k) for k in MARK_NAMES]

_K = TypeVar("_K", bound=str)
_V = TypeVar("_V")


def _by_name(table: Mapping[_K, _V]) -> dict[str, _V]:
    """`table` keyed by plain strings, as the kinds in legend keys are."""
    return dict(table.items())


_MODULE_NAMES, _LAYER_NAMES, _FUNC_NAMES = _by_name(MODULE_NAMES), _by_name(LAYER_NAMES), _by_name(FUNC_NAMES)
_MODULE_COLOURS, _LAYER_COLOURS = _by_name(MODULE_COLOURS), _by_name(LAYER_COLOURS)
_FUNC_COLOURS = _by_name(FUNC_COLOURS)


def legend(svg: Svg, used: set[LegendKey], y: float, width: float) -> tuple[float, float]:
    """Swatches for what this picture uses, in lines at most `width` wide; returns (bottom, right)."""
    x = right = MARGIN
    entries = [e for key in ORDER for e in ([key] if key in used else []) + _named(key, used)]
    total = sum(46 + text_width(label(*e), 9.5) for e in entries) - 18
    width = total + MARGIN if total + MARGIN <= width + 160 else width  # one line when nearly one fits
    svg.add('<g><title>legend</title>')
    for group, kind in entries:
        text = label(group, kind)
        gap = 36 if (group, kind) == ("mark", "parallel") else 28  # its badge, `N ∥`, is wider than a swatch
        w = gap + text_width(text, 9.5)
        if x + w > width and x > MARGIN:
            x, y = MARGIN, y + 22
        swatch(svg, group, kind, x + (gap - 28) / 2, y)
        svg.text(x + gap, y + 3.5, text, 9.5, anchor="start", fill="#333333")
        right = max(right, x + w)
        x += w + 18
    svg.end()
    return y + 12, right


def _named(key: LegendKey, used: set[LegendKey]) -> list[LegendKey]:
    """After a layer kind's entry, the layers of that kind the registry names apart (`pool:trainable ...`)."""
    return sorted(e for e in used if key[0] == e[0] == "layer" and e[1].startswith(key[1] + ":"))


def label(group: str, kind: str) -> str:
    if group == "module":
        return _MODULE_NAMES[kind]
    if group == "layer":
        base, _, name = kind.partition(":")
        return name or _LAYER_NAMES[base]
    if group == "func":
        return _FUNC_NAMES[kind]
    if group == "frame":
        return "named sequence" if kind == "group" else "train-only head"
    if group == "merge":
        return MERGES[kind].legend
    if group == "mark":
        return MARK_NAMES[kind]
    return "identity shortcut"


def swatch(svg: Svg, group: str, kind: str, x: float, y: float) -> None:
    if group == "module":
        fill, stroke = _MODULE_COLOURS[kind]
        svg.rect(x, y - 7, 22, 14, fill, stroke, rx=4)
    elif group == "layer":
        fill, stroke = _LAYER_COLOURS[kind.partition(":")[0]]
        svg.rect(x + 6, y - 9, 10, 18, fill, stroke, rx=2)
    elif group == "func":
        fill, stroke, _ = _FUNC_COLOURS[kind]
        svg.rect(x + 1, y - 6, 20, 12, fill, stroke, rx=6)
    elif group == "frame":
        fill, stroke = (GROUP_FILL, GROUP_STROKE) if kind == "group" else (AUX_FILL, AUX_STROKE)
        svg.rect(x, y - 7, 22, 14, fill, stroke, rx=4, dash=True)
    elif group == "merge" and MERGES[kind].symbol is None:
        svg.rect(x, y - 5, 22, 10, "#eeeeee", "#666666", rx=2)
    elif group == "merge":
        svg.circle(x + 11, y, 7, "#ffffff", "#555555")
        svg.centred(x + 11, y - 0.5, MERGES[kind].symbol or "", 11, bold=True)
    elif group == "mark":
        {"repeat": lambda: badge(svg, x + 11, y, "N"), "parallel": lambda: parallel_badge(svg, x + 11, y, "N"),
         "down": lambda: down_tag(svg, x + 11, y, 2)}[kind]()
    else:
        svg.line([(x, y), (x + 22, y)], arrow=False, dash=False)
