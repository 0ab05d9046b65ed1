"""The subcommands that run a model in ONNX Runtime: run and quantize (bench: bench.py). Each is its
arguments and a thin run over cnnc.runtime; the runtime's errors are `CnncError`s, reported by `main` like
any other."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ..errors import CnncError
from .common import (AUX_HELP, JSON_HELP, PROVIDER_HELP, PROVIDERS, WEIGHTS_HELP, WEIGHTS_MAP_HELP, WHEN_NETWORK,
                     Command, Steps, compile_options, positive)
from .images import check_image_flags, image_arguments, run_images

if TYPE_CHECKING:
    import numpy as np

    from ..runtime import Session
    from ..runtime.session import Provider
    from ..runtime.quantize import Comparison


def _provider(c: argparse.ArgumentParser) -> None:
    c.add_argument("--provider", choices=PROVIDERS, default="auto", help=PROVIDER_HELP)


def _onnx_file(path: Path) -> None:
    if not path.is_file():
        raise CnncError(f"cannot read `{path}`: no such file")


# ---- run ---------------------------------------------------------------------------------------------
def run_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("model", help="an .onnx file (or a network, compiled in memory)")
    c.add_argument("--batch", type=positive, default=1, help="batch size for random input (default 1)")
    _provider(c)
    c.add_argument("--input", help="a .npy file with the input batch, instead of random data")
    c.add_argument("--seed", type=int, default=0, help="seed of the random input (default 0)")
    image_arguments(c)
    c.add_argument("--json", action="store_true", help=JSON_HELP)
    c.add_argument("--weights", help=WEIGHTS_HELP + WHEN_NETWORK)
    c.add_argument("--weights-map", metavar="FILE", help=WEIGHTS_MAP_HELP + WHEN_NETWORK)
    c.add_argument("--aux", action="store_true", help=AUX_HELP + WHEN_NETWORK)
    compile_options(c, WHEN_NETWORK)


def run_run(args: argparse.Namespace) -> int:
    path = Path(args.model)
    check_image_flags(args)
    with _model_to_run(args, path) as model:
        session = _session(model, args.provider, path)
        if args.image:
            return run_images(args, session, model)
        x = _input(args, session)
        start = time.perf_counter()
        outputs = session.run_all(x)
        elapsed = time.perf_counter() - start
    _print_run(args, session, x, outputs, elapsed)
    return 0


@contextlib.contextmanager
def _model_to_run(args: argparse.Namespace, path: Path) -> Iterator[bytes | str]:
    """A .onnx file's path (ONNX Runtime finds external data beside it, wherever the command runs), or a
    network compiled to a temporary folder, removed when the command ends (models above 2 GiB need files)."""
    if path.suffix == ".onnx":
        _onnx_file(path)
        yield str(path)
        return
    import tempfile

    from .. import api
    with tempfile.TemporaryDirectory(prefix="cnnc-run-") as folder:
        yield str(api.compile_to(args.model, Path(folder) / "model.onnx", aux=args.aux, weights=args.weights,
                                 dtype=args.dtype, fold_bn=args.fold_bn, weights_map=args.weights_map).path)


def _session(model: bytes | str, provider: Provider, path: Path) -> Session:
    from ..runtime import Session
    try:
        return Session(model, provider)
    except CnncError:
        raise  # RuntimeUnavailable: the provider asked for cannot run here
    except Exception as e:  # onnxruntime's own load failures
        raise CnncError(f"onnxruntime cannot load `{path}`: {str(e).splitlines()[0]}") from None


def _input(args: argparse.Namespace, session: Session) -> np.ndarray:
    import numpy as np
    dims = [args.batch if not isinstance(d, int) else d for d in session.input_shape]
    if args.input is None:
        return np.random.default_rng(args.seed).standard_normal(dims, dtype=np.float32)
    try:
        x = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise CnncError(f"cannot read `{args.input}` as a .npy array: {e}") from None
    if list(x.shape[1:]) != dims[1:]:
        raise CnncError(f"`{args.input}` has shape {list(x.shape)}; the model takes [N, "
                        f"{', '.join(map(str, dims[1:]))}]")
    return x.astype(np.float32, copy=False)


def _print_run(args: argparse.Namespace, session: Session, x: np.ndarray, outputs: dict[str, np.ndarray],
               elapsed: float) -> None:
    import numpy as np
    if args.json:
        print(json.dumps({"provider": session.provider, "input_shape": list(x.shape), "milliseconds": elapsed * 1000,
                          "outputs": {name: list(v.shape) for name, v in outputs.items()}}, indent=2))
        return
    note = f" ({session.reason})" if session.provider == "cpu" and args.provider == "auto" and session.reason else ""
    print(f"provider: {session.provider}{note}")
    meta = session.metadata
    if "cnnc.seed" in meta:
        print(f"model: {meta.get('cnnc.network', '?')}, random untrained weights, seed {meta['cnnc.seed']} "
              f"(the classes below are not predictions)")
    shapes = ", ".join(f"{name} {list(v.shape)}" for name, v in outputs.items())
    print(f"input {list(x.shape)} -> {shapes} in {elapsed * 1000:.1f} ms")
    y = outputs[session.output_names[0]]
    if y.ndim == 2 and y.shape[1] >= 2:
        top = np.argsort(-y[0])[:5]
        print("top-5 of sample 0: " + ", ".join(f"{int(i)} ({y[0, i]:.4f})" for i in top))


RUN = Command("run", "run a model in ONNX Runtime", run_run, arguments=run_arguments, network=True)


# ---- quantize ----------------------------------------------------------------------------------------
def quantize_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("model", help="a float32 .onnx file")
    c.add_argument("-o", "--output", required=True, help="the int8 (or float16) .onnx file to write")
    source = c.add_mutually_exclusive_group()
    source.add_argument("--calibration", metavar="DIR",
                        help="a folder of .npy input samples to calibrate on (or one .npy file with a batch)")
    source.add_argument("--random", type=positive, default=64, metavar="N",
                        help="calibrate on N random inputs, N(0, 1) noise (default 64)")
    c.add_argument("--time", action="store_true",
                   help="also compare both models' throughput, side by side (off by default: it takes --seconds "
                        "more; `cnnc bench` times one model)")
    c.add_argument("--batch", type=positive, default=8, help="batch size of the throughput comparison (default 8)")
    c.add_argument("--seconds", type=float, default=None,
                   help="time for the throughput comparison; implies --time (default 5)")
    c.add_argument("--float-classifier", action="store_true",
                   help="keep the classifier (the Gemm before the softmax or the output) in float32 too; by "
                        "default its weights are int8 and its output, the logits, float")
    c.add_argument("--labelled", metavar="SET.npz",
                   help="a .npz with samples `x` and class labels `y`: report both models' accuracy on it and "
                        "their top-1 agreement")
    c.add_argument("--reduce-range", choices=["auto", "on", "off"], default="auto",
                   help="7-bit weights, which x86 CPUs without VNNI need to avoid saturating (auto: on for such "
                        "a CPU, this one's /proc/cpuinfo; default auto)")
    c.add_argument("--dtype", choices=["int8", "float16"], default="int8",
                   help="int8 (default; calibrated) or float16 (weights and computation; the inputs are only "
                        "compared on)")
    c.add_argument("--json", action="store_true", help="print the results as one JSON object at the end")


def run_quantize(args: argparse.Namespace) -> int:
    from ..runtime.bench import Budget
    from ..runtime.quantize import calibration_inputs, compare, labelled_set
    path, out = Path(args.model), Path(args.output)
    _check_quantize_paths(path, out)
    inputs, described = calibration_inputs(path, args.calibration, None if args.calibration else args.random)
    labelled = labelled_set(args.labelled, path) if args.labelled else None
    say = (lambda *a, **k: None) if args.json else print
    short = "int8" if args.dtype == "int8" else "fp16"
    written = _write_quantized(args, path, out, inputs, described, say)
    timed = args.time or args.seconds is not None
    budget = Budget(seconds=5.0 if args.seconds is None else args.seconds) if timed else None
    with Steps(not args.json and timed) as steps:  # the timed runs' bar, as bench shows it
        steps.step("warm-up", args.batch)
        c = compare(path, out, inputs, args.batch, budget, progress=lambda f: steps.progress(args.batch, f),
                    labelled=labelled, source=args.labelled or "")
    judged = c.labelled
    if args.json:
        comparison = {k.replace("int8", short): v for k, v in dataclasses.asdict(c).items() if k != "labelled"}
        labels = {k if k != "accuracy" else f"{short}_accuracy": v for k, v in dataclasses.asdict(judged).items()} \
            if judged else None
        print(json.dumps({"output": str(out), "dtype": args.dtype, "inputs": described, **written,
                          "comparison": {**comparison, "speedup": c.speedup}, "labelled": labels}, indent=2))
        return 0
    _print_comparison(c, "int8" if args.dtype == "int8" else "float16")
    if judged is not None:
        print(f"on the labelled set {judged.source} ({judged.samples} samples): top-1 agreement with float32 "
              f"{100 * judged.agreement:.2f}%, accuracy float32 {100 * judged.fp32_accuracy:.2f}%, {args.dtype} "
              f"{100 * judged.accuracy:.2f}% ({100 * (judged.accuracy - judged.fp32_accuracy):+.2f} points)")
    return 0


def _write_quantized(args: argparse.Namespace, path: Path, out: Path, inputs: np.ndarray, described: str,
                     say) -> dict[str, object]:
    """The int8 model (calibrated on `inputs`) or the float16 one, written to `out`; what to report of it."""
    from ..runtime.quantize import quantize, saturating_cpu, to_float16
    sizes = f"{out} ({{:.1f}} MB, from {path.stat().st_size / 1e6:.1f} MB)"
    if args.dtype == "float16":
        say(f"comparing on {described}", flush=True)
        to_float16(path, out)
        say(f"wrote {sizes.format(out.stat().st_size / 1e6)}: float16 weights and computation, float32 input and "
            f"outputs", flush=True)
        return {}
    say(f"calibrating on {described}", flush=True)
    reduce = saturating_cpu() if args.reduce_range == "auto" else args.reduce_range == "on"
    head = quantize(path, out, inputs, described, reduce_range=reduce, float_classifier=args.float_classifier)
    say(f"wrote {sizes.format(out.stat().st_size / 1e6)}: int8 QDQ, per-channel {'7-bit ' if reduce else ''}weights"
        f"{' (this CPU has no VNNI)' if reduce and args.reduce_range == 'auto' else ''}; "
        f"kept in float32: {', '.join(head) or 'nothing'}", flush=True)
    return {"reduce_range": reduce, "float_head": head}


def _check_quantize_paths(path: Path, out: Path) -> None:
    if path.suffix != ".onnx" or not path.is_file():
        raise CnncError(f"`{path}` is not an .onnx file; compile the network first (`cnnc compile NET -o "
                        f"MODEL.onnx`), then quantize MODEL.onnx")
    if out.resolve() == path.resolve():
        raise CnncError(f"-o `{out}` would overwrite the model being quantized; give another file name")
    if not out.parent.exists():
        raise CnncError(f"cannot write `{out}`: the folder `{out.parent}` does not exist")


def _print_comparison(c: Comparison, kind: str = "int8") -> None:
    if c.top1_agreement is not None:
        print(f"top-1 agreement with float32 on the {c.inputs} calibration inputs: {100 * c.top1_agreement:.1f}% "
              f"(float32 predicts {c.fp32_classes} distinct class{'es' if c.fp32_classes != 1 else ''})")
    print(f"max |{kind} - float32|: {c.max_abs_diff:.4g} (output)" + (
        f", {c.logits_max_abs_diff:.4g} on the logits (max |logit| {c.logits_max_abs:.4g})"
        if c.logits_max_abs_diff is not None else ""))
    if c.fp32_images_per_s is None or c.int8_images_per_s is None or c.speedup is None:
        print("throughput not measured (--time compares both models side by side)")
        return
    print(f"throughput at batch {c.batch} on the CPU, side by side ({c.rounds} rounds, medians): float32 "
          f"{c.fp32_images_per_s:.1f} images/s, {kind} {c.int8_images_per_s:.1f} images/s: {c.speedup:.2f}x")


QUANTIZE = Command("quantize", "int8 model for CPUs (static, QDQ), or float16, compared with the original",
                   run_quantize, arguments=quantize_arguments)
