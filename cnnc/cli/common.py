"""What the subcommands share: the `Command` definition, argument types, repeated options and their help
texts, and output helpers (tables, shapes, progress bars on a terminal).

rich is imported only when a bar is really shown, so that `cnnc check` and friends start fast.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Iterable, Sequence

from ..record import Record, record


def no_arguments(parser: argparse.ArgumentParser) -> None:
    """For the subcommands that take none."""


@record
class Command(Record):
    """One subcommand: its name and help line, what it adds to its parser, and what runs it.

    `network`: it builds a network, so it takes `--limit` (added after its own arguments)."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    arguments: Callable[[argparse.ArgumentParser], None] = no_arguments
    network: bool = False


# ---- help texts used by several subcommands ---------------------------------------------------------
NET_HELP = "a network file, or the name of a shipped architecture (see `cnnc list`)"
AUX_HELP = "keep the train-only heads (`aux:`), as extra outputs named after them"
WEIGHTS_HELP = ("load the parameters from a checkpoint: cnnc-named .safetensors or .npz (see `cnnc weights`), or "
                "torchvision/timm .safetensors, a PyTorch .pth, Keras .weights.h5 or .keras, mapped by structure "
                "(`cnnc weights map CHECKPOINT NET` shows how)")
WEIGHTS_MAP_HELP = ("a YAML file of explicit renames for --weights, `CHECKPOINT_NAME: CNNC_NAME` per line (`*` "
                    "patterns allowed, `null` drops a tensor), for what the structure leaves open")
SEED_HELP = "seed of the initial weights (default 0)"
JSON_HELP = "print a JSON object instead of a table"
PROVIDER_HELP = "auto: CUDA when it really initialises, else the CPU"
PROVIDERS = ["auto", "cuda", "cpu"]
WHEN_NETWORK = " (when MODEL is a network)"
LIMIT_HELP = ("raise or lower a limit, NAME=VALUE (repeatable): repeat, layers, calls, depth, params, "
              "activation_mb; see docs/language.md, Limits")


# ---- options -----------------------------------------------------------------------------------------
def compile_options(c: argparse.ArgumentParser, note: str = "") -> None:
    """--dtype and --fold-bn, for the commands that compile a network."""
    c.add_argument("--dtype", choices=["float32", "float16"], default="float32",
                   help="the weights' and the computation's type (default float32); a float16 model still "
                        "takes and gives float32" + note)
    c.add_argument("--fold-bn", action="store_true",
                   help="fold each batchnorm, and each constant scale (Inception-ResNet's), into the conv "
                        "before it (inference only: fewer nodes, smaller file, more fusions in ONNX Runtime)" + note)


def limit_option(c: argparse.ArgumentParser) -> None:
    """--limit, --set and --variant, for the commands that build a network."""
    c.add_argument("--limit", action="append", metavar="NAME=VALUE", help=LIMIT_HELP)
    c.add_argument("--set", action="append", metavar="NAME=VALUE", dest="overrides",
                   help="set a parameter of a family file (repeatable), e.g. `--set width=1.1`; VALUE is an "
                        "expression")
    c.add_argument("--variant", metavar="NAME",
                   help="build this variant of a family file given by path (a shipped variant is named "
                        "directly: `cnnc check efficientnet_b3`)")


# ---- argument types ----------------------------------------------------------------------------------
def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def batches(text: str) -> list[int]:
    return [positive(part) for part in text.split(",")]


def depth(text: str) -> int | None:
    from ..summary_table import parse_depth
    try:
        return parse_depth(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a level (1, 2, ...) or `all`, got {text!r}") from None


# ---- output ------------------------------------------------------------------------------------------
def shape(dims: Iterable[Any]) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], right: Iterable[int] = frozenset()) -> None:
    """A table on stdout in the one style of every command (cnnc/table.py): a box-drawing rule under the
    header, columns two spaces apart, those in `right` right-aligned. On a terminal it fits the width, the
    left-aligned columns (names) shortened from the left, `…ck/conv.weight`; a pipe gets every cell whole."""
    from ..table import Column, print_table, tail
    right = set(right)
    fit = sys.stdout.isatty()
    cells = [[c if i in right or not fit else tail(str(c)) for i, c in enumerate(row)] for row in rows]
    print_table([Column(h, right=i in right, shrink=None if i in right else 12) for i, h in enumerate(header)],
                cells, width=-1 if fit else None)


class ProgressBar:
    """A bar on stderr for writes of more than 100 MB, only when stderr is a terminal (rich, imported then)."""

    def __init__(self, what: str, threshold: int = 100 << 20) -> None:
        self.what, self.threshold = what, threshold
        self.progress: Any = None
        self.task: Any = None

    def __enter__(self) -> ProgressBar:
        return self

    def update(self, done: int, total: int) -> None:
        if self.progress is None:
            if total < self.threshold or not sys.stderr.isatty():
                return
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
            self.progress = Progress(f"[progress.description]{self.what}", BarColumn(), DownloadColumn(),
                                     TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self.progress.start()
            self.task = self.progress.add_task(self.what, total=total)
        self.progress.update(self.task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


class Steps:
    """What a long command is doing, live on stderr while it is a terminal (rich, imported then): one row
    per step, `compiling lenet5`, `creating the session`, `batch    8  warm-up`, then that batch size's
    bar; the rows go when the command prints its results. Off a terminal it shows nothing."""

    def __init__(self, show: bool = True) -> None:
        self.show = show and sys.stderr.isatty()
        self.live: Any = None
        self.pending: list[tuple[str, Any]] = []  # steps begun and not yet followed by another
        self.batches: dict[int, Any] = {}

    def __enter__(self) -> Steps:
        if self.show:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
            self.live = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=True)
            self.live.start()
        return self

    def step(self, what: str, batch: int | None = None) -> None:
        """A step begins (`session`, `warm-up` of `batch`, or any text); the one before it is done."""
        if self.live is None:
            return
        for text, task in self.pending:
            self.live.update(task, total=1, completed=1, description=f"{text}: done")
        self.pending = []
        if what == "warm-up" and batch is not None:
            self.batches[batch] = self.live.add_task(f"batch {batch:>4}  warm-up", total=None)
            return
        text = "creating the session" if what == "session" else what
        self.pending.append((text, self.live.add_task(text, total=None)))

    def progress(self, batch: int, fraction: float) -> None:
        """`batch`'s timed runs are `fraction` done."""
        if self.live is not None and batch in self.batches:
            self.live.update(self.batches[batch], total=1.0, completed=fraction, description=f"batch {batch:>4}")

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()
