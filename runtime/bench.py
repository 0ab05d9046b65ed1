"""ONNX model -> latency and throughput in ONNX Runtime, per batch size (what `cnnc bench` prints).

Consumes an ONNX model (bytes or a path) and, optionally, its multiply-accumulates per image; produces a
`Report`: for each batch size the median and 90th-percentile latency of one `run` on random input, the
throughput (images/s at the median) and the achieved GFLOP/s (2 FLOPs per MAC); also the seconds the
session took to create and, with `memory`, the process's resident memory once it is created, its peak
while it was created, and its peak through each batch size's runs (runtime/memory.py).

Each batch size runs a few warm-up iterations (not timed: first runs allocate and pick kernels), then
timed iterations until both `min_iterations` and `seconds` are reached, or `max_iterations` is — so a run
takes about `seconds` per batch size, however fast or slow the model. Runs are sequential: throughput
here is one stream's, not a server's.

`side_by_side` times several models in one process, taking turns within each round, for comparisons
(`cnnc quantize`, benchmarks/); their sessions come from `quiet_cpu_session`, whose idle threads sleep.

`count_macs` recounts the MACs of a model from its ONNX graph: Conv (QLinearConv, ConvInteger) and
Gemm/MatMul with a constant weight, the shapes taken from ONNX shape inference. For a model cnnc wrote,
that is the Keras-convention count `cnnc summary` prints (the ops cnnc counts are exactly those), except
for LeNet-1998's trainable subsampling, which is lowered to a depthwise Conv and so is counted here.
"""
from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable, TypeGuard

import numpy as np

from .errors import BenchError
from .memory import Probe
from .session import Provider, Session

if TYPE_CHECKING:
    import onnx

# ONNX tensor element types -> numpy, for the random input (fp16 models take fp16 input).
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


@dataclass(frozen=True)
class Budget:
    """How long each batch size runs."""

    seconds: float = 3.0
    """timed run time per batch size, once `min_iterations` are done"""
    warmup: int = 3
    """untimed iterations first"""
    min_iterations: int = 5
    max_iterations: int = 1000


@dataclass(frozen=True)
class BatchResult:
    batch: int
    iterations: int
    median_ms: float
    p90_ms: float
    min_ms: float
    images_per_s: float
    gflops: float | None
    """achieved GFLOP/s at the median latency; None when the MAC count is unknown"""
    peak_rss_mb: float | None = None
    """with `memory`: the process's peak resident memory through this batch size's runs"""


@dataclass(frozen=True)
class Report:
    model: str
    provider: str
    threads: int
    """intra-op threads asked for; 0 is onnxruntime's default (one per physical core)"""
    io_binding: bool
    input_shape: list
    input_type: str
    macs: int | None
    """multiply-accumulates per image"""
    macs_source: str
    """where `macs` comes from, or why it is unknown"""
    results: tuple[BatchResult, ...]
    create_s: float = 0.0
    """seconds to create the session (load, optimise, prepack)"""
    rss_before_mb: float | None = None
    """with `memory`: the process's resident memory before the session is created"""
    rss_mb: float | None = None
    """with `memory`: the process's resident memory once the session is created"""
    peak_create_mb: float | None = None
    """with `memory`: its peak while the session was created"""
    peak_since: str | None = None
    """with `memory`: what the peaks count from ('the mark': each phase's own; or 'process start')"""

    def to_dict(self) -> dict:
        return {**asdict(self), "results": [asdict(r) for r in self.results]}


Progress = Callable[[int, float], None]
"""Called as (batch, fraction of that batch size's budget done, 0..1)."""
Stage = Callable[[str, int | None], None]
"""Called as each step begins: ("session", None) before the session is created, ("warm-up", batch)
before a batch size's untimed runs; its timed runs report through `Progress`."""


def bench(model: bytes | str, batches: list[int], provider: Provider = "auto", threads: int = 0,
          io_binding: bool = False, macs: int | None = None, macs_source: str = "", name: str = "",
          budget: Budget = Budget(), progress: Progress | None = None, memory: bool = False,
          stage: Stage | None = None) -> Report:
    """Time `model` at each batch size in `batches` on `provider` (and measure memory, with `memory`)."""
    stage = stage or (lambda what, batch: None)
    stage("session", None)
    probe = Probe()
    before = probe.rss_mb() if memory else None
    if memory:
        probe.mark()
    start = time.perf_counter()
    session = Session(model, provider, threads)
    create_s = time.perf_counter() - start
    rss, peak_create = (probe.rss_mb(), probe.peak_mb()) if memory else (None, None)
    shape, dtype = session.input_shape, session.input.type
    if dtype not in _DTYPES:
        raise BenchError(f"the model's input `{session.input.name}` is {dtype}; bench feeds float inputs only")
    rng = np.random.default_rng(0)
    results = []
    for batch in batches:
        x = _input(shape, batch, _DTYPES[dtype], rng)
        step = _binding_step(session, x) if io_binding else _plain_step(session, x)
        if memory:
            probe.mark()
        stage("warm-up", batch)
        times = side_by_side({"model": step}, budget, functools.partial(progress, batch) if progress else None)
        median = float(np.median(times["model"]))
        results.append(BatchResult(
            batch, len(times["model"]), median * 1e3, float(np.percentile(times["model"], 90)) * 1e3,
            min(times["model"]) * 1e3, batch / median,
            2 * macs * batch / median / 1e9 if macs is not None else None, probe.peak_mb() if memory else None))
    return Report(name, session.provider, threads, io_binding, [d if isinstance(d, int) else "N" for d in shape],
                  dtype, macs, macs_source if macs is not None else (macs_source or "unknown"), tuple(results),
                  create_s, before, rss, peak_create, probe.since if memory else None)


