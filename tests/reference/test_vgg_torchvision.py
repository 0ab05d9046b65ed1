"""Numerics of architectures/vgg.yaml against torchvision's `vgg11` (configuration A, the smallest) and
`vgg19_bn` (configuration E with batch norm, the largest), under the same weights (torch_reference.prepare:
He weights, calibrated BN statistics, wide affine terms), mapped onto cnnc's names both by data flow
(map_by_order) and by the name function below, which must agree; the same batch of 2 run through both.
Every variant's counts are also checked against torchvision's builder (on the meta device, no weights).

The name function pins torchvision's flat `features` Sequential onto cnnc's groups: cnnc's leaf layers
under `features/` (conv, batchnorm, relu, maxpool), in order, are torchvision's `features.0`, `.1`, ...;
the classifier's `fc1`, `fc2`, `fc3` are `classifier.0`, `.3`, `.6`.

Run: `/tmp/refvenv/bin/pytest -n 0 tests/reference/test_vgg_torchvision.py -rA -s` (needs torch and
torchvision; skipped without them). Each comparison holds ~140 M parameters: a few GiB of memory.
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

CLASSIFIER = {"classifier/fc1/dense": "classifier.0", "classifier/fc2/dense": "classifier.3",
              "classifier/fc3": "classifier.6"}
BUILDERS = {"vgg11": "vgg11", "vgg11_bn": "vgg11_bn", "vgg13": "vgg13", "vgg13_bn": "vgg13_bn",
            "vgg16_torchvision": "vgg16", "vgg16_bn": "vgg16_bn", "vgg19": "vgg19", "vgg19_bn": "vgg19_bn"}


def torchvision_name(graph):
    """A function cnnc layer name -> torchvision module name for this VGG graph, e.g. in vgg11
    features/stage_2/conv3/conv -> features.3 and features/stage_3/conv3_2/conv -> features.8."""
    features = [layer.name for layer in graph.layers if layer.name.startswith("features/")]
    index = {name: f"features.{i}" for i, name in enumerate(features)}

    def name(ours: str) -> str:
        return CLASSIFIER[ours] if ours in CLASSIFIER else index[ours]

    return name


def mapped(graph, model) -> dict[str, np.ndarray]:
    """The model's values under cnnc's names by data flow, asserted identical to those by name."""
    values = map_both_ways(graph, model, torchvision_name(graph))
    return values


@pytest.mark.parametrize("network", ["vgg11", "vgg19_bn"])
def test_matches_torchvision(network):
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    graph = cnnc.build(network)
    assert graph.layers[-1].op == "dense"  # logits, as torchvision returns them
    model = prepare(getattr(models, BUILDERS[network])(weights=None), rng, (2, *graph.input_shape))
    relative = compare(graph, model, mapped(graph, model), rng, batch=2, tolerance=1e-4)
    print(f"{network} max |diff| / max |logit|: {relative:.3g} ({time.perf_counter() - start:.1f} s)")



@pytest.mark.parametrize(("network", "builder"), BUILDERS.items())
def test_counts_equal_torchvision(network, builder):
    with torch.device("meta"):  # shapes only: no weights drawn
        model = getattr(models, builder)(weights=None)
    assert cnnc.build(network).counts() == torchvision_counts(model)
