"""The view tree -> the overview's chain: what is drawn, left to right, and the shape after each.

Consumes the view tree (views.py) and the blocks' display labels; produces `Drawn` items: modules kept as
single boxes (consecutive identical calls of one block folded into one, `×N`; calls that differ in their
arguments or input stay apart), plain blocks opened up, named sequences as frames that know the shape
after each item and where they may be cut, functions that attach (batch norm, activations) moved onto
the layer before them as marks, repeated layers folded, train-only heads as side branches. Layout is
overview.py's.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator, Mapping, Union

from ..compiler.ir import Shape
from ..compiler.ops import MERGES
from .labels import attaches, is_function, is_wire, layer_label
from .style import Structure
from .views import VAux, VBlock, VLayer, VMerge, VSeq, View, first_merge, is_module, walk


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
    kind: Structure
    name: str | None = None  # the name of a sequence that holds only this (`middle_flow: middle x 8`)
    label: str | None = None  # its block's display label (`Inception-ResNet-A`)
    down: int = 1  # the largest stride inside: > 1 marks a module that downsamples
    entry: Shape | None = None  # the shape into its first call


@dataclass(frozen=True)
class DGroup:
    title: str
    subtitle: str | None
    items: tuple[Drawn, ...]
    path: str
    shapes: tuple[Shape | None, ...] = ()  # the shape after each item (None: unknown)
    entry: Shape | None = None  # the shape before the first
    cuts: frozenset[int] = frozenset()  # the items that begin a whole call: where the frame may be cut


@dataclass(frozen=True)
class DAux:
    view: VAux
    items: tuple[Drawn, ...]


Drawn = Union[DLayer, DFunc, DModule, DGroup, DAux]
Link = tuple[Drawn, Union[Shape, None]]  # a drawn item and the shape after it, where a view ends there


def chain(tree: VSeq, labels: Mapping[str, str] | None = None) -> list[Link]:
    """The top-level items drawn, each with the shape of the view it ends, folded where they repeat;
    `labels` are the blocks' display names."""
    links: list[Link] = []
    draw = _Drawer(labels or {})
    before: Shape | None = None
    for view in tree.items:
        items = draw(view, True, before)
        links.extend((item, out_shape(view) if i == len(items) - 1 else None) for i, item in enumerate(items))
        before = out_shape(view) or before
    return _fold(links)


class _Drawer:
    def __init__(self, labels: Mapping[str, str]):
        self.labels = labels

    def __call__(self, view: View, top: bool, before: Shape | None) -> list[Drawn]:
        """What one view contributes to a chain: modules stay boxes, plain blocks open up."""
        if view is None:
            return []
        if isinstance(view, VLayer):
            return [DFunc(view) if is_function(view.op) else DLayer(view)]
        if isinstance(view, VAux):
            return [DAux(view, tuple(tidy(self(view.body, False, before))))]
        if isinstance(view, VMerge) or (isinstance(view, VBlock) and is_module(view)):
            label = self.labels.get(view.block) if isinstance(view, VBlock) else None
            return [DModule((view,), structure(view), label=label, down=stride(view), entry=before)]
        body = view.body if isinstance(view, VBlock) else view
        children = body.items if isinstance(body, VSeq) else (body,)
        items: list[Drawn] = []
        cuts: set[int] = set()
        entry = before
        for child in children:
            n, last = len(items), items[-1:]
            joined = tidy(last + self(child, False, before))
            items = items[:-1] + joined
            if len(items) > n and not (last and joined[0] is not last[0]):  # nothing joined the item before
                cuts.add(n)
            before = out_shape(child) or before
        return self.named(view, items, top, entry, cuts)

    def named(self, view: VBlock | VSeq, items: list[Drawn], top: bool, entry: Shape | None,
              cuts: set[int]) -> list[Drawn]:
        """A block's or sequence's items under its name: one item takes the name, several get a frame."""
        title = view.name or (view.path.rsplit("/", 1)[-1] if isinstance(view, VBlock) else None)
        if len(items) == 1 and isinstance(items[0], DLayer) and view.name:
            return [DLayer(replace(items[0].view, name=view.name), items[0].marks, items[0].count)]
        if len(items) == 1 and isinstance(items[0], DModule) and view.name:
            return [replace(items[0], name=view.name)]
        if len(items) > 1 and title and (top or view.name):
            subtitle = view.call if isinstance(view, VBlock) and view.call != title else None
            label = self.labels.get(view.block) if isinstance(view, VBlock) else None
            if label:
                subtitle = f"{label} · {subtitle}" if subtitle else label
            shapes = tuple(drawn_shape(d) for d in items)
            return [DGroup(title, subtitle, tuple(items), view.path, shapes, entry, frozenset(cuts - {0}))]
        return items


