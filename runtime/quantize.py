"""float32 ONNX model -> int8 ONNX model for CPUs (what `cnnc quantize` writes), and how the two compare.

Static quantization with `onnxruntime.quantization`: the model is first pre-processed (`quant_pre_process`:
ONNX Runtime's basic graph optimisations, which fold each BatchNormalization into its Conv, so that the
folded weights are what gets quantized), then calibrated on the given inputs (min-max ranges of every
activation) and written in QDQ form with per-channel int8 weights and uint8 activations — the pairing the
x86 int8 kernels (AVX-512 VNNI, AVX2) run fastest; int8 activations ran slower than fp32 here. ONNX
Runtime fuses the QDQ graph into QLinearConv/QLinearAdd/... end to end: the only float tensors left are
the input (quantized once) and the classifier head below.

The head stays float where 8 bits would cost it information: a final Softmax stays float32 (quantized
probabilities have a resolution of 1/256), and the classifier — the Gemm/MatMul producing the logits — has
int8 weights and inputs like every other layer but a float output (ONNX Runtime's QGemm, accumulated in
int32 and scaled once), since re-quantized logits lose near-ties. Its weights are most of a classifier
network's last bytes (ResNet-50's: 8.2 of 32.3 MB in float32); `float_classifier=True` keeps them float32,
as cnnc did before (measured in benchmarks/RESULTS.md: the same agreement either way). `compare` reports
what the user needs to decide, from one session per model and one pass over the samples: top-1
agreement and the largest differences on the calibration inputs, each model's accuracy on a labelled set
when one is given, and, only when asked (it costs its time budget), both throughputs side by side.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .bench import LOGITS, Budget, quiet_cpu_session, side_by_side, with_logits
from .errors import QuantizeError

if TYPE_CHECKING:
    import onnx

RANDOM_INPUTS = "random: every value drawn from N(0, 1), seed 0"


@dataclass(frozen=True)
class Comparison:
    inputs: int
    top1_agreement: float | None
    """fraction of inputs whose int8 top-1 class is the float32 one; None when the output is not [N, classes]"""
    fp32_classes: int | None
    """how many distinct classes float32 predicts on these inputs (1 makes the agreement say little)"""
    max_abs_diff: float
    """largest |int8 - float32| over the first output"""
    logits_max_abs_diff: float | None
    """the same on the Softmax input, when the output is a Softmax's"""
    logits_max_abs: float | None
    batch: int | None = None
    """the throughputs' batch size; None (and None below) when they were not measured"""
    rounds: int | None = None
    fp32_images_per_s: float | None = None
    int8_images_per_s: float | None = None
    labelled: Labelled | None = None
    """both models on a labelled set, when one was given"""

    @property
    def speedup(self) -> float | None:
        if self.int8_images_per_s is None or self.fp32_images_per_s is None:
            return None
        return self.int8_images_per_s / self.fp32_images_per_s


