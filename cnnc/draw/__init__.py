"""A network -> an SVG picture, in the style of the illustrated overviews the zoo comes from.

Consumes a network (a path, a shipped name or a validated `Document`), resolved and built once by
`compiler.build_tree`: the resolved tree with its block calls, and the whole graph (every layer's
evaluated attributes and output shape, train-only heads included). Produces self-contained SVG text
(inline styles, no scripts, no fonts to fetch), the same bytes every time.

Two pictures:
- the overview (overview.py): the top-level `layers:` drawn left to right as a chain (wrapped onto
  several rows when long); modules as coloured boxes by kind, consecutive calls of one block folded
  into one box marked `×N`, plain layers as small upright shapes, batch norm and softmax as small
  marked functions, named sequences (a stem, a VGG stage) as frames, train-only heads as dashed side
  branches;
- `expand` (expanded.py): one block's, call's or named sequence's inside, drawn top to bottom as papers
  draw an Inception module: its parallel branches side by side, each layer a small box with kernel and
  filters, the names written inside as grey captions, the merge at the bottom, an identity shortcut as
  a line around the branches; `tower x 32` drawn once and marked `×32`.

How each op and merge looks comes from its definition in the op registry (compiler/ops/); the
colours per kind are style.py's. `write` saves a picture as SVG, or as PNG (300 dpi) or PDF through
CairoSVG, the optional `draw` extra (formats.py).
"""
from __future__ import annotations

import os

from ..api import load
from ..compiler import build_tree, view
from ..dsl.document import Document
from ..files import atomic_file
from .expanded import expanded
from .formats import DPI, FORMATS, Format, encode, format_of
from .overview import overview
from .views import views


def render(net: str | os.PathLike | Document, expand: str | None = None) -> str:
    """The network's overview as SVG text; with `expand`, that part opened up: a block (its first call), or a
    call, named sequence, branch or layer by its name or path (`mixed5`, `entry_flow`, `mixed5/branch7x7`;
    draw/targets.py). The network's
    warnings are issued through Python's `warnings`, those of its train-only heads too."""
    doc = load(net)
    tree, full = build_tree(doc)
    view(full, aux=True)  # issues the warnings: the picture shows the train-only heads
    drawn = views(tree, full)
    if expand is None:
        return overview(doc, full.inference(), drawn)
    return expanded(doc, full, drawn, expand)


def write(svg: str, path: str | os.PathLike, fmt: Format | None = None, dpi: int = DPI) -> int:
    """Write the picture `svg` to `path` as SVG, PNG or PDF (`fmt`, else by the file's suffix; PNG at
    `dpi`), atomically: a temporary file beside `path`, then a rename. Returns the bytes written."""
    data = encode(svg, format_of(path, fmt), dpi)
    with atomic_file(path, what="picture") as f:
        f.write(data)
    return len(data)


__all__ = ["DPI", "FORMATS", "Format", "encode", "format_of", "render", "write"]
