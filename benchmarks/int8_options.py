"""int8 options compared: the settings of `onnxruntime.quantization.quantize_static` that `cnnc quantize`
chose among, each model's CPU throughput at batch 8 against float32 (side by side in one process) and its
agreement with float32 on the calibration inputs.

Run by hand (not a test): `python benchmarks/int8_options.py [NET] [--random 64] [--seconds 20]`
(default resnet50). Prints a Markdown table for benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

import cnnc
from cnnc.runtime.bench import Budget, quiet_cpu_session, side_by_side, with_logits
from cnnc.runtime.quantize import calibration_inputs, head_options

# name -> (what differs from cnnc's choice, quantize_static keyword arguments)
VARIANTS: dict[str, tuple[str, dict]] = {
    "cnnc": ("QDQ, per-channel s8 weights, u8 activations, min-max; Softmax float32, the classifier int8 with "
             "a float output", {}),
    "float_classifier": ("the classifier float32 too (`--float-classifier`, cnnc's choice before)",
                         {"float_classifier": True}),
    "head_int8": ("the Softmax and classifier quantized, output included", {"keep_head": False}),
    "per_tensor": ("one weight scale per tensor", {"per_channel": False}),
    "qoperator": ("QOperator format (QLinearConv written directly)", {"quant_format": "QOperator"}),
    "s8_act": ("s8 activations", {"activation_type": "QInt8"}),
    "act_symmetric": ("ActivationSymmetric (u8, zero point 128)", {"extra_options": {"ActivationSymmetric": True}}),
    "reduce_range": ("reduce_range (7-bit weights, for CPUs without VNNI)", {"reduce_range": True}),
    "entropy": ("entropy calibration", {"calibrate_method": "Entropy"}),
    "percentile": ("percentile calibration (99.999)", {"calibrate_method": "Percentile"}),
}


def quantized(prepared: Path, out: Path, inputs: np.ndarray, settings: dict) -> None:
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    settings = dict(settings)
    keep, float_classifier = settings.pop("keep_head", True), settings.pop("float_classifier", False)
    head, extra = head_options(onnx.load(prepared), float_classifier) if keep else ([], {})
    kwargs = {"quant_format": QuantFormat.QDQ, "per_channel": True, "activation_type": QuantType.QUInt8,
              "weight_type": QuantType.QInt8, "nodes_to_exclude": head, "extra_options": extra}
    for key, value in settings.items():
        if key == "extra_options":
            kwargs[key] = {**extra, **value}
        else:
            kwargs[key] = {"quant_format": QuantFormat, "activation_type": QuantType,
                           "calibrate_method": CalibrationMethod}[key][value] if isinstance(value, str) else value

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(np.array_split(inputs, max(1, len(inputs) // 4)))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"input": batch}

    quantize_static(prepared, out, Reader(), **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("net", nargs="?", default="resnet50")
    parser.add_argument("--random", type=int, default=64, help="calibration inputs, N(0, 1) noise")
    parser.add_argument("--seconds", type=float, default=20.0, help="time for the side-by-side timing")
    parser.add_argument("--only", nargs="*", choices=list(VARIANTS), help="these variants only")
    args = parser.parse_args()
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        fp32, prepared = Path(tmp) / "fp32.onnx", Path(tmp) / "prepared.onnx"
        cnnc.save(cnnc.compile(args.net), fp32)
        quant_pre_process(os.fspath(fp32), prepared, skip_symbolic_shape=True)
        inputs, described = calibration_inputs(fp32, random=args.random)
        names = args.only or list(VARIANTS)
        for name in names:
            quantized(prepared, Path(tmp) / f"{name}.onnx", inputs, VARIANTS[name][1])
        sessions = {name: quiet_cpu_session(with_logits(Path(tmp) / f"{name}.onnx").SerializeToString())
                    for name in ["fp32", *names]}
        logits = {name: np.concatenate([s.run(None, {"input": chunk})[-1] for chunk in np.array_split(inputs, 8)])
                  for name, s in sessions.items()}
        x = inputs[:8]
        output = sessions["fp32"].get_outputs()[0].name
        times = side_by_side({name: (lambda s=s: s.run([output], {"input": x})) for name, s in sessions.items()},
                             Budget(seconds=args.seconds, min_iterations=5, max_iterations=100))
    base = float(np.median(times["fp32"]))
    ref = logits["fp32"]
    print(f"{args.net}, calibration and agreement on {described}; batch 8, {len(times['fp32'])} rounds\n")
    print("| variant | what differs | ms at batch 8 | speed-up | top-1 agreement "
          "| max abs logit diff / max abs logit |")
    print("|---|---|---|---|---|---|")
    for name in ["fp32", *names]:
        ms = float(np.median(times[name]))
        agree = float(np.mean(logits[name].argmax(1) == ref.argmax(1)))
        error = float(np.abs(logits[name] - ref).max() / np.abs(ref).max())
        what = VARIANTS[name][0] if name in VARIANTS else "float32"
        print(f"| {name} | {what} | {ms * 1e3:.1f} | {base / ms:.2f}x | {100 * agree:.1f}% | {error:.4f} |")
    print(f"\nfloat32 predicts {np.unique(ref.argmax(1)).size} distinct classes on these inputs")


if __name__ == "__main__":
    main()
