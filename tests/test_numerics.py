"""Numerics against independent oracles: hand-computed cases for the semantics that decide whether a
network matches its reference (TensorFlow `same` padding, ceil mode, padding in average pools), and a
whole small network against numpy computed from its weights (the per-op references of tests/test_ops.py,
composed by hand in the network's order)."""
from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

import cnnc
from cnnc.compiler.ir import Param
from cnnc.errors import CnncError

from conftest import doc, net, run_onnx
from test_ops import batchnorm, conv, lookup, pool, same_pads, softmax, wide_weights


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


def small_network(x: np.ndarray, p) -> np.ndarray:
    """SMALL_NET on a [N, 3, 9, 9] batch, layer by layer, with its pads worked out here."""
    h = conv(x, p("conv.weight"), p("conv.bias"), (2, 2), same_pads(9, 9, (3, 3), (2, 2)))  # [8, 5, 5]
    h = np.maximum(batchnorm(h, p, "batchnorm", 0.001), 0)
    r = conv(h, p("add/residual/conv_1.weight"), None, pads=(0, 1, 0, 1))
    r = conv(r, p("add/residual/conv_2.weight"), p("add/residual/conv_2.bias"), pads=(1, 0, 1, 0), groups=2)
    h = h + batchnorm(r, p, "add/residual/batchnorm", 1e-5)
    h = np.concatenate([
        1 / (1 + np.exp(-conv(h, p("concat/branch1/conv.weight"), p("concat/branch1/conv.bias")))),
        np.tanh(pool(h, "avg", (3, 3), (1, 1), (1, 1, 1, 1))),  # padding excluded from the mean
        pool(h, "max", (3, 3), (1, 1), (1, 1, 1, 1)),
        conv(h, p("concat/branch4.weight"), p("concat/branch4.bias"), pads=(2, 2, 2, 2), dilation=(2, 2)),
    ], axis=1)  # [24, 5, 5]
    h = pool(h, "max", (2, 2), (2, 2), ceil_mode=True).mean(axis=(2, 3))  # [24, 3, 3] -> [24]
    return softmax(h @ p("dense.weight").T + p("dense.bias"))


def test_small_network_matches_numpy_composed_from_its_weights(rng):
    graph = net(SMALL_NET, "[3, 9, 9]")
    assert graph.output_shape == (5,)
    weights = wide_weights(graph, "small_network")
    model = cnnc.compiler.to_onnx(graph, weights=[(p, weights[p.name]) for p in graph.params])
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    expected = small_network(x.astype(np.float64), lookup(weights))
    np.testing.assert_allclose(run_onnx(model, x), expected, rtol=1e-4, atol=1e-6)
    assert expected.std(axis=1).min() > 1e-2  # not saturated nor flat: the comparison means something
    other = small_network(rng.standard_normal((2, 3, 9, 9)), lookup(weights))
    assert np.abs(other - expected).max() > 1e-3


def test_seeded_weights_are_he_normal(rng):
    graph = cnnc.build("vgg16")
    param = next(p for p in graph.params if p.name == "block5/conv3_3/conv.weight")
    value = cnnc.compiler.weights.initial(param, seed=0)
    assert value.dtype == np.float32 and value.shape == (512, 512, 3, 3)
    assert value.std() == pytest.approx(np.sqrt(2 / (512 * 9)), rel=0.01)
    assert abs(value.mean()) < 1e-3
    bias = Param("x.bias", (4,), True, "zeros")
    assert not cnnc.compiler.weights.initial(bias, 0).any()


def test_seeded_values_are_the_documented_draw_for_every_valid_seed():
    # an independent derivation: one PCG64 per tensor, seeded by [seed, blake2b-8 of its name]
    graph = net("  - conv(4, 3x3)\n  - flatten\n  - rbf(3)\n", "[2, 3, 3]")
    weight, _, proto = graph.params
    for seed in (0, 7, 2**32 - 1):
        digest = int.from_bytes(hashlib.blake2b(weight.name.encode(), digest_size=8).digest(), "little")
        draw = np.random.default_rng([seed, digest]).standard_normal(weight.size, dtype=np.float32)
        expected = (draw * np.float32(np.sqrt(2 / (2 * 9)))).reshape(weight.shape)
        np.testing.assert_array_equal(cnnc.compiler.weights.initial(weight, seed), expected)
    assert not np.array_equal(*(cnnc.compiler.weights.initial(weight, s) for s in (0, 2**32 - 1)))
    assert np.array_equal(*(cnnc.compiler.weights.initial(proto, s) for s in (7, np.int64(7))))


