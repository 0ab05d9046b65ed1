"""Numerics of mobilenet_v2.yaml and mobilenet_v3.yaml against torchvision's `mobilenet_v2`,
`mobilenet_v3_small` and `mobilenet_v3_large`, under the same weights (torch_reference.prepare: He
weights, calibrated BN statistics, wide affine terms), mapped onto cnnc's names both by data flow
(map_by_order) and by the name function below, which must agree. Also: the clipping nonlinearities
(ReLU6, h-swish, the SE gate's h-sigmoid) really clip under those weights, so a network with the wrong
activation would not pass; and the width multiplier gives torchvision's parameter counts.

Run: `/tmp/refvenv/bin/pytest tests/reference/test_mobilenet_torchvision.py -rA -s` (needs torch and
torchvision; skipped without them).
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import cnnc  # noqa: E402
from torch_reference import (  # noqa: E402
    assert_nonlinearities_act, compare, import_torchvision, map_both_ways, prepare, torchvision_counts)

torchvision = import_torchvision()
if torchvision is None:
    pytest.skip("torchvision is not installed", allow_module_level=True)

from torchvision import models  # noqa: E402

# the cnnc network, and the clipping modules its torchvision counterpart must have
NETWORKS = {
    "mobilenet_v2": ("ReLU6",),
    "mobilenet_v3_small": ("Hardswish", "Hardsigmoid"),
    "mobilenet_v3_large": ("Hardswish", "Hardsigmoid"),
}
PARTS = ("expand", "depthwise", "se", "project")  # the order of a block's parts, as torchvision's


def torchvision_name(graph):
    """A function cnnc layer name -> torchvision module name for this MobileNet graph, e.g.
    stage2/inverted_residual_2/residual/project/conv -> features.3.conv.2 (v2) and
    bnecks/bneck_4/se/gate/fc1 -> features.4.block.2.fc1 (v3). torchvision's `features` holds the stem,
    the inverted residual blocks in order, then the last conv; a block's `conv` (v2) or `block` (v3) holds
    its parts in order, each a conv + BN (`.0`, `.1`) except v2's projection (two entries) and the SE."""
    v2 = graph.name == "mobilenet_v2"
    names = [layer.name for layer in graph.layers if layer.params]
    blocks: dict[str, list[str]] = {}  # block prefix -> its parts, in order
    for name in names:
        path = name.split("/")
        if path[0].startswith(("stage", "bnecks")):
            part = next(p for p in path if p in PARTS)
            parts = blocks.setdefault("/".join(path[:2]), [])
            if part not in parts:
                parts.append(part)
    index = {block: i + 1 for i, block in enumerate(blocks)}

    def name(ours: str) -> str:
        path = ours.split("/")
        leaf = {"conv": 0, "batchnorm": 1}.get(path[-1])
        if path[0] == "stem":
            return f"features.0.{leaf}"
        if path[0] == "head":
            return f"features.{len(blocks) + 1}.{leaf}"
        if path[0] == "classifier":
            return "classifier.1" if v2 else {"dense_1": "classifier.0", "dense_2": "classifier.3"}[path[-1]]
        block = "/".join(path[:2])
        part = next(p for p in path if p in PARTS)
        position = blocks[block].index(part)
        prefix = f"features.{index[block]}.{'conv' if v2 else 'block'}.{position}"
        if part == "se":
            return f"{prefix}.{path[-1]}"  # fc1, fc2
        if v2 and part == "project":  # a bare conv and BN, not a Conv2dNormActivation
            return f"features.{index[block]}.conv.{position + leaf}"
        return f"{prefix}.{leaf}"

    return name


def mapped(graph, model) -> dict[str, np.ndarray]:
    """The model's values under cnnc's names by data flow, asserted identical to those by name."""
    values = map_both_ways(graph, model, torchvision_name(graph))
    return values


@pytest.mark.parametrize("network", list(NETWORKS))
def test_matches_torchvision(network):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    graph = cnnc.build(network)
    assert graph.layers[-1].op == "dense"  # logits, as torchvision returns them
    model = prepare(getattr(models, network)(weights=None), rng, (4, *graph.input_shape))
    values = mapped(graph, model)

    report = assert_nonlinearities_act(model, rng.standard_normal((2, *graph.input_shape)).astype(np.float32))
    assert set(report) == set(NETWORKS[network]), report  # each one present, and nothing else that clips
    for kind, row in report.items():
        print(f"{network} {kind}: {row['modules']} modules, {row['clipping']:.0%} of them clip above; "
              f"inputs above {row['above']:.2%}, below {row['below']:.2%}")
        assert row["clipping"] >= 0.5, f"most {kind} modules never reach their upper clip point: {row}"
        assert row["below"] > 0, f"no {kind} input lies below its lower clip point: {row}"

    relative = compare(graph, model, values, rng, tolerance=1e-4)
    print(f"{network} max |diff| / max |logit|: {relative:.3g}")


def test_reduced_width_matches_torchvision():
    """A width multiplier below 1 rounds every width with make_divisible(c * width, 8) and leaves
    MobileNet-v2's last conv at 1280: the numbers agree with torchvision's `width_mult`."""
    rng = np.random.default_rng(1)
    torch.manual_seed(0)
    with cnnc.parameters(width=0.5):
        graph = cnnc.build("mobilenet_v2")
    model = prepare(models.mobilenet_v2(weights=None, width_mult=0.5), rng, (4, *graph.input_shape))
    relative = compare(graph, model, mapped(graph, model), rng, tolerance=1e-4)
    print(f"mobilenet_v2 width 0.5 max |diff| / max |logit|: {relative:.3g}")



@pytest.mark.parametrize("network", list(NETWORKS))
@pytest.mark.parametrize("width", [0.35, 0.75, 1.3])
def test_width_counts_equal_torchvision(network, width):
    with cnnc.parameters(width=width):
        graph = cnnc.build(network)
    with torch.device("meta"):  # shapes only: no weights drawn
        model = getattr(models, network)(weights=None, width_mult=width)
    assert graph.counts() == torchvision_counts(model)
