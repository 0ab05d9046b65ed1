"""Writing models: the streamed file against protobuf's own serialisation, external data for models above
2 GiB, atomic writes, float16 models and batchnorm folding against the unfolded model."""
from __future__ import annotations

import os
import resource
import signal
import time
from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

import cnnc
from cnnc import api
from cnnc.compiler.errors import WeightsError

from conftest import doc
from test_cli import cnnc as run_cli
from test_towers import random_weights

# every op, both merges, a connection table (int64 constants), float constants (scale, squash, BN
# without gamma), BN with and without gamma
EVERY_OP = """\
  - c1: conv(6, 3x3, padding=1)
  - batchnorm
  - relu
  - lrn(size=3)
  - concat:
      a: [sepconv(4, 3x3, padding=same), scale(0.5)]
      b: [conv(4, 1x1, bias=false), batchnorm(scale=false), squash]
  - maxpool(2x2)
  - add: {shortcut: identity, residual: [conv(8, 3x3, padding=1, groups=2), batchnorm, tanh]}
  - subsample(2x2)
  - conv(4, 1x1, connections=[[0, 1], [2, 3], [4, 5, 6], [7]])
  - avgpool(2x2, stride=1, padding=1)
  - sigmoid
  - flatten
  - dropout(0.2)
  - dense(12)
  - rbf(5)
  - softmax
"""


def every_op():
    return doc(EVERY_OP)


def weights_of(net, seed: int = 0) -> dict[str, np.ndarray]:
    return random_weights(cnnc.build(net), seed)


def session(model: onnx.ModelProto | os.PathLike) -> cnnc.Session:
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    return cnnc.Session(source, "cpu")


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("net,options", [
    (every_op, {}), (every_op, {"dtype": "float16"}), (every_op, {"fold_bn": True}),
    (lambda: "lenet5_1998", {}), (lambda: "inception_v1", {"aux": True, "fold_bn": True}),
    (lambda: "resnext50", {"dtype": "float16"}),
])
def test_the_streamed_file_has_the_bytes_protobuf_gives_the_whole_model(tmp_path, net, options):
    path = tmp_path / "m.onnx"
    written = api.compile_to(net(), path, **options)
    data = path.read_bytes()
    model = cnnc.compile(net(), **options)
    assert data == model.SerializeToString()
    assert onnx.ModelProto.FromString(data).SerializeToString() == data  # protobuf's canonical encoding
    assert written.size == len(data) and written.data_path is None
    assert written.outputs == tuple(o.name for o in model.graph.output)
    onnx.checker.check_model(onnx.load(path), full_check=True)


def test_a_tensor_made_in_chunks_has_the_values_of_the_whole_tensor():
    from cnnc.compiler.weights import initial, initial_chunks
    net = doc("  - flatten\n  - dense(400)\n", "[3, 32, 32]")  # 1,228,800 weights: more than one chunk
    weight = cnnc.build(net).params[0]
    whole = initial(weight, 5)
    for size in (997, 65536, 1 << 20):
        assert np.array_equal(np.concatenate(list(initial_chunks(weight, 5, size))).reshape(weight.shape), whole)
    got = {t.name: numpy_helper.to_array(t) for t in cnnc.compile(net, seed=5).graph.initializer}
    assert np.array_equal(got[weight.name], whole)
    given = weights_of(net)
    fortran = {name: np.asfortranarray(value) for name, value in given.items()}  # chunked in C order all the same
    assert cnnc.compile(net, weights=fortran).SerializeToString() == \
        cnnc.compile(net, weights=given).SerializeToString()


def test_save_writes_what_serialisation_gives(tmp_path):
    model = cnnc.compile("lenet5_1998", seed=3)
    api.save(model, tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").read_bytes() == model.SerializeToString()
    assert leftovers(tmp_path) == []


def test_the_file_does_not_depend_on_how_many_threads_make_the_weights(tmp_path, monkeypatch):
    api.compile_to("inception_v1", tmp_path / "many.onnx", fold_bn=True)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    api.compile_to("inception_v1", tmp_path / "one.onnx", fold_bn=True)
    assert (tmp_path / "many.onnx").read_bytes() == (tmp_path / "one.onnx").read_bytes()


def test_separate_processes_write_identical_float16_folded_files(tmp_path):
    for name in ("a.onnx", "b.onnx"):
        r = run_cli("compile", "inception_v1", "--dtype", "float16", "--fold-bn", "-o", str(tmp_path / name))
        assert r.returncode == 0, r.stderr
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


# -- external data -----------------------------------------------------------------------------------

def test_a_model_over_the_threshold_gets_its_weights_in_a_data_file_beside_it(tmp_path):
    path = tmp_path / "m.onnx"
    written = api.compile_to("lenet5", path, external_data_above=0)
    assert written.data_path == tmp_path / "m.onnx.data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.data"]
    assert written.size == path.stat().st_size + written.data_path.stat().st_size
    skeleton = onnx.load(path, load_external_data=False)
    external = [t for t in skeleton.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    assert external and len(external) < len(skeleton.graph.initializer)  # tensors under 1 KiB stay inline
    for t in external:
        info = {e.key: e.value for e in t.external_data}
        assert info["location"] == "m.onnx.data" and int(info["offset"]) % 4096 == 0
    onnx.checker.check_model(str(path), full_check=True)
    inline = cnnc.compile("lenet5")
    loaded = onnx.load(path)  # with its external data
    assert {t.name: numpy_helper.to_array(t).tobytes() for t in loaded.graph.initializer} == \
        {t.name: numpy_helper.to_array(t).tobytes() for t in inline.graph.initializer}
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32), dtype=np.float32)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for p in (path, written.data_path):
        p.rename(moved / p.name)  # the location is relative: the pair works wherever it is
    assert np.array_equal(session(moved / "m.onnx").run(x), session(inline).run(x))