BAD_SEEDS = [-1, 2**32, 2**64 + 7, True, False, np.bool_(True), 1.0, "0", None]


@pytest.mark.parametrize("seed", BAD_SEEDS, ids=repr)
def test_a_seed_outside_0_to_2_32_is_refused_not_masked(seed, tmp_path):
    message = re.escape(f"seed must be an integer from 0 to 2**32-1 (4294967295), got {seed!r}")
    network = doc("  - dense(2)\n", "[3]")
    with pytest.raises(CnncError, match=message):
        cnnc.compile(network, seed=seed)
    with pytest.raises(CnncError, match=message):
        cnnc.api.compile_to(network, tmp_path / "m.onnx", seed=seed)
    assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(CnncError, match=message):
        cnnc.api.initial_weights(network, seed)  # at the call, not at the first tensor
    with pytest.raises(CnncError, match=message):
        cnnc.compiler.weights.initial_weights(cnnc.build(network), seed)


def test_the_largest_seed_is_recorded_whole_and_differs_from_zero():
    models = {s: cnnc.compile(doc("  - dense(2)\n", "[3]"), seed=s) for s in (0, 2**32 - 1)}
    for s, model in models.items():
        assert {p.key: p.value for p in model.metadata_props}["cnnc.seed"] == str(s)
    assert models[0].graph.initializer[0].raw_data != models[2**32 - 1].graph.initializer[0].raw_data


