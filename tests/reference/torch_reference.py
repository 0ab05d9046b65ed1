"""Shared machinery for comparing a cnnc network with a PyTorch reference model (torchvision, timm).

A comparison is only as good as its weights: `prepare` gives the reference weights under which every
part of the network acts (calibrated BN statistics, wide affine terms, see its docstring), `map_by_order`
carries its state dict onto cnnc's parameter names by following the data flow of both networks (or by an
explicit name function), and `compare` runs both on the same input and checks the logits, the reference's
dependence on its input, and that clipping nonlinearities (ReLU6, hardswish, hardsigmoid) really clip.
The parity tests of this folder import it once torch is known to be there (else they skip).
"""
from __future__ import annotations

import importlib.util
import sys
import types
import weakref
from dataclasses import replace
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

import cnnc


def import_torchvision() -> types.ModuleType | None:
    """torchvision, or None when it is not installed.

    torchvision's Linux wheels on PyPI are CUDA builds: against a CPU-only torch (`2.13.0+cpu`) their `_C`
    extension cannot load (it links libtorch_cuda), and `import torchvision` then dies in
    `_meta_registrations` with "operator torchvision::nms does not exist". The model definitions are pure
    Python and need none of those compiled ops, so in that case the package is registered without running
    its `__init__` and its submodules (`torchvision.models`, `torchvision.ops.misc`, which timm imports)
    load as usual. Only the detection ops (nms, roi_align, ...) are unusable, and nothing here calls them.
    """
    try:
        import torchvision
        return torchvision
    except ModuleNotFoundError:
        return None
    except RuntimeError as error:
        if "torchvision::" not in str(error):
            raise
    for name in [name for name in sys.modules if name == "torchvision" or name.startswith("torchvision.")]:
        del sys.modules[name]  # the half-imported package from the failed attempt
    spec = importlib.util.find_spec("torchvision")
    package = importlib.util.module_from_spec(spec)  # a module object; its __init__ is never executed
    sys.modules["torchvision"] = package
    return package


def logits_graph(network):
    """The network (a shipped name, or a built graph) without a final softmax, if it has one: logits are
    compared, not saturated probabilities. The softmax is cut from the graph itself, so the layers keep
    their names (`predictions: [dense(1000), softmax]` leaves `predictions/dense`) whatever the file says."""
    graph = cnnc.build(network) if isinstance(network, str) else network
    last = next(layer for layer in graph.layers if layer.output == graph.output)
    if last.op != "softmax":
        return graph
    assert graph.uses()[last.output] == 1, f"{last.name} is read inside the graph too"
    source = last.inputs[0]
    shape = next((layer.shape for layer in graph.layers if layer.output == source), graph.input_shape)
    return replace(graph, layers=tuple(layer for layer in graph.layers if layer is not last), output=source,
                   output_shape=shape)


# ---- weights --------------------------------------------------------------------------------------
@torch.no_grad()
def prepare(model: nn.Module, rng: np.random.Generator, shape: tuple[int, ...], batches: int = 3) -> nn.Module:
    """Random weights under which every part of `model` acts; `shape` is one calibration batch, e.g.
    `(4, *graph.input_shape)`. Returns the model, in eval mode.

    - Conv and linear weights He-normal (fan_in from the weight: in/groups * kh * kw), biases N(0, 0.1).
    - BN gamma U(0.5, 2.5) and beta N(0, 1); LayerNorm/GroupNorm the same; PReLU slopes U(0.05, 0.5);
      any other parameter (ConvNeXt's `layer_scale`, ...) U(0.5, 1.5), or N(0, 0.5) when named bias.
    - BN running statistics calibrated: every BatchNorm in train mode with `momentum=None` (cumulative
      average) and its statistics reset, `batches` batches of N(0, 1) input run through the model (all
      other modules in eval mode: no dropout), then momentum and eval mode restored.

    Why: statistics drawn at random leave each BN's output at whatever scale its input happens to have,
    which nothing controls: too small for any clip point in one network, so large in another that many
    activations saturate. Calibrated, a BN's output is close to N(beta, gamma^2) per channel: with gamma up
    to 2.5 and beta ~ N(0, 1), a channel with gamma 2.5 and beta 1 exceeds 6 about 2% of the time,
    hardswish's +-3 far more often, and a good share of inputs is negative (PReLU, the lower clips); in
    torchvision's mobilenet_v2, 0.3% of ReLU6 inputs exceed 6, in each of its 35 ReLU6 (none under
    PyTorch's own initialisation). The affine terms are drawn BEFORE calibration: each BN's input depends
    on every affine term upstream, so drawn after, they would change the inputs the statistics measured.
    """
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            p.copy_(torch.from_numpy(_draw(module, name, tuple(p.shape), rng)).to(p.dtype))
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    momenta = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    for _ in range(batches):
        model(torch.from_numpy(rng.standard_normal(shape).astype(np.float32)))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return model.eval()


