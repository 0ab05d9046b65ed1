"""Start-up: whole-process time of `cnnc --version`, `cnnc check NET` and friends in this checkout
against other checkouts (older commits), taking turns, with `python -c pass` as the floor; and, with
`--per-layer`, how `check`'s time grows with the layers, in-process.

Run by hand (not a test), from the repository root:

    git worktree add --detach /tmp/perf/base COMMIT
    python benchmarks/startup.py /tmp/perf/base [/tmp/perf/head ...] [--rounds 15] [--layers 10000 40000]
    python benchmarks/startup.py --per-layer 5000 10000 20000 40000

Each command runs as `python -m cnnc ...` with its working directory at the checkout's root, so the
checkout's own `cnnc` package is the one imported (the current directory comes first on `sys.path`).
Bytecode is cached as an installed package has it (PYTHONDONTWRITEBYTECODE is dropped, and every
command runs once in every tree before the timed rounds); the commands take turns within every round;
the table gives the median and the fastest over the rounds (the fastest is the one the others'
load touched least), and this tree's time over each other's. With `--layers N`
it also times `cnnc check` of a generated N-layer chain (see `chain`).

`--per-layer N ...` times, in this process and with the garbage collector set as the CLI sets it while a
command runs, reading an N-layer chain (`cnnc.load`: YAML, validation, expressions) and building it
(`cnnc.build` of the document: resolving, shapes), and building a network that expands to N layers from
one block repeated (`repeated`), up to the `layers` limit: time per layer, best of `--rounds`.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
COMMANDS = (["--version"], ["check", "resnet50"], ["check", "inception_v4"], ["summary", "resnet50"])
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def chain(layers: int, folder: Path) -> Path:
    """A network of `layers` layers: a conv and then (layers - 1) / 2 relu + depthwise-free 1x1 convs."""
    path = folder / f"chain{layers}.yaml"
    body = "".join("  - conv(4, 1x1)\n  - relu\n" for _ in range((layers - 1) // 2))
    path.write_text(f"network: chain{layers}\ninput: [4, 8, 8]\nlayers:\n  - conv(4, 3x3, padding=same)\n{body}")
    return path


def repeated(layers: int, folder: Path) -> Path:
    """A network that expands to `layers` layers as `chain` does, from a two-layer block repeated: a file of
    a few lines, so that it can reach the `layers` limit (a chain that long is over the 1 MiB a file may be)."""
    path = folder / f"repeated{layers}.yaml"
    pairs = (layers - 1) // 2
    body = "".join(f"  - cr x {min(5000, pairs - i)}\n" for i in range(0, pairs, 5000))
    path.write_text(f"network: repeated{layers}\ninput: [4, 8, 8]\nblocks:\n  cr: [conv(4, 1x1), relu]\n"
                    f"layers:\n  - conv(4, 3x3, padding=same)\n{body}")
    return path


def time_once(tree: Path, args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *(["-m", "cnnc", *args] if args != ["pass"] else ["-c", "pass"])],
                   cwd=tree, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=args != ["pass"])
    return time.perf_counter() - start


def whole_process(others: list[Path], rounds: int, layers: list[int]) -> None:
    trees = [*others, HERE]
    with tempfile.TemporaryDirectory() as folder:
        commands = [["pass"], *COMMANDS, *(["check", str(chain(n, Path(folder))), "--limit", f"layers={n + 1}"]
                                          for n in layers)]
        for command in commands:  # bytecode written, caches warm
            for tree in trees:
                time_once(tree, command)
        times: dict[tuple[int, Path], list[float]] = {}
        for _ in range(rounds):
            for k, command in enumerate(commands):
                for tree in trees:
                    times.setdefault((k, tree), []).append(time_once(tree, command))
    print("| command | " + " | ".join(f"{t.name} ms" for t in others) + " | this tree ms | "
          + " | ".join(f"this / {t.name}" for t in others) + " |")
    print("|---" * (2 + 2 * len(others)) + "|")
    for k, command in enumerate(commands):
        med = {tree: statistics.median(times[k, tree]) * 1e3 for tree in trees}
        low = {tree: min(times[k, tree]) * 1e3 for tree in trees}
        shown = "python -c pass" if command == ["pass"] else "cnnc " + " ".join(
            Path(c).name if c.endswith(".yaml") else c for c in command)
        cells = [f"{med[t]:.0f} ({low[t]:.0f})" for t in trees]
        ratios = [f"{med[HERE] / med[t]:.2f} ({low[HERE] / low[t]:.2f})" for t in others]
        print(f"| `{shown}` | {' | '.join(cells)} | {' | '.join(ratios)} |")
    print(f"\n{rounds} rounds, taking turns; median (fastest) of each; trees: "
          + ", ".join(f"{t.name} = {t}" for t in others))


def per_layer(sizes: list[int], rounds: int) -> None:
    sys.path.insert(0, str(HERE))
    from cnnc import api
    from cnnc.cli import _fewer_collections
    from cnnc.compiler.limits import limits

    api.build("lenet5")  # the imports and the parser, out of the way
    best: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as folder:
        files = {n: (chain(n, Path(folder)) if n < 60_000 else None, repeated(n, Path(folder))) for n in sizes}
        for _ in range(rounds):
            for n, (chained, repeats) in files.items():
                laps: dict[str, float] = {}
                with limits(layers=n + 1, calls=2 * n), _fewer_collections():
                    if chained is not None:
                        t0 = time.perf_counter()
                        doc = api.load(chained)
                        t1 = time.perf_counter()
                        api.build(doc)
                        laps.update({"chain: load": t1 - t0, "chain: build": time.perf_counter() - t1})
                        del doc
                    t0 = time.perf_counter()
                    api.build(repeats)
                    laps["repeated: load + build"] = time.perf_counter() - t0
                gc.collect()
                for what, seconds in laps.items():
                    best[what, n] = min(best.get((what, n), float("inf")), seconds)
    kinds = sorted({what for what, _ in best}, key=["chain: load", "chain: build", "repeated: load + build"].index)
    print(f"| layers | {' | '.join(f'{k} µs/layer' for k in kinds)} |")
    print("|---" * (1 + len(kinds)) + "|")
    for n in sizes:
        cells = (f"{best[k, n] / n * 1e6:.1f}" if (k, n) in best else "-" for k in kinds)
        print(f"| {n:,} | {' | '.join(cells)} |")
    print(f"\nin-process, the CLI's garbage collection; best of {rounds} rounds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("others", type=Path, nargs="*", help="other checkouts' roots")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--layers", type=int, nargs="*", default=[], help="also `check` an N-layer chain")
    parser.add_argument("--per-layer", type=int, nargs="*", default=[], metavar="N",
                        help="time `check`'s stages per layer at N layers, in-process")
    args = parser.parse_args()
    if args.others:
        whole_process(args.others, args.rounds, args.layers)
    if args.per_layer:
        per_layer(args.per_layer, args.rounds)


if __name__ == "__main__":
    main()
