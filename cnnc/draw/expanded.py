"""The picture of one block's inside, as first called in the network, or of one module by its name.

Consumes the document (its name and blocks, for the title and for errors), the whole graph (the shape
into the block) and the view tree; produces the SVG text: a title naming the block and its parameters,
a note with the call drawn, the input tag, the block's figure (figures.py), the output tag, a legend.
An unknown name is a `CnncError` that suggests the nearest block or module.
"""
from __future__ import annotations

from typing import Callable, Union

from ..compiler.ir import Graph, Shape
from ..dsl.document import Document
from ..errors import CnncError, did_you_mean
from .figures import EGAP, fig
from .labels import shape_text, text_width
from .legend import legend
from .style import MARGIN, MUTED
from .svg import Svg
from .views import VAux, VBlock, VMerge, VSeq, View, is_module

Target = Union[VBlock, VMerge]


def expanded(doc: Document, graph: Graph, tree: VSeq, target: str) -> str:
    """The inside of block or module `target`: its figure between its input and output shapes."""
    view = _target(doc, tree, target)
    svg = Svg()
    figure = fig(view)
    title, note = _heading(doc, tree, view)
    svg.text(MARGIN, MARGIN + 14, title, 17, anchor="start", bold=True)
    svg.text(MARGIN, MARGIN + 32, note, 10.5, anchor="start", fill=MUTED)
    top = MARGIN + 56
    width = max(figure.w, 160.0)
    content_w = max(width + 2 * MARGIN, MARGIN + text_width(title, 17, True), MARGIN + text_width(note, 10.5))
    x0 = MARGIN + max(0.0, (min(content_w, 900) - 2 * MARGIN - figure.w) / 2)
    cx = x0 + figure.cx
    before = _input_shape(graph, view.path)
    _tag(svg, cx, top, "input", shape_text(before) if before else "?")
    svg.line([(cx, top + 30), (cx, top + 30 + EGAP - 1)])
    figure.paint(svg, x0, top + 30 + EGAP)
    y = top + 30 + EGAP + figure.h
    svg.line([(cx, y), (cx, y + EGAP - 1)])
    _tag(svg, cx, y + EGAP, "output", shape_text(view.shape))
    y, right = legend(svg, figure.legend, y + EGAP + 30 + 28, max(content_w - MARGIN, 560))
    width = max(content_w, x0 + figure.w + MARGIN, cx + 60 + MARGIN, right + MARGIN)
    return svg.document(width, y + MARGIN, f"{doc.name}: {title.split(' · ', 1)[1]} drawn by cnnc")


def _target(doc: Document, tree: VSeq, target: str) -> Target:
    """The view `target` names, or an error that says what could have been meant."""
    view = _find(tree, target)
    if view is not None:
        return view
    if target in doc.blocks:
        raise CnncError(f"block `{target}` is defined in `{doc.name}` but never called, so it has no "
                        f"concrete arguments or shapes to draw")
    blocks = list(doc.blocks)
    known = ", ".join(blocks) if blocks else "none"
    raise CnncError(f"`{doc.name}` has no block or module `{target}`"
                    f"{did_you_mean(target, [*blocks, *_module_paths(tree)])}; its blocks: {known}")


def _heading(doc: Document, tree: VSeq, view: Target) -> tuple[str, str]:
    """The title (`inception_v3 · inception_a(pool_proj)`) and the note: the call drawn, its bindings."""
    if isinstance(view, VMerge):
        return f"{doc.name} · {view.path}", f"{view.op} of {len(view.branches)} branches"
    params = ", ".join(p for p, _ in view.params)
    title = f"{doc.name} · {view.block}({params})" if params else f"{doc.name} · {view.block}"
    calls = _count(tree, view.block)
    where = f"{view.path}: {view.call}" if view.path != view.block else view.call
    note = f"as first called ({calls} calls in all): {where}" if calls > 1 else f"as called: {where}"
    if params:
        note += " — " + ", ".join(f"{p} = {v}" for p, v in view.params)
    return title, note


def _tag(svg: Svg, cx: float, y: float, which: str, text: str) -> None:
    w = max(text_width(text, 10.5, True), text_width(which, 9)) + 18
    svg.rect(cx - w / 2, y, w, 30, "#f4f4f4", "#9a9a9a", rx=6)
    svg.centred(cx, y + 9, which, 8.5, fill=MUTED)
    svg.centred(cx, y + 21, text, 10.5, bold=True)


def _walk(view: View, match: Callable[[View], bool]) -> View:
    """The first view, depth first, that `match`es."""
    if view is None or match(view):
        return view
    children: tuple[View, ...] = ()
    if isinstance(view, VSeq):
        children = view.items
    elif isinstance(view, (VBlock, VAux)):
        children = (view.body,)
    elif isinstance(view, VMerge):
        children = tuple(b.node for b in view.branches)
    for child in children:
        found = _walk(child, match)
        if found is not None:
            return found
    return None


def _find(tree: VSeq, target: str) -> Target | None:
    """The first call of block `target` in the network, or the module named `target`."""
    found = _walk(tree, lambda v: isinstance(v, VBlock) and v.block == target)
    found = found or _walk(tree, lambda v: isinstance(v, (VBlock, VMerge)) and target in (v.path, v.name))
    return found if isinstance(found, (VBlock, VMerge)) else None


def _count(view: View, block: str) -> int:
    """How many times `block` is called in the network."""
    if isinstance(view, VSeq):
        return sum(_count(i, block) for i in view.items)
    if isinstance(view, VMerge):
        return sum(_count(b.node, block) * b.copies for b in view.branches)
    if isinstance(view, VBlock):
        return (view.block == block) + _count(view.body, block)
    if isinstance(view, VAux):
        return _count(view.body, block)
    return 0


def _module_paths(view: View) -> list[str]:
    """The names of the modules a user may ask for: paths and written names, blocks opened up."""
    if isinstance(view, (VBlock, VMerge)) and is_module(view):
        return [view.path, *([view.name] if view.name else [])]
    if isinstance(view, VSeq):
        return [p for item in view.items for p in _module_paths(item)]
    if isinstance(view, VBlock):
        return _module_paths(view.body)
    return []


def _input_shape(graph: Graph, path: str) -> Shape | None:
    """The shape into the first layer under `path`."""
    outputs = {layer.output: layer.shape for layer in graph.layers}
    outputs["input"] = graph.input_shape
    for layer in graph.layers:
        if layer.name == path or layer.name.startswith(path + "/"):
            return outputs.get(layer.inputs[0])
    return None
