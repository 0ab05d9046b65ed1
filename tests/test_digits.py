"""A trained network end to end, with no torch: tests/data/digits/digits.yaml with the weights that
benchmarks/train_digits.py trained in PyTorch on scikit-learn's digits, through float32, float16 and int8.
The script recorded PyTorch's prediction for every sample of the fixed test split (test.npz `pytorch`) and
its accuracy (training.json); the compiled model must give exactly those predictions, and its float16 and
int8 forms must stay close (float16 within 0.5 points of accuracy; int8 calibrated on real training
samples: >= 99 % top-1 agreement, accuracy within 1 point), as `cnnc quantize --labelled` reports."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

import cnnc

DATA = Path(__file__).parent / "data" / "digits"
TEST = np.load(DATA / "test.npz")
RECORD = json.loads((DATA / "training.json").read_text())

pytest.importorskip("onnxruntime.quantization")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """digits.yaml compiled with the trained weights, in float32 and float16, by the CLI."""
    from cnnc.cli import main
    folder = tmp_path_factory.mktemp("digits")
    paths = {}
    for dtype in ("float32", "float16"):
        paths[dtype] = folder / f"digits_{dtype}.onnx"
        assert main(["compile", str(DATA / "digits.yaml"), "--weights", str(DATA / "digits.safetensors"),
                     "--dtype", dtype, "-o", str(paths[dtype])]) == 0
    return paths


def predict(model: Path, x: np.ndarray = TEST["x"]) -> np.ndarray:
    return cnnc.Session(str(model), "cpu").run(x).argmax(1)


def test_the_data_is_the_documented_split_and_upsampling():
    x, y, pytorch = TEST["x"], TEST["y"], TEST["pytorch"]
    assert x.shape == (RECORD["test_samples"], 1, 32, 32) and x.dtype == np.float32 and y.shape == pytorch.shape
    small = x[:, 0, ::4, ::4]  # each 4x4 block is one pixel of the 8x8 image, divided by 16
    np.testing.assert_array_equal(x[:, 0], np.kron(small, np.ones((4, 4), np.float32)))
    assert np.array_equal(small * 16, np.round(small * 16)) and small.min() == 0 and small.max() == 1
    assert sorted(np.unique(y)) == list(range(10))
    assert float(np.mean(pytorch == y)) == RECORD["test_accuracy"]
    calibration = sorted((DATA / "calibration").glob("*.npy"))
    assert 24 <= sum(len(np.load(f)) for f in calibration) <= 100  # a few dozen training samples
    assert (DATA / "digits.safetensors").stat().st_size < 400_000


def test_float32_predicts_pytorchs_class_for_every_test_sample(models):
    got = predict(models["float32"])
    assert np.array_equal(got, TEST["pytorch"]), np.flatnonzero(got != TEST["pytorch"])
    assert float(np.mean(got == TEST["y"])) >= RECORD["test_accuracy"] > 0.95


def test_float16_stays_within_half_a_point_of_float32(models):
    fp32, fp16 = (float(np.mean(predict(models[d]) == TEST["y"])) for d in ("float32", "float16"))
    assert abs(fp16 - fp32) <= 0.005


def test_quantize_dtype_float16_reports_its_accuracy_within_half_a_point(cli, models, tmp_path):
    out = tmp_path / "half.onnx"
    r = cli.run("quantize", models["float32"], "-o", out, "--dtype", "float16", "--labelled", DATA / "test.npz",
                "--seconds", "0.05", "--json")
    assert r.code == 0, r.err
    judged = json.loads(r.out)["labelled"]
    model = onnx.load(out)
    assert {t.data_type for t in model.graph.initializer} == {onnx.TensorProto.FLOAT16}
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 in and out
    assert {p.key: p.value for p in model.metadata_props}["cnnc.dtype"] == "float16"
    half = predict(out)
    assert judged["fp16_accuracy"] == float(np.mean(half == TEST["y"]))
    assert abs(judged["fp16_accuracy"] - judged["fp32_accuracy"]) <= 0.005


def test_quantize_on_real_inputs_reports_agreement_and_accuracy_on_the_labelled_set(cli, models, tmp_path):
    out = tmp_path / "digits_int8.onnx"
    r = cli.run("quantize", models["float32"], "-o", out, "--calibration", DATA / "calibration",
                "--labelled", DATA / "test.npz", "--seconds", "0.05", "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["inputs"] == f"40 samples from 4 .npy files in {DATA / 'calibration'}"
    judged = report["labelled"]
    fp32, int8 = predict(models["float32"]), predict(out)
    assert judged["samples"] == len(TEST["y"])  # what it reports is what the two models do
    assert judged["agreement"] == float(np.mean(fp32 == int8))
    assert judged["fp32_accuracy"] == float(np.mean(fp32 == TEST["y"]))
    assert judged["int8_accuracy"] == float(np.mean(int8 == TEST["y"]))
    assert judged["agreement"] >= 0.99
    assert abs(judged["int8_accuracy"] - judged["fp32_accuracy"]) <= 0.01
    text = cli.run("quantize", models["float32"], "-o", out, "--calibration", DATA / "calibration" / "batch0.npy",
                   "--labelled", DATA / "test.npz", "--seconds", "0.05", "--reduce-range", "on")
    assert text.code == 0, text.err
    assert "calibrating on 10 samples from" in text.out and "per-channel 7-bit weights" in text.out
    assert f"on the labelled set {DATA / 'test.npz'} (360 samples): top-1 agreement with float32" in text.out
    meta = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert meta["cnnc.quantized"].startswith("int8 static QDQ, per-channel 7-bit weights")


def test_a_labelled_set_without_labels_or_of_the_wrong_shape_is_refused(cli, models, tmp_path):
    np.savez(tmp_path / "nolabels.npz", x=TEST["x"])
    np.savez(tmp_path / "small.npz", x=TEST["x"][:, :, :8, :8], y=TEST["y"])
    for name, message in [("nolabels.npz", "holds ['x']; a labelled set is a .npz with arrays `x`"),
                          ("small.npz", "`x` is [360, 1, 8, 8] and `y` [360] int64; the model needs `x` [N, 1, 32"),
                          ("missing.npz", "cannot read")]:
        r = cli.run("quantize", models["float32"], "-o", tmp_path / "q.onnx", "--random", "4",
                    "--labelled", tmp_path / name)
        assert r.code == 2 and message in r.err and "Traceback" not in r.err, r.err
        assert not (tmp_path / "q.onnx").exists()


def test_run_image_classifies_digit_images_with_the_recorded_preprocessing(cli, models, tmp_path):
    from PIL import Image
    files = []
    for i in range(12):  # the 8x8 digit as a greyscale file, 0..16 scaled to 0..255
        pixels = np.round(TEST["x"][i, 0, ::4, ::4] * 255).astype(np.uint8)
        files.append(tmp_path / f"digit{i}.png")
        Image.fromarray(pixels, "L").save(files[-1])
    r = cli.run("run", models["float32"], "--image", *files, "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["preprocessing"]["interpolation"] == "nearest" and not report["random_weights"]
    top1 = [image["top"][0]["class"] for image in report["images"]]
    assert top1 == list(TEST["pytorch"][:12])


def test_int8_with_8_bit_weights_is_as_accurate_in_exact_integer_arithmetic(models, tmp_path):
    """Where the CPU has VNNI (products summed in 32 bits), `cnnc quantize` keeps 8-bit weights; onnx's
    reference evaluator computes the QDQ graph without any saturation, as VNNI does: the int8 model must
    meet the same bounds there. (On AVX2 alone, 16-bit pair sums saturate on the first conv: hence 7-bit
    weights, `--reduce-range auto`.)"""
    from onnx.reference import ReferenceEvaluator

    from cnnc.runtime.quantize import calibration_inputs, quantize
    inputs, described = calibration_inputs(models["float32"], DATA / "calibration")
    quantize(models["float32"], tmp_path / "int8.onnx", inputs, described, reduce_range=False)
    exact = ReferenceEvaluator(onnx.load(tmp_path / "int8.onnx")).run(None, {"input": TEST["x"]})[0].argmax(1)
    fp32 = predict(models["float32"])
    assert float(np.mean(exact == fp32)) >= 0.99
    assert abs(float(np.mean(exact == TEST["y"])) - float(np.mean(fp32 == TEST["y"]))) <= 0.01


@pytest.mark.parametrize("machine, flags, saturates", [
    ("x86_64", "fpu sse2 avx avx2 fma", True), ("x86_64", "avx2 avx512f avx512_vnni", False),
    ("x86_64", "avx2 avx_vnni", False), ("aarch64", "fp asimd", False)])
def test_7_bit_weights_are_chosen_for_x86_cpus_without_vnni(monkeypatch, machine, flags, saturates):
    import platform

    from cnnc.runtime import quantize as q
    monkeypatch.setattr(platform, "machine", lambda: machine)
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: f"processor\t: 0\nflags\t\t: {flags}\n")
    assert q.saturating_cpu() is saturates