def test_save_of_a_big_model_writes_the_same_pair_as_compile_to(tmp_path):
    api.compile_to("lenet5", tmp_path / "a.onnx", external_data_above=100_000)
    api.save(cnnc.compile("lenet5"), tmp_path / "b.onnx", external_data_above=100_000)
    assert (tmp_path / "a.onnx.data").read_bytes() == (tmp_path / "b.onnx.data").read_bytes()
    a, b = (onnx.load(tmp_path / n, load_external_data=False) for n in ("a.onnx", "b.onnx"))
    for t in b.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "a.onnx.data"
    assert a.SerializeToString() == b.SerializeToString()


def test_a_failed_compile_leaves_the_previous_pair_and_no_temporary_file(tmp_path):
    path = tmp_path / "m.onnx"
    api.compile_to("lenet5", path, external_data_above=0)
    before = path.read_bytes(), (tmp_path / "m.onnx.data").read_bytes()
    weights = weights_of("lenet5")
    last = cnnc.build("lenet5").params[-1].name
    weights[last] = np.full_like(weights[last], 1e6)  # beyond float16: fails after the others were written
    with pytest.raises(WeightsError, match=f"`{last}` has values beyond float16's range"):
        api.compile_to("lenet5", path, weights=weights, dtype="float16", external_data_above=0)
    assert (path.read_bytes(), (tmp_path / "m.onnx.data").read_bytes()) == before
    assert leftovers(tmp_path) == []


def test_signals_during_the_final_renames_are_handled_after_them():
    events: list[str] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: events.append("handled"))
    try:
        with api._signals_held():
            signal.raise_signal(signal.SIGTERM)
            events.append("renamed")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert events == ["renamed", "handled"]


@pytest.mark.skipif(os.environ.get("CNNC_BIG_TESTS") != "1", reason="writes a 2.2 GB model: CNNC_BIG_TESTS=1")
def test_a_network_above_2_gib_compiles_to_a_pair_that_onnxruntime_runs(tmp_path):
    (tmp_path / "big.yaml").write_text("network: big\ninput: [3, 224, 224]\n"
                                       "layers: [flatten, dense(3600), relu, dense(10), softmax]\n")
    start = time.perf_counter()
    r = run_cli("compile", str(tmp_path / "big.yaml"), "-o", str(tmp_path / "big.onnx"), timeout=600)
    elapsed = time.perf_counter() - start
    assert r.returncode == 0, r.stderr
    data = tmp_path / "big.onnx.data"
    assert data.stat().st_size > 2 << 30 and (tmp_path / "big.onnx").stat().st_size < 1 << 20
    onnx.checker.check_model(str(tmp_path / "big.onnx"), full_check=True)
    start_run = time.perf_counter()
    y = session(tmp_path / "big.onnx").run(np.random.default_rng(0).standard_normal((2, 3, 224, 224), np.float32))
    run_s = time.perf_counter() - start_run
    assert y.shape == (2, 10) and np.allclose(y.sum(axis=1), 1, atol=1e-5)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e3
    print(f"\nbig: {data.stat().st_size / 1e9:.2f} GB of external data, compile {elapsed:.1f} s, peak RSS of "
          f"the compile {peak:.0f} MB, onnxruntime load + run {run_s:.1f} s")


