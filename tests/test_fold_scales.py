"""compiler/foldbn.py `fold_scales` (with `fold_bn`): a constant scale after a conv becomes that conv's
scaled weight and bias, giving the unscaled graph's outputs; a scale it cannot fold stays a `Mul`."""
from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest

import cnnc
from cnnc.compiler.foldbn import Scaled, fold_batchnorm, fold_scales

from conftest import doc
from test_towers import random_weights

NET = """  - c0: conv(8, 3x3, padding=same)
  - add:
      shortcut: identity
      residual:
        - r: conv(8, 1x1, bias=true)
        - scale(0.17)
  - relu
  - add:
      shortcut: identity
      residual:
        - rb: conv(8, 3x3, padding=same, bias=false)
        - batchnorm
        - scale(0.5)
  - add:
      shortcut: identity
      residual:
        - s: sepconv(8, 3x3, padding=same)
        - scale(2.0)
  - k: conv(8, 1x1)
  - add:
      shortcut: identity
      residual: [scale(0.25)]
  - globalavgpool
  - dense(3)
"""


def test_foldable_scales_leave_the_graph_and_the_outputs_stay():
    net = doc(NET, "[3, 8, 8]")
    weights = random_weights(cnnc.build(net), 0)
    plain, folded = (cnnc.compile(net, weights=weights, fold_bn=f) for f in (False, True))
    muls = [Counter(n.op_type for n in m.graph.node)["Mul"] for m in (plain, folded)]
    assert muls == [4, 1]  # the scale of `k`, whose output the shortcut reads too, stays
    names = {t.name.rsplit("/", 1)[-1] for t in folded.graph.initializer}
    assert {"r.scaled_weight", "r.scaled_bias", "rb.scaled_folded_weight", "rb.scaled_folded_bias",
            "s.scaled_pointwise_weight", "s.depthwise_weight"} <= names
    onnx.checker.check_model(folded, full_check=True)
    x = np.random.default_rng(3).standard_normal((2, 3, 8, 8), dtype=np.float32)
    expected = cnnc.Session(plain.SerializeToString(), "cpu").run(x)
    got = cnnc.Session(folded.SerializeToString(), "cpu").run(x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_a_scaled_tensor_is_its_source_times_the_factor_in_float32():
    value = np.array([1.0, -3.0, 0.1], np.float32)
    got = Scaled(("w",), 0.17).assemble([value])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, (value.astype(np.float64) * 0.17).astype(np.float32))


@pytest.mark.parametrize("name", ["inception_resnet_v2"])
def test_every_residual_scale_of_inception_resnet_v2_folds(name):
    graph = cnnc.build(name)
    scales = sum(layer.op == "scale" for layer in graph.layers)
    folded, recipes = fold_scales(fold_batchnorm(graph)[0])
    assert scales == 40 and not any(layer.op == "scale" for layer in folded.layers)
    assert len(recipes) == 2 * scales  # each residual conv's weight and bias
