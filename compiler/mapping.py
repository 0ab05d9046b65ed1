"""A checkpoint in its own names (torchvision's `layer1.0.conv1.weight`, Keras's `conv2d_3`) mapped onto a
network's parameters from structure alone: no mapping code per network.

Both sides are trees of units. A unit is the tensors one module owns (`layer1.0.bn1`: weight, bias,
running_mean, running_var) or one cnnc layer's parameters; its signature is its tensors' roles and shapes,
shapes compared without trailing 1s (a Linear's [out, in] is a 1x1 conv's [out, in, 1, 1]). The trees come
from the names: `.` separates a checkpoint's levels, `/` a network's; children are ordered as the
checkpoint file stores them (a `.pth` keeps registration order; a `.safetensors` file sorts names, so
numbered names are put back in numeric order) and as the network's data flows.

Matching goes top down. Each checkpoint subtree is paired with the network subtree of the same multiset
of unit signatures (a torchvision `Bottleneck` with a cnnc `bottleneck(...)` call), wherever it sits below
the current pair, so extra levels on either side (`features`, `add/residual`) do not matter, nor the order
of branches; a checkpoint subtree with no counterpart is opened and its children matched instead. Among
several counterparts alike (a stage's identical blocks), the one whose name shares the most words with
the checkpoint's is taken, then the first in order. The units left at a level pair by signature, in order.
Every pairing says how it was decided (`name`, `structure` when unique, `order` when one of several
alike), so `cnnc weights map` shows what to review; whatever is left over on either side is one error
that lists each tensor with its shape and the candidates, and `--weights-map` settles the rest.
"""
from __future__ import annotations

import fnmatch
import os
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from .errors import WeightsError
from .ir import Layer, Param

ROLES = ("weight", "bias", "running_mean", "running_var")


@dataclass(frozen=True)
class Entry:
    """One row of a mapping: checkpoint tensor -> network parameter."""

    source: str
    target: str
    shape: tuple[int, ...]  # the network's
    layout: str  # "" when the values are taken as they are; else what was done to them
    how: str  # name | structure | order | map


@dataclass
class _Unit:
    name: str
    tensors: dict[str, tuple[int, ...]]  # role (or local name) -> shape
    sources: dict[str, str]  # role -> full tensor name (checkpoint) or parameter name (network)
    rank: int = 0  # its place in its side's order (the file's; the network's data flow, or the file's view of it)

    @property
    def signature(self) -> tuple:
        if len(self.tensors) == 1:  # a loose tensor (ConvNeXt's layer_scale) pairs with any one-tensor unit
            return (("single", _core(next(iter(self.tensors.values())))),)
        return tuple(sorted((role if role in ROLES else "other", _core(s)) for role, s in self.tensors.items()))


@dataclass(eq=False)
class _Node:
    name: str
    children: list[_Node] = field(default_factory=list)
    unit: _Unit | None = None
    signatures: Counter = field(default_factory=Counter)

    def parts(self) -> list[_Node]:
        """Its children, its own unit first as a leaf of its own (a module's parameters precede its
        submodules' in a state dict)."""
        own = [_Node(self.name, unit=self.unit, signatures=Counter([self.unit.signature]))] \
            if self.unit is not None and self.children else []
        return own + self.children

    def leaves(self) -> list[_Node]:
        return [self] if not self.children else [leaf for c in self.parts() for leaf in c.leaves()]


def _core(shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(shape)
    while len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def _natural(name: str) -> list:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name)]


def _tree(units: list[_Unit], sep: str) -> _Node:
    root = _Node("")
    nodes = {"": root}
    for unit in units:
        path = unit.name.split(sep) if unit.name else []
        node = root
        for i in range(len(path)):
            key = sep.join(path[: i + 1])
            if key not in nodes:
                nodes[key] = _Node(key)
                node.children.append(nodes[key])
            node = nodes[key]
        node.unit = unit
    _count(root)
    return root


