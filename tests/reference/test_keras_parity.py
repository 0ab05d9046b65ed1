"""Numerics against the reference implementations themselves: Keras applications (VGG16, ResNet50,
InceptionV3, Xception, InceptionResNetV2), built with random weights, their weights mapped onto cnnc's
parameter names, the same input run through both. Needs Keras 3 and a backend (`pip install
'.[reference]'`, which uses PyTorch): without them these tests are skipped; run them by hand after
touching lowering or padding semantics.
"""
from __future__ import annotations

import os
import re

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="Keras is not installed: pip install '.[reference]'")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' own numpy-2 warnings

import cnnc  # noqa: E402
from cnnc.architectures import path as shipped  # noqa: E402
from cnnc.dsl.document import load_text  # noqa: E402


def logits_graph(name: str):
    """The shipped network without its final softmax, so logits are compared, not saturated probabilities."""
    text = shipped(name).read_text().replace("[dense(1000), softmax]", "dense(1000)")
    return cnnc.build(load_text(text, f"{name}.yaml"))


def randomise(model, rng) -> None:
    """Random weights everywhere, BN statistics included (Keras initialises them to 0 and 1)."""
    for layer in model.layers:
        values = []
        for w in layer.weights:
            shape = tuple(w.shape)
            if "moving_variance" in w.path:
                values.append(rng.uniform(0.5, 1.5, shape))
            elif "gamma" in w.path:
                values.append(rng.uniform(0.8, 1.2, shape))
            elif "beta" in w.path or "moving_mean" in w.path or "bias" in w.path:
                values.append(rng.normal(0, 0.1, shape))
            elif "depthwise" in w.path:  # (kh, kw, C, m): each output sees one channel's kh x kw window
                values.append(rng.normal(0, np.sqrt(2 / (shape[0] * shape[1])), shape))
            else:
                fan_in = int(np.prod(shape[:-1]))
                values.append(rng.normal(0, np.sqrt(2 / fan_in), shape))
        if values:
            layer.set_weights([v.astype(np.float32) for v in values])


def creation_order(model) -> list:
    """Weighted layers in the order the application code created them: the conv/BN pairs Keras named
    itself (`conv2d_N`, `batch_normalization_N`, numbered as created), then the named layers."""
    def number(layer):
        m = re.search(r"_(\d+)$", layer.name)
        return int(m.group(1)) if m else 0
    weighted = [layer for layer in model.layers if layer.weights]
    convs = sorted((l for l in weighted if re.fullmatch(r"conv2d(_\d+)?", l.name)), key=number)
    bns = sorted((l for l in weighted if re.fullmatch(r"batch_normalization(_\d+)?", l.name)), key=number)
    named = [l for l in weighted if l not in convs and l not in bns]
    return [layer for pair in zip(convs, bns, strict=True) for layer in pair] + named


def keras_layers(model, graph, keras_name) -> list:
    """The Keras layer for each of cnnc's weighted layers: by `keras_name(cnnc name)`, or, where that
    is None (a layer Keras named itself), the next conv/BN in creation order."""
    by_name = {layer.name: layer for layer in model.layers}
    auto = iter(creation_order(model))
    ours = [layer.name for layer in graph.layers if layer.params]
    return [by_name[k] if (k := keras_name(name)) else next(auto) for name in ours]


def convert(kind: str, weights: list[np.ndarray], flatten_from: tuple | None = None) -> list[np.ndarray]:
    """Keras tensors -> cnnc's layout, in cnnc's parameter order."""
    if kind == "conv":
        return [weights[0].transpose(3, 2, 0, 1), *weights[1:]]
    if kind == "sepconv":  # depthwise (kh, kw, C, m) -> (C*m, 1, kh, kw), pointwise 1x1 like a conv
        depthwise, pointwise, *bias = weights
        kh, kw = depthwise.shape[:2]
        depthwise = depthwise.reshape(kh, kw, -1).transpose(2, 0, 1)[:, None]  # channel c*m+j: group c
        return [depthwise, pointwise.transpose(3, 2, 0, 1), *bias]
    if kind == "dense":
        w = weights[0]
        if flatten_from is not None:  # Keras flattens H, W, C; cnnc flattens C, H, W
            h, wd, c = flatten_from
            w = w.reshape(h, wd, c, -1).transpose(2, 0, 1, 3).reshape(h * wd * c, -1)
        return [w.T, *weights[1:]]
    return weights  # batchnorm: [gamma,] beta, moving_mean, moving_variance


