"""`cnnc explain CODE`: a diagnostic's longer explanation and an example (cnnc/explain.py); without a
code, the list of codes."""
from __future__ import annotations

import argparse

from ..errors import CnncError, did_you_mean
from .common import Command


def explain_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("code", nargs="?", help="a code from a message, e.g. E0501 (default: list them all)")


def run_explain(args: argparse.Namespace) -> int:
    from ..explain import CODES, explain
    if args.code is None:
        for code, entry in CODES.items():
            print(f"{code}  {entry.title}")
        return 0
    if args.code.upper() not in CODES:
        raise CnncError(f"no diagnostic has the code `{args.code}`{did_you_mean(args.code.upper(), list(CODES))}; "
                        f"`cnnc explain` lists them")
    print(explain(args.code))
    return 0


EXPLAIN = Command("explain", "explain a diagnostic's code (E0501, ...), with an example", run_explain,
                  arguments=explain_arguments)
