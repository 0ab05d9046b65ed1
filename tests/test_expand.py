"""`cnnc expand`: the flat document builds the very graph of the original, under the same names."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import yaml

import cnnc
from cnnc.dsl.document import load_text
from cnnc.expand import expand


def _layers(graph):
    return [(l.name, l.op, l.attrs, l.inputs, l.output, l.shape, l.params, l.macs) for l in graph.layers]


def _same_graph(original, text: str) -> None:
    expanded = load_text(text, "expanded.yaml")
    for aux in (False, True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a, b = cnnc.build(original, aux), cnnc.build(expanded, aux)
        assert _layers(b) == _layers(a)
        assert (b.output, b.output_shape, b.aux, b.aux_heads) == (a.output, a.output_shape, a.aux, a.aux_heads)
        assert b.counts() == a.counts() and b.macs == a.macs
        assert [p.name for p in b.params] == [p.name for p in a.params]


# resnext50 (32 towers a block, 3,675 layers) is left out for time; the tower example below covers it
@pytest.mark.parametrize("name", ["lenet5", "lenet5_1998", "alexnet", "nin_cifar10", "vgg16", "inception_v1",
                                  "inception_v3", "inception_v4", "inception_resnet_v2", "xception", "resnet50",
                                  "resnet50_torchvision", "resnext50_grouped"])
def test_expanded_shipped_network_builds_the_same_layers_parameters_and_names(name):
    doc = cnnc.load(name)
    text = expand(doc)
    data = yaml.safe_load(text)
    assert set(data) <= {"network", "description", "input", "layers"}  # no blocks, defaults, constants
    _same_graph(doc, text)


def test_expansion_is_a_fixed_point():
    once = expand(cnnc.load("inception_v1"), header="x")
    assert expand(load_text(once, "once.yaml"), header="x") == once


def test_every_argument_is_written_out_with_file_defaults_and_built_in_defaults_applied():
    doc = load_text("network: t\ninput: [3, 16, 16]\ndefaults: {conv: {bias: false}, batchnorm: {eps: 0.001}}\n"
                    "constants: {w: 4}\nblocks:\n  cb(f, s=1): [conv(f * 2, 3x3, stride=s, padding=same), batchnorm]\n"
                    "layers:\n  - cb(w, s=2)\n  - maxpool(2x2)\n  - squash\n", "t.yaml")
    text = expand(doc)
    assert "conv(8, 3x3, stride=2x2, padding=same, dilation=1x1, groups=1, bias=false)" in text
    assert "batchnorm(eps=0.001, scale=true)" in text
    assert "maxpool(2x2, padding=valid, ceil_mode=false)" in text  # an unset stride stays unset: the kernel
    assert "squash(amplitude=1.7159, slope=0.6666666666666666)" in text  # floats round-trip exactly
    _same_graph(doc, text)


SMALL = {
    "towers in a branch list, as ResNeXt writes them": """
blocks:
  tower(d): [conv(d, 1x1), relu, conv(8, 3x3, padding=same)]
layers:
  - conv(8, 1x1)
  - add: [identity, tower(2) x 4]
  - relu
""",
    "an empty branch, named branches and a merge inside a merge": """
layers:
  - concat:
      keep: []
      conv: conv(4, 1x1)
      inner: {add: [identity, [conv(3, 3x3, padding=same)]]}
  - expect: [10, 8, 8]
""",
    "repeats under a name, numbered items beside written names": """
blocks:
  cr(f): [conv(f, 3x3, padding=same), relu]
  checks: [{expect: [8, 8, 8]}]
layers:
  - cr(8)
  - stage: cr(8) x 3
  - checks
  - cr_x: cr(8)
  - relu
  - [relu, dropout(0.1)]
  - conv_1: conv(8, 1x1)
  - conv(8, 1x1)
""",
    "train-only heads, named and not": """
blocks:
  head: [globalavgpool, dense(5), softmax]
layers:
  - conv(8, 3x3)
  - aux1: {aux: head}
  - aux: [flatten, dense(3)]
  - conv(8, 3x3)
  - head
""",
    "explicit padding, ceil mode, a connection table and list constants": """
constants:
  table: [[0, 1], [1, 2], [0, 2], [0, 1, 2]]
layers:
  - conv(4, 3x3, connections=table, padding=[1, 0, 2, 1])
  - maxpool(3x3, stride=2, padding=1, ceil_mode=true)
  - avgpool(2x2, count_include_pad=true)
  - lrn(3, 0.0005, 0.75, 2)
  - scale(-0.5)
""",
}


@pytest.mark.parametrize("body", SMALL.values(), ids=list(SMALL))
def test_small_networks_expand_to_the_same_graph(body):
    doc = load_text(f"network: t\ninput: [3, 8, 8]\n{body.lstrip()}", "t.yaml")
    _same_graph(doc, expand(doc))


def test_expanded_model_computes_what_the_original_computes():
    doc = cnnc.load("lenet5_1998")
    expanded = load_text(expand(doc), "expanded.yaml")
    a, b = cnnc.compile(doc, seed=3), cnnc.compile(expanded, seed=3)
    assert [n.name for n in a.graph.node] == [n.name for n in b.graph.node]
    assert {t.name for t in a.graph.initializer} == {t.name for t in b.graph.initializer}
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32), dtype=np.float32)
    run = lambda m: cnnc.Session(m.SerializeToString(), "cpu").run(x)  # noqa: E731
    np.testing.assert_array_equal(run(a), run(b))


def test_cnnc_expand_prints_a_document_that_cnnc_check_accepts(tmp_path, cli):
    r = cli.run("expand", "resnet50")
    assert r.code == 0, r.err
    assert r.out.startswith("# resnet50, expanded by `cnnc expand`")
    assert "identity_block_2:" in r.out and "shortcut: identity" in r.out
    (tmp_path / "flat.yaml").write_text(r.out)
    r = cli.run("check", str(tmp_path / "flat.yaml"))
    assert r.code == 0 and "25,636,712 parameters" in r.out, r.err
