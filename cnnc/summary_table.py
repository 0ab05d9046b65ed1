"""`cnnc summary` as a table: the layers grouped by the blocks of their names, with repeats folded.

Consumes what `cnnc.summary()` returns (the `--json` object) plus the block each name was expanded from;
produces rows, then renders them with cnnc/table.py, one line per row at any width. A row is a layer, or
a group (a block call, a named list, a merge's branch) with the parameters and MACs of everything under
it summed; `depth` folds the levels below it into their groups. Consecutive siblings that the language
numbered (`inception_a_1`, `inception_a_2`, ... or list branches `branch1`, `branch2`, ...) and that are
identical are folded into one row, `inception_a ×2 (total)`.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Iterable, Mapping

from .compiler.resolve import RAux, RCall, RMerge, RNode, ROp, RSeq, resolve
from .dsl.document import Document

if TYPE_CHECKING:
    from .table import Cell


@dataclass(frozen=True)
class Row:
    """One line of the table: a layer, a group of layers, or a folded run of identical groups."""

    name: str  # the full name; a folded run is `parent/base`, shown with `×repeat`
    level: int  # 1 for the top level
    op: str  # the op; for a group, the block it was called as, or its merge
    shape: tuple[int, ...]  # output shape (of the group's last layer)
    params: int
    macs: int
    group: bool = False
    expanded: bool = False  # a group whose members follow as rows of their own
    repeat: int = 1  # > 1: a folded run of this many identical siblings; the numbers are their sum
    first: str = ""  # a folded run: the name of its first member


@dataclass
class _Node:
    name: str
    layers: list[Mapping[str, Any]] = field(default_factory=list)  # every layer at or under this name
    children: dict[str, _Node] = field(default_factory=dict)
    own: Mapping[str, Any] | None = None  # the layer named exactly this (a merge, for a group)


# ---- rows ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Origins:
    """What the names alone do not say: the block each group was called as, each layer's arguments."""

    blocks: Mapping[str, str] = field(default_factory=dict)  # `mixed0` -> `inception_a`
    attrs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # layer name -> its arguments


def rows(layers: Iterable[Mapping[str, Any]], origins: Origins | None = None, depth: int | None = None,
         fold: bool = True) -> list[Row]:
    """The table's rows for `layers` (the `layers` of `cnnc.summary()`), grouped by name.

    `origins` (see `origins_of`) names groups after their blocks and tells apart layers that only their
    arguments distinguish (a 1x7 and a 7x1 conv); `depth` is the deepest level shown (None: all); `fold`
    folds runs of identical numbered siblings.
    """
    root = _tree(layers)
    out: list[Row] = []
    _visit(root, 1, origins or Origins(), depth, fold, out)
    return out


def _tree(layers: Iterable[Mapping[str, Any]]) -> _Node:
    root = _Node("")
    for layer in layers:
        node = root
        parts = layer["name"].split("/")
        for i in range(len(parts)):
            node = node.children.setdefault(parts[i], _Node("/".join(parts[:i + 1])))
            node.layers.append(layer)
        node.own = layer
    return root


def _visit(node: _Node, level: int, origins: Origins, depth: int | None, fold: bool, out: list[Row]) -> None:
    kids = list(node.children.values())
    blocks = origins.blocks
    i = 0
    while i < len(kids):
        n = _run(kids, i, origins.attrs) if fold else 1
        child = kids[i]
        if n > 1:
            out.append(_folded(node, kids[i:i + n], level, blocks))
            i += n
            continue
        if child.children:
            expanded = depth is None or level < depth
            out.append(Row(child.name, level, _op(child, blocks), tuple(child.layers[-1]["output_shape"]),
                           _sum(child.layers, "params"), _sum(child.layers, "macs"), True, expanded))
            if expanded:
                _visit(child, level + 1, origins, depth, fold, out)
        else:
            layer = child.own or child.layers[-1]
            out.append(Row(child.name, level, layer["op"], tuple(layer["output_shape"]), layer["params"],
                           layer["macs"]))
        i += 1