def calibration_inputs(model_path: str | os.PathLike, directory: str | os.PathLike | None = None,
                       random: int | None = None) -> tuple[np.ndarray, str]:
    """The inputs to calibrate on, as one [N, C, H, W] float32 array, and a description of them: every
    .npy file in `directory` (each one sample [C, H, W] or a batch [n, C, H, W]; sorted by name), or that
    one .npy file, or `random` samples of N(0, 1) noise."""
    sample = sample_shape(model_path)
    if random is not None:
        values = np.random.default_rng(0).standard_normal((random, *sample), dtype=np.float32)
        return values, f"{random} {RANDOM_INPUTS}"
    source = Path(directory) if directory is not None else None
    if source is not None and source.is_file() and source.suffix == ".npy":
        files = [source]
    else:
        files = sorted(source.glob("*.npy")) if source is not None and source.is_dir() else []
    if not files:
        raise QuantizeError(f"`{directory}` is not a folder of .npy files, nor a .npy file; give calibration "
                            f"samples of shape {sample} (or a batch [n, {', '.join(map(str, sample))}] per file)")
    arrays = []
    for file in files:
        try:
            a = np.load(file, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise QuantizeError(f"cannot read `{file}` as a .npy array: {e}") from None
        if list(a.shape) == sample:
            a = a[None]
        if list(a.shape[1:]) != sample:
            raise QuantizeError(f"`{file}` has shape {list(a.shape)}; the model takes samples of shape {sample}")
        arrays.append(a.astype(np.float32, copy=False))
    values = np.concatenate(arrays)
    where = f"{len(files)} .npy files in {directory}" if len(files) > 1 or files[0] != source else f"{directory}"
    return values, f"{len(values)} samples from {where}"


def sample_shape(model_path: str | os.PathLike) -> list[int]:
    """The model's input shape without the batch axis; an error unless every one of its axes is fixed."""
    import onnx

    graph = onnx.load(os.fspath(model_path), load_external_data=False).graph
    dims = [d.dim_value if d.HasField("dim_value") else None for d in graph.input[0].type.tensor_type.shape.dim]
    sample = [d for d in dims[1:] if d is not None]
    if not sample or len(sample) < len(dims) - 1:  # no sample axes, or a symbolic one
        raise QuantizeError(f"the model's input has shape {dims}; calibration needs a fixed sample shape")
    return sample


@dataclass(frozen=True)
class Labelled:
    """Both models judged on a labelled set: how often the written model (int8 or float16) predicts
    float32's class, and each one's accuracy."""

    source: str
    samples: int
    agreement: float
    fp32_accuracy: float
    accuracy: float
    """the written model's"""


def labelled_set(path: str | os.PathLike, model_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """A .npz file's `x` (samples [N, C, H, W] for the model) and `y` (N integer class labels)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "x" not in data.files or "y" not in data.files:
                raise QuantizeError(f"`{path}` holds {sorted(data.files)}; a labelled set is a .npz with arrays "
                                    f"`x` (the samples) and `y` (their class labels)")
            x, y = data["x"], data["y"]
    except (OSError, ValueError) as e:
        raise QuantizeError(f"cannot read `{path}` as a .npz file: {e}") from None
    sample = sample_shape(model_path)
    if list(x.shape[1:]) != sample or y.shape != x.shape[:1] or not np.issubdtype(y.dtype, np.integer):
        raise QuantizeError(f"`{path}`: `x` is {list(x.shape)} and `y` {list(y.shape)} {y.dtype}; the model "
                            f"needs `x` [N, {', '.join(map(str, sample))}] and `y` [N] integer labels")
    return x.astype(np.float32, copy=False), y


def _judge(fp32: Any, int8: Any, x: np.ndarray, y: np.ndarray, source: str) -> Labelled:
    p32, p8 = (_outputs(s, "", x)[0] for s in (fp32, int8))
    if p32.ndim != 2:
        raise QuantizeError(f"the model's output has shape {list(p32.shape)}; accuracy needs [N, classes]")
    c32, c8 = p32.argmax(1), p8.argmax(1)
    return Labelled(source, len(y), float(np.mean(c32 == c8)), float(np.mean(c32 == y)), float(np.mean(c8 == y)))


def saturating_cpu() -> bool:
    """Whether this CPU is x86 without VNNI (AVX2 only, or AVX-512 without VNNI): there ONNX Runtime's
    u8 x s8 kernels add pairs of products in 16 bits (VPMADDUBSW), which saturate when activations near 255
    meet weights near +-127 — the first conv of an image network, whose inputs fill the range. 7-bit weights
    (`reduce_range`) keep every pair in range. Read from /proc/cpuinfo; False where it cannot be read."""
    import platform
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return False
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return bool(flags) and not {"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags)


def quantize(model_path: str | os.PathLike, output: str | os.PathLike, inputs: np.ndarray,
             description: str = "", metadata: dict[str, str] | None = None,
             reduce_range: bool = False, float_classifier: bool = False) -> list[str]:
    """Write the int8 model of `model_path` to `output`, calibrated on `inputs`; returns the nodes kept in
    float32 (the final Softmax, and with `float_classifier` the classifier too; otherwise the classifier
    has int8 weights and a float output). The output keeps the source's producer and metadata (cnnc's, for
    cnnc models). `reduce_range`: 7-bit weights, for CPUs without VNNI (`saturating_cpu`)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = onnx.load(os.fspath(model_path), load_external_data=False)
    if source.graph.input[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise QuantizeError("the model's input is not float32; quantize the float32 model")
    if any(t.data_type == onnx.TensorProto.FLOAT16 for t in source.graph.initializer):
        # ONNX Runtime's calibrator computes ranges in float32 only, and fails deep inside on float16
        raise QuantizeError(f"`{model_path}` computes in float16 (`--dtype float16`); int8 quantization "
                            f"starts from the float32 model: compile it without `--dtype` and quantize that")
    name = source.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(np.array_split(inputs, max(1, -(-len(inputs) // 4))))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {name: batch}

    with tempfile.TemporaryDirectory(prefix="cnnc-quantize-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # cnnc records every shape, so the symbolic pass (which needs sympy) adds nothing
        quant_pre_process(os.fspath(model_path), prepared, skip_symbolic_shape=True)
        head, extra = head_options(onnx.load(prepared), float_classifier)
        written = Path(tmp) / "int8.onnx"
        quantize_static(prepared, written, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=head,
                        reduce_range=reduce_range, extra_options=extra)
        model = onnx.load(written)
    model.producer_name, model.producer_version = source.producer_name, source.producer_version
    del model.metadata_props[:]
    for key, value in {**{p.key: p.value for p in source.metadata_props}, **(metadata or {}),
                       "cnnc.quantized": f"int8 static QDQ, per-channel {'7-bit ' if reduce_range else ''}weights; "
                                         f"calibration: {description}"}.items():
        model.metadata_props.add(key=key, value=value)
    _save(model, output)
    return head


def _head(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The nodes that make the first output, from the output back: a final Softmax, the bias Add before it
    and the Gemm/MatMul before that, each where it is there."""
    producer = {out: node for node in model.graph.node for out in node.output}
    node, head = producer.get(model.graph.output[0].name), []
    for kinds in (("Softmax",), ("Add",), ("Gemm", "MatMul")):
        if node is not None and node.op_type in kinds:
            head.append(node)
            inputs = [producer[i] for i in node.input if i in producer]
            node = inputs[0] if inputs else None
    return head


def classifier_op(model: onnx.ModelProto) -> tuple[str, str] | None:
    """The name and op type of the Gemm/MatMul producing the logits (the first output, or the input of the
    final Softmax producing it, through a bias Add); None when there is none."""
    head = _head(model)
    last = head[-1] if head else None
    return (last.name, last.op_type) if last is not None and last.op_type in ("Gemm", "MatMul") else None


def head_options(model: onnx.ModelProto, float_classifier: bool = False) -> tuple[list[str], dict[str, Any]]:
    """What `quantize_static` is told of the network's head: the nodes it leaves float32 (the final
    Softmax; the classifier too with `float_classifier`) and its extra options (the classifier's output
    kept float, QGemm's float output). ORT keys that option by op type, so it is used only where no other
    node has the classifier's type (VGG's fc6 and fc7 are Gemms too); elsewhere the classifier stays float32."""
    head = float_head(model)
    classifier = classifier_op(model)
    if classifier is None or float_classifier or sum(n.op_type == classifier[1] for n in model.graph.node) != 1:
        return head, {}
    return [n for n in head if n != classifier[0]], {"OpTypesToExcludeOutputQuantization": [classifier[1]]}


def float_head(model: onnx.ModelProto) -> list[str]:
    """The names of the final Softmax producing the first output and the Gemm/MatMul (with its bias Add)
    feeding it: the nodes left in float32. None without a final Softmax."""
    head = _head(model)
    return [n.name for n in head if n.name] if head and head[0].op_type == "Softmax" else []


def compare(fp32_path: str | os.PathLike, int8_path: str | os.PathLike, inputs: np.ndarray, batch: int = 8,
            budget: Budget | None = None, threads: int = 0, progress: Callable[[float], None] | None = None,
            labelled: tuple[np.ndarray, np.ndarray] | None = None, source: str = "") -> Comparison:
    """Agreement of the int8 model with the float32 one on `inputs`, both models' accuracy on the
    `labelled` set (samples, labels; `source` names it) when given, and with a `budget`, both throughputs
    at `batch` on the CPU, measured side by side: one session per model for all of it."""
    fp32, int8 = (quiet_cpu_session(with_logits(p).SerializeToString(), threads) for p in (fp32_path, int8_path))
    name = fp32.get_inputs()[0].name
    (y32, l32), (y8, l8) = (_outputs(s, name, inputs) for s in (fp32, int8))
    top1 = classes = None
    if y32.ndim == 2 and y32.shape[1] >= 2:
        top1 = float(np.mean(y32.argmax(1) == y8.argmax(1)))
        classes = int(np.unique(y32.argmax(1)).size)
    judged = _judge(fp32, int8, *labelled, source) if labelled is not None else None
    speed: dict[str, Any] = {}
    if budget is not None:
        x = np.resize(inputs, (batch, *inputs.shape[1:]))  # repeats the inputs when there are fewer than `batch`
        plain = [fp32.get_outputs()[0].name]
        times = side_by_side({"fp32": lambda: fp32.run(plain, {name: x}),
                              "int8": lambda: int8.run([int8.get_outputs()[0].name], {name: x})}, budget, progress)
        speed = {"batch": batch, "rounds": len(times["fp32"]),
                 **{f"{k}_images_per_s": batch / float(np.median(v)) for k, v in times.items()}}
    return Comparison(len(inputs), top1, classes, float(np.abs(y8 - y32).max()),
                      float(np.abs(l8 - l32).max()) if l32 is not None else None,
                      float(np.abs(l32).max()) if l32 is not None else None, labelled=judged, **speed)


def _outputs(session, name: str, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    name = name or session.get_inputs()[0].name
    outs = [session.run(None, {name: chunk}) for chunk in np.array_split(inputs, max(1, -(-len(inputs) // 8)))]
    first = np.concatenate([o[0] for o in outs])
    logits = np.concatenate([o[-1] for o in outs]) if len(session.get_outputs()) > 1 and \
        session.get_outputs()[-1].name.endswith(LOGITS) else None
    return first, logits


def to_float16(model_path: str | os.PathLike, output: str | os.PathLike) -> None:
    """Write `model_path` with float16 weights and computation, its input and outputs kept float32
    (onnxruntime's own converter, `onnxruntime.transformers.float16`, which leaves the ops that need float32
    in float32); producer and metadata kept, `cnnc.dtype` set."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    source = onnx.load(os.fspath(model_path))
    if any(t.data_type == onnx.TensorProto.FLOAT16 for t in source.graph.initializer):
        raise QuantizeError(f"`{model_path}` is float16 already")
    model = convert_float_to_float16(source, keep_io_types=True)
    model.producer_name, model.producer_version = source.producer_name, source.producer_version
    meta = {**{p.key: p.value for p in source.metadata_props}, "cnnc.dtype": "float16",
            "cnnc.quantized": "float16 weights and computation, float32 input and outputs"}
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    _save(model, output)


def _save(model: onnx.ModelProto, path: str | os.PathLike) -> None:
    """Atomic write: a temporary file beside `path`, then a rename."""
    from ..files import atomic_file
    with atomic_file(path, QuantizeError, "model") as f:
        f.write(model.SerializeToString())
