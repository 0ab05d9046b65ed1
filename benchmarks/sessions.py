"""Session memory: an ONNX Runtime session over cnnc's model of a network against one over
torch.onnx.export's model of the same network — resident memory, peaks, creation time, latency.

Run by hand (not a test), in an environment with cnnc, torch, torchvision and timm (`pip install
'.[reference]'`), and keras 3 for the Keras peers (xception, inception_resnet_v2: KERAS_BACKEND=torch):

    python benchmarks/sessions.py [--only resnet50_torchvision ...] [--rounds 3]

Each network is written four ways — cnnc's default compile, cnnc with `--fold-bn` (torch's exporter
folds batchnorm into the conv too), the TorchScript exporter's single file (`dynamo=False`, opset 18:
the dynamo exporter needs onnxscript; for the Keras peers, keras.applications' model on the torch
backend through the same exporter), and that model re-saved with its weights as ONNX external data
— and each file is loaded two ways: plain `onnxruntime.InferenceSession(path)` and cnnc's `Session(path)`
(lean by default: runtime/session.py). Every measurement is a fresh process (`--worker`), so that no
session sees another's heap; the processes take turns, round after round, and the table gives each
figure's median over the rounds:

- RSS: VmRSS right after the session is created (less `import onnxruntime`'s, printed above the table);
- peak create / b1 / b8: the process's high-water mark (VmHWM) after creating the session, after
  runs at batch 1, after runs at batch 8 (cumulative: a peak includes the ones before it);
- create: seconds in the session's constructor; b1 / b8 ms: median latency of a few runs.
It prints a Markdown table for benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

RUNS = {1: 12, 8: 4}  # timed runs per batch size, after one untimed


def _status() -> dict[str, float]:
    """VmRSS and VmHWM of this process, in MB."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(value.split()[0]) / 1024
    return values


def worker(path: str, loader: str) -> dict[str, float]:
    """One measurement, in this (fresh) process. `loader`: `cnnc` (its `Session`), or `ort` plus
    factors joined by `+` (`ort+inplace+trim`): see FACTORS."""
    import numpy as np
    import onnxruntime as ort

    import cnnc
    import cnnc.runtime.session  # noqa: F401  (imported by every loader alike, before the baseline)
    base = _status()["VmRSS"]
    start = time.perf_counter()
    if loader == "cnnc":
        session = cnnc.Session(path, "cpu").inner
    else:
        session = _plain(ort, path, loader.split("+")[1:])
    out = {"create_s": time.perf_counter() - start, "base": base}
    now = _status()
    out.update(rss=now["VmRSS"] - base, peak_create=now["VmHWM"] - base)
    i = session.get_inputs()[0]
    for batch, runs in RUNS.items():
        x = {i.name: np.random.default_rng(0).standard_normal([batch, *i.shape[1:]], dtype=np.float32)}
        session.run(None, x)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            session.run(None, x)
            times.append(time.perf_counter() - t0)
        out[f"ms_b{batch}"] = statistics.median(times) * 1e3
        out[f"peak_b{batch}"] = _status()["VmHWM"] - base
    return out


FACTORS = {
    "bytes": "the model's bytes read by Python and handed over, not its path",
    "inplace": "weights read in place from the single file (runtime/inplace.py)",
    "mmap": "glibc: blocks of 128 KiB and more mapped one by one while the session is built (mallopt "
            "M_MMAP_THRESHOLD; 32 MiB afterwards)",
    "trim": "glibc: malloc_trim(0) once the session is built",
    "noprepack": "session.disable_prepacking = 1",
    "noarena": "enable_cpu_mem_arena = False",
}


def _plain(ort, path: str, factors: list[str]):
    from cnnc.runtime import session as lean

    options = ort.SessionOptions()
    options.log_severity_level = 3
    source: bytes | str = path
    if "noprepack" in factors:
        options.add_session_config_entry("session.disable_prepacking", "1")
    if "noarena" in factors:
        options.enable_cpu_mem_arena = False
    if "bytes" in factors:
        source = Path(path).read_bytes()
    if "inplace" in factors:
        source = lean._in_place(path, options)
    if "mmap" in factors:
        lean._map_large_blocks(True)
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    del source
    if "mmap" in factors:
        lean._map_large_blocks(False)
    if "trim" in factors:
        lean._trim_heap()
    return session


# ---- the models ----------------------------------------------------------------------------------------
def _cnnc(name: str, fold_bn: bool) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        import cnnc
        cnnc.api.compile_to(name, path, fold_bn=fold_bn)
    return write


def _torch(builder: Callable[[], object], size: int) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        sys.path.insert(0, str(Path(__file__).parent))
        from graph_quality import torch_export
        path.write_bytes(torch_export(builder().eval(), (1, 3, size, size), dynamic=True))
    return write


def _torchvision(name: str) -> Callable[[], object]:
    def build() -> object:
        sys.path.insert(0, str(Path(__file__).parent))
        from graph_quality import import_torchvision
        import_torchvision()
        import torchvision.models as models
        return getattr(models, name)()
    return build


def _timm(name: str) -> Callable[[], object]:
    def build() -> object:
        import timm
        return timm.create_model(name, pretrained=False)
    return build


