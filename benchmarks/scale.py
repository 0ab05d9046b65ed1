"""A big network's whole-process `cnnc compile` against numpy's floor for the same bytes.

Run by hand (not a test), from the repository root:

    python benchmarks/scale.py [--network regnet_y_128gf] [--repeat 2] [--folder /tmp]

The floor is a fresh process that draws as many float32 normals as the network has parameters, as cnnc
draws them, and writes them to one file (benchmarks/timing.py's FLOOR, shared with compile.py --floor).
The two take turns, run by run, under GNU time (wall seconds and peak RSS). Prints a Markdown table for
benchmarks/RESULTS.md; the issue's bars are a wall-time ratio of at most 1.5 and a peak RSS of at most half
the weights' bytes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from timing import FLOOR, ROOT, timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--network", default="regnet_y_128gf")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--folder", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import cnnc

    n = cnnc.build(args.network).counts()["total"]
    model, floor = args.folder / f"{args.network}.onnx", args.folder / "floor.bin"
    print(f"`python benchmarks/scale.py --network {args.network}`: {n:,} parameters, {4 * n / 1e9:.2f} GB of "
          f"float32 weights.\n")
    print("| run | cnnc compile wall s | peak RSS MB | numpy floor wall s | peak RSS MB | wall ratio | RSS / weights |")
    print("|---|---|---|---|---|---|---|")
    try:
        for run in range(1, args.repeat + 1):
            base = timed([sys.executable, "-c", FLOOR, str(n), str(floor)])
            run_ = timed([sys.executable, "-m", "cnnc", "compile", args.network, "-o", str(model)])
            wall, rss, floor_wall, floor_rss = run_.wall, run_.rss_mb, base.wall, base.rss_mb
            print(f"| {run} | {wall:.2f} | {rss:.0f} | {floor_wall:.2f} | {floor_rss:.0f} | {wall / floor_wall:.2f} "
                  f"| {rss * 2**20 / (4 * n):.3f} |")
    finally:
        for path in (model, model.with_name(model.name + ".data"), floor):
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
