"""The long fuzz run: tests/test_fuzz.py's strategies and oracle, for as long as asked.

Run by hand (not a test), with cnnc and hypothesis installed:

    python benchmarks/fuzz.py --minutes 20 --out /tmp/cnnc-fuzz [--seed 1] [--process-every 25]

It cycles through the targets (text mutants, YAML-data mutants, near-miss expressions, random
expression strings) in chunks of examples, each chunk a hypothesis run with its own seed, and never
stops at a failure: each failure is classified by a signature (its kind and its normalised message),
and the first example of each signature is kept. Every Nth file mutant is also checked in a real
process under a memory limit. At the end each distinct failure is reduced (lines, then tokens, while
the signature holds) and written to OUT as NN.yaml (the reduced file) and NN.txt (the signature, the
mutations that produced it, the `cnnc check` output of the reduced file, and the original file's
output), with a summary in OUT/summary.txt. The exit status is 1 when anything failed.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml
from hypothesis import HealthCheck, Phase, given, seed, settings, strategies as st

ROOT = Path(__file__).resolve().parent.parent


def _load_fuzz_module():
    spec = importlib.util.spec_from_file_location("cnnc_test_fuzz", ROOT / "tests" / "test_fuzz.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


F = _load_fuzz_module()


def say(text: str) -> None:
    """Print text that may hold lone surrogates (undecodable bytes of a mutant)."""
    print(text.encode("utf-8", "backslashreplace").decode("utf-8"), flush=True)


def signature(problem: str) -> str:
    """A failure's kind plus its message with the variable parts (names, numbers, paths, quoted text)
    blanked out, so that one bug met in many files counts once."""
    kind, _, detail = problem.partition(": ")
    detail = re.sub(r"/\S*?mutant\.yaml", "FILE", detail)
    detail = re.sub(r"`[^`]*`|'[^']*'|\"[^\"]*\"", "_", detail)
    detail = re.sub(r"#x[0-9a-fA-F]+", "#xN", detail)
    detail = re.sub(r"\d+", "N", detail)
    if kind in ("unlocated", "python-warning"):
        detail = " ".join(detail.split()[:6])
    if kind == "multiline":
        detail = ""
    if kind == "misplaced":
        detail = detail.split(":")[0]
    return f"{kind}: {detail[:120]}"


@dataclass
class Failure:
    signature: str
    problem: str
    target: str
    payload: bytes | tuple[str, str]  # a file's bytes, or (start, text) for an expression
    steps: tuple[str, ...]
    output: str
    count: int = 1


@dataclass
class Run:
    args: argparse.Namespace
    workdir: Path
    failures: dict[str, Failure] = field(default_factory=dict)
    examples: dict[str, int] = field(default_factory=dict)
    slow: list[tuple[float, str, tuple[str, ...]]] = field(default_factory=list)
    checked_in_process: int = 0

    def record(self, problem: str | None, target: str, payload, steps, output: str) -> None:
        self.examples[target] = self.examples.get(target, 0) + 1
        if problem is None:
            return
        sig = signature(problem)
        if sig in self.failures:
            self.failures[sig].count += 1
            return
        self.failures[sig] = Failure(sig, problem, target, payload, tuple(steps), output)
        say(f"  new failure [{target}] {sig}")


# ---- the targets: each returns a hypothesis strategy and a body ----------------------------------
def file_body(run: Run, target: str) -> Callable:
    path = run.workdir / "mutant.yaml"

    def body(mutant) -> None:
        path.write_bytes(mutant.raw)
        outcome = F.check_in_process(path, run.args.hang)
        problem = F.verdict(outcome, str(path), mutant.raw)
        if problem is None and outcome.seconds > run.args.slow:
            run.slow.append((outcome.seconds, mutant.base, mutant.steps))
        run.record(problem, target, mutant.raw, mutant.steps, outcome.err or outcome.out)
        run.checked_in_process += 1
        if run.args.process_every and run.checked_in_process % run.args.process_every == 0:
            outcome = F.check_subprocess(path, run.args.hang)
            problem = F.verdict(outcome, str(path), mutant.raw)
            run.record(problem, "process", mutant.raw, mutant.steps, outcome.err or outcome.out)
    return body


def expr_body(run: Run, target: str) -> Callable:
    def body(case) -> None:
        start, text = case
        problem = F.check_expression(text, start, run.args.hang)
        run.record(problem, target, (start, text), (), problem or "")
    return body


_STARTS = st.sampled_from(["item", "signature", "expr"])
TARGETS: dict[str, tuple[Callable[[], st.SearchStrategy], Callable]] = {
    "text": (lambda: F.text_mutants(), file_body),
    "data": (lambda: F.data_mutants(), file_body),
    "near-miss": (lambda: _STARTS.flatmap(lambda s: st.tuples(st.just(s), F.near_misses(F.VALID[s]))), expr_body),
    "random": (lambda: st.tuples(_STARTS, st.text(alphabet=F._ALPHABET, max_size=60) | st.text(max_size=60)),
               expr_body),
}


def run_chunk(run: Run, target: str, chunk_seed: int, examples: int, deadline: float) -> None:
    make_strategy, make_body = TARGETS[target]
    inner = make_body(run, target)

    def body(case) -> None:
        if time.monotonic() >= deadline:
            return
        try:
            inner(case)
        except Exception as e:  # noqa: BLE001 - a bug in this harness must not end a long run
            run.record(f"harness: {type(e).__name__}: {e}", target, getattr(case, "raw", case),
                       getattr(case, "steps", ()), repr(e))

    test = seed(chunk_seed)(settings(
        max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck), derandomize=False)(given(make_strategy())(body)))
    test()


# ---- reduction ------------------------------------------------------------------------------------
def ddmin(parts: list, fails: Callable[[list], bool], until: float) -> list:
    """Remove chunks of `parts` while `fails` still holds (Zeller's delta debugging, complements only)."""
    n = 2
    while len(parts) >= 2 and time.monotonic() < until:
        size = math.ceil(len(parts) / n)
        for i in range(0, len(parts), size):
            candidate = parts[:i] + parts[i + size:]
            if candidate and fails(candidate):
                parts, n = candidate, max(n - 1, 2)
                break
        else:
            if n >= len(parts):
                break
            n = min(len(parts), n * 2)
    return parts


def reduce_file(run: Run, failure: Failure, budget: float) -> bytes:
    path = run.workdir / "reduce.yaml"
    subprocess_target = failure.target == "process"
    tries = 0

    def fails(raw: bytes) -> bool:
        nonlocal tries
        tries += 1
        path.write_bytes(raw)
        hang = min(run.args.hang, 3.0)
        outcome = F.check_subprocess(path, hang) if subprocess_target else F.check_in_process(path, hang)
        problem = F.verdict(outcome, str(path), raw)
        return problem is not None and signature(problem) == failure.signature

    raw = failure.payload
    if failure.signature.startswith("hang"):
        return raw  # each try would cost the whole time limit
    until = time.monotonic() + budget
    lines = raw.splitlines(keepends=True)
    lines = ddmin(lines, lambda ls: fails(b"".join(ls)), until)
    tokens = re.findall(rb"\s+|\w+|.", b"".join(lines), re.S)
    tokens = ddmin(tokens, lambda ts: fails(b"".join(ts)), until)
    reduced = b"".join(tokens)
    return reduced if fails(reduced) else raw


def reduce_expression(run: Run, failure: Failure, budget: float) -> tuple[str, str]:
    start, text = failure.payload
    until = time.monotonic() + budget

    def fails(chars: list) -> bool:
        problem = F.check_expression("".join(chars), start, min(run.args.hang, 3.0))
        return problem is not None and signature(problem) == failure.signature

    if failure.signature.startswith("hang"):
        return start, text
    return start, "".join(ddmin(list(text), fails, until))


def as_network(start: str, text: str) -> bytes:
    """A network file that puts an expression where its start rule is used."""
    if start == "signature":
        data = {"network": "t", "input": [3, 32, 32], "blocks": {text: ["relu"]}, "layers": ["relu"]}
    elif start == "item":
        data = {"network": "t", "input": [3, 32, 32], "layers": [text]}
    else:
        data = {"network": "t", "input": [3, 32, 32], "layers": [f"conv({text}, 3x3)"]}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**6).encode()


