"""Numerics of architectures/efficientnet_v2.yaml against torchvision's builders: the smallest variant
(efficientnet_v2_s, 384x384, 21.6M parameters) and the largest (efficientnet_v2_l, 480x480, 119M
parameters), their state dicts mapped onto cnnc's names both by data flow and by the name function
below (which must agree), the same input through both in inference mode.

Weights: as tests/reference/test_efficientnet_torchvision.py (read its docstring) for the same reason —
torch_reference.prepare's draws with each residual branch's last BN (FusedMBConv's and MBConv's final
BN, where the block has a residual) damped by 0.3, and BN statistics calibrated in eval mode layer by
layer, so that 40-79 residual blocks stay within float32's reach while every layer acts at full scale.
Needs torch and torchvision (skipped without them). Both run at batch 2 (compare's smallest).
"""
from __future__ import annotations

import re
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import cnnc  # noqa: E402
from test_efficientnet_torchvision import weights  # noqa: E402 (the same preparation as V1's)
from torch_reference import compare, import_torchvision, map_both_ways  # noqa: E402

torchvision = import_torchvision()
if torchvision is not None:
    from torchvision.models.efficientnet import FusedMBConv, MBConv

# the layers of FusedMBConv.block (with and without expansion) and of MBConv.block
POSITIONS = {"fused": 0, "expand": 0, "depthwise": 1, "se": 2}


def torchvision_efficientnet_v2_name(ours: str, stages: int) -> str:
    """A cnnc layer name -> torchvision's module name: stage4/mbconv_2/block/se/gate/fc1 ->
    features.4.1.block.2.fc1, stage2/fused_mbconv_1/project/batchnorm -> features.2.0.block.1.1. A
    residual block's layers sit under `block`. `stages`: 6 (S) or 7 (M, L), the head is features.stages+1."""
    fixed = {"stem/conv": "features.0.0", "stem/batchnorm": "features.0.1",
             "head/conv": f"features.{stages + 1}.0", "head/batchnorm": f"features.{stages + 1}.1",
             "classifier/dense": "classifier.1"}
    if ours in fixed:
        return fixed[ours]
    match = re.fullmatch(r"stage(\d)/(fused_mbconv|mbconv)(?:_(\d+))?/(?:block/)?(\w+)/(.+)", ours)
    assert match, f"unexpected layer name {ours}"
    stage, kind, block, layer, rest = match.groups()
    index = POSITIONS.get(layer, 1 if kind == "fused_mbconv" else 3)  # project: FusedMBConv 1, MBConv 3
    prefix = f"features.{stage}.{int(block or 1) - 1}.block.{index}"
    if layer == "se":
        return f"{prefix}.{rest.rsplit('/', 1)[1]}"  # se/gate/fc1 -> fc1
    return f"{prefix}.{ {'conv': 0, 'batchnorm': 1}[rest] }"


def mapped(graph, model, stages: int) -> dict[str, np.ndarray]:
    """The model's values under cnnc's names by data flow, asserted identical to those by name."""
    return map_both_ways(graph, model, lambda name: torchvision_efficientnet_v2_name(name, stages))


@pytest.mark.parametrize("variant, stages", [("efficientnet_v2_s", 6), ("efficientnet_v2_l", 7)])
def test_efficientnet_v2_matches_torchvision(variant, stages):
    if torchvision is None:
        pytest.skip("torchvision is not installed")
    from torchvision.models import efficientnet

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    graph = cnnc.build(variant)
    model = getattr(efficientnet, variant)(weights=None)
    assert len(model.features) == stages + 2
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert {m.eps for m in norms} == {1e-3}
    assert {layer.attrs["eps"] for layer in graph.layers if layer.op == "batchnorm"} == {1e-3}
    statistics = sum(m.running_mean.numel() + m.running_var.numel() for m in norms)
    assert sum(p.numel() for p in model.parameters()) + statistics == sum(int(np.prod(p.shape)) for p in graph.params)
    weights(model, rng, (2, *graph.input_shape), (FusedMBConv, MBConv))
    values = mapped(graph, model, stages)
    relative = compare(graph, model, values, rng, batch=2, tolerance=1e-4)
    print(f"{variant} max |diff| / max |logit|: {relative:.3g} ({time.perf_counter() - start:.1f} s)")


@pytest.mark.parametrize("network", ["efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l"])
def test_stochastic_depth_is_torchvisions_block_by_block(network):
    """torchvision drops residual block k (Fused-MBConv or MBConv) of all `total` with probability
    0.2 * k / total; so does cnnc (`repeat_index` in each stage's repeat)."""
    if torchvision is None:
        pytest.skip("torchvision is not installed")
    ours = [layer.attrs["rate"] for layer in cnnc.build(network).layers if layer.op == "droppath"]
    with torch.device("meta"):  # the structure without allocating its weights
        model = getattr(torchvision.models, network)(weights=None)
    theirs = [m.stochastic_depth.p for m in model.modules()
              if isinstance(m, (FusedMBConv, MBConv)) and m.use_res_connect]
    assert len(ours) == len(theirs) > 0
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
