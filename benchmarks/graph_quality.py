"""Graph quality: ONNX Runtime CPU speed of cnnc's graphs against the same networks exported by
`torch.onnx.export`, and ResNeXt-50's tower form against its grouped form.

Run by hand (not a test), in an environment with cnnc, torch, torchvision and keras (`pip install
'.[reference]'`):

    KERAS_BACKEND=torch python benchmarks/graph_quality.py [--seconds 20] [--only NAME ...] [--ops]

It prints a Markdown table for benchmarks/RESULTS.md. For each pair, both models are loaded in one
process and timed side by side (runtime/bench.py `side_by_side`: the models take turns in every round,
their idle threads sleep rather than spin), at batch 1 (latency) and batch 8 (throughput). The ratio
is cnnc's median time over the other's: <= 1.00 means cnnc's graph is at least as fast. Weights are
random in both (their values do not change the work). The PyTorch models go through the TorchScript
exporter (`dynamo=False`: the dynamo exporter needs onnxscript), opset 18; torchvision's with a dynamic
batch axis; Keras 3 models on the torch backend only export with a static batch (and take NHWC input),
so they are exported once per batch size.
With `--ops`, the op types of each graph after ONNX Runtime's optimisations are compared
(`SessionOptions.optimized_model_filepath`): what ORT fused in one graph and not in the other.
"""
from __future__ import annotations

import argparse
import collections
import importlib.util
import io
import os
import sys
import tempfile
import types
from dataclasses import dataclass
from typing import Callable

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402

import cnnc  # noqa: E402
from cnnc.runtime.bench import Budget, quiet_cpu_session, side_by_side  # noqa: E402

BATCHES = (1, 8)


@dataclass(frozen=True)
class Pair:
    """Two graphs of one network: `make(batch)` returns the model bytes valid at that batch size."""

    name: str
    ours: str
    make_ours: Callable[[int], bytes]
    theirs: str
    make_theirs: Callable[[int], bytes]


def import_torchvision() -> types.ModuleType:
    """torchvision, whose CUDA-built `_C` cannot load against a CPU-only torch: the model definitions
    are pure Python, so the package is registered without running its `__init__` (the same workaround as
    tests/reference/test_torch_parity.py, which explains it)."""
    try:
        import torchvision
        return torchvision
    except RuntimeError as error:
        if "torchvision::" not in str(error):
            raise
    for name in [name for name in sys.modules if name == "torchvision" or name.startswith("torchvision.")]:
        del sys.modules[name]
    spec = importlib.util.find_spec("torchvision")
    package = importlib.util.module_from_spec(spec)
    sys.modules["torchvision"] = package
    return package


def torch_export(model, shape: tuple[int, ...], dynamic: bool) -> bytes:
    import torch

    buffer = io.BytesIO()
    axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic else None
    with torch.no_grad():
        torch.onnx.export(model, (torch.randn(*shape),), buffer, dynamo=False, opset_version=18,
                          input_names=["input"], output_names=["output"], dynamic_axes=axes)
    return buffer.getvalue()


def cnnc_model(name: str, group_towers: bool = True) -> Callable[[int], bytes]:
    data = (cnnc.compile(name) if group_towers else
            cnnc.compiler.to_onnx(cnnc.build(name), group_towers=False)).SerializeToString()
    return lambda batch: data


def torchvision_model(builder: str) -> Callable[[int], bytes]:
    import_torchvision()
    import torchvision.models as models

    model = getattr(models, builder)().eval()
    data = torch_export(model, (1, 3, 224, 224), dynamic=True)
    return lambda batch: data


def keras_model(builder: str) -> Callable[[int], bytes]:
    import keras

    model = getattr(keras.applications, builder)(weights=None)
    cache: dict[int, bytes] = {}

    def make(batch: int) -> bytes:
        if batch not in cache:
            cache[batch] = torch_export(model, (batch, *model.input_shape[1:]), dynamic=False)
        return cache[batch]
    return make


