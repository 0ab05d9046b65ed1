"""runtime/session.py's lean loading and runtime/inplace.py: a single-file model's weights referred to in
place give the same model, byte for byte where it matters, and the same outputs; what cannot be read
that way still loads or fails as ONNX Runtime says. Memory is measured in benchmarks/sessions.py, not
here."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import cnnc
from cnnc.runtime import inplace
from cnnc.runtime.inplace import NotAModel, in_place

from conftest import doc

NET = "  - conv(48, 3x3, padding=same)\n  - batchnorm\n  - relu\n  - conv(8, 3x3)\n  - relu\n" \
      "  - globalavgpool\n  - dense(5)\n  - softmax\n"


@pytest.fixture
def written(tmp_path):
    path = tmp_path / "m.onnx"
    cnnc.api.compile_to(doc(NET), path)
    return path


def test_in_place_refers_every_large_initializer_to_its_own_bytes_in_the_file(written):
    original = onnx.load(written)
    lean = onnx.load_from_string(in_place(written))
    raw = written.read_bytes()
    moved = 0
    for before, after in zip(original.graph.initializer, lean.graph.initializer, strict=True):
        assert (after.name, list(after.dims), after.data_type) == (before.name, list(before.dims), before.data_type)
        if len(before.raw_data) < inplace.MIN_BYTES:
            assert after == before
            continue
        moved += 1
        entry = {e.key: e.value for e in after.external_data}
        assert after.data_location == onnx.TensorProto.EXTERNAL and entry["location"] == "m.onnx"
        offset, length = int(entry["offset"]), int(entry["length"])
        assert raw[offset:offset + length] == before.raw_data
    assert moved >= 2
    original.graph.ClearField("initializer")
    lean.graph.ClearField("initializer")
    assert lean == original  # everything else copied as it was


def test_a_lean_session_gives_exactly_the_outputs_of_a_plain_one(written):
    session = cnnc.Session(written, "cpu")
    plain = cnnc.Session(written.read_bytes(), "cpu", lean=False)
    x = np.random.default_rng(1).standard_normal([2, *session.input_shape[1:]], dtype=np.float32)
    np.testing.assert_array_equal(session.run(x), plain.run(x))
    assert session.metadata == plain.metadata


def test_a_model_with_external_data_is_left_as_it_is_and_runs_from_another_folder(written, tmp_path,
                                                                                 monkeypatch):
    external = tmp_path / "ext" / "e.onnx"
    external.parent.mkdir()
    onnx.save(onnx.load(written), external, save_as_external_data=True, location="e.onnx.data", size_threshold=0)
    assert onnx.load_from_string(in_place(external)) == onnx.load(external, load_external_data=False)
    monkeypatch.chdir(tmp_path)
    session = cnnc.Session(external, "cpu")
    x = np.zeros([1, *session.input_shape[1:]], np.float32)
    np.testing.assert_array_equal(session.run(x), cnnc.Session(written, "cpu").run(x))


def test_a_foreign_model_with_float_data_fields_loads_too(tmp_path):
    weight = np.arange(2 * 3 * 32 * 32, dtype=np.float32).reshape(2 * 3 * 32, 32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2 * 3 * 32])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 32])],
                              [helper.make_tensor("w", onnx.TensorProto.FLOAT, weight.shape, weight.ravel())])
    path = tmp_path / "f.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9), path)
    assert onnx.load_from_string(in_place(path)) == onnx.load(path)  # float_data, not raw_data: unchanged
    x = np.ones((1, 2 * 3 * 32), np.float32)
    np.testing.assert_allclose(cnnc.Session(path, "cpu").run(x), x @ numpy_helper.to_array(
        onnx.load(path).graph.initializer[0]), rtol=1e-6)


@pytest.mark.parametrize("content", [b"", b"\xff\xff\xff", b"\x3a\x80\x80\x80\x80\x10"])
def test_what_is_not_a_protobuf_is_refused_by_in_place_and_reported_by_onnx_runtime(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(NotAModel):
        in_place(path)
    with pytest.raises(Exception, match="(?i)protobuf|parse|load|model|invalid"):
        cnnc.Session(path, "cpu")


def test_a_lean_session_without_glibc_still_reads_in_place(written, monkeypatch):
    from cnnc.runtime import session as module
    monkeypatch.setattr(module, "_libc", lambda: None)  # musl, macOS, Windows
    read = []
    monkeypatch.setattr(module, "_in_place", lambda path, options, real=module._in_place: read.append(path) or
                        real(path, options))
    session = cnnc.Session(written, "cpu")
    assert read == [str(written)]  # read in place all the same
    x = np.ones([1, *session.input_shape[1:]], np.float32)
    np.testing.assert_array_equal(session.run(x), cnnc.Session(written, "cpu", lean=False).run(x))
