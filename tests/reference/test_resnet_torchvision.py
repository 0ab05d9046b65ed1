"""Numerics of resnet.yaml against torchvision's `resnet18` (the smallest, BasicBlock) and `resnet152`
(the largest, Bottleneck v1.5), and of its ResNeXt / Wide ResNet variants' smallest, `resnext50_32x4d`
(grouped 3x3 convs), and largest, `wide_resnet101_2`, under the same weights (torch_reference.prepare:
He weights, calibrated BN statistics, wide affine terms), mapped onto cnnc's names both by data flow
(map_by_order) and by the name function below, which must agree. resnet50_torchvision is compared in
test_torch_parity.py; every variant's counts equal torchvision's builder's.

Run: `/tmp/refvenv/bin/pytest tests/reference/test_resnet_torchvision.py -rA -s` (needs torch and
torchvision; skipped without them). The four comparisons take about four minutes together on two shared
cores, most of it resnet152's and wide_resnet101_2's.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import cnnc  # noqa: E402
from torch_reference import torchvision_counts, map_both_ways, compare, import_torchvision, prepare  # noqa: E402

torchvision = import_torchvision()
if torchvision is None:
    pytest.skip("torchvision is not installed", allow_module_level=True)

from torchvision import models  # noqa: E402

STAGES = {f"conv{i + 1}": f"layer{i}" for i in range(1, 5)}  # torchvision's layer1..4 are cnnc's conv2..5
FIXED = {"conv1/conv": "conv1", "conv1/batchnorm": "bn1", "predictions/dense": "fc"}


def torchvision_name(graph):
    """A function cnnc layer name -> torchvision module name for this ResNet graph, e.g.
    conv3/identity_block_2/add/residual/cbr_1/batchnorm -> layer2.2.bn1 and
    conv2/identity_block_1/add/residual/conv -> layer1.0.conv2 (resnet18, whose conv2 has no conv_block).
    A block's index is its place in its stage; inside it, the convs and BNs count from 1 in order
    (cbr_1, cbr_2 or a basic block's cbr, then the last conv + BN), the shortcut is `downsample`."""
    blocks: dict[str, dict[str, int]] = {}  # stage -> {block name: index}
    for layer in graph.layers:
        stage, *rest = layer.name.split("/")
        if stage in STAGES and rest:
            order = blocks.setdefault(stage, {})
            order.setdefault(rest[0], len(order))
    last = 3 if any("/cbr_2/" in layer.name for layer in graph.layers) else 2  # the last conv: Bottleneck's 3rd

    def name(ours: str) -> str:
        if ours in FIXED:
            return FIXED[ours]
        stage, block, _add, branch, *inner = ours.split("/")
        prefix = f"{STAGES[stage]}.{blocks[stage][block]}"
        if branch == "shortcut":
            return f"{prefix}.downsample.{0 if inner == ['conv'] else 1}"
        position = {"cbr": 1, "cbr_1": 1, "cbr_2": 2}.get(inner[0], last)
        return f"{prefix}.{'conv' if inner[-1] == 'conv' else 'bn'}{position}"

    return name


def mapped(graph, model) -> dict[str, np.ndarray]:
    """The model's values under cnnc's names by data flow, asserted identical to those by name."""
    values = map_both_ways(graph, model, torchvision_name(graph))
    return values


@pytest.mark.parametrize("network", ["resnet18", "resnet152", "resnext50_32x4d", "wide_resnet101_2"])
def test_matches_torchvision(network):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    graph = cnnc.build(network)
    assert graph.layers[-1].op == "dense"  # logits, as torchvision returns them
    model = prepare(getattr(models, network)(weights=None), rng, (2, *graph.input_shape))
    relative = compare(graph, model, mapped(graph, model), rng, tolerance=1e-4)
    print(f"{network} max |diff| / max |logit|: {relative:.3g}")



@pytest.mark.parametrize(("network", "builder"), [("resnet18", "resnet18"), ("resnet34", "resnet34"),
                                                  ("resnet50_torchvision", "resnet50"), ("resnet101", "resnet101"),
                                                  ("resnet152", "resnet152"),
                                                  ("resnext50_32x4d", "resnext50_32x4d"),
                                                  ("resnext101_32x8d", "resnext101_32x8d"),
                                                  ("resnext101_64x4d", "resnext101_64x4d"),
                                                  ("wide_resnet50_2", "wide_resnet50_2"),
                                                  ("wide_resnet101_2", "wide_resnet101_2")])
def test_counts_equal_torchvision(network, builder):
    with torch.device("meta"):  # shapes only: no weights drawn
        model = getattr(models, builder)(weights=None)
    assert cnnc.build(network).counts() == torchvision_counts(model)
