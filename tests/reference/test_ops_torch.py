"""The ops defined as PyTorch's against PyTorch itself: each one compiled by cnnc as a one-layer network,
its parameters drawn at random and given to both sides, the same input (wide enough that bounds, gates and
negative slopes act) run through ONNX Runtime and through the torch module in float64.

Each row asserts max |cnnc - torch| / max |torch| <= 1e-5, and that torch's output depends on the input
(so the comparison means something); the measured figure is printed (`pytest -rA` shows it). Needs torch
(torchvision for its `channel_shuffle` and `StochasticDepth`): without it these tests are skipped.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import cnnc  # noqa: E402
from cnnc.compiler import to_onnx  # noqa: E402
from cnnc.dsl.document import load_text  # noqa: E402

nn, F = torch.nn, torch.nn.functional
Tensor = torch.Tensor
Weights = dict[str, Tensor]  # the layer's parameters by kind (`weight`, `bias`), float64
TOLERANCE = 1e-5


def torchvision_or_skip():
    return pytest.importorskip("torchvision", reason="torchvision is not installed")


def with_weights(module: nn.Module, w: Weights) -> nn.Module:
    """`module` in float64, inference mode, holding the test's values of its parameters."""
    module = module.double().eval()
    for kind, value in w.items():
        getattr(module, kind).data.copy_(value.reshape(getattr(module, kind).shape))
    return module


def layer_norm_2d(eps: float) -> Callable[[Weights], Callable[[Tensor], Tensor]]:
    """ConvNeXt's LayerNorm2d (torchvision `convnext.LayerNorm2d`): channels last, layer norm, back."""
    return lambda w: lambda x: F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), w["weight"], w["bias"],
                                            eps).permute(0, 3, 1, 2)


def channel_shuffle(groups: int) -> Callable[[Weights], Callable[[Tensor], Tensor]]:
    def make(w: Weights) -> Callable[[Tensor], Tensor]:
        from torchvision.models.shufflenetv2 import channel_shuffle as shuffle
        return lambda x: shuffle(x, groups)
    return make


def stochastic_depth(rate: float) -> Callable[[Weights], Callable[[Tensor], Tensor]]:
    def make(w: Weights) -> Callable[[Tensor], Tensor]:
        from torchvision.ops import StochasticDepth
        return StochasticDepth(rate, "row").eval()
    return make


@dataclass(frozen=True)
class Row:
    """`call` as the layer `layer` of a network on `input`; `reference(weights)` is the torch function."""

    id: str
    input: tuple[int, ...]
    call: str
    reference: Callable[[Weights], Callable[[Tensor], Tensor]]
    spread: float = 6.0
    needs_torchvision: bool = False


def fixed(module: nn.Module) -> Callable[[Weights], nn.Module]:
    return lambda w: module.double().eval()


