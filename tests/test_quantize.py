"""`cnnc quantize` and runtime/quantize.py on a small residual network: the int8 model runs, stays close
to float32, keeps cnnc's identity and its float head, and the comparison is reported. No speed-up is
asserted (shared machines; the benchmark in RESULTS.md measures it on ResNet-50)."""
from __future__ import annotations

import collections

import numpy as np
import onnx
import pytest

import cnnc
from cnnc.runtime.bench import Budget, count_macs
from cnnc.runtime.quantize import QuantizeError, calibration_inputs, compare, quantize

from conftest import doc

pytest.importorskip("onnxruntime.quantization")

QUICK = Budget(seconds=0.02, warmup=1, min_iterations=3, max_iterations=10)
RESIDUAL = """\
  - conv(16, 3x3, padding=same, bias=false)
  - batchnorm
  - relu
  - add: {shortcut: identity, residual: [conv(16, 3x3, padding=same), batchnorm, relu, conv(16, 1x1), batchnorm]}
  - relu
  - maxpool(2x2)
  - globalavgpool
  - predictions: [dense(10), softmax]
"""


@pytest.fixture(scope="module")
def fp32(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("q") / "small.onnx"
    cnnc.save(cnnc.compile(doc(RESIDUAL, "[3, 16, 16]"), seed=3), path)
    return str(path)


@pytest.fixture(scope="module")
def int8(fp32, tmp_path_factory) -> tuple[str, list[str], np.ndarray]:
    inputs, described = calibration_inputs(fp32, random=32)
    out = tmp_path_factory.mktemp("q") / "small_int8.onnx"
    head = quantize(fp32, out, inputs, described)
    return str(out), head, inputs


def _int8_weight(model: onnx.ModelProto, node: onnx.NodeProto) -> bool:
    weights = {t.name: t for t in model.graph.initializer}
    dq = next((n for n in model.graph.node if node.input[1] in n.output), None)
    return dq is not None and dq.op_type == "DequantizeLinear" and \
        weights[dq.input[0]].data_type == onnx.TensorProto.INT8


def test_int8_model_is_qdq_with_int8_weights_a_float_softmax_and_float_logits(int8):
    path, head, _ = int8
    model = onnx.load(path)
    ops = collections.Counter(n.op_type for n in model.graph.node)
    assert ops["QuantizeLinear"] and ops["DequantizeLinear"] and ops["Conv"] == 3
    assert head == ["predictions/softmax"]
    weights = {t.name: t for t in model.graph.initializer}
    producer = {out: n for n in model.graph.node for out in n.output}
    for conv in (n for n in model.graph.node if n.op_type == "Conv"):
        assert _int8_weight(model, conv)
        assert weights[producer[conv.input[1]].input[1]].dims == [16]  # one scale per output channel
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    assert _int8_weight(model, gemm) and softmax.input[0] == gemm.output[0]  # the logits are not re-quantized


def test_float_classifier_keeps_the_classifier_weights_in_float32(fp32, int8, tmp_path):
    _, _, inputs = int8
    out = tmp_path / "float_classifier.onnx"
    head = quantize(fp32, out, inputs, "32 random", float_classifier=True)
    assert head == ["predictions/softmax", "predictions/dense"]
    model = onnx.load(out)
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    weights = {t.name: t for t in model.graph.initializer}
    assert gemm.input[1] in weights and weights[gemm.input[1]].data_type == onnx.TensorProto.FLOAT
    assert not _int8_weight(model, gemm)


def test_int8_model_keeps_cnnc_identity_so_bench_recounts_its_macs(fp32, int8):
    model = onnx.load(int8[0])
    meta = {p.key: p.value for p in model.metadata_props}
    assert model.producer_name == "cnnc" and meta["cnnc.network"] == "t" and meta["cnnc.seed"] == "3"
    assert meta["cnnc.quantized"].startswith("int8 static QDQ, per-channel weights; calibration: 32 random")
    assert count_macs(model) == count_macs(onnx.load(fp32)) == cnnc.build(doc(RESIDUAL, "[3, 16, 16]")).macs


def test_int8_output_is_close_to_float32_and_the_comparison_is_reported(fp32, int8):
    path, _, inputs = int8
    c = compare(fp32, path, inputs, batch=4, budget=QUICK)
    assert c.inputs == 32 and 1 <= c.fp32_classes <= 10
    assert c.top1_agreement >= 0.75  # untrained and tiny: near-ties; ResNet-50's figure is in RESULTS.md
    assert c.logits_max_abs_diff <= 0.1 * c.logits_max_abs
    assert c.max_abs_diff <= 0.1
    assert c.rounds >= QUICK.min_iterations and c.fp32_images_per_s > 0 and c.int8_images_per_s > 0


def test_comparison_without_a_budget_times_nothing_and_judges_the_labelled_set_in_the_same_sessions(fp32, int8):
    path, _, inputs = int8
    labels = np.random.default_rng(1).integers(0, 10, len(inputs))
    c = compare(fp32, path, inputs, labelled=(inputs, labels), source="set.npz")
    assert c.batch is c.rounds is c.fp32_images_per_s is c.int8_images_per_s is c.speedup is None
    c32, c8 = (cnnc.Session(model, "cpu").run(inputs).argmax(1) for model in (fp32, path))  # worked out apart
    assert (c.labelled.agreement, c.labelled.fp32_accuracy, c.labelled.accuracy) == \
        (np.mean(c32 == c8), np.mean(c32 == labels), np.mean(c8 == labels))
    assert c.labelled.samples == 32 and c.labelled.agreement == c.top1_agreement


def test_calibration_from_a_folder_takes_samples_and_batches(fp32, tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.standard_normal((3, 16, 16)).astype(np.float32))
    np.save(tmp_path / "b.npy", rng.standard_normal((4, 3, 16, 16)))
    inputs, described = calibration_inputs(fp32, tmp_path)
    assert inputs.shape == (5, 3, 16, 16) and inputs.dtype == np.float32
    assert described == f"5 samples from 2 .npy files in {tmp_path}"


@pytest.mark.parametrize("make,message", [
    (lambda d: None, "is not a folder of .npy files"),
    (lambda d: np.save(d / "x.npy", np.zeros((3, 8, 8), np.float32)),
     "has shape [3, 8, 8]; the model takes samples of shape [3, 16, 16]"),
    (lambda d: (d / "x.npy").write_text("not numpy"), "cannot read"),
])
def test_bad_calibration_folders_say_what_is_wrong(fp32, tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(QuantizeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        calibration_inputs(fp32, tmp_path)


def test_cli_quantize_prints_agreement_and_times_only_when_asked(fp32, tmp_path, cli):
    r = cli.run("quantize", fp32, "-o", str(tmp_path / "q.onnx"), "--random", "8")
    assert r.code == 0, r.err
    assert "calibrating on 8 random: every value drawn from N(0, 1), seed 0" in r.out
    assert "kept in float32: predictions/softmax" in r.out and "predictions/dense" not in r.out
    assert "top-1 agreement with float32 on the 8 calibration inputs:" in r.out
    assert "on the logits" in r.out and "images/s" not in r.out and "--time" in r.out
    assert (tmp_path / "q.onnx").is_file() and not list(tmp_path.glob(".*tmp"))
    r = cli.run("quantize", fp32, "-o", str(tmp_path / "q.onnx"), "--random", "8", "--seconds", "0.05",
                "--float-classifier")
    assert r.code == 0, r.err
    assert "kept in float32: predictions/softmax, predictions/dense" in r.out and "images/s" in r.out


def test_cli_quantize_user_errors(fp32, tmp_path, cli):
    r = cli.run("quantize", "lenet5", "-o", str(tmp_path / "q.onnx"))
    assert r.code == 2 and "compile the network first" in r.err
    r = cli.run("quantize", fp32, "-o", fp32)
    assert r.code == 2 and "would overwrite" in r.err
    r = cli.run("quantize", fp32, "-o", str(tmp_path / "q.onnx"), "--calibration", str(tmp_path / "none"))
    assert r.code == 2 and "is not a folder of .npy files" in r.err
    assert not (tmp_path / "q.onnx").exists()


def test_quantizing_a_float16_model_is_refused_with_what_to_do(tmp_path, cli):
    half = tmp_path / "half.onnx"
    cnnc.save(cnnc.compile(doc(RESIDUAL, "[3, 16, 16]"), seed=3, dtype="float16"), half)
    r = cli.run("quantize", str(half), "-o", str(tmp_path / "q.onnx"), "--random", "4")
    assert r.code == 2, r.err
    assert "computes in float16" in r.err and "without `--dtype`" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "q.onnx").exists()


def test_a_network_ending_in_logits_keeps_them_float(tmp_path):
    fp32 = tmp_path / "logits.onnx"
    cnnc.save(cnnc.compile(doc(RESIDUAL.replace("[dense(10), softmax]", "dense(10)"), "[3, 16, 16]"), seed=3), fp32)
    inputs, described = calibration_inputs(fp32, random=8)
    out = tmp_path / "logits_int8.onnx"
    assert quantize(fp32, out, inputs, described) == []
    model = onnx.load(out)
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    assert _int8_weight(model, gemm) and gemm.output[0] == model.graph.output[0].name  # no Q/DQ after it


def test_hidden_dense_layers_stay_quantized_and_then_the_classifier_stays_float32(tmp_path):
    """ORT keeps outputs float by op type, not by node: with Gemms before the classifier (VGG's fc6, fc7)
    that would leave them unquantized, so there the classifier stays float32 instead and the others are
    int8 from input to output."""
    fp32 = tmp_path / "mlp.onnx"
    head_text = "[dense(32), relu, dense(32), relu, dense(10), softmax]"
    cnnc.save(cnnc.compile(doc(RESIDUAL.replace("[dense(10), softmax]", head_text), "[3, 16, 16]"), seed=3), fp32)
    inputs, described = calibration_inputs(fp32, random=8)
    out = tmp_path / "mlp_int8.onnx"
    head = quantize(fp32, out, inputs, described)
    assert head[0] == "predictions/softmax" and len(head) == 2  # the Softmax and the classifier
    model = onnx.load(out)
    consumers = collections.defaultdict(list)
    for n in model.graph.node:
        for i in n.input:
            consumers[i].append(n.op_type)
    gemms = [n for n in model.graph.node if n.op_type == "Gemm"]
    assert len(gemms) == 3
    for hidden in gemms[:2]:  # int8 weights, and the output quantized again before the ReLU's
        assert _int8_weight(model, hidden) and consumers[hidden.output[0]] == ["QuantizeLinear"]
    assert not _int8_weight(model, gemms[2])
