"""Numerics of architectures/squeezenet.yaml against torchvision's `squeezenet1_0` and `squeezenet1_1`
(the family's two members), with weights from torch_reference.prepare (He weights, biases N(0, 0.1); no BN
in SqueezeNet), the state dict mapped onto cnnc's names both by data flow (map_by_order) and by the name
function below, which must agree, the same input run through both.

The name function pins the places of the max pools: torchvision's `features` Sequential numbers its Fire
modules by their index among the convs and pools (FIRE_INDEX), so a pool in the wrong place in the YAML
shifts the names and fails here, and the numerics (a pool before or after a Fire changes every map) too.
Within a Fire the expand 1x1 maps come first in the concatenation, as in torchvision's `torch.cat`.
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

# the index in torchvision's `features` of each Fire module (the paper's fire2 .. fire9)
FIRE_INDEX = {"squeezenet1_0": [3, 4, 5, 7, 8, 9, 10, 12], "squeezenet1_1": [3, 4, 6, 7, 9, 10, 11, 12]}
FIRES = {"squeezenet1_0": [3, 4, 1], "squeezenet1_1": [2, 2, 4]}  # the variants' `fires` parameter
INNER = {"squeeze/conv": "squeeze", "expand/expand1x1/conv": "expand1x1", "expand/expand3x3/conv": "expand3x3"}


def torchvision_namer(name: str):
    """fires2/fire_3/expand/expand3x3/conv -> features.9.expand3x3 (squeezenet1_0: the 6th Fire);
    conv1/conv -> features.0; classifier/conv -> classifier.1."""
    def rename(ours: str) -> str:
        if ours == "conv1/conv":
            return "features.0"
        if ours == "classifier/conv":
            return "classifier.1"
        group, fire, *inner = ours.split("/")
        assert group in ("fires1", "fires2", "fires3"), ours
        within = int(fire.rsplit("_", 1)[1]) - 1 if fire != "fire" else 0  # a lone Fire is not numbered
        number = sum(FIRES[name][:int(group[-1]) - 1]) + within
        return f"features.{FIRE_INDEX[name][number]}.{INNER['/'.join(inner)]}"
    return rename


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
def test_squeezenet_matches_torchvision(name):
    if torchvision is None:
        pytest.skip("torchvision is not installed")
    from torchvision import models

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    graph = cnnc.build(name)
    assert graph.output_shape == (1000,)  # logits: the pooled ReLU of the last 1x1 conv, as torchvision's
    model = prepare(getattr(models, name)(weights=None), rng, (2, *graph.input_shape))

    values = map_both_ways(graph, model, torchvision_namer(name))

    ratio = compare(graph, model, values, rng, batch=2, tolerance=1e-4)
    print(f"{name} max |diff| / max |logit|: {ratio:.3g} ({time.perf_counter() - start:.1f} s)")
