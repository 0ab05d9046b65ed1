"""Numerics of architectures/shufflenet_v2.yaml against torchvision's `shufflenet_v2_x0_5` and
`shufflenet_v2_x2_0` (the family's narrowest and widest members), with weights from torch_reference.prepare
(calibrated BN statistics, wide affine terms), the state dict mapped onto cnnc's names both by data flow
(map_by_order) and by the name function below, which must agree, the same input run through both.

The name function pins the branches: in a stride-2 unit torchvision's `branch1` (depthwise 3x3/2, 1x1) is
cnnc's `concat/branch1`, concatenated first, and `branch2` (1x1, depthwise 3x3/2, 1x1) is `concat/branch2`;
branch1's 1x1 conv has the shape of branch2's first, so only the data flow and the names tell them apart.
In a stride-1 unit torchvision's branch1 is empty and cnnc's `concat/branch1` is the pass-through half.
Needs torch and torchvision (skipped without them).
"""
from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import cnnc  # noqa: E402
from torch_reference import map_both_ways, compare, import_torchvision, prepare  # noqa: E402

torchvision = import_torchvision()

FIXED = {"conv1/conv": "conv1.0", "conv1/batchnorm": "conv1.1", "conv5/conv": "conv5.0",
         "conv5/batchnorm": "conv5.1", "fc": "fc"}
# (branch, path inside it) -> index in torchvision's branch Sequential
BRANCH_INDEX = {
    ("branch1", "dw/conv"): 0, ("branch1", "dw/batchnorm"): 1, ("branch1", "cbr/conv"): 2,
    ("branch1", "cbr/batchnorm"): 3,
    ("branch2", "cbr_1/conv"): 0, ("branch2", "cbr_1/batchnorm"): 1, ("branch2", "dw/conv"): 3,
    ("branch2", "dw/batchnorm"): 4, ("branch2", "cbr_2/conv"): 5, ("branch2", "cbr_2/batchnorm"): 6,
}


def torchvision_name(ours: str) -> str:
    """stage3/inverted_residual_1/concat/branch1/cbr/conv -> stage3.0.branch1.2;
    stage2/inverted_residual_4/concat/branch2/dw/batchnorm -> stage2.3.branch2.4."""
    if ours in FIXED:
        return FIXED[ours]
    stage, unit, concat, branch, *inner = ours.split("/")
    assert stage in ("stage2", "stage3", "stage4") and concat == "concat", ours
    index = int(unit.rsplit("_", 1)[1]) - 1
    return f"{stage}.{index}.{branch}.{BRANCH_INDEX[branch, '/'.join(inner)]}"


@pytest.mark.parametrize("name", ["shufflenet_v2_x0_5", "shufflenet_v2_x2_0"])
def test_shufflenet_v2_matches_torchvision(name):
    if torchvision is None:
        pytest.skip("torchvision is not installed")
    from torchvision import models

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    graph = cnnc.build(name)
    assert graph.layers[-1].op == "dense"  # logits, as torchvision gives them
    model = prepare(getattr(models, name)(weights=None), rng, (2, *graph.input_shape))

    values = map_both_ways(graph, model, torchvision_name)
    # both stride-2 branches of every stage are there, branch1 first in the graph as in torchvision
    for stage in ("stage2", "stage3", "stage4"):
        first = [layer.name for layer in graph.layers if layer.name.startswith(f"{stage}/inverted_residual_1/")]
        branch1 = [i for i, n in enumerate(first) if "/concat/branch1/" in n]
        branch2 = [i for i, n in enumerate(first) if "/concat/branch2/" in n]
        assert branch1 and branch2 and max(branch1) < min(branch2), first

    ratio = compare(graph, model, values, rng, batch=2, tolerance=1e-4)
    print(f"{name} max |diff| / max |logit|: {ratio:.3g} ({time.perf_counter() - start:.1f} s)")