PAIRS: dict[str, Callable[[], Pair]] = {
    "resnet50_torchvision": lambda: Pair("ResNet-50 (torchvision v1.5)", "cnnc resnet50_torchvision",
                                         cnnc_model("resnet50_torchvision"), "torchvision resnet50",
                                         torchvision_model("resnet50")),
    "resnext50": lambda: Pair("ResNeXt-50 32x4d", "cnnc resnext50 (towers, grouped by cnnc)",
                              cnnc_model("resnext50"), "torchvision resnext50_32x4d",
                              torchvision_model("resnext50_32x4d")),
    "resnet50": lambda: Pair("ResNet-50 (Keras v1)", "cnnc resnet50", cnnc_model("resnet50"),
                             "Keras ResNet50", keras_model("ResNet50")),
    "inception_v3": lambda: Pair("Inception-v3", "cnnc inception_v3", cnnc_model("inception_v3"),
                                 "Keras InceptionV3", keras_model("InceptionV3")),
    "vgg16": lambda: Pair("VGG-16", "cnnc vgg16", cnnc_model("vgg16"), "Keras VGG16", keras_model("VGG16")),
    "resnext50_forms": lambda: Pair("ResNeXt-50, tower form vs grouped form", "cnnc resnext50 (towers)",
                                    cnnc_model("resnext50"), "cnnc resnext50_grouped",
                                    cnnc_model("resnext50_grouped")),
    "resnext50_towers": lambda: Pair("ResNeXt-50, towers not stacked",
                                     "cnnc resnext50, towers kept (group_towers=False)",
                                     cnnc_model("resnext50", group_towers=False), "cnnc resnext50_grouped",
                                     cnnc_model("resnext50_grouped")),
}


def feed(session, batch: int) -> dict[str, np.ndarray]:
    i = session.get_inputs()[0]
    shape = [batch if not isinstance(d, int) else d for d in i.shape]
    return {i.name: np.random.default_rng(0).standard_normal(shape, dtype=np.float32)}


def optimized_ops(model: bytes, folder: str, tag: str) -> collections.Counter:
    """Op types of the graph ONNX Runtime runs (after all its CPU optimisations)."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.optimized_model_filepath = os.path.join(folder, f"{tag}.onnx")
    ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    graph = onnx.load(options.optimized_model_filepath, load_external_data=False).graph
    return collections.Counter(_kind(n) for n in graph.node)


def _kind(node) -> str:
    """`nchwc.Conv+Relu+Add`: the op, its domain and what ORT fused into it (activation, residual sum)."""
    kind = (f"{node.domain.rsplit('.', 1)[-1]}." if node.domain else "") + node.op_type
    kind += "".join(f"+{a.s.decode()}" for a in node.attribute if a.name == "activation")
    if node.op_type in ("Conv", "FusedConv") and len(node.input) > 3 and node.input[3]:
        kind += "+Add"
    return kind


def measure(pair: Pair, seconds: float) -> list[tuple]:
    rows = []
    for batch in BATCHES:
        a, b = quiet_cpu_session(pair.make_ours(batch)), quiet_cpu_session(pair.make_theirs(batch))
        fa, fb = feed(a, batch), feed(b, batch)
        times = side_by_side({"ours": lambda a=a, fa=fa: a.run(None, fa), "theirs": lambda b=b, fb=fb: b.run(None, fb)},
                             Budget(seconds=seconds, min_iterations=7, max_iterations=300))
        ours, theirs = (float(np.median(times[k])) * 1e3 for k in ("ours", "theirs"))
        rows.append((batch, ours, theirs, ours / theirs, len(times["ours"])))
        del a, b
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per pair and batch size")
    parser.add_argument("--only", nargs="*", choices=list(PAIRS), help="these pairs only")
    parser.add_argument("--ops", action="store_true", help="also print the op types after ORT's optimisations")
    args = parser.parse_args()
    print("| network | cnnc graph | compared with | batch | cnnc ms | other ms | cnnc / other | rounds |")
    print("|---|---|---|---|---|---|---|---|")
    details = []
    for key in args.only or PAIRS:
        pair = PAIRS[key]()
        for batch, ours, theirs, ratio, rounds in measure(pair, args.seconds):
            print(f"| {pair.name} | {pair.ours} | {pair.theirs} | {batch} | {ours:.1f} | {theirs:.1f} | "
                  f"{ratio:.3f} | {rounds} |", flush=True)
        if args.ops:
            with tempfile.TemporaryDirectory() as folder:
                details.append((pair, optimized_ops(pair.make_ours(1), folder, "ours"),
                                optimized_ops(pair.make_theirs(1), folder, "theirs")))
    for pair, ours, theirs in details:
        print(f"\n{pair.name}, op types after ORT's optimisations (batch 1): {pair.ours} vs {pair.theirs}")
        for op in sorted(set(ours) | set(theirs)):
            mark = "" if ours[op] == theirs[op] else "   <- differs"
            print(f"  {op:<40} {ours[op]:>4} {theirs[op]:>4}{mark}")


if __name__ == "__main__":
    main()