def _folded(parent: _Node, run: list[_Node], level: int, blocks: Mapping[str, str]) -> Row:
    """One row for identical siblings `base_1, base_2, ...`: named `parent/base`, their numbers summed."""
    first = run[0]
    members = [layer for node in run for layer in node.layers]
    base = _numbered(first.name.rsplit("/", 1)[-1])[0]
    name = f"{parent.name}/{base}" if parent.name else base
    return Row(name, level, _op(first, blocks), tuple(run[-1].layers[-1]["output_shape"]), _sum(members, "params"),
               _sum(members, "macs"), bool(first.children), False, len(run), first.name)


def _op(node: _Node, blocks: Mapping[str, str]) -> str:
    if node.name in blocks:
        return blocks[node.name]
    if node.own is not None:
        return node.own["op"]
    return "sequence" if node.children else ""  # a named list written inline


def _sum(layers: Iterable[Mapping[str, Any]], key: str) -> int:
    return sum(layer[key] for layer in layers)


_NUMBERED = re.compile(r"^(.*?)(?:_(\d+)|(?<=^branch)(\d+))$")


def _numbered(name: str) -> tuple[str, int | None]:
    """`inception_a_3` -> (`inception_a`, 3); `branch7` -> (`branch`, 7): the names the language numbers."""
    m = _NUMBERED.match(name)
    if not m:
        return name, None
    return m.group(1), int(m.group(2) or m.group(3))


def _run(kids: list[_Node], i: int, attrs: Mapping[str, Mapping[str, Any]]) -> int:
    """How many siblings from `kids[i]` on are numbered in order and identical (at least 1)."""
    base, number = _numbered(kids[i].name.rsplit("/", 1)[-1])
    if number is None:
        return 1
    first = _structure(kids[i], attrs)
    n = 1
    while i + n < len(kids):
        b, k = _numbered(kids[i + n].name.rsplit("/", 1)[-1])
        if b != base or k != number + n or _structure(kids[i + n], attrs) != first:
            break
        n += 1
    return n


def _structure(node: _Node, attrs: Mapping[str, Mapping[str, Any]]) -> tuple:
    """What makes two groups the same: their layers' relative names, ops, arguments and shapes."""
    cut = len(node.name)
    return tuple((layer["name"][cut:], layer["op"], tuple(sorted(attrs.get(layer["name"], {}).items())),
                  tuple(layer["output_shape"]), layer["params"], layer["macs"]) for layer in node.layers)


# ---- origins ------------------------------------------------------------------------------------
def origins_of(doc: Document) -> Origins:
    """The block behind each group name (`mixed0` -> `inception_a`) and each layer's arguments."""
    return origins_in(resolve(doc)[0])


def origins_in(tree: RNode) -> Origins:
    """`origins_of` read from a resolved tree already at hand (`compiler.build_tree`)."""
    blocks: dict[str, str] = {}
    attrs: dict[str, Mapping[str, Any]] = {}
    for node in _walk(tree):
        if isinstance(node, ROp):
            attrs[node.path] = node.attrs
        elif isinstance(node, RCall):
            blocks.setdefault(node.path, node.block)
    return Origins(blocks, attrs)


def _walk(node: RNode) -> Iterable[RNode]:
    """Every node of the resolved tree, parents first."""
    yield node
    children: tuple[RNode, ...] = ()
    if isinstance(node, RSeq):
        children = node.items
    elif isinstance(node, RMerge):
        children = node.branches
    elif isinstance(node, RAux):
        children = (node.node,)
    elif isinstance(node, RCall):
        children = (node.body,)
    for child in children:
        yield from _walk(child)


# ---- rendering ----------------------------------------------------------------------------------
def parse_depth(text: str) -> int | None:
    """`--depth`: a level from 1, or `all` (or 0) for every level."""
    if text.strip().lower() in ("all", "0"):
        return None
    value = int(text)  # argparse turns the ValueError into a usage message
    if value < 0:
        raise ValueError(text)
    return value