def _count(node: _Node) -> Counter:
    node.signatures = Counter([node.unit.signature] if node.unit else [])
    for c in node.children:
        node.signatures += _count(c)
    return node.signatures


def _words(name: str) -> set[str]:
    return {w for w in re.split(r"[./_\-]+", name.lower()) if w and not w.isdigit()}


class _Matcher:
    def __init__(self) -> None:
        self.pairs: list[tuple[_Unit, _Unit, str]] = []  # (checkpoint unit, network unit, how)
        self.left: list[tuple[list[_Unit], list[_Unit]]] = []  # unmatched, by level

    def match(self, theirs: list[_Node], ours: list[_Node], by_order: bool = False) -> None:
        """Pair the units of `theirs` with those of `ours` (`by_order`: this pair of subtrees was itself
        one of several alike, taken by its place)."""
        queue, free, loose = list(theirs), list(ours), []
        while queue:
            t = queue.pop(0)
            if not t.children:
                loose.append(t)
                continue
            alike = [c for c in _candidates(free) if c.signatures == t.signatures]
            if not alike:
                queue[:0] = t.parts()  # no counterpart as a whole: match its parts
                continue
            words = _words(t.name)
            scores = [len(words & _words(c.name)) for c in alike]
            best = alike[scores.index(max(scores))]  # the first of the best
            _take(free, best)
            self.match(t.parts(), [best], by_order or scores.count(max(scores)) > 1)
        self._pair_leaves(loose, [leaf for n in free for leaf in n.leaves()], by_order)

    def _pair_leaves(self, theirs: list[_Node], ours: list[_Node], by_order: bool) -> None:
        theirs = sorted(theirs, key=lambda n: n.unit.rank)  # type: ignore[union-attr]
        ours = sorted(ours, key=lambda n: n.unit.rank)  # type: ignore[union-attr]
        by_signature: dict[tuple, list[_Node]] = {}
        for node in ours:
            by_signature.setdefault(node.unit.signature, []).append(node)  # type: ignore[union-attr]
        counts = Counter(t.unit.signature for t in theirs)  # type: ignore[union-attr]
        left_theirs = []
        for t in theirs:
            signature = t.unit.signature  # type: ignore[union-attr]
            options = by_signature.get(signature, [])
            if not options:
                left_theirs.append(t.unit)
                continue
            how = "structure" if counts[signature] == 1 and len(options) == 1 and not by_order else "order"
            self.pairs.append((t.unit, options.pop(0).unit, how))  # type: ignore[arg-type]
        left_ours = [n.unit for nodes in by_signature.values() for n in nodes]
        if left_theirs or left_ours:
            self.left.append((left_theirs, left_ours))  # type: ignore[arg-type]


def _candidates(forest: list[_Node]) -> Iterable[_Node]:
    """Every node of the forest, outermost first, in order."""
    for node in forest:
        yield node
        yield from _candidates(node.children)


def _take(forest: list[_Node], target: _Node) -> bool:
    """Remove `target` from the forest, opening its ancestors into their parts."""
    for i, node in enumerate(forest):
        if node is target:
            del forest[i]
            return True
        if target.signatures <= node.signatures and _contains(node, target):
            parts = node.parts()
            _take(parts, target)
            forest[i:i + 1] = parts
            return True
    return False


def _contains(node: _Node, target: _Node) -> bool:
    return any(c is target or _contains(c, target) for c in node.children)


# ---- the two sides --------------------------------------------------------------------------------------
Convert = Callable[[np.ndarray, Entry], tuple[np.ndarray, str]]
"""(checkpoint value, its entry) -> (value in the parameter's layout, what was done, "" for nothing)."""


