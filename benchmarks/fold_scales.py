"""Scale folding: ONNX Runtime CPU latency of a network compiled with its batch norms folded
(`--fold-bn` as it was) against the same with its constant scales folded too (`--fold-bn` now:
compiler/foldbn.py `fold_scales`), side by side in one process, and the op types ORT runs in each.

Run by hand (not a test):

    python benchmarks/fold_scales.py [--net inception_resnet_v2] [--seconds 20]

Both models come from the same graph and seed; they differ only in the scales. The models take turns in
every round (runtime/bench.py `side_by_side`, idle threads sleeping); the ratio is scales-folded over
BN-only: < 1.00 means folding the scales made it faster. It prints Markdown for benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import cnnc
from cnnc.compiler.foldbn import fold_batchnorm, fold_scales
from cnnc.compiler.lower import lower
from cnnc.compiler.towers import group_towers
from cnnc.compiler.values import Seeded, values
from cnnc.runtime.bench import Budget, quiet_cpu_session, side_by_side

sys.path.insert(0, str(Path(__file__).parent))
from graph_quality import optimized_ops  # noqa: E402


def models(name: str) -> dict[str, bytes]:
    """The network with BNs folded, and with BNs and scales folded: serialized models."""
    graph = cnnc.build(name)
    sources = graph.params
    stacked, recipes = group_towers(graph)
    bn, folded = fold_batchnorm(stacked)
    recipes = {**recipes, **folded}
    scaled, by_scale = fold_scales(bn)
    out = {}
    for label, g, r in (("BN folded", bn, recipes), ("BN and scales folded", scaled, {**recipes, **by_scale})):
        lowered = lower(g)
        out[label] = lowered.complete(values(lowered.params, sources, Seeded(0), r)).SerializeToString()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", default="inception_resnet_v2")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    made = models(args.net)
    (a_name, a), (b_name, b) = made.items()
    print(f"{args.net}: {a_name} {len(a) / 1e6:.1f} MB, {b_name} {len(b) / 1e6:.1f} MB\n")
    print(f"| batch | {a_name} ms | {b_name} ms | ratio | rounds |")
    print("|---|---|---|---|---|")
    sa, sb = quiet_cpu_session(a), quiet_cpu_session(b)  # one session each, for both batches
    for batch in (1, 8):
        i = sa.get_inputs()[0]
        x = {i.name: np.random.default_rng(0).standard_normal([batch, *i.shape[1:]], dtype=np.float32)}
        times = side_by_side({"a": lambda sa=sa, x=x: sa.run(None, x), "b": lambda sb=sb, x=x: sb.run(None, x)},
                             Budget(seconds=args.seconds, min_iterations=7, max_iterations=300))
        ma, mb = (float(np.median(times[k])) * 1e3 for k in ("a", "b"))
        print(f"| {batch} | {ma:.1f} | {mb:.1f} | {mb / ma:.3f} | {len(times['a'])} |", flush=True)
    del sa, sb
    with tempfile.TemporaryDirectory() as folder:
        ops_a, ops_b = optimized_ops(a, folder, "a"), optimized_ops(b, folder, "b")
    print(f"\nop types after ORT's optimisations: {a_name} vs {b_name}")
    for op in sorted(set(ops_a) | set(ops_b)):
        if ops_a[op] != ops_b[op]:
            print(f"  {op:<40} {ops_a[op]:>4} {ops_b[op]:>4}")


if __name__ == "__main__":
    main()
