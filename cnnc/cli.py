"""The `cnnc` command: wires the API's stages to the terminal. Exit 0 ok, 2 user error, 1 internal."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from . import __version__

USER_ERROR, INTERNAL_ERROR = 2, 1


def _interrupted(signum, frame):
    raise KeyboardInterrupt  # unwinds through `finally`, so no temporary file is left behind


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return USER_ERROR
    import warnings

    from .compiler.limits import Limits, limits
    from .compiler.resolve import CompileWarning
    from .dsl.errors import CnncError
    warnings.showwarning = _show_warning
    warnings.simplefilter("default", CompileWarning)
    try:
        try:
            chosen = Limits.parse(getattr(args, "limit", None) or [])
        except ValueError as e:
            raise CnncError(f"--limit {e}") from None
        with limits(chosen):
            return args.run(args) or 0
    except CnncError as e:
        print(str(e), file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # anything else is a bug in cnnc
        print(f"cnnc: internal error: {type(e).__name__}: {e}\nThis is a bug in cnnc {__version__}; please "
              f"report it with the command and the file that caused it.", file=sys.stderr)
        return INTERNAL_ERROR


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    from .compiler.resolve import CompileWarning
    text = str(message) if isinstance(message, CompileWarning) else f"warning: {message}"
    print(text, file=sys.stderr)


LIMIT_HELP = ("raise or lower a limit, NAME=VALUE (repeatable): repeat, layers, calls, depth, params, "
              "activation_mb; see docs/language.md, Limits")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cnnc", description="Compile convolutional network descriptions to ONNX.")
    p.add_argument("--version", action="version", version=f"cnnc {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    net_help = "a network file, or the name of a shipped architecture (see `cnnc list`)"

    c = sub.add_parser("list", help="the shipped architectures")
    c.set_defaults(run=cmd_list)

    c = sub.add_parser("check", help="every static check, without making weights")
    c.add_argument("net", help=net_help)
    c.set_defaults(run=cmd_check)

    aux_help = "keep the train-only heads (`aux:`), as extra outputs named after them"
    weights_help = "load every parameter by name from a .safetensors or .npz file (see `cnnc weights`)"

    c = sub.add_parser("summary", help="the layers grouped by block: shapes, parameters, MACs, totals")
    c.add_argument("net", help=net_help)
    c.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    c.add_argument("--aux", action="store_true", help="list the train-only heads' layers too")
    c.add_argument("--depth", type=_depth, default=None, metavar="N",
                   help="show N levels of the block hierarchy, deeper ones summed into their block "
                        "(default: all)")
    c.add_argument("--no-fold", action="store_true", help="list every repeat instead of folding identical "
                                                          "ones into one row (`inception_a ×3`)")
    c.set_defaults(run=cmd_summary)

    c = sub.add_parser("expand", help="the network with every block call and repeat written out, as YAML")
    c.add_argument("net", help=net_help)
    c.set_defaults(run=cmd_expand)

    c = sub.add_parser("draw", help="an SVG picture of the network, or of one block inside it")
    c.add_argument("net", help=net_help)
    c.add_argument("-o", "--output", help="the .svg file to write (default: NAME.svg, or NAME_BLOCK.svg)")
    c.add_argument("--expand", metavar="BLOCK",
                   help="draw this block's inside (branches side by side), as first called in the network; "
                        "also a module's name, e.g. mixed5")
    c.set_defaults(run=cmd_draw)

    c = sub.add_parser("schema", help="the JSON Schema of network files, for editor completion")
    c.set_defaults(run=cmd_schema)

    c = sub.add_parser("export-triton", help="write a Triton Inference Server model repository entry")
    c.add_argument("net", help=net_help)
    c.add_argument("repository", metavar="REPO_DIR", help="the model repository folder (made if missing)")
    c.add_argument("--gpu", action="store_true", help="run the instance on the GPU (default: the CPU)")
    c.add_argument("--max-batch", type=_positive, default=8, help="Triton's max_batch_size (default 8)")
    c.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")
    c.add_argument("--weights", help=weights_help)
    c.set_defaults(run=cmd_export_triton)

    c = sub.add_parser("compile", help="write an ONNX model")
    c.add_argument("net", help=net_help)
    c.add_argument("-o", "--output", help="the .onnx file to write (default: NAME.onnx)")
    c.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")
    c.add_argument("--weights", help=weights_help)
    c.add_argument("--aux", action="store_true", help=aux_help)
    _compile_options(c)
    c.set_defaults(run=cmd_compile)

    c = sub.add_parser("weights", help="write the named initial weights: the template for --weights")
    c.add_argument("net", help=net_help)
    c.add_argument("-o", "--output", required=True, help="a .safetensors or .npz file")
    c.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")
    c.set_defaults(run=cmd_weights)

    c = sub.add_parser("run", help="run a model in ONNX Runtime")
    c.add_argument("model", help="an .onnx file (or a network, compiled in memory)")
    c.add_argument("--batch", type=_positive, default=1, help="batch size for random input (default 1)")
    c.add_argument("--provider", choices=["auto", "cuda", "cpu"], default="auto",
                   help="auto: CUDA when it really initialises, else the CPU")
    c.add_argument("--input", help="a .npy file with the input batch, instead of random data")
    c.add_argument("--seed", type=int, default=0, help="seed of the random input (default 0)")
    c.add_argument("--weights", help=weights_help + " (when MODEL is a network)")
    c.add_argument("--aux", action="store_true", help=aux_help + " (when MODEL is a network)")
    _compile_options(c, " (when MODEL is a network)")
    c.set_defaults(run=cmd_run)

    c = sub.add_parser("bench", help="latency, throughput and GFLOP/s in ONNX Runtime")
    c.add_argument("model", help="an .onnx file, or a network (compiled in memory with seed 0)")
    c.add_argument("--batch", type=_batches, default=[1, 8], help="batch sizes, e.g. 1,8,32 (default 1,8)")
    c.add_argument("--provider", choices=["auto", "cuda", "cpu"], default="auto",
                   help="auto: CUDA when it really initialises, else the CPU")
    c.add_argument("--threads", type=int, default=0, help="intra-op threads (default: onnxruntime's, one per core)")
    c.add_argument("--seconds", type=float, default=3.0, help="timed run time per batch size (default 3)")
    c.add_argument("--io-binding", action="store_true",
                   help="keep input and outputs on the device (with cuda: times the model, not the copies)")
    c.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    _compile_options(c, " (when MODEL is a network)")
    c.set_defaults(run=cmd_bench)

    c = sub.add_parser("quantize", help="int8 model for CPUs (static, QDQ), compared with the original")
    c.add_argument("model", help="a float32 .onnx file")
    c.add_argument("-o", "--output", required=True, help="the int8 .onnx file to write")
    source = c.add_mutually_exclusive_group()
    source.add_argument("--calibration", metavar="DIR", help="a folder of .npy input samples to calibrate on")
    source.add_argument("--random", type=_positive, default=64, metavar="N",
                        help="calibrate on N random inputs, N(0, 1) noise (default 64)")
    c.add_argument("--batch", type=_positive, default=8, help="batch size of the throughput comparison (default 8)")
    c.add_argument("--seconds", type=float, default=5.0, help="time for the throughput comparison (default 5)")
    c.set_defaults(run=cmd_quantize)
    for name, command in sub.choices.items():
        if name in NETWORK_COMMANDS:
            command.add_argument("--limit", action="append", metavar="NAME=VALUE", help=LIMIT_HELP)
    return p


NETWORK_COMMANDS = ("check", "summary", "expand", "draw", "export-triton", "compile", "weights", "run", "bench")


def _compile_options(c: argparse.ArgumentParser, note: str = "") -> None:
    """--dtype and --fold-bn, for the commands that compile a network."""
    c.add_argument("--dtype", choices=["float32", "float16"], default="float32",
                   help="the weights' and the computation's type (default float32); a float16 model still "
                        "takes and gives float32" + note)
    c.add_argument("--fold-bn", action="store_true",
                   help="fold each batchnorm into the conv before it (inference only: fewer nodes, smaller "
                        "file)" + note)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _batches(text: str) -> list[int]:
    return [_positive(part) for part in text.split(",")]


def cmd_list(args) -> int:
    from . import api
    from .architectures import names
    rows = []
    for name in names():
        graph = api.build(name)
        rows.append((name, "x".join(map(str, graph.input_shape)), f"{graph.counts()['total']:,}",
                     f"{graph.macs / 1e9:.3f} G"))
    _table(("name", "input", "params", "MACs"), rows, right={2, 3})
    return 0


def cmd_check(args) -> int:
    from . import api
    graph = api.build(args.net)
    counts = graph.counts()
    print(f"{graph.name}: ok — {len(graph.layers)} layers, {_shape(graph.input_shape)} -> "
          f"{_shape(graph.output_shape)}, {counts['total']:,} parameters, {graph.macs:,} MACs")
    return 0


def cmd_summary(args) -> int:
    from . import api
    info = api.summary(api.build(args.net, aux=True) if args.aux else args.net)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    from .summary_table import origins_of, print_summary, rows
    table = rows(info["layers"], origins_of(api.load(args.net)), args.depth, fold=not args.no_fold)
    print_summary(info, table)
    return 0


def _depth(text: str) -> int | None:
    from .summary_table import parse_depth
    try:
        return parse_depth(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a level (1, 2, ...) or `all`, got {text!r}") from None


def cmd_expand(args) -> int:
    from . import api
    from .expand import expand
    sys.stdout.write(expand(api.load(args.net)))
    return 0


def cmd_draw(args) -> int:
    from . import api
    from .draw import render, write
    doc = api.load(args.net)
    svg = render(doc, expand=args.expand)
    out = Path(args.output or (f"{doc.name}_{args.expand.replace('/', '_')}.svg" if args.expand
                               else f"{doc.name}.svg"))
    write(svg, out)
    print(f"wrote {out} ({len(svg.encode()) / 1e3:.1f} kB)")
    return 0


def cmd_schema(args) -> int:
    from .dsl.schema import json_schema_text
    sys.stdout.write(json_schema_text())
    return 0


def cmd_export_triton(args) -> int:
    from . import api
    from .triton import export
    doc = api.load(args.net)
    model = api.compile(doc, seed=args.seed, weights=args.weights)
    weights = f"weights from {Path(args.weights).name}" if args.weights else f"seed {args.seed}"
    folder = export(model, doc.name, args.repository, args.max_batch, args.gpu,
                    f"Triton model configuration, written by cnnc {__version__} from {doc.source.file} ({weights}).")
    print(f"wrote {folder / '1' / 'model.onnx'} and {folder / 'config.pbtxt'} "
          f"({'GPU' if args.gpu else 'CPU'} instance, max batch {args.max_batch})")
    return 0


def cmd_compile(args) -> int:
    from . import api
    doc = api.load(args.net)
    out = Path(args.output or f"{doc.name}.onnx")
    with _ProgressBar("writing weights") as bar:
        written = api.compile_to(doc, out, seed=args.seed, aux=args.aux, weights=args.weights, dtype=args.dtype,
                                 fold_bn=args.fold_bn, progress=bar.update)
    files = f"{out} and its weights {written.data_path}" if written.data_path else f"{out}"
    print(f"wrote {files} ({written.size / 1e6:.1f} MB; outputs: {', '.join(written.outputs)})")
    return 0


class _ProgressBar:
    """A bar on stderr for writes of more than 100 MB, only when stderr is a terminal (rich, imported then)."""

    def __init__(self, what: str, threshold: int = 100 << 20):
        self.what, self.threshold = what, threshold
        self.progress = self.task = None

    def __enter__(self) -> _ProgressBar:
        return self

    def update(self, done: int, total: int) -> None:
        if self.progress is None:
            if total < self.threshold or not sys.stderr.isatty():
                return
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
            self.progress = Progress(f"[progress.description]{self.what}", BarColumn(), DownloadColumn(),
                                     TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self.progress.start()
            self.task = self.progress.add_task(self.what, total=total)
        self.progress.update(self.task, completed=done)

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()


def cmd_weights(args) -> int:
    from . import api
    from .compiler import checkpoint
    doc = api.load(args.net)
    tensors = list(api.initial_weights(doc, args.seed))
    checkpoint.write(args.output, tensors, {"cnnc.network": doc.name, "cnnc.seed": str(args.seed)})
    size = sum(v.size for _, v in tensors)
    print(f"wrote {args.output} ({len(tensors)} tensors, {size:,} values, seed {args.seed})")
    return 0


def cmd_run(args) -> int:
    import numpy as np

    from . import api
    from .dsl.errors import CnncError
    from .runtime import RuntimeUnavailable, Session

    path = Path(args.model)
    if path.suffix == ".onnx":
        if not path.is_file():
            raise CnncError(f"cannot read `{path}`: no such file")
        model: bytes | str = path.read_bytes()
    else:  # compiled to a temporary folder, removed when the command ends: models above 2 GiB need files
        import tempfile
        folder = tempfile.TemporaryDirectory(prefix="cnnc-run-")
        model = str(api.compile_to(args.model, Path(folder.name) / "model.onnx", aux=args.aux, weights=args.weights,
                                   dtype=args.dtype, fold_bn=args.fold_bn).path)
    try:
        session = Session(model, args.provider)
    except RuntimeUnavailable as e:
        raise CnncError(str(e)) from None
    except Exception as e:
        raise CnncError(f"onnxruntime cannot load `{path}`: {str(e).splitlines()[0]}") from None
    x = _input(args, session, np)
    start = time.perf_counter()
    outputs = session.run_all(x)
    elapsed = time.perf_counter() - start
    y = outputs[session.output_names[0]]
    note = f" ({session.reason})" if session.provider == "cpu" and args.provider == "auto" and session.reason else ""
    print(f"provider: {session.provider}{note}")
    meta = session.metadata
    if "cnnc.seed" in meta:
        print(f"model: {meta.get('cnnc.network', '?')}, random untrained weights, seed {meta['cnnc.seed']} "
              f"(the classes below are not predictions)")
    shapes = ", ".join(f"{name} {list(v.shape)}" for name, v in outputs.items())
    print(f"input {list(x.shape)} -> {shapes} in {elapsed * 1000:.1f} ms")
    if y.ndim == 2 and y.shape[1] >= 2:
        top = np.argsort(-y[0])[:5]
        print("top-5 of sample 0: " + ", ".join(f"{int(i)} ({y[0, i]:.4f})" for i in top))
    return 0


def cmd_bench(args) -> int:
    from .dsl.errors import CnncError
    from .runtime import RuntimeUnavailable
    from .runtime.bench import BenchError, Budget, bench

    model, name, macs, source = _bench_model(args)
    try:
        with _progress_bar(not args.json) as progress:
            report = bench(model, args.batch, args.provider, args.threads, args.io_binding, macs, source, name,
                           Budget(seconds=args.seconds), progress)
    except (RuntimeUnavailable, BenchError) as e:
        raise CnncError(str(e)) from None
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    work = (f"{macs / 1e9:.3f} G" if macs >= 1e8 else f"{macs / 1e6:.3f} M") + f" MACs per image ({source})" \
        if macs is not None else f"MACs {source}"
    print(f"{name}: input {_shape(report.input_shape)} {report.input_type}, {work}")
    print(f"provider: {report.provider}, threads: {args.threads or 'default'}"
          f"{', io binding' if args.io_binding else ''}")
    rows = [(r.batch, r.iterations, f"{r.median_ms:.2f}", f"{r.p90_ms:.2f}", f"{r.images_per_s:.1f}",
             f"{r.gflops:.1f}" if r.gflops is not None else "n/a") for r in report.results]
    _table(("batch", "runs", "median ms", "p90 ms", "images/s", "GFLOP/s"), rows, right=set(range(6)))
    return 0


def cmd_quantize(args) -> int:
    from .dsl.errors import CnncError
    from .runtime.bench import Budget
    from .runtime.quantize import QuantizeError, calibration_inputs, compare, quantize

    path, out = Path(args.model), Path(args.output)
    if path.suffix != ".onnx" or not path.is_file():
        raise CnncError(f"`{path}` is not an .onnx file; compile the network first (`cnnc compile NET -o "
                        f"MODEL.onnx`), then quantize MODEL.onnx")
    if out.resolve() == path.resolve():
        raise CnncError(f"-o `{out}` would overwrite the model being quantized; give another file name")
    if not out.parent.exists():
        raise CnncError(f"cannot write `{out}`: the folder `{out.parent}` does not exist")
    try:
        inputs, described = calibration_inputs(path, args.calibration, None if args.calibration else args.random)
        print(f"calibrating on {described}", flush=True)
        head = quantize(path, out, inputs, described)
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, from {path.stat().st_size / 1e6:.1f} MB): int8 QDQ, "
              f"per-channel weights; kept in float32: {', '.join(head) or 'nothing'}", flush=True)
        with _progress_bar(True) as progress:
            c = compare(path, out, inputs, args.batch, Budget(seconds=args.seconds),
                        progress=(lambda f: progress(args.batch, f)) if progress else None)
    except QuantizeError as e:
        raise CnncError(str(e)) from None
    if c.top1_agreement is not None:
        print(f"top-1 agreement with float32 on the {c.inputs} calibration inputs: {100 * c.top1_agreement:.1f}% "
              f"(float32 predicts {c.fp32_classes} distinct class{'es' if c.fp32_classes != 1 else ''})")
    print(f"max |int8 - float32|: {c.max_abs_diff:.4g} (output)" + (
        f", {c.logits_max_abs_diff:.4g} on the logits (max |logit| {c.logits_max_abs:.4g})"
        if c.logits_max_abs_diff is not None else ""))
    print(f"throughput at batch {c.batch} on the CPU, side by side ({c.rounds} rounds, medians): float32 "
          f"{c.fp32_images_per_s:.1f} images/s, int8 {c.int8_images_per_s:.1f} images/s: {c.speedup:.2f}x")
    return 0


def _bench_model(args) -> tuple[bytes | str, str, int | None, str]:
    """The model (bytes, or the path of a .onnx), a display name, its MACs per image and where they come
    from: a network's own count; for a .onnx cnnc wrote, a recount from its graph (runtime/bench.py); for
    another .onnx, unknown."""
    from . import api
    from .dsl.errors import CnncError
    path = Path(args.model)
    if path.suffix != ".onnx":
        doc = api.load(args.model)
        model = api.compile(doc, dtype=args.dtype, fold_bn=args.fold_bn)
        return model.SerializeToString(), doc.name, api.build(doc).macs, "cnnc graph"
    if not path.is_file():
        raise CnncError(f"cannot read `{path}`: no such file")
    import onnx

    from .runtime.bench import count_macs
    try:
        proto = onnx.load(path, load_external_data=False)  # the graph and the weights' shapes suffice
    except Exception as e:  # protobuf's DecodeError and friends
        raise CnncError(f"cannot read `{path}` as an ONNX model: {str(e).splitlines()[0]}") from None
    if proto.producer_name != "cnnc":
        return str(path), path.name, None, f"n/a (written by {proto.producer_name or 'an unknown producer'}, not cnnc)"
    return str(path), path.name, count_macs(proto), "recounted from the ONNX graph"


def _progress_bar(show: bool):
    """A rich progress bar on stderr, one row per batch size, while stderr is a terminal; the context
    gives `update(batch, fraction)`, or None when no bar is shown."""
    import contextlib
    if not show or not sys.stderr.isatty():
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    @contextlib.contextmanager
    def bar():
        tasks: dict[int, int] = {}
        with Progress(TextColumn("batch {task.fields[batch]:>4}"), BarColumn(), TimeElapsedColumn(),
                      console=Console(stderr=True), transient=True) as p:
            def update(batch: int, fraction: float) -> None:
                if batch not in tasks:
                    tasks[batch] = p.add_task("", total=1.0, batch=batch)
                p.update(tasks[batch], completed=fraction)
            yield update
    return bar()


def _input(args, session, np):
    from .dsl.errors import CnncError
    shape = [args.batch if not isinstance(d, int) else d for d in session.input_shape]
    if args.input is None:
        return np.random.default_rng(args.seed).standard_normal(shape, dtype=np.float32)
    try:
        x = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise CnncError(f"cannot read `{args.input}` as a .npy array: {e}") from None
    if list(x.shape[1:]) != shape[1:]:
        raise CnncError(f"`{args.input}` has shape {list(x.shape)}; the model takes [N, "
                        f"{', '.join(map(str, shape[1:]))}]")
    return x.astype(np.float32, copy=False)


def _shape(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _table(header, rows, right=frozenset()) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    print(fmt(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(fmt(r))


if __name__ == "__main__":
    sys.exit(main())
