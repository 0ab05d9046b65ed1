"""Other frameworks' checkpoints, read without them: PyTorch `.pth` (a zip of a pickle, unpickled with
nothing but tensors admitted), torchvision-named `.safetensors`, Keras `.weights.h5` (h5py), mapped onto a
shipped network's parameters from structure alone. The names, shapes and true counterparts of real
checkpoints (torchvision resnet18 and mobilenet_v3_small, Keras Xception) are recorded in
tests/data/checkpoints/ by tests/reference/make_checkpoint_fixtures.py; these tests write such files with
distinct values in every tensor and check that each parameter receives its own."""
from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

import cnnc
from cnnc.compiler import build_full, checkpoint, view
from cnnc.compiler.errors import WeightsError
from cnnc.dsl.document import load_text

DATA = Path(__file__).parent / "data" / "checkpoints"


# ---- writing a PyTorch checkpoint as torch.save does, without torch --------------------------------------
def _string(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE


def _int(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)  # BININT


def _tuple(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"  # MARK ... TUPLE


ORDERED_DICT = b"ccollections\nOrderedDict\n)R"  # GLOBAL, EMPTY_TUPLE, REDUCE


def torch_pickle(tensors: dict[str, np.ndarray], extra: bytes = b"") -> tuple[bytes, list[bytes]]:
    """The data.pkl of `torch.save(state_dict)` and its storages: an OrderedDict of
    `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`."""
    body, storages = [], []
    for i, (name, value) in enumerate(tensors.items()):
        value = np.ascontiguousarray(value, "<f4")
        pid = _tuple([_string("storage"), b"ctorch\nFloatStorage\n", _string(str(i)), _string("cpu"), _int(value.size)])
        stride = [int(np.prod(value.shape[d + 1:])) for d in range(value.ndim)]
        args = _tuple([pid + b"Q", _int(0), _tuple([_int(d) for d in value.shape]), _tuple([_int(s) for s in stride]),
                       b"\x89", ORDERED_DICT])
        body.append(_string(name) + b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"R")
        storages.append(value.tobytes())
    return b"\x80\x02" + ORDERED_DICT + b"(" + b"".join(body) + extra + b"u.", storages


def write_pth(path: Path, tensors: dict[str, np.ndarray], pickled: bytes | None = None) -> None:
    data, storages = torch_pickle(tensors)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickled if pickled is not None else data)
        z.writestr("archive/byteorder", "little")
        for i, raw in enumerate(storages):
            z.writestr(f"archive/data/{i}", raw)
        z.writestr("archive/version", "3\n")


def fixture(name: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Distinct random tensors under a real checkpoint's names and shapes, and each one's true cnnc name."""
    rows = json.loads((DATA / name).read_text())["tensors"]
    rng = np.random.default_rng(0)
    tensors = {r["name"]: rng.standard_normal(r["shape"]).astype(np.float32) for r in rows if r["cnnc"]}
    return tensors, {r["name"]: r["cnnc"] for r in rows if r["cnnc"]}


def assigned(network: str, weights, **kw) -> dict[str, np.ndarray]:
    full = build_full(cnnc.load(network))
    values, _ = checkpoint.assign(full, view(full, False), weights, **kw)
    return {p.name: v for p, v in values}


@pytest.mark.parametrize("network", ["resnet18", "mobilenet_v3_small"])
@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_a_torchvision_checkpoint_maps_onto_its_network_by_structure(tmp_path, network, suffix):
    tensors, truth = fixture(f"{network}_torchvision.json")
    path = tmp_path / f"{network}{suffix}"
    if suffix == ".pth":
        write_pth(path, tensors)
    else:  # safetensors files sort their names: the model's order is not in them
        checkpoint.write(path, sorted(tensors.items()))
    got = assigned(network, path)
    assert len(got) == len(truth)
    for source, target in truth.items():
        assert np.array_equal(got[target].ravel(), tensors[source].ravel()), (source, target)


def test_the_pth_reader_gives_torch_s_tensors_and_skips_the_integer_counters(tmp_path):
    tensors = {"a.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(1, np.float32)}
    write_pth(tmp_path / "t.pth", tensors)
    got = checkpoint.load(tmp_path / "t.pth").tensors
    assert list(got) == ["a.weight", "b"] and np.array_equal(got["a.weight"], tensors["a.weight"])


def test_a_hostile_pth_is_refused_and_nothing_in_it_runs(tmp_path):
    marker = tmp_path / "ran"
    evil = b"cos\nsystem\n" + _string(f"touch {marker}") + b"\x85R"  # os.system("touch ...")
    for pickled in [b"\x80\x02" + evil + b".", torch_pickle({"w": np.zeros(2, np.float32)}, _string("x") + evil)[0]]:
        write_pth(tmp_path / "evil.pth", {"w": np.zeros(2, np.float32)}, pickled)
        with pytest.raises(WeightsError, match="refers to `os.system`.*runs nothing"):
            checkpoint.load(tmp_path / "evil.pth")
        assert not marker.exists()


@pytest.mark.parametrize(("content", "says"), [
    (b"not a zip", "not a PyTorch zip checkpoint"),
    (None, "no ARCHIVE/data.pkl"),
])
def test_a_file_that_is_no_pth_is_a_clear_error(tmp_path, content, says):
    path = tmp_path / "x.pth"
    if content is None:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("other.txt", "hello")
    else:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match=says):
        checkpoint.load(path)


def test_keras_weights_h5_map_onto_xception_in_cnnc_s_layouts(tmp_path):
    h5py = pytest.importorskip("h5py")
    rows = json.loads((DATA / "xception_keras.json").read_text())["datasets"]
    rng = np.random.default_rng(1)
    path = tmp_path / "xception.weights.h5"
    written = {}
    with h5py.File(path, "w") as f:
        for r in rows:
            written[(r["layer"], r["var"])] = value = rng.standard_normal(r["shape"]).astype(np.float32)
            f.create_dataset(f"layers/{r['layer']}/vars/{r['var']}", data=value)
    got = assigned("xception", path)
    for r in rows:
        value, ours = written[(r["layer"], r["var"])], got[r["cnnc"]]
        if value.ndim == 4 and ours.shape[1] == 1 and value.shape[3] == 1:  # depthwise (kh, kw, C, 1)
            expected = value.transpose(2, 3, 0, 1).reshape(ours.shape)
        elif value.ndim == 4:  # HWIO
            expected = value.transpose(3, 2, 0, 1)
        else:
            expected = value.T
        assert np.array_equal(ours, expected), r


def test_a_checkpoint_that_does_not_fit_lists_what_is_left_with_candidates(tmp_path, cli):
    tensors, _ = fixture("resnet18_torchvision.json")
    del tensors["layer2.0.conv1.weight"]
    tensors["extra.weight"] = np.zeros((3, 3), np.float32)
    write_pth(tmp_path / "r.pth", tensors)
    r = cli.run("compile", "resnet18", "--weights", str(tmp_path / "r.pth"), "-o", str(tmp_path / "x.onnx"))
    assert r.code == 2 and "Traceback" not in r.err
    for needle in ["does not fit the network", "checkpoint extra: weight [3, 3]", "network conv3/",
                   "weight [128, 64, 3, 3]", "--weights-map FILE"]:
        assert needle in r.err, r.err
    assert not (tmp_path / "x.onnx").exists()


def test_a_torchvision_checkpoint_given_to_cnnc_s_own_flavour_names_the_torchvision_one(tmp_path, cli):
    tensors, _ = fixture("resnet18_torchvision.json")
    write_pth(tmp_path / "r.pth", tensors)
    r = cli.run("compile", "alexnet", "--weights", str(tmp_path / "r.pth"), "-o", str(tmp_path / "x.onnx"))
    assert r.code == 2 and "help: `alexnet` is cnnc's own flavour; a torchvision checkpoint fits " \
                           "`alexnet_torchvision`" in r.err, r.err


def test_weights_map_renames_exactly_or_by_pattern_and_drops(tmp_path):
    tensors, truth = fixture("resnet18_torchvision.json")
    renamed = {f"backbone.{k}" if k.startswith("layer") else k: v for k, v in tensors.items()}
    renamed["head_extra.weight"] = np.zeros(4, np.float32)
    path = tmp_path / "r.safetensors"
    checkpoint.write(path, renamed.items())
    (tmp_path / "map.yaml").write_text("head_extra.*: null\nfc.weight: predictions/dense.weight\n")
    got = assigned("resnet18", path, weights_map=tmp_path / "map.yaml")
    for source, target in truth.items():
        assert np.array_equal(got[target].ravel(), tensors[source].ravel())
    (tmp_path / "bad.yaml").write_text("fc.weight: no/such.weight\n")
    with pytest.raises(WeightsError, match="not a parameter of the network"):
        assigned("resnet18", path, weights_map=tmp_path / "bad.yaml")


def test_weights_map_shows_the_mapping_as_a_table_and_as_json(tmp_path, cli):
    tensors, truth = fixture("resnet18_torchvision.json")
    write_pth(tmp_path / "r.pth", tensors)
    r = cli.run("weights", "map", str(tmp_path / "r.pth"), "resnet18")
    assert r.code == 0 and "layer1.0.conv1.weight" in r.out and f"{len(truth)} tensors mapped" in r.out
    r = cli.run("weights", "map", str(tmp_path / "r.pth"), "resnet18", "--json")
    rows = json.loads(r.out)["tensors"]
    assert {row["checkpoint"]: row["cnnc"] for row in rows} == truth
    assert {row["how"] for row in rows} <= {"structure", "order"}
    assert cli.run("weights", "map", str(tmp_path / "r.pth")).code == 2


def test_compiled_with_a_foreign_checkpoint_the_model_holds_its_values(tmp_path, cli):
    tensors, truth = fixture("resnet18_torchvision.json")
    write_pth(tmp_path / "r.pth", tensors)
    r = cli.run("compile", "resnet18", "--weights", str(tmp_path / "r.pth"), "-o", str(tmp_path / "r.onnx"))
    assert r.code == 0, r.err
    import onnx
    from onnx import numpy_helper
    model = onnx.load(tmp_path / "r.onnx")
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert np.array_equal(inits[truth["fc.weight"]], tensors["fc.weight"])
    assert {p.key: p.value for p in model.metadata_props}["cnnc.weights"] == "r.pth"


def test_keras_files_without_h5py_say_how_to_install_it(monkeypatch, tmp_path):
    import builtins
    real = builtins.__import__

    def no_h5py(name, *args, **kwargs):
        if name == "h5py":
            raise ImportError("no h5py")
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_h5py)
    (tmp_path / "w.weights.h5").write_bytes(b"x")
    with pytest.raises(WeightsError, match="needs h5py: pip install h5py"):
        checkpoint.load(tmp_path / "w.weights.h5")


def test_a_dense_layer_after_a_flatten_gets_keras_rows_in_cnnc_s_order():
    """Keras flattens a map channels-last (H, W, C), cnnc channels-first: the dense weight read from a
    Keras file computes the same outputs on the same map once `flatten_reorder` has reordered it."""
    from cnnc.compiler.kerasfile import flatten_reorder

    graph = cnnc.build(load_text("network: t\ninput: [3, 2, 4]\nlayers:\n  - flatten\n  - fc: dense(5)\n"))
    rng = np.random.default_rng(0)
    keras_weight = rng.standard_normal((5, 24)).astype(np.float32)  # cnnc's (out, in) rows, in H, W, C order
    x = rng.standard_normal((3, 2, 4)).astype(np.float32)
    converted, note = flatten_reorder(graph)(keras_weight, "fc.weight")
    assert "H, W, C" in note
    np.testing.assert_allclose(converted @ x.reshape(-1), keras_weight @ x.transpose(1, 2, 0).reshape(-1), rtol=1e-5)
    assert not np.allclose(converted, keras_weight)  # the reorder did something
    unchanged, note = flatten_reorder(graph)(rng.standard_normal((5, 7)).astype(np.float32), "fc.weight")
    assert note == "" and unchanged.shape == (5, 7)  # not the flattened map's size: left as it is
