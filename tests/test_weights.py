"""Weights by name (`cnnc weights`, `--weights`) and train-only heads (`aux:`, `--aux`)."""
from __future__ import annotations

import hashlib
import json
import os
import struct
import time

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import cnnc
from cnnc.compiler import checkpoint, weights
from cnnc.compiler.errors import WeightsError


def initializers(model) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_template_round_trips_and_user_values_land_in_the_model(tmp_path, suffix, cli):
    path = tmp_path / f"lenet5{suffix}"
    r = cli.run("weights", "lenet5", "-o", str(path), "--seed", "3")
    assert r.code == 0, r.err
    tensors = checkpoint.load(path).tensors
    graph = cnnc.build("lenet5")
    assert {n: v.shape for n, v in tensors.items()} == {p.name: p.shape for p in graph.params}
    seeded = initializers(cnnc.compile("lenet5", seed=3))
    assert all(np.array_equal(tensors[n], seeded[n]) for n in tensors)  # the template is the seed's values
    tensors = {n: np.full(v.shape, i, np.float32) for i, (n, v) in enumerate(sorted(tensors.items()))}
    checkpoint.write(path, tensors.items())
    model = cnnc.compile("lenet5", weights=path)
    got = initializers(model)
    assert all(np.array_equal(got[n], v) for n, v in tensors.items())
    assert {p.key: p.value for p in model.metadata_props}["cnnc.weights"] == path.name


def test_files_are_byte_deterministic(tmp_path, cli):
    for i in range(2):
        cli.run("weights", "lenet5", "-o", str(tmp_path / f"{i}.npz"))
        cli.run("weights", "lenet5", "-o", str(tmp_path / f"{i}.safetensors"))
    assert (tmp_path / "0.npz").read_bytes() == (tmp_path / "1.npz").read_bytes()
    assert (tmp_path / "0.safetensors").read_bytes() == (tmp_path / "1.safetensors").read_bytes()


def test_every_missing_unexpected_and_misshaped_name_is_listed_with_exit_2(tmp_path, cli):
    tensors = checkpoint.load(_template(tmp_path)).tensors
    del tensors["c1/conv.weight"], tensors["f6/dense.bias"]
    tensors["c3/conv.bias"] = np.zeros(3, np.float32)
    tensors["extra.weight"] = np.zeros(1, np.float32)
    path = tmp_path / "bad.safetensors"
    checkpoint.write(path, tensors.items())
    r = cli.run("compile", "lenet5", "--weights", str(path), "-o", str(tmp_path / "x.onnx"))
    assert r.code == 2 and "Traceback" not in r.err
    for needle in ["2 missing", "c1/conv.weight", "f6/dense.bias", "1 unexpected", "extra.weight",
                   "1 with the wrong shape", "c3/conv.bias: file [3], network [16]"]:
        assert needle in r.err, r.err
    assert not (tmp_path / "x.onnx").exists()


def test_safetensors_reader_accepts_f16_bf16_f64_and_rejects_integers(tmp_path):
    value = np.array([1.5, -2.25], np.float32)
    bf16 = (value.view(np.uint32) >> 16).astype("<u2").tobytes()
    entries = [("a", "F16", value.astype("<f2").tobytes()), ("b", "BF16", bf16),
               ("c", "F64", value.astype("<f8").tobytes())]
    path = tmp_path / "mixed.safetensors"
    _write_raw(path, entries)
    tensors = checkpoint.load(path).tensors
    assert all(np.array_equal(tensors[k], value) and tensors[k].dtype == np.float32 for k in "abc")
    _write_raw(path, [("i", "I32", np.array([1, 2], "<i4").tobytes())])
    with pytest.raises(WeightsError, match="must be floating point"):
        checkpoint.load(path)


@pytest.mark.parametrize("content", [b"", b"\x05\x00\x00\x00\x00\x00\x00\x00{nope", b"\xff" * 16,
                                     struct.pack("<Q", 2) + b"[]"])
def test_corrupt_safetensors_is_a_clear_error(tmp_path, content, cli):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    r = cli.run("compile", "lenet5", "--weights", str(path), "-o", str(tmp_path / "x.onnx"))
    assert r.code == 2 and "Traceback" not in r.err and "safetensors" in r.err, r.err


