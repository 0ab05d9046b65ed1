"""Network text -> an `Analysis`: what the language server knows about one open file.

One `check` runs the dsl stage and the compiler's build in-process, under the limits in force
(compiler/limits.py), and never raises: a `CnncError` becomes located `Problem`s, a `CompileWarning` a
warning, anything else one "internal error" problem at line 1. Lines and columns here are 0-based, as
in LSP; cnnc's `Location`s are 1-based.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from ..compiler import build_tree
from ..compiler.ir import Graph, Layer
from ..compiler.limits import Limits, limits
from ..compiler.tree import RAux, RCall, RExpect, RMerge, RNode, ROp, RSeq
from ..dsl.document import Document, load_text
from ..dsl.family import Selection
from ..errors import CnncError, Location, MultipleErrors

Shape = tuple[int, ...]
_WORD = re.compile(r"[A-Za-z0-9_.\-]+")
_FRAME_AT = re.compile(r" at (.+):(\d+):(\d+)$")


@dataclass(frozen=True)
class Related:
    """One frame of an error's expansion path, where that call is written."""

    line: int
    col: int
    message: str


@dataclass(frozen=True)
class Problem:
    """One diagnostic: `line`, and the columns `start` to `end` on it."""

    line: int
    start: int
    end: int
    message: str
    severity: Literal["error", "warning"]
    kind: str = "error"
    related: tuple[Related, ...] = ()
    code: str | None = None  # the diagnostic's stable code (`E012`), where the error has one


@dataclass(frozen=True)
class Site:
    """Something written at one place and built there, once or more (a block's body: once a call):
    a layer (`ROp`), a merge, or a block call, with the output shape of each instance."""

    line: int
    col: int
    nodes: tuple[RNode, ...]
    shapes: tuple[Shape | None, ...]


@dataclass
class Analysis:
    """One check of a file's text. `doc`, `tree` and `graph` are None when it failed before them."""

    text: str
    name: str
    lines: list[str]
    problems: list[Problem] = field(default_factory=list)
    doc: Document | None = None
    tree: RSeq | None = None
    graph: Graph | None = None  # the whole graph, train-only heads included
    sites: dict[int, list[Site]] = field(default_factory=dict)  # by line, sorted by column
    layers: dict[str, Layer] = field(default_factory=dict)  # by name

    def sites_at(self, line: int) -> list[Site]:
        return self.sites.get(line, [])

    def site_at(self, line: int, col: int) -> Site | None:
        """The site whose text the column falls in: the last one starting at or before it."""
        found = None
        for site in self.sites_at(line):
            if site.col <= col:
                found = site
        return found


_NETWORK_KEY = re.compile(r"^(network|layers|blocks)\s*:", re.M)


def is_network(text: str) -> bool:
    """Whether the text is meant as a cnnc network (a top-level `network:`, `layers:` or `blocks:` key, or
    the schema comment), so that an editor attaching the server to every YAML file (CI workflows, ...)
    gets no errors for the others."""
    return "cnnc.schema.json" in text or _NETWORK_KEY.search(text) is not None


def check(text: str, name: str, selection: Selection | None = None, bounds: Limits | None = None) -> Analysis:
    """Everything the server answers from, for `text` shown in messages as `name` (no problems for text
    that is no network, `is_network`)."""
    result = Analysis(text, name, text.splitlines())
    if not is_network(text):
        return result
    try:
        with limits(bounds or Limits()):
            result.doc = load_text(text, name, selection)
            result.tree, result.graph = build_tree(result.doc)  # warns through graph.warnings only
        seen: set[tuple[str, str]] = set()
        for w in result.graph.warnings:  # once each: a block called twice warns twice
            if (str(w.loc), w.message) not in seen:
                seen.add((str(w.loc), w.message))
                result.problems.append(_problem(w.message, w.loc, (), "warning", "warning", result.lines, w.code))
        result.layers = {layer.name: layer for layer in result.graph.layers}
        result.sites = _sites(result.tree, result.layers)
    except CnncError as e:
        errors = e.errors if isinstance(e, MultipleErrors) else [e]
        result.problems.extend(_problem(x.message, x.loc, x.trace, "error", x.kind, result.lines, x.code)
                               for x in errors)
    except Exception as e:  # a bug in cnnc: said once, at the top, and the server carries on
        result.problems.append(Problem(0, 0, 0, f"internal error: {type(e).__name__}: {e} (a bug in cnnc; "
                                       "please report it with this file)", "error", "internal error"))
    return result


def _problem(message: str, loc: Location | None, trace: tuple[str, ...], severity: Literal["error", "warning"],
             kind: str, lines: list[str], code: str = "") -> Problem:
    related = tuple(r for r in map(_related, trace) if r is not None)
    if loc is None:
        return Problem(0, 0, 0, message, severity, kind, related, code or None)
    line = max(loc.line - 1, 0)
    text = lines[line] if line < len(lines) else loc.text
    start, end = token_span(text, loc.col - 1)
    return Problem(line, start, end, message, severity, kind, related, code or None)


def _related(frame: str) -> Related | None:
    at = _FRAME_AT.search(frame)
    if at is None:
        return None
    return Related(int(at.group(2)) - 1, int(at.group(3)) - 1, frame[:at.start()])


def token_span(text: str, col: int) -> tuple[int, int]:
    """The columns of the token starting at `col` (a name, a number, `3x3`), else to the end of the line."""
    text = text.rstrip()
    col = min(max(col, 0), len(text))
    word = _WORD.match(text, col)
    end = word.end() if word else len(text)
    return col, max(end, col)


# ---- where each thing was written ----------------------------------------------------------------------
def _sites(tree: RSeq, layers: dict[str, Layer]) -> dict[int, list[Site]]:
    """Every layer, merge and block call of the resolved tree by the line and column it was written at,
    with the output shape of each instance."""
    found: dict[tuple[int, int], tuple[list[RNode], list[Shape | None]]] = {}

    def visit(node: RNode) -> Shape | None:
        if isinstance(node, ROp):
            layer = layers.get(node.path)
            return record(node, node.loc, layer.shape if layer else None)
        if isinstance(node, RSeq):
            out = None
            for item in node.items:
                shape = visit(item)
                if not isinstance(item, (RExpect, RAux)) and shape is not None:
                    out = shape
            return out
        if isinstance(node, RMerge):
            for branch in node.branches:
                visit(branch)
            layer = layers.get(node.path)
            return record(node, node.loc, layer.shape if layer else None)
        if isinstance(node, RCall):
            return record(node, node.loc, visit(node.body))
        if isinstance(node, RAux):
            visit(node.node)
        return None

    def record(node: RNode, loc: Location, shape: Shape | None) -> Shape | None:
        nodes, shapes = found.setdefault((loc.line - 1, loc.col - 1), ([], []))
        nodes.append(node)
        shapes.append(shape)
        return shape

    visit(tree)
    out: dict[int, list[Site]] = {}
    for (line, col), (nodes, shapes) in sorted(found.items()):
        out.setdefault(line, []).append(Site(line, col, tuple(nodes), tuple(shapes)))
    return out


def layer_count(node: RNode) -> int:
    """How many layers a resolved node expands to."""
    if isinstance(node, ROp):
        return 1
    if isinstance(node, RSeq):
        return sum(layer_count(item) for item in node.items)
    if isinstance(node, RMerge):
        return 1 + sum(layer_count(branch) for branch in node.branches)
    if isinstance(node, RCall):
        return layer_count(node.body)
    if isinstance(node, RAux):
        return layer_count(node.node)
    return 0
