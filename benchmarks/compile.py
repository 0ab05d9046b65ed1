"""Whole-process `cnnc compile` wall time and peak memory for every shipped architecture.

Run by hand (not a test), from the repository root:

    python benchmarks/compile.py [--repeat 3] [--baseline DIR] [--floor] [--only NAME ...] [-- COMPILE OPTIONS]

Each run is `python -m cnnc compile NAME -o FILE [OPTIONS]` under GNU time (/usr/bin/time) for the wall
time and the peak RSS, started in the repository root, so the working tree is what runs. With
`--baseline DIR` (another checkout, e.g. `git worktree add /tmp/base HEAD`), the same command also runs
there, alternating with this tree's run by run, so that both see the same load on a shared machine; the
table then gives both and their ratio. With `--floor`, numpy's floor for the same bytes runs in turn with
them (benchmarks/timing.py's FLOOR: as many float32 normals as the network has values, drawn as cnnc draws
them and written to one file): what any compiler of seeded weights must at least do; the table gives the
floor and cnnc / floor. Prints a Markdown table for benchmarks/RESULTS.md, with the machine and versions above it.

Each tree is byte-compiled first (`compileall`), as an install is: where PYTHONDONTWRITEBYTECODE is set (as on
this project's machines), a module edited since its last compilation would otherwise be compiled from source
in every run, which once made cnnc look 0.1 s slower than it is.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import FLOOR, ROOT, timed

PACKAGES = ("cnnc", "dsl", "compiler", "runtime", "architectures")  # the folders the wheel installs


def measure(source: Path, name: str, out: Path, options: list[str]) -> tuple[float, int, int, float]:
    """Wall seconds, peak RSS in kB, file size in bytes (with its external data) and CPU seconds (user +
    system: less sensitive than the wall time to what else runs on the machine) of one compile."""
    for stale in (out, out.with_name(out.name + ".data")):
        stale.unlink(missing_ok=True)
    t = timed([sys.executable, "-m", "cnnc", "compile", name, "-o", str(out), *options], cwd=source)
    data = out.with_name(out.name + ".data")
    size = out.stat().st_size + (data.stat().st_size if data.exists() else 0)
    return t.wall, t.rss_kb, size, t.cpu


@functools.cache
def values(name: str) -> int:
    """How many parameter values `name` has (built once, not once a round)."""
    import cnnc

    return sum(p.size for p in cnnc.build(name).params)


def floor(name: str, out: Path) -> tuple[float, int, int, float]:
    """`measure`'s figures for numpy's floor of `name`: its values drawn and written by a bare process."""
    t = timed([sys.executable, "-c", FLOOR, str(values(name)), str(out)])
    size = out.stat().st_size
    out.unlink()
    return t.wall, t.rss_kb, size, t.cpu


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import numpy
    import onnx
    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB; Python {platform.python_version()}, "
            f"numpy {numpy.__version__}, onnx {onnx.__version__}; {datetime.date.today().isoformat()}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout to run side by side with this one")
    parser.add_argument("--floor", action="store_true", help="run numpy's floor for the same bytes in turn")
    parser.add_argument("--only", nargs="*", help="these architectures (default: every shipped one)")
    parser.add_argument("options", nargs="*", help="extra `cnnc compile` options, after `--`")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from cnnc.architectures import names

    trees = [("this", ROOT)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    for _, source in trees:  # as pip leaves an install; where PYTHONDONTWRITEBYTECODE is set, nothing else would
        subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(source / d) for d in PACKAGES)], check=True,
                       stdout=subprocess.DEVNULL)
    print(f"Machine: {machine()}.  ")
    print(f"Command: `python benchmarks/compile.py {' '.join(sys.argv[1:])}` (each run: `python -m cnnc compile "
          f"NAME -o FILE{''.join(' ' + o for o in args.options)}` under /usr/bin/time; wall: median of "
          f"{args.repeat}, CPU = user + system: median, peak RSS: the largest)\n")
    if args.floor:
        base = " baseline wall s | baseline / floor |" if args.baseline else ""
        print(f"| network | file MB | floor wall s | cnnc wall s | cnnc / floor |{base} floor CPU s | cnnc CPU s | "
              f"{'baseline CPU s | ' if args.baseline else ''}floor peak RSS MB | cnnc peak RSS MB |")
        print("|---|---|---|---|---|" + ("---|---|---|" if args.baseline else "") + "---|---|---|---|")
    elif args.baseline:
        print("| network | file MB (before / after) | wall s before | wall s after | after / before | "
              "CPU s before | CPU s after | peak RSS MB before | peak RSS MB after | RSS / file after |")
        print("|---|---|---|---|---|---|---|---|---|---|")
    else:
        print("| network | file MB | wall s | CPU s | peak RSS MB | RSS / file |")
        print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or names():
            runs: dict[str, list[tuple[float, int, int, float]]] = {label: [] for label, _ in trees}
            runs.update({"floor": []} if args.floor else {})
            steps = ([("floor", None)] if args.floor else []) + trees
            for i in range(args.repeat):  # the order turns round by round: a run just after a write pays more
                for label, source in steps[i % len(steps):] + steps[:i % len(steps)]:
                    runs[label].append(floor(name, Path(tmp) / "floor.bin") if source is None else
                                       measure(source, name, Path(tmp) / f"{label}.onnx", args.options))
            wall = {label: statistics.median(r[0] for r in rs) for label, rs in runs.items()}
            cpu = {label: statistics.median(r[3] for r in rs) for label, rs in runs.items()}
            rss = {label: max(r[1] for r in rs) / 1e3 for label, rs in runs.items()}
            size = {label: rs[-1][2] / 1e6 for label, rs in runs.items()}
            if args.floor:
                base = (f" {wall['baseline']:.2f} | {wall['baseline'] / wall['floor']:.2f} |" if args.baseline else "")
                base_cpu = f" {cpu['baseline']:.2f} |" if args.baseline else ""
                print(f"| {name} | {size['this']:.1f} | {wall['floor']:.2f} | {wall['this']:.2f} | "
                      f"{wall['this'] / wall['floor']:.2f} |{base} {cpu['floor']:.2f} | {cpu['this']:.2f} |{base_cpu} "
                      f"{rss['floor']:.0f} | {rss['this']:.0f} |")
            elif args.baseline:
                sizes = f"{size['baseline']:.1f} / {size['this']:.1f}"
                print(f"| {name} | {sizes} | {wall['baseline']:.2f} | {wall['this']:.2f} | "
                      f"{wall['this'] / wall['baseline']:.2f} | {cpu['baseline']:.2f} | {cpu['this']:.2f} | "
                      f"{rss['baseline']:.0f} | {rss['this']:.0f} | "
                      f"{rss['this'] / size['this']:.1f} |")
            else:
                print(f"| {name} | {size['this']:.1f} | {wall['this']:.2f} | {cpu['this']:.2f} | {rss['this']:.0f} | "
                      f"{rss['this'] / size['this']:.1f} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