def structure(view: VBlock | VMerge) -> Structure:
    """What a module is built around: its merge's kind (the registry's), and for a concat whether a
    branch is the input itself (a dense connection) or a channel shuffle follows (ShuffleNet)."""
    merge = first_merge(view)
    if merge is None:
        return "concat"
    module = MERGES[merge.op].module
    if module != "inception":
        return module
    if any(layer.op == "shuffle" for layer in _layers(view)):
        return "shuffle"
    if any(_is_input(b.node) for b in merge.branches):
        return "dense"
    return "concat"


def _is_input(view: View) -> bool:
    layers = list(_layers(view))
    return len(layers) == 1 and is_wire(layers[0].op)


def stride(view: View) -> int:
    """The largest stride of any layer inside (1: none downsamples)."""
    return max((max(layer.attrs.get("stride") or (1,)) for layer in _layers(view)), default=1)


def _layers(view: View) -> Iterator[VLayer]:
    """Every layer inside a view, in order."""
    return (v for v, _ in walk(view) if isinstance(v, VLayer))


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
            folded[-1] = replace(prev, views=(*prev.views, *item.views))
        elif isinstance(item, DLayer) and isinstance(prev, DLayer) and _same_layer(prev, item):
            folded[-1] = DLayer(prev.view, prev.marks, prev.count + item.count)
        else:
            folded.append(item)
    return folded


def _same_module(a: DModule, b: DModule) -> bool:
    """Calls folded into one box: unnamed calls of one block built alike (the same layers at the same
    names, the same downsampling: `dense_layer x 6`), the box then saying what varies per call
    (`varies`); calls named in the document only when identical, as `cnnc summary` folds them
    (Inception-v3's mixed5-6), so mixed0-2, which differ in their pool projection and input width, stay
    three boxes."""
    va, vb = a.views[-1], b.views[0]
    if not (a.name is None and b.name is None and isinstance(va, VBlock) and isinstance(vb, VBlock)):
        return False
    if va.block != vb.block:
        return False
    return va.name is None and vb.name is None and _alike(va, vb) and stride(va) == stride(vb) or \
        identical(va, vb)


def identical(a: VBlock | VMerge, b: VBlock | VMerge) -> bool:
    """One block called with the same arguments on the same input: the same layers, arguments and shapes."""
    return isinstance(a, VBlock) and isinstance(b, VBlock) and a.block == b.block and a.call == b.call and \
        a.shape == b.shape and _alike(a, b, exactly=True)


def varies(item: DModule) -> list[str]:
    """What differs between the calls folded into one box: each argument that does, and the input
    (`drop: 0.0036 | 0.0073`, `input: 64 … 224 ch`); nothing when they are identical."""
    views = item.views
    if all(identical(x, y) for x, y in zip(views, views[1:])):
        return []
    out = []
    bound = [dict(v.params) if isinstance(v, VBlock) else {} for v in views]
    for name in bound[0]:
        values = [b.get(name, "?") for b in bound]
        if len(set(values)) > 1:
            out.append(f"{name}: {_values(values)}")
    inputs = [item.entry, *(v.shape for v in views[:-1])]
    if item.entry is not None and len(set(inputs)) > 1:
        channels_only = all(s is not None and s[1:] == inputs[0][1:] for s in inputs)  # type: ignore[index]
        shown = [str(s[0]) if channels_only else "×".join(map(str, s)) for s in inputs if s is not None]
        out.append(f"input: {_values(shown)}{' ch' if channels_only else ''}")
    return out


def _values(values: list[str]) -> str:
    """Each call's value, or the first and the last of a long run."""
    return " | ".join(values) if len(values) <= 3 else f"{values[0]} … {values[-1]}"


def _alike(a: VBlock, b: VBlock, exactly: bool = False) -> bool:
    """The same ops at the same relative names (a projection shortcut in one and not the other: unlike);
    `exactly`: with the same arguments, output shapes and tensor shapes too."""
    ours, theirs = list(_layers(a)), list(_layers(b))
    return len(ours) == len(theirs) and all(
        x.path[len(a.path):] == y.path[len(b.path):] and x.op == y.op and
        (not exactly or (x.shape == y.shape and x.weights == y.weights and x.attrs == y.attrs))
        for x, y in zip(ours, theirs))


def _same_layer(a: DLayer, b: DLayer) -> bool:
    return a.view.name is None and b.view.name is None and a.marks == b.marks and \
        layer_label(a.view) == layer_label(b.view) and a.view.op == b.view.op and a.view.shape == b.view.shape


def drawn_shape(item: Drawn) -> Shape | None:
    """The shape after a drawn item: its (last) view's; none for a head."""
    if isinstance(item, (DLayer, DFunc)):
        return item.view.shape
    if isinstance(item, DModule):
        return item.views[-1].shape
    if isinstance(item, DGroup):
        return next((s for s in reversed(item.shapes) if s is not None), None)
    return None


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
