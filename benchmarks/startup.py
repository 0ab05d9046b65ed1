"""Start-up: whole-process time of `cnnc --version`, `cnnc check NET` and friends in this checkout
against another (an older commit), taking turns, with `python -c pass` as the floor.

Run by hand (not a test), from the repository root:

    git archive COMMIT | (mkdir -p /tmp/before && tar -x -C /tmp/before)
    python benchmarks/startup.py /tmp/before [--rounds 15] [--layers 10000 40000]

(or a copy of this checkout with the files of one change put back as they were: what RESULTS.md's
figures compare).

Each command runs as `python -m cnnc ...` with its working directory at the checkout's root, so the
checkout's own `cnnc` package is the one imported (the current directory comes first on `sys.path`). The
commands take turns within every round; the table gives medians over the rounds and after / before.
With `--layers N` it also times `cnnc check` of a generated N-layer chain (see `chain`).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
COMMANDS = (["--version"], ["check", "resnet50"], ["check", "inception_v4"], ["summary", "resnet50"])


def chain(layers: int, folder: Path) -> Path:
    """A network of `layers` layers: a conv and then (layers - 1) / 2 relu + depthwise-free 1x1 convs."""
    path = folder / f"chain{layers}.yaml"
    body = "".join("  - conv(4, 1x1)\n  - relu\n" for _ in range((layers - 1) // 2))
    path.write_text(f"network: chain{layers}\ninput: [4, 8, 8]\nlayers:\n  - conv(4, 3x3, padding=same)\n{body}")
    return path


def time_once(tree: Path, args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *(["-m", "cnnc", *args] if args != ["pass"] else ["-c", "pass"])],
                   cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=args != ["pass"])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="the other checkout's root")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--layers", type=int, nargs="*", default=[], help="also `check` an N-layer chain")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        commands = [["pass"], *COMMANDS, *(["check", str(chain(n, Path(folder))), "--limit", f"layers={n + 1}"]
                                          for n in args.layers)]
        times: dict[tuple[int, str], list[float]] = {}
        for _ in range(args.rounds):
            for k, command in enumerate(commands):
                for side, tree in (("before", args.before), ("after", HERE)):
                    times.setdefault((k, side), []).append(time_once(tree, command))
    print("| command | before ms | after ms | after / before |")
    print("|---|---|---|---|")
    for k, command in enumerate(commands):
        before, after = (statistics.median(times[k, side]) * 1e3 for side in ("before", "after"))
        shown = "python -c pass" if command == ["pass"] else "cnnc " + " ".join(
            Path(c).name if c.endswith(".yaml") else c for c in command)
        print(f"| `{shown}` | {before:.0f} | {after:.0f} | {after / before:.2f} |")
    print(f"\n{args.rounds} rounds, taking turns; medians")


if __name__ == "__main__":
    main()