def _draw(module: nn.Module, name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """One parameter's random value, by the kind of module that owns it (see `prepare`)."""
    if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)) and name == "weight":
        return rng.normal(0, np.sqrt(2 / int(np.prod(shape[1:]))), shape)
    if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)) and name == "bias":
        return rng.normal(0, 0.1, shape)
    if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)):
        return rng.uniform(0.5, 2.5, shape) if name == "weight" else rng.normal(0, 1, shape)
    if isinstance(module, nn.PReLU):
        return rng.uniform(0.05, 0.5, shape)
    return rng.normal(0, 0.5, shape) if name.endswith("bias") else rng.uniform(0.5, 1.5, shape)


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


# ---- checks -------------------------------------------------------------------------------------------
CLIPS: dict[type, tuple[float, float]] = {nn.ReLU6: (0.0, 6.0), nn.Hardswish: (-3.0, 3.0),
                                          nn.Hardsigmoid: (-3.0, 3.0)}  # each one's clip points


def _run(model: nn.Module, x: np.ndarray) -> tuple[np.ndarray, dict[str, dict[str, float]]]:
    """The model's output on `x`, and for each clipping module type present how often its inputs lay
    beyond its clip points: {type: {modules, inputs, above, below, clipping}} (fractions of inputs above
    the upper and below the lower point; `clipping`, the fraction of its modules with any input above)."""
    seen: dict[nn.Module, list[int]] = {}  # module -> [inputs, above, below]

    def hook(module, args):
        lo, hi = CLIPS[type(module)]
        tally = seen.setdefault(module, [0, 0, 0])
        tally[0], tally[1], tally[2] = (tally[0] + args[0].numel(), tally[1] + int((args[0] > hi).sum()),
                                        tally[2] + int((args[0] < lo).sum()))

    # a pre-hook sees the input before an in-place activation (ReLU6(inplace=True)) overwrites it
    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if type(m) in CLIPS]
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(x)).numpy()
    finally:
        for handle in handles:
            handle.remove()
    report = {}
    for cls in dict.fromkeys(type(m) for m in seen):
        rows = [tally for m, tally in seen.items() if type(m) is cls]
        n = sum(row[0] for row in rows)
        report[cls.__name__] = {"modules": len(rows), "inputs": n, "above": sum(row[1] for row in rows) / n,
                                "below": sum(row[2] for row in rows) / n,
                                "clipping": sum(row[1] > 0 for row in rows) / len(rows)}
    return out, report


def activation_report(model: nn.Module, x: np.ndarray) -> dict[str, dict[str, float]]:
    """How often the inputs of the model's ReLU6, hardswish and hardsigmoid modules lie beyond their clip
    points (6 for ReLU6, +-3 for the hard ones) on `x`; see `_run`. Functional calls are not seen."""
    return _run(model, x)[1]


def _check_clipping(report: dict[str, dict[str, float]]) -> None:
    for name, row in report.items():
        assert row["above"] > 0, f"no {name} input exceeds its upper clip point: clipping is untested ({row})"


def assert_nonlinearities_act(model: nn.Module, x: np.ndarray) -> dict[str, dict[str, float]]:
    """Assert that, for each clipping module type present, some inputs exceed the upper clip point (6 for
    ReLU6, 3 for hardswish and hardsigmoid): otherwise a network with the wrong activation would pass."""
    _check_clipping(report := activation_report(model, x))
    return report


def compare(graph, model: nn.Module, values: dict[str, np.ndarray], rng: np.random.Generator, batch: int = 2,
            tolerance: float = 2e-4) -> float:
    """Compile `graph` with `values`, run it and the reference on the same N(0, 1) input, and return
    max |difference| / max |logit|, asserted <= `tolerance`. Also asserted: the reference's output depends
    on its input (another input, and the other rows of the batch, move it by over 1% of the logit scale:
    a network whose output is constant would match anything), and its clipping modules clip.

    The tolerance is float32's: under `prepare`, timm's inception_v4 in float32 is 1.2e-4 off itself in
    float64 (cnnc 0.7e-4), so the two float32 results differ by 1.4e-4; 1e-4 would flag rounding."""
    assert batch >= 2, "the rows of the batch are compared with each other"
    onnx_model = cnnc.compiler.to_onnx(graph, weights=[(p, values[p.name]) for p in graph.params])
    x = rng.standard_normal((batch, *graph.input_shape)).astype(np.float32)
    expected, report = _run(model, x)
    _check_clipping(report)
    scale = float(np.abs(expected).max())
    assert scale > 1e-3, f"the reference's logits are all but zero (max {scale:g})"
    other = _run(model, rng.standard_normal(x.shape).astype(np.float32))[0]
    moved = float(np.abs(other - expected).max()) / scale
    rows = min(float(np.abs(expected[i] - expected[0]).max()) for i in range(1, batch)) / scale
    assert moved > 0.01 and rows > 0.01, f"the reference hardly depends on its input: {moved:.2g}, rows {rows:.2g}"

    got = cnnc.Session(onnx_model.SerializeToString(), "cpu").run(x)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    relative = float(np.abs(got - expected).max()) / scale
    assert relative <= tolerance, f"max |difference| / max |logit| = {relative:.3g} > {tolerance:g}"
    return relative
