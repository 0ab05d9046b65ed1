"""Numerics of architectures/densenet.yaml against torchvision's `densenet121` (the family's smallest
member) and `densenet161` (its largest, 28.9 M parameters), with weights from torch_reference.prepare
(calibrated BN statistics, wide affine terms), the state dict mapped onto cnnc's names both by data flow
(map_by_order) and by the name function below, which must agree, the same input run through both.

A dense layer's concatenation order matters (its input first, its k new maps after, as torchvision's
`torch.cat(features, 1)`): the BN of the next layer reads the channels in that order, so a swapped concat
would be caught by the numerics even though every shape agrees. Needs torch and torchvision (skipped
without them).
"""
from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import cnnc  # noqa: E402
from torch_reference import map_both_ways, compare, import_torchvision, prepare  # noqa: E402

torchvision = import_torchvision()

FIXED = {"stem/conv": "features.conv0", "stem/batchnorm": "features.norm0", "norm5": "features.norm5",
         "classifier": "classifier"}
# path inside a dense layer / a transition -> torchvision's module name there
INNER = {"new/bn_relu_conv_1/batchnorm": "norm1", "new/bn_relu_conv_1/conv": "conv1",
         "new/bn_relu_conv_2/batchnorm": "norm2", "new/bn_relu_conv_2/conv": "conv2",
         "bn_relu_conv/batchnorm": "norm", "bn_relu_conv/conv": "conv"}


def torchvision_name(ours: str) -> str:
    """denseblock2/dense_layer_5/new/bn_relu_conv_2/conv -> features.denseblock2.denselayer5.conv2;
    transition3/bn_relu_conv/batchnorm -> features.transition3.norm."""
    if ours in FIXED:
        return FIXED[ours]
    part, *inner = ours.split("/")
    if part.startswith("transition"):
        return f"features.{part}.{INNER['/'.join(inner)]}"
    assert part.startswith("denseblock"), ours
    layer, *inner = inner
    index = int(layer.rsplit("_", 1)[1])
    return f"features.{part}.denselayer{index}.{INNER['/'.join(inner)]}"


@pytest.mark.parametrize("name", ["densenet121", "densenet161"])
def test_densenet_matches_torchvision(name):
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

    ratio = compare(graph, model, values, rng, batch=2, tolerance=1e-4)
    print(f"{name} max |diff| / max |logit|: {ratio:.3g} ({time.perf_counter() - start:.1f} s)")