def print_summary(info: Mapping[str, Any], table_rows: list[Row], file: IO[str] | None = None,
                  width: int | None = -1) -> None:
    """Print the table and Keras-style totals, every line at most `width` characters (-1: the terminal's,
    or COLUMNS, or 120 for a pipe: table.width_for; None: as wide as the full names need); styled only on
    a terminal."""
    from .table import colour_for, width_for
    stream = file or sys.stdout
    fit = width_for(stream) if width == -1 else width
    stream.write("\n".join(summary_lines(info, table_rows, fit, colour_for(stream))) + "\n")


def summary_lines(info: Mapping[str, Any], table_rows: list[Row], width: int | None = None,
                  colour: bool = False) -> list[str]:
    """The table, one line per row, and the totals, each line at most `width` characters: a layer's
    path is shortened from the left (`…/branch1/conv`, the leaf kept) when the full one does not fit."""
    from .table import Cell, Column, render, si, wrap
    # the layer column narrows as far as its leaves allow (a deep one may be cut past 30 characters); where
    # even that is too wide, MACs go first, then the op
    leaves = max([len("layer")] + [2 * (r.level - 1) + len(_leaf(r)) for r in table_rows])
    columns = [Column("layer", shrink=min(leaves, 30)), Column("op", shrink=6, drop=1), Column("output shape"),
               Column("params", right=True), Column("MACs", right=True, drop=2)]
    cells = [[_name(row), Cell(((row.op, "italic" if row.group else ""),)), _shape(row.shape),
              f"{row.params:,}" if row.params else "", si(row.macs) if row.macs else ""] for row in table_rows]
    styles = ["bold" if row.expanded else "" for row in table_rows]
    lines = render(columns, cells, width, colour, styles)
    return lines + [wrapped for line in _totals(info, any(r.repeat > 1 for r in table_rows))
                    for wrapped in wrap(line, width)]


def _name(row: Row) -> Cell:
    """The layer cell: indented by level, the parent path dim, `×N (total)` after a folded run; narrowed
    by dropping the path's first parts (`…/`), then `(total)`, then cutting the leaf."""
    from .table import Cell, cut
    indent = "  " * (row.level - 1)
    *parents, leaf = row.name.split("/")
    mark = [(f" ×{row.repeat} (total)", "bold cyan")] if row.repeat > 1 else []

    def pieces(k: int, marks: list) -> tuple:
        path = ("…/" if k else "") + "".join(p + "/" for p in parents[k:])
        return ((indent, ""), (path, "dim"), (leaf, ""), *marks)

    short = [(f" ×{row.repeat}", "bold cyan")] if mark else []

    def fit(width: int) -> Cell:
        for marks in (mark, short):
            for k in range(1, len(parents) + 1):
                if sum(len(t) for t, _ in pieces(k, marks)) <= width:
                    return Cell(pieces(k, marks))
        return Cell(cut(((indent, ""), (leaf, ""), *short), width))  # the indent alone says it is nested
    return Cell(pieces(0, mark), fit)


def _leaf(row: Row) -> str:
    return row.name.rsplit("/", 1)[-1] + (f" ×{row.repeat}" if row.repeat > 1 else "")


def _totals(info: Mapping[str, Any], folded: bool) -> list[str]:
    from .table import si
    p = info["params"]
    lines = ["", f"{info['name']}: input {_shape(info['input_shape'])} -> output {_shape(info['output_shape'])}",
             f"total params: {p['total']:,}   trainable: {p['trainable']:,}   non-trainable: {p['non_trainable']:,}",
             f"MACs: {info['macs']:,} ({si(info['macs'])})"]
    if "params_with_aux" in info:
        a = info["params_with_aux"]
        lines.append(f"with the train-only heads ({', '.join(info['aux_heads'])}; `--aux` keeps them):")
        lines.append(f"  total params: {a['total']:,}   trainable: {a['trainable']:,}   "
                     f"non-trainable: {a['non_trainable']:,}")
    if folded:
        lines.append("`name ×N (total)`, or `×N` where narrow: N identical calls in sequence, or N identical "
                     "parallel branches (towers), in one row, their params and MACs summed, the shape the last "
                     "one's; `--no-fold` lists each")
    return lines


def _shape(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"
