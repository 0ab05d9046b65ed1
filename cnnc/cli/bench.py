"""`cnnc bench`: latency, throughput and GFLOP/s of a model in ONNX Runtime, a thin run over
runtime/bench.py. What is benched is printed at once, each step is shown live on a terminal's stderr,
then the results, with a note when the timings are noisy."""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import CnncError
from ..record import Record, record
from .common import JSON_HELP, WHEN_NETWORK, Command, Steps, batches, compile_options, shape, table
from .runtime import _onnx_file, _provider

if TYPE_CHECKING:
    from ..runtime.bench import Report


def bench_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("model", help="an .onnx file, or a network (compiled in memory with seed 0)")
    c.add_argument("--batch", type=batches, default=[1, 8], help="batch sizes, e.g. 1,8,32 (default 1,8)")
    _provider(c)
    c.add_argument("--threads", type=int, default=0, help="intra-op threads (default: onnxruntime's, one per core)")
    c.add_argument("--seconds", type=float, default=3.0, help="timed run time per batch size (default 3)")
    c.add_argument("--io-binding", action="store_true",
                   help="keep input and outputs on the device (with cuda: times the model, not the copies)")
    c.add_argument("--memory", action="store_true",
                   help="also the process's resident memory: once the session is created, its peak while it was "
                        "created and through each batch size")
    c.add_argument("--json", action="store_true", help=JSON_HELP)
    compile_options(c, WHEN_NETWORK)


def run_bench(args: argparse.Namespace) -> int:
    """The model's name, input and work at once, what is happening live on stderr (compiling, creating the
    session, warm-up, each batch size's bar), then the results."""
    from ..table import width_for, wrap
    model = _bench_source(args)
    if not args.json:
        head = f"{model.name}: input {shape(model.input_shape)} {model.input_type}, {_work(model.macs, model.source)}"
        print("\n".join(wrap(head, width_for(sys.stdout))), flush=True)
    from ..runtime.bench import Budget, bench  # onnxruntime: after the header
    with Steps(not args.json) as steps, _compiled(args, model, steps) as path:
        report = bench(path, args.batch, args.provider, args.threads, args.io_binding, model.macs, model.source,
                       model.name, Budget(seconds=args.seconds), steps.progress, memory=args.memory,
                       stage=steps.step)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_bench(args, report)
    return 0


@record
class _BenchModel(Record):
    """What is benched: a .onnx file's path, or a network to compile (`doc`); a display name, the input's
    shape (`N` for a free batch axis) and type, the MACs per image and where they come from."""

    path: str
    doc: Any
    name: str
    input_shape: list
    input_type: str
    macs: int | None
    source: str


def _bench_source(args: argparse.Namespace) -> _BenchModel:
    """A network's own MAC count; for a .onnx cnnc wrote, a recount from its graph (runtime/bench.py); for
    another .onnx, unknown. Nothing slow: the header is printed from it before anything is compiled."""
    from .. import api
    path = Path(args.model)
    if path.suffix != ".onnx":
        doc = api.load(args.model)
        graph = api.build(doc)
        return _BenchModel("", doc, doc.name, ["N", *graph.input_shape], "float32", graph.macs, "cnnc graph")
    return _onnx_bench_model(path)


@contextlib.contextmanager
def _compiled(args: argparse.Namespace, model: _BenchModel, steps: Steps) -> Iterator[str]:
    """The path of the .onnx to bench: a network is compiled to a temporary folder, so that the session
    reads its weights in place, as from any file (runtime/session.py)."""
    if model.doc is None:
        yield model.path
        return
    import tempfile

    from .. import api
    steps.step(f"compiling {model.name}")
    with tempfile.TemporaryDirectory(prefix="cnnc-bench-") as folder:
        written = api.compile_to(model.doc, Path(folder) / "model.onnx", dtype=args.dtype, fold_bn=args.fold_bn)
        yield str(written.path)


def _onnx_bench_model(path: Path) -> _BenchModel:
    _onnx_file(path)
    import onnx

    from ..runtime.bench import count_macs
    from ..runtime.inplace import in_place
    try:  # the graph and the weights' shapes suffice: their bytes stay in the file (runtime/inplace.py)
        proto = onnx.load_from_string(in_place(path))
    except Exception as e:  # protobuf's DecodeError and friends
        raise CnncError(f"cannot read `{path}` as an ONNX model: {str(e).splitlines()[0]}") from None
    weights = {t.name for t in proto.graph.initializer}
    first = next((i for i in proto.graph.input if i.name not in weights), None)
    tensor = first.type.tensor_type if first is not None else onnx.TypeProto.Tensor()
    dims: list = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.shape.dim]
    if dims and not isinstance(dims[0], int):
        dims[0] = "N"
    kind = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name if tensor.elem_type else "?"
    if proto.producer_name != "cnnc":
        return _BenchModel(str(path), None, path.name, dims, kind, None,
                           f"n/a (written by {proto.producer_name or 'an unknown producer'}, not cnnc)")
    return _BenchModel(str(path), None, path.name, dims, kind, count_macs(proto), "recounted from the ONNX graph")


def _work(macs: int | None, source: str) -> str:
    from ..table import si
    return f"{si(macs)} MACs per image ({source})" if macs is not None else f"MACs {source}"


NOISY = 1.5
"""p90 / median above this at any batch size: the timings were disturbed, and the note says so."""


def _print_bench(args: argparse.Namespace, report: Report) -> None:
    from ..table import width_for, wrap
    width = width_for(sys.stdout)

    def say(line: str, indent: int = 2) -> None:
        print("\n".join(wrap(line, width, indent)))
    say(f"provider: {report.provider}, threads: {args.threads or 'default'}"
        f"{', io binding' if args.io_binding else ''}; session created in {report.create_s:.2f} s")
    rows = [(r.batch, r.iterations, f"{r.median_ms:.2f}", f"{r.p90_ms:.2f}", f"{r.images_per_s:.1f}",
             f"{r.gflops:.1f}" if r.gflops is not None else "n/a") for r in report.results]
    header = ("batch", "runs", "median ms", "p90 ms", "images/s", "GFLOP/s")
    if report.rss_mb is None:
        table(header, rows, right=range(6))
    else:
        unreset = " (peaks since the process started: they cannot be reset here)"
        say(f"resident memory: {_mb(report.rss_before_mb)} MB before the session, {_mb(report.rss_mb)} MB once "
            f"it is created; peak while creating it: {_mb(report.peak_create_mb)} MB"
            f"{unreset if report.peak_since == 'process start' else ''}")
        table((*header, "peak RSS MB"), [(*row, _mb(r.peak_rss_mb)) for row, r in zip(rows, report.results)],
              right=range(7))
    note = noise_note(report)
    if note:
        say(note, indent=6)


def noise_note(report: Report) -> str | None:
    """One line when the p90 is far above the median at some batch size: the machine was busy."""
    worst = max(report.results, key=lambda r: r.p90_ms / r.median_ms, default=None)
    if worst is None or worst.p90_ms <= NOISY * worst.median_ms:
        return None
    return (f"note: this machine is noisy (at batch {worst.batch} the p90 is {worst.p90_ms / worst.median_ms:.1f}x "
            f"the median: other work, or a changing clock); the median is the figure to quote")


def _mb(value: float | None) -> str:
    return f"{value:.0f}" if value is not None else "n/a"


BENCH = Command("bench", "latency, throughput and GFLOP/s in ONNX Runtime", run_bench, arguments=bench_arguments,
                network=True)
