"""The `cnnc` command: wires the API's stages to the terminal. Exit 0 ok, 2 user error, 1 internal.

`main` parses the command line with a parser built from the table of subcommands (commands.py), runs the
chosen one under the `--limit`s given, and turns every `CnncError` (any stage's, the runtime's included)
into its message on stderr and exit 2.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import signal
import sys
from types import FrameType
from typing import Iterator, TextIO

from .. import __version__
from .commands import COMMANDS
from .common import limit_option

USER_ERROR, INTERNAL_ERROR = 2, 1


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through `finally`, so no temporary file is left behind


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser(argv[0] if argv and argv[0] in _NAMES else None)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return USER_ERROR
    import warnings

    from ..compiler.resolve import CompileWarning
    warnings.showwarning = _show_warning
    warnings.simplefilter("default", CompileWarning)
    return _run(args)


def script() -> None:
    """The `cnnc` console script and `python -m cnnc`: `main`, then the process ends with what it made left
    out of the interpreter's collections at exit (gc.freeze), which otherwise walk every object the
    command imported or made, all of it freed with the process anyway: 30-100 ms of every command
    (benchmarks/RESULTS.md, "Compile against its floor"). `main` alone leaves the collector as it was."""
    import gc

    code = main()
    gc.freeze()
    sys.exit(code)


def _run(args: argparse.Namespace) -> int:
    from ..compiler.limits import Limits, limits
    from ..dsl.family import Selection, parse_overrides, selecting
    from ..errors import CnncError
    try:
        try:
            chosen = Limits.parse(getattr(args, "limit", None) or [])
        except ValueError as e:
            raise CnncError(f"--limit {e}") from None
        selection = Selection(getattr(args, "variant", None), parse_overrides(getattr(args, "overrides", None) or []))
        with limits(chosen), selecting(selection), _fewer_collections():
            return args.run(args) or 0
    except CnncError as e:
        print(str(e), file=sys.stderr)
        if e.loc is not None and not e.code.endswith("00"):  # a mistake in a file, explained at length
            print(f"  (`cnnc explain {e.code}` says more)", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # anything else is a bug in cnnc
        print(f"cnnc: internal error: {type(e).__name__}: {e}\nThis is a bug in cnnc {__version__}; please "
              f"report it with the command and the file that caused it.", file=sys.stderr)
        return INTERNAL_ERROR


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """While a command runs, what existed before it (the imports) is left out of garbage collection
    (gc.freeze), and the young generation is collected every 50,000 allocations instead of 700: a
    command builds one graph that only grows, and the collector walked it over and over (on `cnnc check`
    of 45,000 layers, 10-25 % of the time: benchmarks/RESULTS.md, "Start-up"). Cycles are still
    collected; all is as it was afterwards (for `main` called in a longer process)."""
    import gc
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    from ..compiler.resolve import CompileWarning
    text = str(message) if isinstance(message, CompileWarning) else f"warning: {message}"
    print(text, file=sys.stderr)


_NAMES = frozenset(command.name for command in COMMANDS)


@functools.cache  # built once per process: parsing leaves a parser as it was
def _parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; with `chosen`, with that subcommand's parser alone (all that `cnnc CHOSEN
    ...` reads: building all fifteen took 1.7x as long as building one). Without, with all of them, for
    `--help`, a mistyped command and anything else that does not start with a subcommand's name."""
    p = argparse.ArgumentParser(prog="cnnc", description="Compile convolutional network descriptions to ONNX.")
    p.add_argument("--version", action="version", version=f"cnnc {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS if chosen is None else [c for c in COMMANDS if c.name == chosen]:
        c = sub.add_parser(command.name, help=command.help)
        command.arguments(c)
        if command.network:
            limit_option(c)
        c.set_defaults(run=command.run)
    return p


__all__ = ["main", "script", "USER_ERROR", "INTERNAL_ERROR"]
