"""Numerics against independent oracles: hand-computed cases for the semantics that decide whether a
network matches its reference (TensorFlow `same` padding, ceil mode, padding in average pools), and
onnx's ReferenceEvaluator against ONNX Runtime for whole small networks."""
from __future__ import annotations

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator

import cnnc
from cnnc.compiler.ir import Param

from conftest import doc, net, run_onnx


def compiled(body: str, input_shape: str, weights: dict[str, np.ndarray], extra: str = ""):
    graph = cnnc.build(doc(body, input_shape, extra))
    values = [(p, weights[p.name]) for p in graph.params]
    return graph, cnnc.compiler.to_onnx(graph, weights=values)


def x4x4() -> np.ndarray:
    return np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)


def test_same_conv_with_stride_2_pads_after_not_before_like_tensorflow():
    # TF: out = ceil(4/2) = 2, total pad 1 -> 0 before, 1 after. Symmetric padding would give 10 at [0,0].
    _, model = compiled("  - conv(1, 3x3, stride=2, padding=same, bias=false)\n", "[1, 4, 4]",
                        {"conv.weight": np.ones((1, 1, 3, 3), np.float32)})
    y = run_onnx(model, x4x4())
    # by hand: [0,0] = x[0:3,0:3]; [0,1] = x[0:3,2:4]; [1,0] = x[2:4,0:3]; [1,1] = x[2:4,2:4]
    np.testing.assert_array_equal(y[0, 0], [[45, 39], [66, 50]])


def test_same_maxpool_with_stride_2_pads_after():
    graph, model = compiled("  - maxpool(3x3, stride=2, padding=same)\n", "[1, 4, 4]", {})
    assert graph.output_shape == (1, 2, 2)
    np.testing.assert_array_equal(run_onnx(model, x4x4())[0, 0], [[10, 11], [14, 15]])


def test_asymmetric_same_pooling_74_to_37_as_in_xception():
    graph = net("  - maxpool(3x3, stride=2, padding=same)\n", "[1, 74, 74]")
    (layer,) = graph.layers
    assert graph.output_shape == (1, 37, 37)
    assert layer.attrs["pads"] == (0, 0, 1, 1)  # top, left, bottom, right


@pytest.mark.parametrize("include,expected", [(False, 2.5), (True, 10 / 9)])
def test_same_avgpool_counts_padding_only_when_asked(include, expected):
    body = f"  - avgpool(3x3, stride=1, padding=same, count_include_pad={str(include).lower()})\n"
    _, model = compiled(body, "[1, 2, 2]", {})
    y = run_onnx(model, np.array([[[[1, 2], [3, 4]]]], np.float32))
    np.testing.assert_allclose(y, np.full((1, 1, 2, 2), expected, np.float32), rtol=1e-6)


def test_avgpool_excludes_padding_by_default_like_keras():
    _, model = compiled("  - avgpool(3x3, stride=1, padding=same)\n", "[1, 2, 2]", {})
    np.testing.assert_allclose(run_onnx(model, np.array([[[[1, 2], [3, 4]]]], np.float32)), 2.5)


def test_ceil_mode_pooling_keeps_the_partial_window():
    graph, model = compiled("  - maxpool(3x3, stride=2, ceil_mode=true)\n", "[1, 6, 6]", {})
    assert graph.output_shape == (1, 3, 3)
    x = np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6)
    np.testing.assert_array_equal(run_onnx(model, x)[0, 0], [[14, 16, 17], [26, 28, 29], [32, 34, 35]])
    assert net("  - maxpool(3x3, stride=2)\n", "[1, 6, 6]").output_shape == (1, 2, 2)


def test_ceil_mode_matches_caffe_googlenet_pool_sizes():
    # bvlc_googlenet: 112 -> 56 (pool1), 56 -> 28 (pool2), 28 -> 14 (pool3), 14 -> 7 (pool4)
    for size, out in [(112, 56), (56, 28), (28, 14), (14, 7)]:
        assert net("  - maxpool(3x3, stride=2, ceil_mode=true)\n", f"[1, {size}, {size}]").output_shape[1] == out