def _input(shape: list, batch: int, dtype, rng: np.random.Generator) -> np.ndarray:
    if isinstance(shape[0], int) and shape[0] != batch:
        raise BenchError(f"the model's input has a fixed batch size of {shape[0]}; cannot run batch {batch}")
    dims = shape[1:]
    if not all(isinstance(d, int) for d in dims):
        raise BenchError(f"the model's input shape {shape} has symbolic dimensions besides the batch axis")
    return rng.standard_normal((batch, *dims)).astype(dtype)


def _plain_step(session: Session, x: np.ndarray) -> Callable[[], object]:
    inner, feed, names = session.inner, {session.input.name: x}, session.output_names
    return lambda: inner.run(names, feed)


def _binding_step(session: Session, x: np.ndarray) -> Callable[[], object]:
    """Input copied to the device once, outputs left there: times the model, not the PCIe transfers."""
    import onnxruntime as ort

    inner = session.inner
    device = "cuda" if session.provider == "cuda" else "cpu"
    binding, value = inner.io_binding(), ort.OrtValue.ortvalue_from_numpy(x, device, 0)
    binding.bind_ortvalue_input(session.input.name, value)
    for name in session.output_names:
        binding.bind_output(name, device)
    return lambda: (value, inner.run_with_iobinding(binding))  # `value` kept alive with the step


def count_macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates per image of the model's Conv and Gemm/MatMul nodes (see the module doc)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    shapes: dict[str, list[int | None]] = {
        v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
        for v in [*g.input, *g.value_info, *g.output]}
    shapes.update({t.name: list(t.dims) for t in g.initializer})
    constant = {t.name for t in g.initializer} | {out for n in g.node if n.op_type == "Constant" for out in n.output}
    producer = {out: n for n in g.node for out in n.output}
    total = 0
    for node in g.node:
        weight_at = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "Gemm": 1, "MatMul": 1,
                     "MatMulInteger": 1, "QLinearMatMul": 3}.get(node.op_type)
        if weight_at is None:
            continue
        w, y = shapes.get(node.input[weight_at]), shapes.get(node.output[0])
        if not w or not y:
            continue
        out = y[1:]  # the batch axis may be symbolic
        if not _known(w) or not _known(out):
            continue
        if node.op_type in ("Conv", "ConvInteger", "QLinearConv"):
            total += math.prod(out) * math.prod(w[1:])  # Cout*H*W x Cin/group*kh*kw
        elif _is_constant(node.input[weight_at], constant, producer) and len(w) == 2:
            total += w[0] * w[1] * math.prod(out[:-1])  # K x N per output row, transposed or not
    return total


def _known(dims: list[int | None]) -> TypeGuard[list[int]]:
    return None not in dims


def _is_constant(name: str, constant: set[str], producer: dict) -> bool:
    """A weight: an initializer, possibly behind DequantizeLinear/Transpose/Reshape/Cast."""
    while name not in constant:
        node = producer.get(name)
        if node is None or node.op_type not in ("DequantizeLinear", "Transpose", "Reshape", "Cast", "Identity"):
            return False
        name = node.input[0]
    return True


def quiet_cpu_session(model: bytes | str, threads: int = 0):
    """A CPU `onnxruntime.InferenceSession` whose idle threads sleep instead of spinning.

    For timing several sessions in one process: a pool keeps spinning for a while after its run and
    takes the cores from the next session's pool. Measured on 2 cores, ResNet-50 fp32 vs int8 at batch 8
    taking turns: 161 vs 67 ms (2.4x) with spinning, 133 vs 41 ms (3.2x) without or with a pause."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def side_by_side(steps: dict[str, Callable[[], object]], budget: Budget = Budget(),
                 progress: Callable[[float], None] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each step, the steps taking turns within every round so that machine noise
    hits them alike; rounds continue until `budget` (its limits count rounds). Quote ratios of medians."""
    for step in steps.values():
        for _ in range(budget.warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    start = time.perf_counter()
    rounds = 0
    while True:
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
        rounds += 1
        done = max(min(rounds / budget.min_iterations, (time.perf_counter() - start) / budget.seconds),
                   rounds / budget.max_iterations)
        if progress:
            progress(min(done, 1.0))
        if done >= 1.0:
            return times


LOGITS = "/cnnc_logits"


def with_logits(model: onnx.ModelProto | str | os.PathLike) -> onnx.ModelProto:
    """The model with the input of its final Softmax as an extra, last float32 output (named after that
    tensor + LOGITS); the model itself when its first output is not a Softmax's (possibly cast, as in a
    float16 model with float32 outputs, or quantized). Comparisons need the logits: an untrained
    network's softmax is often saturated to 0 and 1."""
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(os.fspath(model))
    producer = {out: node for node in model.graph.node for out in node.output}
    node = producer.get(model.graph.output[0].name)
    while node is not None and node.op_type in ("Cast", "Identity", "QuantizeLinear", "DequantizeLinear"):
        node = producer.get(node.input[0])
    if node is not None and node.op_type == "Softmax":
        logits = node.input[0] + LOGITS
        model.graph.node.append(onnx.helper.make_node("Cast", [node.input[0]], [logits], name=logits,
                                                      to=onnx.TensorProto.FLOAT))
        model.graph.output.append(onnx.helper.make_tensor_value_info(logits, onnx.TensorProto.FLOAT, None))
    return model
