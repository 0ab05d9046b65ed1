"""The table of subcommands, in the order `cnnc --help` lists them. A new subcommand is one `Command`
(common.py) defined beside its kin and named here."""
from __future__ import annotations

from .bench import BENCH
from .common import Command
from .explain import EXPLAIN
from .lsp import LSP
from .network import CHECK, COMPILE, DRAW, EXPAND, EXPORT_TRITON, LIST, OPS, SCHEMA, SUMMARY, WEIGHTS
from .runtime import QUANTIZE, RUN

COMMANDS: tuple[Command, ...] = (
    LIST, CHECK, SUMMARY, EXPAND, DRAW, SCHEMA, OPS, EXPORT_TRITON, COMPILE, WEIGHTS,  # about a network file
    RUN, BENCH, QUANTIZE,  # running a model in ONNX Runtime
    LSP, EXPLAIN,  # for editors, and for what a message means
)
