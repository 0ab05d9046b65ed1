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
from dataclasses import replace

import numpy as np
import torch
from torch import nn

import cnnc
from torch_mapping import COUNTERPARTS, map_both_ways, map_by_order, state_values  # noqa: F401 (re-exported)


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
            tolerance: float = 2e-4, path=None) -> float:
    """Compile `graph` with `values`, run it and the reference on the same N(0, 1) input, and return
    max |difference| / max |logit|, asserted <= `tolerance`. Also asserted: the reference's output depends
    on its input (another input, and the other rows of the batch, move it by over 1% of the logit scale:
    a network whose output is constant would match anything), and its clipping modules clip. With `path`,
    the model is saved there (its weights as external data when over 2 GiB) and run from the file.

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

    if path is not None:
        cnnc.save(onnx_model, path)
    del values  # the caller's dict is its own; only the model holds the weights from here
    got = cnnc.Session(onnx_model.SerializeToString() if path is None else path, "cpu").run(x)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    relative = float(np.abs(got - expected).max()) / scale
    assert relative <= tolerance, f"max |difference| / max |logit| = {relative:.3g} > {tolerance:g}"
    return relative


def torchvision_counts(model: nn.Module) -> dict[str, int]:
    """A reference model's counts as cnnc reports them: parameters trainable, BN running statistics
    non-trainable (`num_batches_tracked` left out)."""
    trainable = sum(p.numel() for p in model.parameters())
    frozen = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
    return {"total": trainable + frozen, "trainable": trainable, "non_trainable": frozen}
