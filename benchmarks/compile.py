"""Whole-process `cnnc compile` wall time and peak memory for every shipped architecture.

Run by hand (not a test): `python benchmarks/compile.py [--repeat 3]` with cnnc installed; it prints a
Markdown table for benchmarks/RESULTS.md. Uses GNU time (/usr/bin/time) for the peak RSS.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from cnnc.architectures import names


def measure(name: str, out: Path) -> tuple[float, int]:
    r = subprocess.run(["/usr/bin/time", "-f", "%e %M", "cnnc", "compile", name, "-o", str(out)],
                       capture_output=True, text=True, check=True)
    wall, rss_kb = r.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss_kb)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| network | file MB | wall s (median of %d) | peak RSS MB | RSS / file |" % args.repeat)
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names():
            out = Path(tmp) / f"{name}.onnx"
            runs = [measure(name, out) for _ in range(args.repeat)]
            size = os.path.getsize(out) / 1e6
            wall = statistics.median(r[0] for r in runs)
            rss = max(r[1] for r in runs) / 1e3
            print(f"| {name} | {size:.1f} | {wall:.2f} | {rss:.0f} | {rss / size:.1f} |")


if __name__ == "__main__":
    main()
