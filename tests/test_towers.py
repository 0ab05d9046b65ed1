"""ResNeXt's towers: form (a) — 32 summed towers — compiles to form (c), grouped convolutions, with the
same cost and the same outputs as the grouped form written by hand (Xie et al. 2017, Figure 3)."""
from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

import cnnc
from cnnc.compiler import to_onnx
from cnnc.dsl.document import load_text


def random_weights(graph, seed: int) -> dict[str, np.ndarray]:
    """Random values for every parameter, BN statistics included (so that no layer is a no-op)."""
    rng = np.random.default_rng(seed)
    out = {}
    for p in graph.params:
        if p.name.endswith("running_var"):
            out[p.name] = rng.uniform(0.5, 1.5, p.shape)
        elif p.name.endswith(("running_mean", ".bias")) or "batchnorm" in p.name:
            out[p.name] = rng.normal(0, 0.1, p.shape) + (1.0 if p.name.endswith("batchnorm.weight") else 0)
        else:
            out[p.name] = rng.normal(0, np.sqrt(2 / p.fan_in), p.shape)
    return {k: v.astype(np.float32) for k, v in out.items()}


def to_grouped(towers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Form (a) weights -> form (c) names: branch tensors side by side; the last 1x1 conv of each
    tower reads its own slice of the grouped channels, so its weights join on the input axis."""
    parts: dict[str, list[tuple[int, np.ndarray]]] = {}
    out = {}
    for name, value in towers.items():
        m = re.fullmatch(r"(.*/residual)/add/branch(\d+)/(.*)", name)
        if m is None:
            out[name] = value
        else:
            parts.setdefault(f"{m[1]}/{m[3]}", []).append((int(m[2]), value))
    for name, pieces in parts.items():
        axis = 1 if re.search(r"/residual/conv\.weight$", name) else 0
        out[name] = np.concatenate([v for _, v in sorted(pieces, key=lambda p: p[0])], axis=axis)
    return out


def conv_groups(model) -> Counter:
    return Counter(next((a.i for a in n.attribute if a.name == "group"), 1)
                   for n in model.graph.node if n.op_type == "Conv")


def test_resnext50_towers_compile_to_the_grouped_form_with_the_same_outputs():
    towers, grouped = cnnc.build("resnext50"), cnnc.build("resnext50_grouped")
    assert towers.counts() == grouped.counts() and towers.macs == grouped.macs
    a_weights = random_weights(towers, 0)
    b_weights = to_grouped(a_weights)
    a = cnnc.compile("resnext50", weights=a_weights)
    b = cnnc.compile("resnext50_grouped", weights=b_weights)
    # the same graph: 16 grouped 3x3 convs, no 32-way sums, node for node the hand-written form (c)
    assert conv_groups(a) == conv_groups(b) and conv_groups(a)[32] == 16
    assert Counter(n.op_type for n in a.graph.node) == Counter(n.op_type for n in b.graph.node)
    assert sum(np.prod(t.dims) for t in a.graph.initializer) == sum(np.prod(t.dims) for t in b.graph.initializer)
    x = np.random.default_rng(1).standard_normal((2, 3, 224, 224), dtype=np.float32)
    ya = cnnc.Session(a.SerializeToString(), "cpu").run(x)
    yb = cnnc.Session(b.SerializeToString(), "cpu").run(x)
    np.testing.assert_allclose(ya, yb, atol=1e-5)
    assert ya.std(axis=1).min() > 1e-4  # the outputs are not flat: the comparison means something


SMALL = """
network: towers
input: [8, 10, 10]
blocks:
  tower(d, stride=1): [conv(d, 1x1, bias=false), batchnorm, relu,
                       conv(d, 3x3, stride=stride, padding=1, groups=2), relu, conv(8, 1x1)]
  path: [conv(3, 3x3, padding=1), scale(0.5), maxpool(2x2)]
layers:
  - add: {shortcut: identity, residual: {add: [tower(4) x 6]}}
  - concat: [path x 5]
"""


@pytest.mark.parametrize("seed", [0, 1])
def test_stacked_towers_equal_the_towers_run_one_by_one(seed):
    """The rewrite against the graph without it (ORT runs each tower separately), for both merges, with
    grouped convs inside the towers and biases on the folded convs."""
    graph = cnnc.build(load_text(SMALL))
    values = random_weights(graph, seed)
    weights = [(p, values[p.name]) for p in graph.params]
    stacked = to_onnx(graph, weights=weights)
    plain = to_onnx(graph, weights=weights, group_towers=False)
    assert Counter(n.op_type for n in stacked.graph.node)["Conv"] == 4
    assert Counter(n.op_type for n in plain.graph.node)["Conv"] == 6 * 3 + 5
    x = np.random.default_rng(seed).standard_normal((2, 8, 10, 10), dtype=np.float32)
    np.testing.assert_allclose(cnnc.Session(stacked.SerializeToString(), "cpu").run(x),
                               cnnc.Session(plain.SerializeToString(), "cpu").run(x), atol=1e-5)


@pytest.mark.parametrize("tower", [
    None,                                      # towers that differ
    "[conv(4, 1x1), lrn(size=3), conv(8, 1x1)]",  # LRN mixes channels
    "[relu, conv(8, 1x1)]",                    # no conv on the shared input
])
def test_towers_that_are_not_equivalent_to_a_grouped_conv_are_left_alone(tower):
    merge = "add: [tower x 3]" if tower else "add: [conv(4, 3x3, padding=1), [conv(4, 3x3, padding=1), relu]]"
    blocks = f"blocks:\n  tower: {tower}\n" if tower else ""
    graph = cnnc.build(load_text(f"network: t\ninput: [8, 6, 6]\n{blocks}layers:\n  - {merge}\n"))
    model = to_onnx(graph)
    assert Counter(n.op_type for n in model.graph.node)["Conv"] == \
        Counter(layer.op for layer in graph.layers)["conv"]