# -- float16 -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("net", [every_op, lambda: "lenet5_1998"])
def test_a_float16_model_takes_and_gives_float32_and_agrees_with_float32(net):
    weights = weights_of(net(), 1) if net is every_op else None
    m32 = cnnc.compile(net(), weights=weights)
    m16 = cnnc.compile(net(), weights=weights, dtype="float16")
    onnx.checker.check_model(m16, full_check=True)
    assert [t.type.tensor_type.elem_type for t in (*m16.graph.input, *m16.graph.output)] == [TensorProto.FLOAT] * 2
    assert {t.data_type for t in m16.graph.initializer} <= {TensorProto.FLOAT16, TensorProto.INT64}
    assert {v.type.tensor_type.elem_type for v in m16.graph.value_info} == {TensorProto.FLOAT16}
    assert [n.op_type for n in m16.graph.node if n.op_type == "Cast"] == ["Cast", "Cast"]
    assert sum(len(t.raw_data) for t in m16.graph.initializer if t.data_type == TensorProto.FLOAT16) * 2 == \
        sum(len(t.raw_data) for t in m32.graph.initializer if t.data_type == TensorProto.FLOAT)
    shape = [d.dim_value or 3 for d in m32.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    y32, y16 = session(m32).run(x), session(m16).run(x)
    assert y16.dtype == np.float32
    assert np.abs(y16 - y32).max() <= 1e-2 * np.abs(y32).max()


def test_float16_with_aux_heads_casts_every_output():
    model = cnnc.compile(doc("  - conv(4, 3x3)\n  - aux1: {aux: [globalavgpool, dense(3)]}\n  - globalavgpool\n"),
                         aux=True, dtype="float16")
    assert [o.name for o in model.graph.output] == ["output", "aux1"]
    x = np.ones((1, 3, 8, 8), np.float32)
    outputs = session(model).run_all(x)
    assert {k: v.dtype for k, v in outputs.items()} == {"output": np.float32, "aux1": np.float32}


def test_weights_beyond_float16_are_a_clear_user_error(tmp_path):
    from cnnc.compiler import checkpoint
    weights = weights_of("lenet5")
    weights["c1/conv.weight"][0, 0, 0, 0] = 70000.0
    checkpoint.write(tmp_path / "w.safetensors", weights.items())
    r = run_cli("compile", "lenet5", "--weights", str(tmp_path / "w.safetensors"), "--dtype", "float16",
                "-o", str(tmp_path / "m.onnx"))
    assert r.returncode == 2 and "`c1/conv.weight` has values beyond float16's range" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "m.onnx").exists()


# -- batchnorm folding -------------------------------------------------------------------------------

FOLDING = """\
  - conv(6, 3x3, padding=1)                                   # bias, BN with gamma: folded
  - batchnorm
  - relu
  - conv(6, 3x3, padding=1, bias=false, groups=2)             # no bias, BN without gamma: folded
  - batchnorm(scale=false, eps=0.001)
  - relu
  - sepconv(6, 3x3, padding=same, bias=true)                  # separable: folded into its pointwise half
  - batchnorm
  - conv(6, 1x1)
  - add: {shortcut: identity, residual: [batchnorm]}          # the conv's output feeds the add too: kept
  - conv(4, 1x1, connections=[[0, 1], [2, 3], [4, 5], [0]])  # a connection table: kept
  - batchnorm
  - add: [tower x 3]                                          # towers, then
  - batchnorm                                                 # a BN folded into the stacked conv
  - globalavgpool
  - dense(5)
"""


TOWER = "blocks:\n  tower: [conv(4, 1x1, bias=false), batchnorm, relu, conv(4, 3x3, padding=1)]\n"


@pytest.mark.parametrize("seed", [0, 1])
def test_folded_batchnorms_give_the_unfolded_outputs(seed):
    net = doc(FOLDING, "[3, 8, 8]", TOWER)
    weights = weights_of(net, seed)
    plain, folded = (cnnc.compile(net, weights=weights, fold_bn=f) for f in (False, True))
    ops = Counter(n.op_type for n in plain.graph.node), Counter(n.op_type for n in folded.graph.node)
    assert ops[0]["BatchNormalization"] == 7 and ops[1]["BatchNormalization"] == 2
    assert ops[0]["Conv"] == ops[1]["Conv"]
    assert folded.ByteSize() < plain.ByteSize()
    assert {t.name for t in folded.graph.initializer} >= {"conv_1.folded_weight", "conv_1.folded_bias",
                                                         "conv_2.folded_bias", "sepconv.depthwise_weight",
                                                         "sepconv.folded_pointwise_weight"}
    onnx.checker.check_model(folded, full_check=True)
    x = np.random.default_rng(seed).standard_normal((2, 3, 8, 8), dtype=np.float32)
    expected = session(plain).run(x)
    np.testing.assert_allclose(session(folded).run(x), expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_a_conv_whose_output_is_a_model_output_keeps_its_batchnorm():
    net = doc("  - c: conv(4, 3x3)\n  - aux1: {aux: [flatten, dense(2)]}\n  - batchnorm\n")
    model = cnnc.compile(net, aux=True, fold_bn=True)
    assert Counter(n.op_type for n in model.graph.node)["BatchNormalization"] == 1


def test_weights_files_keep_the_source_names_when_folding(tmp_path):
    r = run_cli("weights", "resnet50", "-o", str(tmp_path / "w.safetensors"))
    assert r.returncode == 0, r.stderr
    r = run_cli("compile", "resnet50", "--weights", str(tmp_path / "w.safetensors"), "--fold-bn",
                "-o", str(tmp_path / "m.onnx"))
    assert r.returncode == 0, r.stderr
    model = onnx.load(tmp_path / "m.onnx")
    assert not any(n.op_type == "BatchNormalization" for n in model.graph.node)
    assert {p.key: p.value for p in model.metadata_props}["cnnc.fold_bn"] == "true"
