"""Carrying a PyTorch state dict onto cnnc's parameter names by following the data flow of both networks
(`map_by_order`), or by an explicit name function, and `map_both_ways`, which does both and asserts that
they agree. Part of tests/reference/torch_reference.py's machinery, which re-exports it."""
from __future__ import annotations

import weakref
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten


def state_values(model: nn.Module) -> dict[str, np.ndarray]:
    """The state dict as float32 numpy arrays, without BN's `num_batches_tracked` counters."""
    return {key: value.detach().cpu().numpy().astype(np.float32) for key, value in model.state_dict().items()
            if not key.endswith("num_batches_tracked")}


# ---- mapping ----------------------------------------------------------------------------------------
INPUT = -1  # the network input, as a producer
# cnnc op -> the reference modules that may hold its parameters; a module of none of these classes (a
# block's own loose parameter such as ConvNeXt's layer_scale) may pair with any op, by position and shape
COUNTERPARTS: dict[str, tuple[type, ...]] = {
    "conv": (nn.modules.conv._ConvNd, nn.Linear),  # a Linear on channels-last input is a 1x1 conv
    "dense": (nn.Linear, nn.modules.conv._ConvNd),  # a 1x1 conv on a pooled map is a dense layer
    "batchnorm": (nn.modules.batchnorm._BatchNorm,),
    "layernorm": (nn.LayerNorm, nn.GroupNorm),
    "groupnorm": (nn.GroupNorm,),
    "prelu": (nn.PReLU,),
}
KNOWN = tuple({cls for classes in COUNTERPARTS.values() for cls in classes})