# ---- the zoo's ops, each against numpy written from its paper's definition --------------------------
def conv2d(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Valid cross-correlation of [C, H, W] with [F, C, kh, kw] (stride 1), by loops over the window."""
    f, c, kh, kw = w.shape
    oh, ow = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    y = np.zeros((f, oh, ow), np.float64)
    for i in range(kh):
        for j in range(kw):
            y += np.einsum("fc,chw->fhw", w[:, :, i, j], x[:, i:i + oh, j:j + ow])
    return y


def test_connection_table_conv_reads_only_the_listed_maps_in_table_order(rng):
    # rows of different lengths out of order, so the lowering must group by fan-in and restore the order
    table = [[0, 2], [1], [2, 0, 1], [1, 2]]
    links = sum(len(r) for r in table)
    w = {"conv.weight": rng.standard_normal((links, 1, 3, 3)).astype(np.float32),
         "conv.bias": rng.standard_normal(4).astype(np.float32)}
    graph, model = compiled("  - conv(4, 3x3, connections=c)\n", "[3, 6, 6]", w, f"constants:\n  c: {table}\n")
    assert graph.counts()["total"] == links * 9 + 4
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    y = run_onnx(model, x)
    k = 0
    for j, row in enumerate(table):  # map j = sum over its inputs of one 3x3 kernel each, plus its bias
        kernels = w["conv.weight"][k:k + len(row), 0][None]  # [1, len(row), 3, 3]
        k += len(row)
        for b in range(2):
            expected = conv2d(x[b, row], kernels)[0] + w["conv.bias"][j]
            np.testing.assert_allclose(y[b, j], expected, rtol=1e-5, atol=1e-5)


def test_subsample_is_window_sum_times_coefficient_plus_bias_per_map():
    w = {"subsample.weight": np.array([2.0, -0.5], np.float32), "subsample.bias": np.array([1.0, 3.0], np.float32)}
    _, model = compiled("  - subsample(2x2)\n", "[2, 4, 4]", w)
    x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
    sums = x.reshape(1, 2, 2, 2, 2, 2).sum(axis=(3, 5))  # [1, 2, 2(rows), 2(cols)]
    expected = sums * w["subsample.weight"].reshape(1, 2, 1, 1) + w["subsample.bias"].reshape(1, 2, 1, 1)
    np.testing.assert_allclose(run_onnx(model, x), expected, rtol=1e-6)


def test_squash_is_lecuns_scaled_tanh():
    _, model = compiled("  - squash\n", "[3]", {})
    x = np.array([[-3.0, 0.5, 1.0]], np.float32)
    np.testing.assert_allclose(run_onnx(model, x), 1.7159 * np.tanh(2 * x / 3), rtol=1e-6)
    assert abs(1.7159 * np.tanh(2 / 3) - 1.0) < 1e-3  # the paper's design point: f(1) = 1


def test_rbf_is_squared_euclidean_distance_to_fixed_prototypes(rng):
    graph = net("  - rbf(3)\n", "[5]")
    (proto,) = graph.params
    assert proto.constant and graph.counts()["total"] == 0
    value = cnnc.compiler.weights.initial(proto, 0)
    assert set(np.unique(value)) == {-1.0, 1.0}
    w = {"rbf.prototypes": rng.choice([-1.0, 1.0], (3, 5)).astype(np.float32)}
    _, model = compiled("  - rbf(3)\n", "[5]", w)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    expected = ((x[:, None, :] - w["rbf.prototypes"][None]) ** 2).sum(axis=2)
    np.testing.assert_allclose(run_onnx(model, x), expected, rtol=1e-5)


@pytest.mark.parametrize("size,alpha,beta,bias", [(5, 1e-4, 0.75, 1.0), (3, 0.5, 0.5, 2.0)])
def test_lrn_divides_alpha_by_size_like_caffe_and_onnx(size, alpha, beta, bias, rng):
    _, model = compiled(f"  - lrn(size={size}, alpha={alpha}, beta={beta}, bias={bias})\n", "[7, 2, 2]", {})
    x = rng.standard_normal((1, 7, 2, 2)).astype(np.float32) * 10
    sq = np.pad(x[0] ** 2, ((size // 2, (size - 1) // 2), (0, 0), (0, 0)))
    window = np.stack([sq[c:c + size].sum(axis=0) for c in range(7)])
    expected = x[0] / (bias + alpha / size * window) ** beta
    np.testing.assert_allclose(run_onnx(model, x)[0], expected, rtol=1e-5)


def test_sepconv_is_depthwise_then_pointwise_with_nothing_between(rng):
    w = {"sepconv.depthwise_weight": rng.standard_normal((6, 1, 3, 3)).astype(np.float32),  # multiplier 2
         "sepconv.pointwise_weight": rng.standard_normal((4, 6, 1, 1)).astype(np.float32)}
    graph, model = compiled("  - sepconv(4, 3x3, depth_multiplier=2)\n", "[3, 5, 5]", w)
    assert graph.counts()["total"] == 6 * 9 + 4 * 6
    x = rng.standard_normal((1, 3, 5, 5)).astype(np.float32)
    depthwise = np.stack([conv2d(x[0, [c // 2]], w["sepconv.depthwise_weight"][[c]])[0] for c in range(6)])
    expected = np.einsum("fc,chw->fhw", w["sepconv.pointwise_weight"][:, :, 0, 0], depthwise)
    np.testing.assert_allclose(run_onnx(model, x)[0], expected, rtol=1e-4, atol=1e-5)


def test_scaled_residual_is_x_plus_scale_times_branch(rng):
    body = "  - add: {shortcut: identity, residual: [conv(2, 1x1), scale(0.17)]}\n  - relu\n"
    w = {"add/residual/conv.weight": rng.standard_normal((2, 2, 1, 1)).astype(np.float32),
         "add/residual/conv.bias": rng.standard_normal(2).astype(np.float32)}
    _, model = compiled(body, "[2, 3, 3]", w)
    x = rng.standard_normal((1, 2, 3, 3)).astype(np.float32)
    up = np.einsum("fc,chw->fhw", w["add/residual/conv.weight"][:, :, 0, 0], x[0]) \
        + w["add/residual/conv.bias"][:, None, None]
    np.testing.assert_allclose(run_onnx(model, x)[0], np.maximum(x[0] + 0.17 * up, 0), rtol=1e-5, atol=1e-6)
