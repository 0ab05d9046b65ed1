"""The view tree -> the overview's chain: what is drawn, left to right, and the shape after each.

Consumes the view tree (views.py); produces `Drawn` items: modules kept as single boxes (consecutive
calls of one block folded into one, `×N`), plain blocks opened up, named sequences as frames, functions
that attach (batch norm, activations) moved onto the layer before them as marks, repeated layers folded,
train-only heads as side branches. Layout is overview.py's.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Union

from ..compiler.ir import Shape
from .labels import attaches, is_function, layer_label
from .views import ModuleKind, VAux, VBlock, VLayer, VMerge, VSeq, View, is_module, module_kind


@dataclass(frozen=True)
class DLayer:
    view: VLayer
    marks: tuple[str, ...] = ()  # the ops attached to it, in order (`batchnorm`, `relu`)
    count: int = 1


@dataclass(frozen=True)
class DFunc:
    view: VLayer


@dataclass(frozen=True)
class DModule:
    views: tuple[VBlock | VMerge, ...]
    kind: ModuleKind
    name: str | None = None  # the name of a sequence that holds only this (`middle_flow: middle x 8`)


@dataclass(frozen=True)
class DGroup:
    title: str
    subtitle: str | None
    items: tuple[Drawn, ...]
    path: str


@dataclass(frozen=True)
class DAux:
    view: VAux
    items: tuple[Drawn, ...]


Drawn = Union[DLayer, DFunc, DModule, DGroup, DAux]
Link = tuple[Drawn, Union[Shape, None]]  # a drawn item and the shape after it, where a view ends there


def chain(tree: VSeq) -> list[Link]:
    """The top-level items drawn, each with the shape of the view it ends, folded where they repeat."""
    links: list[Link] = []
    for view in tree.items:
        items = drawn(view, True)
        links.extend((item, out_shape(view) if i == len(items) - 1 else None) for i, item in enumerate(items))
    return _fold(links)


def drawn(view: View, top: bool) -> list[Drawn]:
    """What one view contributes to a chain: modules stay boxes, plain blocks open up."""
    if view is None:
        return []
    if isinstance(view, VLayer):
        return [DFunc(view) if is_function(view.op) else DLayer(view)]
    if isinstance(view, VAux):
        return [DAux(view, tuple(tidy(drawn(view.body, False))))]
    if isinstance(view, VMerge) or (isinstance(view, VBlock) and is_module(view)):
        return [DModule((view,), module_kind(view))]
    body = view.body if isinstance(view, VBlock) else view
    items = tidy([d for child in (body.items if isinstance(body, VSeq) else (body,)) for d in drawn(child, False)])
    return _named(view, items, top)


def _named(view: VBlock | VSeq, items: list[Drawn], top: bool) -> list[Drawn]:
    """A block's or sequence's items under its name: one item takes the name, several get a frame."""
    title = view.name or (view.block if isinstance(view, VBlock) else None)
    if len(items) == 1 and isinstance(items[0], DLayer) and view.name:
        return [DLayer(replace(items[0].view, name=view.name), items[0].marks, items[0].count)]
    if len(items) == 1 and isinstance(items[0], DModule) and view.name:
        return [replace(items[0], name=view.name)]
    if len(items) > 1 and title and (top or view.name):
        subtitle = view.call if isinstance(view, VBlock) and view.call != title else None
        return [DGroup(title, subtitle, tuple(items), view.path)]
    return items


def tidy(items: list[Drawn]) -> list[Drawn]:
    """Batch norm and activations attached to the layer before them, then repeats folded into ×N."""
    attached: list[Drawn] = []
    for item in items:
        prev = attached[-1] if attached else None
        if isinstance(item, DFunc) and attaches(item.view.op) and isinstance(prev, DLayer) and \
                prev.count == 1 and item.view.op not in prev.marks:
            attached[-1] = DLayer(prev.view, (*prev.marks, item.view.op))
        else:
            attached.append(item)
    folded: list[Drawn] = []
    for item in attached:
        prev = folded[-1] if folded else None
        if isinstance(item, DModule) and isinstance(prev, DModule) and _same_module(prev, item):
            folded[-1] = DModule((*prev.views, *item.views), prev.kind)
        elif isinstance(item, DLayer) and isinstance(prev, DLayer) and _same_layer(prev, item):
            folded[-1] = DLayer(prev.view, prev.marks, prev.count + item.count)
        else:
            folded.append(item)
    return folded


def _same_module(a: DModule, b: DModule) -> bool:
    """Calls of one block, whatever their arguments (Inception-v3's mixed0-2 are `inception_a ×3`)."""
    va, vb = a.views[-1], b.views[0]
    return a.kind == b.kind and a.name is None and b.name is None and isinstance(va, VBlock) and \
        isinstance(vb, VBlock) and va.block == vb.block


def _same_layer(a: DLayer, b: DLayer) -> bool:
    return a.view.name is None and b.view.name is None and a.marks == b.marks and \
        layer_label(a.view) == layer_label(b.view) and a.view.op == b.view.op


def out_shape(view: View) -> Shape | None:
    """The shape a view ends with: its own, or its last item's; none for heads and `expect:`."""
    if view is None or isinstance(view, VAux):
        return None
    if isinstance(view, (VLayer, VMerge, VBlock)):
        return view.shape
    for item in reversed(view.items):
        shape = out_shape(item)
        if shape is not None:
            return shape
    return None


def _fold(links: list[Link]) -> list[Link]:
    """Neighbours from different top-level items tidied together (`conv` then `batchnorm`, two calls)."""
    out: list[Link] = []
    for item, shape in links:
        if out:
            folded = tidy([out[-1][0], item])
            if len(folded) == 1:
                out[-1] = (folded[0], shape)
                continue
        out.append((item, shape))
    return out