def _fit(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """`value` as `shape` when the two differ at most by trailing 1s ([out, in] vs [out, in, 1, 1],
    [C, 1, 1] vs [C]); None otherwise (so a 1x7 kernel never passes for a 7x1 one)."""
    a, b = tuple(value.shape), tuple(shape)
    short, long = sorted((a, b), key=len)
    return value.reshape(shape) if long[:len(short)] == short and set(long[len(short):]) <= {1} else None


class _Tracer(TorchFunctionMode):
    """Follows one forward pass op by op. A tensor's tag is the set of parameterised units nearest upstream
    of it (through parameter-free ops); an op that reads a unit's parameter is a use of that unit, whose
    producers are the tags of its other tensor inputs. A tensor computed from a unit's parameters alone
    (a transposed or standardised weight) counts as that unit's parameter."""

    def __init__(self, owner: dict[int, int]):
        super().__init__()
        self.owner = owner  # id(parameter or buffer) -> unit
        self.tags: dict[int, tuple] = {}  # id(tensor) -> (weakref, ("param", unit) | ("data", producers))
        self.producers: dict[int, frozenset] = {}  # unit -> its producers, in order of first use

    def tag(self, tensor: torch.Tensor, tag: tuple) -> None:
        self.tags[id(tensor)] = (weakref.ref(tensor), tag)

    def look(self, tensor: torch.Tensor) -> tuple:
        if id(tensor) in self.owner:
            return ("param", self.owner[id(tensor)])
        ref, tag = self.tags.get(id(tensor), (None, None))
        return tag if ref is not None and ref() is tensor else ("data", frozenset())  # an ID reused: stale

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if not outs:  # .shape, .dim(), ...
            return out
        tags = [self.look(t) for t in tree_flatten((args, kwargs or {}))[0] if isinstance(t, torch.Tensor)]
        units = {value for kind, value in tags if kind == "param"}
        data = [value for kind, value in tags if kind == "data"]
        assert len(units) <= 1, f"{getattr(func, '__name__', func)} reads the parameters of several modules"
        if units and not data:
            tag = ("param", *units)
        elif units:
            unit, = units
            self.producers.setdefault(unit, frozenset().union(*data))
            tag = ("data", frozenset(units))
        else:
            tag = ("data", frozenset().union(*data))
        for t in outs:
            self.tag(t, tag)
        return out


def _reference_units(model: nn.Module) -> list[tuple[str, nn.Module, dict[str, torch.Tensor]]]:
    """The modules that own state-dict tensors directly, in `named_modules()` order, with those tensors
    by local name (num_batches_tracked left out)."""
    state = model.state_dict(keep_vars=True)
    units = []
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        own = {key[len(prefix):]: value for key, value in state.items()
               if key.startswith(prefix) and "." not in key[len(prefix):] and key != f"{prefix}num_batches_tracked"}
        if own:
            units.append((name, module, own))
    return units


def _cnnc_producers(graph) -> dict[str, frozenset]:
    """For each cnnc layer with parameters, the parameterised layers nearest upstream of it (INPUT for the
    network input), through parameter-free layers."""
    tags: dict[str, frozenset] = {}
    producers = {}
    for layer in graph.layers:
        sources = frozenset().union(*(tags.get(t, frozenset({INPUT})) for t in layer.inputs))
        if layer.params:
            producers[layer.name] = sources
        tags[layer.output] = frozenset({layer.name}) if layer.params else sources
    return producers


def _pairing(layer, unit: tuple, state: dict[str, np.ndarray]) -> list[tuple] | None:
    """(cnnc param, state-dict key) pairs when `layer` can hold the tensors of `unit`: a compatible class,
    tensors by kind (weight, bias, ...) where the names agree, by position for a loose parameter, and
    shapes equal up to trailing 1s; None when it cannot."""
    name, module, own = unit
    if isinstance(module, KNOWN) and not isinstance(module, COUNTERPARTS.get(layer.op, ())):
        return None
    kinds = [p.name.rsplit(".", 1)[1] for p in layer.params]
    if set(kinds) == set(own):
        locals_ = kinds
    elif not isinstance(module, KNOWN) and len(own) == len(kinds):
        locals_ = list(own)
    else:
        return None
    pairs = [(p, f"{name}.{local}" if name else local) for p, local in zip(layer.params, locals_)]
    return pairs if all(_fit(state[key], p.shape) is not None for p, key in pairs) else None


def _describe(unit: tuple) -> str:
    return f"{unit[0] or '<root>'} ({type(unit[1]).__name__}: " + ", ".join(
        f"{k} {tuple(v.shape)}" for k, v in unit[2].items()) + ")"


def map_by_order(graph, model: nn.Module, rename: Callable[[str], str] | None = None) -> dict[str, np.ndarray]:
    """The reference's state dict under cnnc's parameter names: {cnnc param name: float32 array}.

    With `rename` (cnnc layer name -> reference module name), by name. Without, by data flow: the
    reference runs once (batch 1, zeros, eval mode) under a tracer that records, for each module owning
    tensors, the parameterised modules feeding it; cnnc's graph gives the same for its layers. cnnc's
    parameterised layers are then taken in graph order, each paired with the first reference module, in
    execution order, that is unpaired, fed by the counterparts of the layer's own producers, and of a
    compatible class (COUNTERPARTS) with the same tensors (`_pairing`). So registration order does not
    matter: ConvNeXt's layer_scale, registered before the block it scales, is used after it; a ResNet
    downsample, registered after the residual branch, pairs with cnnc's shortcut, the only one fed by the
    block input. A tie (RegNet's projection and first 1x1 conv: same shapes, same input) is tried in
    execution order, and undone when a later layer then finds no counterpart (backtracking); branches
    alike all the way through stay paired in execution order. A layer with no counterpart, or a module left
    over (one the forward pass never reaches, say), fails with names and shapes."""
    state = state_values(model)
    layers = [layer for layer in graph.layers if layer.params]
    if rename is not None:
        values = {}
        for p in (p for layer in layers for p in layer.params):
            key = f"{rename(p.name.rsplit('.', 1)[0])}.{p.name.rsplit('.', 1)[1]}"
            assert key in state, f"{p.name} -> {key}: no such reference tensor"
            values[p.name] = _fit(value := state.pop(key), p.shape)
            assert values[p.name] is not None, f"{p.name} {p.shape} -> {key} {value.shape}: shapes differ"
        assert not state, f"reference tensors with no cnnc parameter: {list(state)[:5]}"
        return values

    units = _reference_units(model)
    tracer = _Tracer({id(t): i for i, (_, _, own) in enumerate(units) for t in own.values()})
    training = {m: m.training for m in model.modules()}
    x = torch.zeros((1, *graph.input_shape))
    tracer.tag(x, ("data", frozenset({INPUT})))
    try:
        with torch.no_grad(), tracer:
            model.eval()(x)
    finally:
        for m, mode in training.items():
            m.train(mode)

    ours, order = _cnnc_producers(graph), list(tracer.producers)  # reference units in order of first use
    counterpart, taken = {INPUT: INPUT}, set()

    def options(layer):
        want = frozenset(counterpart[s] for s in ours[layer.name])
        for u in order:
            if u not in taken and tracer.producers[u] == want and (pairs := _pairing(layer, units[u], state)):
                yield u, pairs

    chosen: list[tuple] = []  # per paired layer: (its remaining options, unit, pairs)
    pending, failure, steps = options(layers[0]) if layers else iter(()), (-1, ""), 0
    while len(chosen) < len(layers):
        layer, option, steps = layers[len(chosen)], next(pending, None), steps + 1
        if option is not None:
            chosen.append((pending, *option))
            counterpart[layer.name] = option[0]
            taken.add(option[0])
            pending = options(layers[len(chosen)]) if len(chosen) < len(layers) else pending
            continue
        if len(chosen) > failure[0]:
            want = frozenset(counterpart[s] for s in ours[layer.name])
            shapes = ", ".join(f"{p.name.rsplit('.', 1)[1]} {p.shape}" for p in layer.params)
            feeders = sorted("<input>" if u == INPUT else units[u][0] or "<root>" for u in want)
            fed = [_describe(units[u]) for u in order if u not in taken and tracer.producers[u] == want]
            failure = (len(chosen), f"cnnc {layer.name} ({layer.op}: {shapes}) has no counterpart in the reference: "
                                    f"no unpaired module fed by {feeders} holds those tensors; fed by them: "
                                    f"{fed or 'none'}; next unpaired: "
                                    f"{[_describe(units[u]) for u in order if u not in taken][:3]}")
        assert chosen and steps < 100 * len(layers), failure[1]
        pending, unit, _ = chosen.pop()  # backtrack: the previous layer's next option
        taken.remove(unit)
        del counterpart[layers[len(chosen)].name]
    left = [_describe(units[u]) for u in order if u not in taken]
    unreached = [_describe(unit) for i, unit in enumerate(units) if i not in tracer.producers]
    assert not left and not unreached, (f"reference modules with no cnnc layer: {left}; never reached by the "
                                        f"forward pass: {unreached}")
    return {p.name: _fit(state[key], p.shape) for _, _, pairs in chosen for p, key in pairs}


def map_both_ways(graph, model: nn.Module, rename: Callable[[str], str]) -> dict[str, np.ndarray]:
    """`map_by_order(graph, model)`, asserted identical, tensor by tensor, to the mapping by the name
    function `rename` (cnnc layer name -> reference module name): two independent pairings that agree."""
    values = map_by_order(graph, model)
    named = map_by_order(graph, model, rename=rename)
    assert values.keys() == named.keys() == {p.name for p in graph.params}
    differ = [name for name in values if not np.array_equal(values[name], named[name])]
    assert not differ, f"map_by_order and the name function disagree on {len(differ)} tensors: {differ[:5]}"
    return values
