"""`--dtype float16` and `--fold-bn` against float32, for every shipped architecture, in ONNX Runtime (CPU).

Run by hand (not a test), from the repository root: `python benchmarks/precision.py [NAME ...]`. Prints a
Markdown table for benchmarks/RESULTS.md: file sizes, node and BatchNormalization counts, and the max
|difference| of the logits over the largest float32 logit, batch 4 of N(0, 1) input. The logits, not the
output: the final softmax becomes an Identity, since random weights saturate it.
"""
from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {"fp32": {}, "fp16": {"dtype": "float16"}, "fold": {"fold_bn": True},
            "fold16": {"dtype": "float16", "fold_bn": True}}


def logits(path: Path) -> bytes:
    model = onnx.load(path)
    for node in model.graph.node:
        if node.op_type == "Softmax" and node.output[0] in ("output", "output.float16"):
            node.op_type = "Identity"
            del node.attribute[:]
    return model.SerializeToString()


def main() -> None:
    sys.path.insert(0, str(ROOT))
    import cnnc
    from cnnc.architectures import names

    print("| network | MB fp32 | MB fp16 | fp16 max rel diff | fp16 top-1 agree | nodes -> folded | "
          "BN nodes -> folded | MB folded | fold max rel diff | fold+fp16 rel diff |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in sys.argv[1:] or names():
            out = {}
            for label, options in VARIANTS.items():
                path = Path(tmp) / f"{label}.onnx"
                written = cnnc.api.compile_to(name, path, **options)
                ops = Counter(n.op_type for n in onnx.load(path).graph.node)
                session = cnnc.Session(logits(path), "cpu")
                shape = [4 if not isinstance(d, int) else d for d in session.input_shape]
                y = session.run(np.random.default_rng(0).standard_normal(shape, dtype=np.float32))
                out[label] = (written.size / 1e6, sum(ops.values()), ops["BatchNormalization"], y)
            y32 = out["fp32"][3]

            def rel(label: str, out: dict = out, y32: np.ndarray = y32) -> str:
                return f"{np.abs(out[label][3] - y32).max() / np.abs(y32).max():.1e}"

            agree = int((out["fp16"][3].argmax(1) == y32.argmax(1)).sum())
            print(f"| {name} | {out['fp32'][0]:.1f} | {out['fp16'][0]:.1f} | {rel('fp16')} | {agree}/{len(y32)} | "
                  f"{out['fp32'][1]} -> {out['fold'][1]} | {out['fp32'][2]} -> {out['fold'][2]} | "
                  f"{out['fold'][0]:.1f} | {rel('fold')} | {rel('fold16')} |", flush=True)


if __name__ == "__main__":
    main()