def checkpoint_units(shapes: Mapping[str, tuple[int, ...]], roles: Mapping[str, str] | None = None,
                     sort: bool = False) -> list[_Unit]:
    """Tensors grouped by module (the name before its last `.`); `roles` renames a tensor's role (Keras's
    gamma -> weight); `sort` puts names in natural order (a safetensors file's order is not the model's)."""
    names = sorted(shapes, key=_natural) if sort else list(shapes)
    units: dict[str, _Unit] = {}
    for name in names:
        module, _, local = name.rpartition(".")
        role = (roles or {}).get(name, local)
        unit = units.setdefault(module, _Unit(module, {}, {}, len(units)))
        unit.tensors[role], unit.sources[role] = tuple(shapes[name]), name
    return list(units.values())


def network_units(layers: Iterable[Layer]) -> list[_Unit]:
    units: list[_Unit] = []
    for layer in layers:
        if layer.params:
            roles = {p.name.rsplit(".", 1)[1]: p for p in layer.params}
            units.append(_Unit(layer.name, {r: p.shape for r, p in roles.items()},
                               {r: p.name for r, p in roles.items()}, len(units)))
    return units


def plan(layers: Iterable[Layer], shapes: Mapping[str, tuple[int, ...]], source: str,
         renames: Mapping[str, str | None] | None = None, roles: Mapping[str, str] | None = None,
         sort: bool = False, optional: Iterable[str] = ()) -> list[Entry]:
    """The mapping of a checkpoint's tensors (name -> shape) onto the layers' parameters; raises one
    WeightsError listing everything left unmatched but the `optional` layers (train-only heads that this
    compile leaves out)."""
    layers = list(layers)
    params = {p.name: p for layer in layers for p in layer.params}
    entries, shapes = _renamed(shapes, params, renames or {}, source)
    taken = {e.target for e in entries}
    exact = {n: None for n in shapes if n in params and n not in taken}  # ordered, and quick to test
    for name in exact:  # the network's own names need no structure
        entries.append(Entry(name, name, params[name].shape, "", "name"))
    rest = {n: s for n, s in shapes.items() if n not in exact}
    free_layers = [replace(layer, params=tuple(p for p in layer.params if p.name not in taken and p.name not in exact))
                   for layer in layers]
    matcher = _Matcher()
    matcher.match([_tree(checkpoint_units(rest, roles, sort), ".")], [_tree(network_units(free_layers), "/")])
    for theirs, ours, how in matcher.pairs:
        for role, target in ours.sources.items():
            key = role if role in theirs.sources else next(iter(theirs.sources))
            entries.append(Entry(theirs.sources[key], target, params[target].shape, "", how))
    skip = set(optional)
    left = [(theirs, [u for u in ours if u.name not in skip]) for theirs, ours in matcher.left]
    left = [(theirs, ours) for theirs, ours in left if theirs or ours]
    if left:
        raise WeightsError(_unmatched(left, source), code="E0601")
    return entries