def _keras(name: str) -> Callable[[Path], None]:
    """Keras 3's `keras.applications.<name>(weights=None)` on its torch backend, exported like the torch
    peers (TorchScript, opset 18, dynamic batch), NHWC input [batch, 299, 299, 3] as Keras has it. Under
    the tracer a tensor's sizes are tensors, so Keras' "same" padding of its pooling and strided convs
    (`_compute_padding_length`) became an unknown kernel padding and the exporter stopped ("because it is
    not constant"); with the (fixed) spatial size read as an int while tracing, it exports."""
    def write(path: Path) -> None:
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras
        import keras.src.backend.torch.nn as keras_nn
        import torch

        if keras.backend.backend() != "torch":
            raise SystemExit(f"the Keras peers need KERAS_BACKEND=torch, not {keras.backend.backend()}")
        model = getattr(keras.applications, name)(weights=None)

        class Inference(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.model(x, training=False)

        padding = keras_nn._compute_padding_length
        keras_nn._compute_padding_length = lambda length, *a, **k: padding(int(length), *a, **k)
        try:
            with torch.no_grad():
                torch.onnx.export(Inference().eval(), (torch.randn(1, 299, 299, 3),), str(path), dynamo=False,
                                  opset_version=18, input_names=["input"], output_names=["output"],
                                  dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        finally:
            keras_nn._compute_padding_length = padding
    return write


NETWORKS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "resnet50_torchvision": ("torchvision resnet50", _torch(_torchvision("resnet50"), 224)),
    "resnext50_32x4d": ("torchvision resnext50_32x4d", _torch(_torchvision("resnext50_32x4d"), 224)),
    "alexnet_torchvision": ("torchvision alexnet", _torch(_torchvision("alexnet"), 224)),
    "inception_v4": ("timm inception_v4", _torch(_timm("inception_v4"), 299)),
    "xception": ("Keras Xception", _keras("Xception")),
    "inception_resnet_v2": ("Keras InceptionResNetV2", _keras("InceptionResNetV2")),
}


def _external(single: Path, path: Path) -> None:
    import onnx
    onnx.save(onnx.load(single), path, save_as_external_data=True, location=path.name + ".data")


def models(name: str, folder: Path) -> list[tuple[str, Path]]:
    peer, export = NETWORKS[name]
    made = [(f"cnnc {name}", folder / f"{name}.onnx", _cnnc(name, False)),
            (f"cnnc {name} --fold-bn", folder / f"{name}_fold.onnx", _cnnc(name, True)),
            (peer, folder / f"{name}_peer.onnx", export)]
    for _, path, write in made:
        write(path)
    external = folder / f"{name}_peer_external.onnx"
    _external(made[-1][1], external)
    return [(label, path) for label, path, _ in made] + [(f"{peer}, external data", external)]


FIELDS = ("rss", "peak_create", "peak_b1", "peak_b8", "create_s", "ms_b1", "ms_b8")


FACTOR_LOADERS = ("ort", "ort+bytes", "ort+noprepack", "ort+noarena", "ort+trim", "ort+mmap", "ort+mmap+trim",
                  "ort+inplace", "ort+inplace+trim", "ort+inplace+mmap", "cnnc")


def measure(name: str, rounds: int, folder: Path, factors: bool) -> list[tuple[str, str, dict[str, float]]]:
    made = models(name, folder)
    if factors:  # each factor on cnnc's two models; the peer's best as it is
        cases = [(label, path, loader) for label, path in made[:2] for loader in FACTOR_LOADERS]
        cases += [(made[3][0], made[3][1], "ort")]
    else:
        cases = [(label, path, loader) for label, path in made for loader in ("ort", "cnnc")]
    results: dict[int, list[dict[str, float]]] = {k: [] for k in range(len(cases))}
    for _ in range(rounds):
        for k, (_, path, loader) in enumerate(cases):
            done = subprocess.run([sys.executable, __file__, "--worker", str(path), loader], check=True,
                                  capture_output=True, text=True)
            results[k].append(json.loads(done.stdout))
    rows = []
    for k, (label, _, loader) in enumerate(cases):
        rows.append((label, loader, {f: statistics.median(r[f] for r in results[k]) for f in (*FIELDS, "base")}))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(NETWORKS), help="these networks only")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per case (medians)")
    parser.add_argument("--factors", action="store_true",
                        help="each memory factor alone and combined, on cnnc's models (see FACTORS)")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "LOADER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    print("| model | loaded by | RSS MB | peak create MB | peak b1 MB | peak b8 MB | create s | b1 ms | b8 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    base = []
    for name in args.only or NETWORKS:
        with tempfile.TemporaryDirectory(prefix="cnnc-sessions-") as folder:
            for label, loader, r in measure(name, args.rounds, Path(folder), args.factors):
                base.append(r["base"])
                by = "cnnc Session" if loader == "cnnc" else "InferenceSession" + loader[3:].replace("+", " + ")
                print(f"| {label} | {by} | {r['rss']:.0f} | {r['peak_create']:.0f} | {r['peak_b1']:.0f} | "
                      f"{r['peak_b8']:.0f} | {r['create_s']:.2f} | {r['ms_b1']:.1f} | {r['ms_b8']:.1f} |",
                      flush=True)
    print(f"\nMB above the process's RSS before the session (median {statistics.median(base):.0f} MB); "
          f"{args.rounds} rounds, medians; {os.cpu_count()} CPUs")
    if args.factors:
        print("".join(f"\n- {key}: {text}" for key, text in FACTORS.items()))


if __name__ == "__main__":
    main()