def test_out_of_range_offsets_are_refused(tmp_path):
    path = tmp_path / "bad.safetensors"
    header = json.dumps({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    with pytest.raises(WeightsError, match="outside the file"):
        checkpoint.load(path)


def test_non_finite_weights_are_refused(tmp_path):
    tensors = checkpoint.load(_template(tmp_path)).tensors
    tensors["c1/conv.bias"] = np.full(6, np.nan, np.float32)
    with pytest.raises(WeightsError, match="NaN"):
        cnnc.compile("lenet5", weights=tensors)


# ---- train-only heads -----------------------------------------------------------------------------
def test_inception_v1_heads_are_left_out_by_default_and_kept_as_named_outputs_on_request():
    plain, full = cnnc.build("inception_v1"), cnnc.build("inception_v1", aux=True)
    assert plain.counts()["total"] == 6_998_552 and full.counts()["total"] == 13_378_280
    assert plain.aux == () and plain.aux_heads == full.aux_heads == ("aux1", "aux2")
    info = cnnc.summary("inception_v1")
    assert info["params"]["total"] == 6_998_552 and info["params_with_aux"]["total"] == 13_378_280
    model = cnnc.compile("inception_v1", aux=True)
    assert [o.name for o in model.graph.output] == ["output", "aux1", "aux2"]
    onnx.checker.check_model(model, full_check=True)
    outputs = cnnc.Session(model.SerializeToString(), "cpu").run_all(
        np.random.default_rng(0).standard_normal((2, 3, 224, 224), dtype=np.float32))
    assert {k: v.shape for k, v in outputs.items()} == dict.fromkeys(("output", "aux1", "aux2"), (2, 1000))
    np.testing.assert_allclose(outputs["aux1"].sum(axis=1), 1, rtol=1e-5)
    # the main output is the same with and without the heads
    lean = cnnc.Session(cnnc.compile("inception_v1").SerializeToString(), "cpu").run(
        np.random.default_rng(0).standard_normal((2, 3, 224, 224), dtype=np.float32))
    np.testing.assert_allclose(lean, outputs["output"], rtol=1e-6)


def test_summary_prints_both_counts_and_weights_of_heads_are_accepted_without_aux(tmp_path, cli):
    r = cli.run("summary", "inception_v1")
    assert "total params: 6,998,552" in r.out and "13,378,280" in r.out
    path = tmp_path / "g.safetensors"
    assert cli.run("weights", "inception_v1", "-o", str(path)).code == 0
    r = cli.run("compile", "inception_v1", "--weights", str(path), "-o", str(tmp_path / "g.onnx"))
    assert r.code == 0, r.err
    r = cli.run("compile", "inception_v1", "--aux", "--weights", str(path), "-o", str(tmp_path / "a.onnx"))
    assert r.code == 0 and "outputs: output, aux1, aux2" in r.out


def _template(tmp_path):
    path = tmp_path / "t.safetensors"
    checkpoint.write(path, cnnc.api.initial_weights("lenet5"))
    return path


def _write_raw(path, entries):
    header, blob = {}, b""
    for name, dtype, data in entries:
        header[name] = {"dtype": dtype, "shape": [2], "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + blob)


# ---- seeded values: blocks drawn on every core --------------------------------------------------------
def _big(init="he_normal"):
    from cnnc.compiler.ir import Param
    return Param("fc/dense.weight", (3 * weights.BLOCK + 12345,), True, init, fan_in=4096)


def test_a_tensor_of_one_block_is_one_generator_seeded_by_the_seed_and_its_name():
    from cnnc.compiler.ir import Param
    param = Param("c1/conv.weight", (16, 3, 5, 5), True, "he_normal", fan_in=75)
    digest = hashlib.blake2b(param.name.encode(), digest_size=8).digest()
    rng = np.random.default_rng([7, int.from_bytes(digest, "little")])
    expected = rng.standard_normal(param.size, dtype=np.float32) * np.float32(np.sqrt(2 / 75))
    np.testing.assert_array_equal(weights.initial(param, 7).ravel(), expected)


@pytest.mark.parametrize("init", ["he_normal", "sign"])
def test_a_large_tensor_has_the_same_values_on_any_number_of_threads_and_in_any_chunk_size(init):
    param = _big(init)
    whole = weights.initial(param, 5, threads=1)
    for threads in (2, 3, 8):
        np.testing.assert_array_equal(weights.initial(param, 5, threads=threads), whole)
    for size, threads in [(weights.BLOCK, 1), (weights.BLOCK, 4), (300_007, 3), (5 * weights.BLOCK, 2)]:
        chunks = list(weights.initial_chunks(param, 5, size, threads=threads))
        assert all(c.size == size for c in chunks[:-1]) and 0 < chunks[-1].size <= size
        np.testing.assert_array_equal(np.concatenate(chunks), whole)


def test_each_block_of_a_large_tensor_draws_from_its_own_stream():
    value = weights.initial(_big(), 0)
    blocks = [value[k * weights.BLOCK:(k + 1) * weights.BLOCK] for k in range(4)]
    assert all(not np.array_equal(a[:1000], b[:1000]) for i, a in enumerate(blocks) for b in blocks[i + 1:])
    std = np.sqrt(2 / 4096)  # He-normal for a fan-in of 4096
    assert abs(value.mean()) < 5 * std / np.sqrt(value.size) and abs(value.std() / std - 1) < 1e-2


def test_a_compile_writes_the_same_bytes_on_one_core_and_on_eight(monkeypatch):
    text = "network: wide\ninput: [3, 32, 32]\nlayers:\n  - flatten\n  - fc: dense(700)\n  - out: dense(10)\n"
    graph = cnnc.dsl.document.load_text(text, "wide.yaml")
    assert max(p.size for p in cnnc.build(graph).params) > 2 * weights.BLOCK
    written = []
    for cores in (1, 8):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, cores=cores: set(range(cores)), raising=False)
        written.append(cnnc.compile(graph, seed=11).SerializeToString())
    assert written[0] == written[1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_process_draws_large_tensors_with_its_own_threads():
    param = _big()
    expected = weights.initial(param, 2, threads=2)  # the parent's pool now exists, with its threads
    pid = os.fork()
    if pid == 0:  # the child: the parent's threads are gone; drawing must neither hang nor differ
        ok = np.array_equal(weights.initial(param, 2, threads=2), expected)
        os._exit(0 if ok else 1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    pytest.fail("drawing in a forked child hung")