ROWS = [
    Row("relu6", (4, 5, 5), "relu6", fixed(nn.ReLU6())),
    Row("clip", (4, 5, 5), "clip(-1.5, 2.5)", fixed(nn.Hardtanh(-1.5, 2.5))),
    Row("clip_as_clamp", (4, 5, 5), "clip(low=-4, high=0.5)", lambda w: lambda x: torch.clamp(x, -4, 0.5)),
    Row("hardswish", (4, 5, 5), "hardswish", fixed(nn.Hardswish())),
    Row("hardsigmoid", (4, 5, 5), "hardsigmoid", fixed(nn.Hardsigmoid())),
    Row("silu", (4, 5, 5), "silu", fixed(nn.SiLU())),
    Row("gelu_exact", (4, 5, 5), "gelu", fixed(nn.GELU()), spread=3),
    Row("gelu_tanh", (4, 5, 5), "gelu(approximate=true)", fixed(nn.GELU(approximate="tanh")), spread=3),
    Row("leakyrelu_default", (4, 5, 5), "leakyrelu", fixed(nn.LeakyReLU())),
    Row("leakyrelu_0.2", (4, 5, 5), "leakyrelu(0.2)", fixed(nn.LeakyReLU(0.2))),
    Row("elu_default", (4, 5, 5), "elu", fixed(nn.ELU())),
    Row("elu_0.7", (4, 5, 5), "elu(alpha=0.7)", fixed(nn.ELU(alpha=0.7))),
    Row("prelu", (6, 5, 5), "prelu", lambda w: with_weights(nn.PReLU(num_parameters=6), w)),
    Row("prelu_flat", (6,), "prelu", lambda w: with_weights(nn.PReLU(num_parameters=6), w)),
    Row("layernorm_convnext", (8, 5, 6), "layernorm(eps=1e-6)", layer_norm_2d(1e-6)),
    Row("layernorm_default", (8, 5, 6), "layernorm", layer_norm_2d(1e-5)),
    Row("layernorm_flat", (8,), "layernorm", lambda w: with_weights(nn.LayerNorm(8), w)),
    Row("groupnorm", (8, 5, 6), "groupnorm(4)", lambda w: with_weights(nn.GroupNorm(4, 8), w)),
    Row("groupnorm_eps", (12, 3, 4), "groupnorm(3, eps=1e-3)", lambda w: with_weights(nn.GroupNorm(3, 12, 1e-3), w)),
    Row("layerscale", (6, 4, 4), "layerscale(init=0.5)", lambda w: lambda x: w["weight"] * x),
    Row("shuffle_2", (8, 3, 4), "shuffle(2)", channel_shuffle(2), needs_torchvision=True),
    Row("shuffle_3_as_nn", (12, 3, 4), "shuffle(3)", fixed(nn.ChannelShuffle(3))),
    Row("channels_first_half", (8, 3, 4), "channels(0, 4)", lambda w: lambda x: x.chunk(2, dim=1)[0]),
    Row("channels_second_half", (8, 3, 4), "channels(4)", lambda w: lambda x: x.chunk(2, dim=1)[1]),
    Row("adaptiveavgpool_14_to_4", (2, 14, 14), "adaptiveavgpool(4)", fixed(nn.AdaptiveAvgPool2d(4))),
    Row("adaptiveavgpool_7_to_7", (2, 7, 7), "adaptiveavgpool(7)", fixed(nn.AdaptiveAvgPool2d(7))),
    Row("adaptiveavgpool_8_to_4", (2, 8, 8), "adaptiveavgpool(4x4)", fixed(nn.AdaptiveAvgPool2d(4))),
    Row("adaptiveavgpool_5_to_7", (2, 5, 5), "adaptiveavgpool(7)", fixed(nn.AdaptiveAvgPool2d(7))),
    Row("adaptiveavgpool_225_to_7", (2, 225, 225), "adaptiveavgpool(7)", fixed(nn.AdaptiveAvgPool2d(7))),
    Row("adaptiveavgpool_224x13_to_6x4", (2, 224, 13), "adaptiveavgpool(6x4)", fixed(nn.AdaptiveAvgPool2d((6, 4)))),
    Row("adaptiveavgpool_13x11_to_13x3", (2, 13, 11), "adaptiveavgpool(13x3)",
        fixed(nn.AdaptiveAvgPool2d((13, 3)))),
    Row("adaptiveavgpool_6x9_to_3x3", (2, 6, 9), "adaptiveavgpool([3, 3])", fixed(nn.AdaptiveAvgPool2d(3))),
    Row("globalmaxpool", (4, 5, 6), "globalmaxpool", lambda w: lambda x: nn.AdaptiveMaxPool2d(1)(x).flatten(1)),
    Row("globalmaxpool_keepdims", (4, 5, 6), "globalmaxpool(keepdims=true)",
        lambda w: lambda x: x.amax(dim=(2, 3), keepdim=True)),
    Row("droppath", (4, 3, 3), "droppath(0.2)", stochastic_depth(0.2), needs_torchvision=True),
]


def draw(shape: tuple[int, ...], kind: str, rng: np.random.Generator) -> np.ndarray:
    """Parameters far from their initial values: slopes of both signs, scales around 1, shifts not 0."""
    if kind == "bias":
        return rng.normal(0, 1, shape)
    return rng.uniform(-0.5, 1.5, shape)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_op_matches_torch(row: Row):
    if row.needs_torchvision:
        torchvision_or_skip()
    c = ", ".join(map(str, row.input))
    graph = cnnc.build(load_text(f"network: t\ninput: [{c}]\nlayers:\n  - layer: {row.call}\n", "t.yaml"))
    rng = np.random.default_rng(zlib.crc32(row.id.encode()))
    values = [(p, draw(p.shape, p.name.rsplit(".", 1)[1], rng).astype(np.float32)) for p in graph.params]
    session = cnnc.Session(to_onnx(graph, weights=values).SerializeToString(), "cpu")
    reference = row.reference({p.name.rsplit(".", 1)[1]: torch.from_numpy(v.astype(np.float64)) for p, v in values})
    x, other = ((rng.standard_normal((2, *row.input)) * row.spread).astype(np.float32) for _ in range(2))
    with torch.no_grad():
        expected, elsewhere = (reference(torch.from_numpy(v.astype(np.float64))).numpy() for v in (x, other))
    y = session.run(x)
    assert y.shape == expected.shape
    scale = float(np.abs(expected).max())
    rel = float(np.abs(y - expected).max()) / scale
    print(f"{row.id} ({row.call}): max |diff| / max |ref| = {rel:.2e}")
    assert rel <= TOLERANCE
    assert np.abs(elsewhere - expected).max() > 1e-3 * scale  # torch's output depends on the input