def write_report(run: Run, elapsed: float) -> None:
    out = Path(run.args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = [f"cnnc fuzz: {sum(run.examples.values()):,} examples in {elapsed / 60:.1f} min, seed "
               f"{run.args.seed}; per target: {run.examples}", f"{len(run.failures)} distinct failures", ""]
    for n, failure in enumerate(sorted(run.failures.values(), key=lambda f: f.signature), 1):
        stem = out / f"{n:02d}"
        say(f"reducing {n:02d}: {failure.signature}")
        if isinstance(failure.payload, bytes):
            reduced = reduce_file(run, failure, run.args.reduce_seconds)
            start_text = None
        else:
            start_text = reduce_expression(run, failure, run.args.reduce_seconds)
            reduced = as_network(*start_text)
        stem.with_suffix(".yaml").write_bytes(reduced)
        shown = stem.with_suffix(".yaml")
        now = F.check_in_process(shown, run.args.hang)
        notes = [f"signature: {failure.signature}", f"first seen: {failure.problem}",
                 f"target: {failure.target}; seen {failure.count} times"]
        if start_text:
            notes.append(f"expression: expr.parse({start_text[1]!r}, {start_text[0]!r})")
        if failure.steps:
            notes.append("mutations of the shipped file: " + "; ".join(failure.steps))
        notes += [f"`cnnc check {shown}` now: exit {now.rc}; verdict: "
                  f"{F.verdict(now, str(shown), reduced)}", "--- its output ---", (now.err or now.out).rstrip(),
                  "--- the output on the unreduced example ---", failure.output.rstrip(), ""]
        stem.with_suffix(".txt").write_text("\n".join(notes), encoding="utf-8", errors="backslashreplace")
        bug = F.known_bug(failure.problem)
        known = f"  (known: {bug.name})" if bug else ""
        summary.append(f"{n:02d}  [{failure.target}, x{failure.count}]  {failure.signature}{known}")
    if run.slow:
        summary += ["", f"{len(run.slow)} accepted or refused answers slower than {run.args.slow} s; slowest:"]
        summary += [f"  {s:.2f} s  {base}: {'; '.join(steps)}" for s, base, steps in sorted(run.slow)[-10:]]
    (out / "summary.txt").write_text("\n".join(summary) + "\n", encoding="utf-8", errors="backslashreplace")
    say("\n".join(summary))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=20.0, help="how long to generate examples (default 20)")
    p.add_argument("--out", default="cnnc-fuzz", help="where reproducers go (default ./cnnc-fuzz)")
    p.add_argument("--seed", type=int, default=1, help="base seed; chunk i uses seed*100000+i (default 1)")
    p.add_argument("--chunk", type=int, default=300, help="examples per hypothesis run (default 300)")
    p.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated, of: {', '.join(TARGETS)}")
    p.add_argument("--process-every", type=int, default=25,
                   help="also check every Nth file mutant in a real process under a memory limit (0: never)")
    p.add_argument("--hang", type=float, default=F.HANG_S, help="seconds after which a check is a hang")
    p.add_argument("--slow", type=float, default=1.0, help="report answers slower than this many seconds")
    p.add_argument("--reduce-seconds", type=float, default=60.0, help="time to reduce each failure")
    args = p.parse_args()
    targets = [t for t in args.targets.split(",") if t]
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        p.error(f"unknown targets: {', '.join(unknown)}")
    workdir = Path(args.out) / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    run = Run(args, workdir)
    begin = time.monotonic()
    deadline = begin + args.minutes * 60
    chunk = 0
    while time.monotonic() < deadline:
        target = targets[chunk % len(targets)]
        run_chunk(run, target, args.seed * 100000 + chunk, args.chunk, deadline)
        chunk += 1
        print(f"{(time.monotonic() - begin) / 60:5.1f} min  {sum(run.examples.values()):>8,} examples  "
              f"{len(run.failures)} distinct failures", flush=True)
    write_report(run, time.monotonic() - begin)
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