def test_ceil_mode_drops_a_window_that_would_start_in_the_right_padding():
    # 5 + 1 + 1 padded, k=2, s=2: ceil((7-2)/2)+1 = 4, but the 4th window starts at 6 >= 5+1 -> 3
    assert net("  - maxpool(2x2, stride=2, padding=1, ceil_mode=true)\n", "[1, 5, 5]").output_shape == (1, 3, 3)


def test_batchnorm_without_scale_uses_gamma_one_and_the_given_epsilon():
    c = 3
    w = {"batchnorm.bias": np.array([0.5, -1, 2], np.float32),
         "batchnorm.running_mean": np.array([1, 2, 3], np.float32),
         "batchnorm.running_var": np.array([4, 0.25, 1], np.float32)}
    _, model = compiled("  - batchnorm(eps=0.001, scale=false)\n", f"[{c}, 2, 2]", w)
    x = np.random.default_rng(0).standard_normal((2, c, 2, 2), dtype=np.float32)
    shape = (1, c, 1, 1)
    expected = (x - w["batchnorm.running_mean"].reshape(shape)) / np.sqrt(
        w["batchnorm.running_var"].reshape(shape) + 0.001) + w["batchnorm.bias"].reshape(shape)
    np.testing.assert_allclose(run_onnx(model, x), expected, rtol=1e-5, atol=1e-6)


def test_dense_uses_weight_as_out_by_in():
    w = {"dense.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "dense.bias": np.array([1, -1], np.float32)}
    _, model = compiled("  - dense(2)\n", "[3]", w)
    x = np.array([[1, 2, 3]], np.float32)
    np.testing.assert_allclose(run_onnx(model, x), x @ w["dense.weight"].T + w["dense.bias"])


SMALL_NET = """\
  - conv(8, 3x3, stride=2, padding=same)
  - batchnorm(eps=0.001)
  - relu
  - add:
      shortcut: identity
      residual: [conv(8, 1x3, padding=same, bias=false), conv(8, 3x1, padding=same, groups=2), batchnorm]
  - concat:
      - [conv(4, 1x1), sigmoid]
      - [avgpool(3x3, stride=1, padding=same), tanh]
      - maxpool(3x3, stride=1, padding=[1, 1])
      - conv(4, 3x3, padding=2, dilation=2)
  - maxpool(2x2, ceil_mode=true)
  - globalavgpool
  - dropout(0.3)
  - dense(5)
  - softmax
"""


def test_small_network_matches_onnx_reference_evaluator(rng):
    graph = net(SMALL_NET, "[3, 9, 9]")
    weights = [(p, rng.standard_normal(p.shape).astype(np.float32) * (0.5 if p.init == "he_normal" else 0.1)
                + (1.0 if p.name.endswith("running_var") else 0.0)) for p in graph.params]
    model = cnnc.compiler.to_onnx(graph, weights=weights)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    expected = ReferenceEvaluator(model).run(None, {"input": x})[0]
    np.testing.assert_allclose(run_onnx(model, x), expected, rtol=1e-4, atol=1e-5)
    assert graph.output_shape == (5,)


def test_seeded_weights_are_he_normal(rng):
    graph = cnnc.build("vgg16")
    param = next(p for p in graph.params if p.name == "block5/conv3_3/conv.weight")
    value = cnnc.compiler.weights.initial(param, seed=0)
    assert value.dtype == np.float32 and value.shape == (512, 512, 3, 3)
    assert value.std() == pytest.approx(np.sqrt(2 / (512 * 9)), rel=0.01)
    assert abs(value.mean()) < 1e-3
    bias = Param("x.bias", (4,), True, "zeros")
    assert not cnnc.compiler.weights.initial(bias, 0).any()
