"""Whole-process `cnnc quantize` against quantizing by hand with ONNX Runtime, same options, taking turns.

Run by hand (not a test), from the repository root:

    python benchmarks/quantize.py [--network resnet50] [--random 64] [--rounds 3] [--folder /tmp]

The network is compiled once. Then, round by round, three fresh processes run in turn under GNU time:
- by hand: `quant_pre_process` and `quantize_static` with cnnc's options (QDQ, per-channel int8 weights,
  uint8 activations, 7-bit weights where `cnnc quantize` would choose them, the final Softmax excluded, the
  classifier's output left float), calibrated on the same N(0, 1) inputs in batches of 4;
- by hand + agreement: the same, then one agreement run: a plain `InferenceSession` per model and one
  pass of the calibration inputs through each (what `cnnc quantize` reports);
- `cnnc quantize MODEL -o OUT --random N` (no `--time`).
Prints a Markdown table of the wall seconds, peak RSS, the int8 file sizes and the ratios, for
benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from timing import ROOT, Timed, timed

BY_HAND = """
import sys, numpy as np, onnx, onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
model, out, n, reduce, agree = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5] == "1"
graph = onnx.load(model, load_external_data=False).graph
name, shape = graph.input[0].name, [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim][1:]
x = np.random.default_rng(0).standard_normal((n, *shape), dtype=np.float32)
class Reader(CalibrationDataReader):
    def __init__(self):
        self.batches = iter(np.array_split(x, max(1, -(-n // 4))))
    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {name: batch}
prepared = out + ".prepared.onnx"
quant_pre_process(model, prepared, skip_symbolic_shape=True)
quantize_static(prepared, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=reduce,
                nodes_to_exclude=[n.name for n in graph.node if n.op_type == "Softmax"],
                extra_options={"OpTypesToExcludeOutputQuantization": ["Gemm"]})
if agree:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    runs = []
    for path in (model, out):
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        runs.append(np.concatenate([session.run(None, {name: b})[0] for b in np.array_split(x, max(1, -(-n // 8)))]))
    print(f"agreement {np.mean(runs[0].argmax(1) == runs[1].argmax(1)):.3f}")
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--network", default="resnet50")
    parser.add_argument("--random", type=int, default=64, help="calibration inputs (cnnc's default: 64)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from cnnc.runtime.quantize import saturating_cpu

    model = args.folder / f"{args.network}.onnx"
    outs = {k: args.folder / f"{args.network}_{k}.onnx" for k in ("hand", "agree", "cnnc")}
    subprocess.run([sys.executable, "-m", "cnnc", "compile", args.network, "-o", str(model)], check=True,
                   capture_output=True, cwd=ROOT)
    reduce = "1" if saturating_cpu() else "0"
    commands = {
        "by hand": [sys.executable, "-c", BY_HAND, str(model), str(outs["hand"]), str(args.random), reduce, "0"],
        "by hand + agreement": [sys.executable, "-c", BY_HAND, str(model), str(outs["agree"]), str(args.random),
                                reduce, "1"],
        "cnnc quantize": [sys.executable, "-m", "cnnc", "quantize", str(model), "-o", str(outs["cnnc"]), "--random",
                          str(args.random)],
    }
    runs: dict[str, list[Timed]] = {k: [] for k in commands}
    try:
        for _ in range(args.rounds):
            for label, argv in commands.items():
                runs[label].append(timed(argv))
                print(f"  {label}: {runs[label][-1].wall:.2f} s", file=sys.stderr, flush=True)
        wall = {k: statistics.median(t.wall for t in v) for k, v in runs.items()}
        print(f"`python benchmarks/quantize.py --network {args.network} --random {args.random} --rounds "
              f"{args.rounds}` ({'7-bit' if reduce == '1' else '8-bit'} weights on this CPU): whole processes "
              f"taking turns, medians of {args.rounds} rounds\n")
        print("| process | wall s (each round) | median s | peak RSS MB | int8 file MB | / by hand | "
              "/ by hand + agreement |")
        print("|---|---|---|---|---|---|---|")
        for (label, r), out in zip(runs.items(), outs.values()):
            print(f"| {label} | {', '.join(f'{t.wall:.1f}' for t in r)} | {wall[label]:.2f} | "
                  f"{max(t.rss_mb for t in r):.0f} | {out.stat().st_size / 1e6:.1f} | "
                  f"{wall[label] / wall['by hand']:.2f} | {wall[label] / wall['by hand + agreement']:.2f} |")
    finally:
        for path in (model, *outs.values(), *(o.with_name(o.name + ".prepared.onnx") for o in outs.values())):
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