def read_renames(path: str | os.PathLike) -> dict[str, str | None]:
    """A `--weights-map` file: YAML (or JSON), `CHECKPOINT_NAME: NETWORK_NAME` per line, `*` patterns
    allowed, `null` to drop a tensor."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise WeightsError(f"cannot read --weights-map `{path}`: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise WeightsError(f"--weights-map `{path}` is not YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) and (v is None or isinstance(v, str))
                                             for k, v in data.items()):
        raise WeightsError(f"--weights-map `{path}`: write one `CHECKPOINT_NAME: NETWORK_NAME` (or `null`) "
                           f"per line")
    return data


def _renamed(shapes: Mapping[str, tuple[int, ...]], params: Mapping[str, Param],
             renames: Mapping[str, str | None], source: str) -> tuple[list[Entry], dict[str, tuple[int, ...]]]:
    """The explicit renames (`--weights-map`): exact names, or patterns whose `*`s carry over in order;
    a rename to nothing (null) drops the tensor. Returns their entries and the tensors still to map."""
    entries, rest = [], {}
    for name, shape in shapes.items():
        renamed, target = _rename(name, renames)
        if not renamed:
            rest[name] = shape
        elif target is not None:
            if target not in params:
                raise WeightsError(f"--weights-map sends `{name}` to `{target}`, which is not a parameter of the "
                                   f"network (`cnnc weights NET -o t.safetensors` lists them)")
            entries.append(Entry(name, target, params[target].shape, "", "map"))
    return entries, rest


def _rename(name: str, renames: Mapping[str, str | None]) -> tuple[bool, str | None]:
    """(whether a rename applies, the new name or None to drop the tensor)."""
    if name in renames:
        return True, renames[name]
    for pattern, target in renames.items():
        if "*" in pattern and fnmatch.fnmatchcase(name, pattern):
            if target is None:
                return True, None
            found = re.fullmatch(re.escape(pattern).replace(r"\*", "(.*)"), name)
            pieces = target.split("*")
            groups = found.groups() if found else ()
            if len(pieces) - 1 not in (0, len(groups)):
                raise WeightsError(f"--weights-map: `{pattern}` and `{target}` have different numbers of `*`")
            return True, "".join(p + (groups[i] if i < len(pieces) - 1 else "") for i, p in enumerate(pieces))
    return False, None


def _unmatched(left: list[tuple[list[_Unit], list[_Unit]]], source: str) -> str:
    theirs = [u for level, _ in left for u in level]
    ours = [u for _, level in left for u in level]
    lines = [f"`{source}` does not fit the network: {_count_tensors(theirs)} of its tensors and "
             f"{_count_tensors(ours)} of the network's parameters found no counterpart by structure"]
    for unit in theirs[:40]:
        near = [o.name for o in ours if _core_shapes(o) & _core_shapes(unit)][:3]
        hint = f"; candidates: {', '.join(near)}" if near else ""
        lines.append(f"  checkpoint {unit.name or '<root>'}: {_shapes(unit)}{hint}")
    for unit in ours[:40]:
        lines.append(f"  network {unit.name}: {_shapes(unit)}")
    if len(theirs) > 40 or len(ours) > 40:
        lines.append("  ...")
    lines.append("  (`--weights-map FILE` renames the rest: `CHECKPOINT_NAME: NETWORK_NAME` per line, `*` "
                 "patterns allowed, `null` to drop a tensor)")
    return "\n".join(lines)


def _count_tensors(units: list[_Unit]) -> int:
    return sum(len(u.tensors) for u in units)


def _core_shapes(unit: _Unit) -> set[tuple[int, ...]]:
    return {_core(s) for s in unit.tensors.values()}


def _shapes(unit: _Unit) -> str:
    return ", ".join(f"{role} {list(shape)}" for role, shape in unit.tensors.items())


def values(entries: Iterable[Entry], tensors: Mapping[str, Any], layouts: Mapping[str, str] | None = None,
           convert: Convert | None = None) -> tuple[dict[str, np.ndarray], list[Entry]]:
    """Each mapped parameter's value in the network's layout, and the entries with what was done to the
    values: the checkpoint's own change of layout (`layouts`, by tensor; `convert`, given the entry), or a
    reshape between [out, in] and [out, in, 1, 1]."""
    out, done = {}, []
    for e in entries:
        value, layout = np.asarray(tensors[e.source]), (layouts or {}).get(e.source, "")
        if convert is not None:
            value, change = convert(value, e)
            layout = "; ".join(x for x in (layout, change) if x)
        if tuple(value.shape) != e.shape:
            if _core(value.shape) != _core(e.shape):
                raise WeightsError(f"`{e.source}` {list(value.shape)} cannot be `{e.target}` {list(e.shape)}")
            change = f"reshape {list(value.shape)} -> {list(e.shape)}"
            value, layout = value.reshape(e.shape), "; ".join(x for x in (layout, change) if x)
        out[e.target] = value
        done.append(Entry(e.source, e.target, e.shape, layout, e.how))
    return out, done
