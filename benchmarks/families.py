"""Whole-process `cnnc check` and `cnnc compile` times of the modern families, against ResNet-50.

Run by hand (not a test), from the repository root:

    python benchmarks/families.py [--repeat 5] [--only NAME ...]

For each network (default: ResNet-50 and every shipped variant of the MobileNet, EfficientNet, ConvNeXt,
ShuffleNet-v2, RegNet and ResNet families), the runs take turns network by network so that all see the
same load on a shared machine; each figure is the best of `--repeat` runs (the least disturbed one).
Prints a Markdown table for benchmarks/RESULTS.md: `check` seconds (the target: at most 0.3 s), the part
of it that is the network's own work (a fresh process's `cnnc.build(NAME)` after `import cnnc`: reading,
validating, resolving and shape-checking the file), `compile` seconds, parameters, compile microseconds
per thousand parameters of the compile in a fresh process after its imports (`cnnc.api.compile_to`: build,
lower, make and write the weights), and that cost relative to ResNet-50's (the target: at most 1.0).
`cnnc --version`, the start-up that every command pays, is measured in the same run.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compile import machine

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ("mobilenet", "efficientnet", "convnext", "shufflenet", "regnet", "resnet")


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "cnnc", *argv], capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"cnnc {' '.join(argv)} failed:\n{r.stderr}")
    return elapsed


BUILD = "import time, cnnc; t = time.perf_counter(); cnnc.build({!r}); print(time.perf_counter() - t)"
COMPILE = ("import sys, time, cnnc, cnnc.compiler.lower, numpy, onnx; t = time.perf_counter(); "
           "cnnc.api.compile_to({!r}, sys.argv[1]); print(time.perf_counter() - t)")


def in_process(code: str, name: str, *argv: str) -> float:
    """Seconds of `code`'s timed part in a fresh process (after its imports)."""
    r = subprocess.run([sys.executable, "-c", code.format(name), *argv], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise SystemExit(f"{name} failed:\n{r.stderr}")
    return float(r.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="these networks (ResNet-50 is always measured)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import cnnc
    from cnnc.architectures import names

    chosen = args.only or [n for n in names() if n.startswith(FAMILIES)]
    networks = ["resnet50", *(n for n in chosen if n != "resnet50")]
    params = {n: cnnc.build(n).counts()["total"] for n in networks}
    best: dict[str, dict[str, float]] = {n: dict.fromkeys(("check", "build", "compile", "work"), float("inf"))
                                         for n in networks}
    with tempfile.TemporaryDirectory() as tmp:
        baseline = wall(["--version"])
        for _ in range(args.repeat):
            baseline = min(baseline, wall(["--version"]))
            for n in networks:
                best[n]["check"] = min(best[n]["check"], wall(["check", n]))
                best[n]["build"] = min(best[n]["build"], in_process(BUILD, n))
                best[n]["compile"] = min(best[n]["compile"], wall(["compile", n, "-o", f"{tmp}/{n}.onnx"]))
                best[n]["work"] = min(best[n]["work"], in_process(COMPILE, n, f"{tmp}/{n}.onnx"))
    def per_param(n: str) -> float:
        return best[n]["work"] / params[n]
    reference = per_param("resnet50")
    print(f"Machine: {machine()}. Command: `python benchmarks/families.py --repeat {args.repeat}`; best of "
          f"{args.repeat} runs each; `cnnc --version` takes {baseline:.3f} s.\n")
    print("| network | check s | of which the network's build s | compile s | of which after imports s | parameters "
          "| µs / 1k params after imports | / ResNet-50's |")
    print("|---|---|---|---|---|---|---|---|")
    for n in networks:
        per = per_param(n)
        print(f"| {n} | {best[n]['check']:.3f} | {best[n]['build']:.3f} | {best[n]['compile']:.2f} | "
              f"{best[n]['work']:.2f} | {params[n]:,} | {per * 1e9:.1f} | {per / reference:.2f} |")


if __name__ == "__main__":
    main()
