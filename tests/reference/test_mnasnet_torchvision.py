"""Numerics of architectures/mnasnet.yaml against torchvision's `mnasnet0_5` and `mnasnet1_3` (the family's
narrowest and widest members), with weights from torch_reference.prepare (calibrated BN statistics, wide
affine terms), the state dict mapped onto cnnc's names both by data flow (map_by_order) and by the name
function below, which must agree, the same input run through both; and every variant's counts against
torchvision's builder's.

Run: `/tmp/refvenv/bin/pytest -n 0 tests/reference/test_mnasnet_torchvision.py -rA -s` (needs torch and
torchvision; skipped without them); a few seconds a variant on two cores.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import cnnc  # noqa: E402
from torch_reference import torchvision_counts, map_both_ways, compare, import_torchvision, prepare  # noqa: E402

torchvision = import_torchvision()
if torchvision is None:
    pytest.skip("torchvision is not installed", allow_module_level=True)

from torchvision import models  # noqa: E402

VARIANTS = ["mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3"]
# torchvision's `layers` Sequential: the stem is 0..7, the stages (`_stack`s) 8..13, the head 14..16
FIXED = {"stem/cbr/conv": "layers.0", "stem/cbr/batchnorm": "layers.1",
         "stem/depthwise/conv": "layers.3", "stem/depthwise/batchnorm": "layers.4",
         "stem/project/conv": "layers.6", "stem/project/batchnorm": "layers.7",
         "head/conv": "layers.14", "head/batchnorm": "layers.15", "classifier/dense": "classifier.1"}
# inside an `_InvertedResidual`'s `layers` Sequential (ReLUs at 2 and 5)
INNER = {"expand/conv": 0, "expand/batchnorm": 1, "depthwise/conv": 3, "depthwise/batchnorm": 4,
         "project/conv": 6, "project/batchnorm": 7}


def torchvision_name(ours: str) -> str:
    """stage1/inverted_residual_1/expand/conv -> layers.8.0.layers.0;
    stage5/inverted_residual_3/residual/depthwise/batchnorm -> layers.12.2.layers.4;
    stage6/inverted_residual/project/conv -> layers.13.0.layers.6."""
    if ours in FIXED:
        return FIXED[ours]
    stage, block, *inner = ours.split("/")
    if inner[0] == "residual":  # the block's add: its non-identity branch
        inner = inner[1:]
    index = int(block.rsplit("_", 1)[1]) - 1 if block[-1].isdigit() else 0
    return f"layers.{7 + int(stage.removeprefix('stage'))}.{index}.layers.{INNER['/'.join(inner)]}"


@pytest.mark.parametrize("name", ["mnasnet0_5", "mnasnet1_3"])
def test_mnasnet_matches_torchvision(name):
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    graph = cnnc.build(name)
    assert graph.layers[-1].op == "dense"  # logits, as torchvision gives them
    model = prepare(getattr(models, name)(weights=None), rng, (2, *graph.input_shape))

    values = map_both_ways(graph, model, torchvision_name)
    # the residuals are where torchvision applies them: in == out and stride 1
    residual = {".".join(key.split("/")[:2]) for key in values if "/residual/" in key}
    applied = {f"stage{i - 7}.inverted_residual" + (f"_{j + 1}" if len(model.layers[i]) > 1 else "")
               for i in range(8, 14) for j, block in enumerate(model.layers[i]) if block.apply_residual}
    assert residual == applied, (residual, applied)

    ratio = compare(graph, model, values, rng, batch=2, tolerance=1e-4)
    print(f"{name} max |diff| / max |logit|: {ratio:.3g} ({time.perf_counter() - start:.1f} s)")



@pytest.mark.parametrize("name", VARIANTS)
def test_counts_equal_torchvision(name):
    with torch.device("meta"):  # shapes only: no weights drawn
        model = getattr(models, name)(weights=None)
    assert cnnc.build(name).counts() == torchvision_counts(model)