def compare(graph, keras_layers, model, rng, flattened: dict | None = None, batch=2):
    """Map weights layer by layer, run both, return max |difference| / max |logit|.
    `flattened`: cnnc dense layers whose input Keras flattened channel-last, with its (H, W, C)."""
    ours = [layer for layer in graph.layers if layer.params]
    assert len(ours) == len(keras_layers)
    values = {}
    for layer, klayer in zip(ours, keras_layers):
        weights = [np.asarray(w) for w in klayer.get_weights()]
        converted = convert(layer.op, weights, (flattened or {}).get(layer.name))
        assert [p.shape for p in layer.params] == [v.shape for v in converted], (layer.name, klayer.name)
        values.update((p.name, v.astype(np.float32)) for p, v in zip(layer.params, converted))
    model_onnx = cnnc.compiler.to_onnx(graph, weights=[(p, values[p.name]) for p in graph.params])
    x = rng.standard_normal((batch, *graph.input_shape)).astype(np.float32)
    expected = np.asarray(model.predict(x.transpose(0, 2, 3, 1), verbose=0))
    got = cnnc.Session(model_onnx.SerializeToString(), "cpu").run(x)
    scale = np.abs(expected).max()
    assert scale > 1e-3
    np.testing.assert_allclose(got, expected, atol=2e-4 * scale, rtol=0)
    return float(np.abs(got - expected).max() / scale)


def test_resnet50_matches_keras():
    rng = np.random.default_rng(0)
    model = keras.applications.ResNet50(weights=None, classifier_activation=None)
    randomise(model, rng)
    graph = logits_graph("resnet50")
    by_name = {layer.name: layer for layer in model.layers}

    def keras_name(ours: str) -> str:  # e.g. conv3/identity_block_2/add/residual/cbr_1/conv
        fixed = {"conv1/conv": "conv1_conv", "conv1/batchnorm": "conv1_bn", "predictions": "predictions"}
        if ours in fixed:
            return fixed[ours]
        stage, block, _add, branch, inner, *_ = ours.split("/")
        b = 1 if block == "conv_block" else int(block.rsplit("_", 1)[1]) + 1
        part = 0 if branch == "shortcut" else {"cbr_1": 1, "cbr_2": 2}.get(inner, 3)
        return f"{stage}_block{b}_{part}_{'conv' if ours.endswith('conv') else 'bn'}"

    layers = [by_name[keras_name(layer.name)] for layer in graph.layers if layer.params]
    print("resnet50 max |diff| / max |logit|:", compare(graph, layers, model, rng))


def test_inception_v3_matches_keras():
    rng = np.random.default_rng(1)
    model = keras.applications.InceptionV3(weights=None, classifier_activation=None)
    randomise(model, rng)
    print("inception_v3 max |diff| / max |logit|:",
          compare(logits_graph("inception_v3"), creation_order(model), model, rng))


def test_vgg16_matches_keras():
    rng = np.random.default_rng(2)
    model = keras.applications.VGG16(weights=None, classifier_activation=None)
    randomise(model, rng)
    layers = [layer for layer in model.layers if layer.weights]
    print("vgg16 max |diff| / max |logit|:",
          compare(logits_graph("vgg16"), layers, model, rng, {"fc1/dense": (7, 7, 512)}, batch=1))


def test_xception_matches_keras():
    rng = np.random.default_rng(3)
    model = keras.applications.Xception(weights=None, classifier_activation=None)
    randomise(model, rng)
    graph = logits_graph("xception")

    def keras_name(ours: str) -> str | None:  # e.g. middle_flow/middle_3/residual/sep_2/batchnorm
        if "/shortcut/" in ours:
            return None  # Keras named the shortcut convs and BNs itself
        if ours == "predictions":
            return ours
        block = re.search(r"block(\d+)|middle_(\d+)", ours)
        b = block.group(1) or int(block.group(2)) + 4  # the middle flow is Keras' block5 ... block12
        kind, k = re.search(r"(cbr|sep)_(\d)", ours).groups()
        bn = "_bn" if ours.endswith("batchnorm") else ""
        return f"block{b}_{'conv' if kind == 'cbr' else 'sepconv'}{k}{bn}"

    print("xception max |diff| / max |logit|:",
          compare(graph, keras_layers(model, graph, keras_name), model, rng))


def test_inception_resnet_v2_matches_keras():
    rng = np.random.default_rng(4)
    model = keras.applications.InceptionResNetV2(weights=None, classifier_activation=None)
    randomise(model, rng)
    graph = logits_graph("inception_resnet_v2")

    def keras_name(ours: str) -> str | None:  # the named ones: the residual blocks' "up" convs, conv_7b
        up = re.fullmatch(r"(block\d+_\d+)/.*residual/conv", ours)
        fixed = {"conv_7b/conv": "conv_7b", "conv_7b/batchnorm": "conv_7b_bn", "predictions": "predictions"}
        return f"{up.group(1)}_conv" if up else fixed.get(ours)

    print("inception_resnet_v2 max |diff| / max |logit|:",
          compare(graph, keras_layers(model, graph, keras_name), model, rng))
