"""The same file and seed give byte-identical ONNX, in one process and across processes."""
from __future__ import annotations

import subprocess
import sys

import cnnc


def test_compiling_twice_gives_identical_bytes():
    assert cnnc.compile("resnet50").SerializeToString() == cnnc.compile("resnet50").SerializeToString()


def test_a_different_seed_gives_different_weights_but_the_same_graph():
    a, b = cnnc.compile("lenet5", seed=0), cnnc.compile("lenet5", seed=1)
    assert a.SerializeToString() != b.SerializeToString()
    assert [n.name for n in a.graph.node] == [n.name for n in b.graph.node]


def test_separate_processes_write_identical_files(tmp_path):
    outs = []
    for i in range(2):
        out = tmp_path / f"m{i}.onnx"
        subprocess.run([sys.executable, "-m", "cnnc", "compile", "inception_v3", "-o", str(out)],
                       check=True, capture_output=True, timeout=120)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_a_parameter_value_does_not_depend_on_the_rest_of_the_network():
    small = cnnc.build(cnnc.dsl.document.load_text(
        "network: a\ninput: [3, 8, 8]\nlayers:\n  - c1: conv(4, 3x3)\n", "a.yaml"))
    big = cnnc.build(cnnc.dsl.document.load_text(
        "network: b\ninput: [3, 8, 8]\nlayers:\n  - c0: conv(3, 1x1)\n  - c1: conv(4, 3x3)\n", "b.yaml"))
    init = cnnc.compiler.weights.initial
    pa = next(p for p in small.params if p.name == "c1.weight")
    pb = next(p for p in big.params if p.name == "c1.weight")
    assert (init(pa, 7) == init(pb, 7)).all()
