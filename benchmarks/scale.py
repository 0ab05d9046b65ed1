"""A big network's whole-process `cnnc compile` against numpy's floor for the same bytes.

Run by hand (not a test), from the repository root:

    python benchmarks/scale.py [--network regnet_y_128gf] [--repeat 2] [--folder /tmp]

The floor is a fresh process that draws as many float32 normals as the network has parameters with
numpy's SFC64, a million at a time, and writes them to one file: what any compiler of seeded weights must
at least do. The two take turns, run by run, under GNU time (wall seconds and peak RSS). Prints a Markdown
table for benchmarks/RESULTS.md; the issue's bars are a wall-time ratio of at most 1.5 and a peak RSS of at
most half the weights' bytes.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOOR = """
import sys, numpy as np
g, n, chunk = np.random.Generator(np.random.SFC64(0)), int(sys.argv[1]), 1 << 20
with open(sys.argv[2], "wb") as f:
    for s in range(0, n, chunk):
        f.write(g.standard_normal(min(chunk, n - s), dtype=np.float32).tobytes())
"""


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS in MB of one process."""
    r = subprocess.run(["/usr/bin/time", "-f", "%e %M", *argv], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{r.stderr}")
    wall, rss = r.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss) / 1024


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
            floor_wall, floor_rss = timed([sys.executable, "-c", FLOOR, str(n), str(floor)])
            wall, rss = timed([sys.executable, "-m", "cnnc", "compile", args.network, "-o", str(model)])
            print(f"| {run} | {wall:.2f} | {rss:.0f} | {floor_wall:.2f} | {floor_rss:.0f} | {wall / floor_wall:.2f} "
                  f"| {rss * 2**20 / (4 * n):.3f} |")
    finally:
        for path in (model, model.with_name(model.name + ".data"), floor):
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
