"""`cnnc lsp`: the language server (cnnc/lsp/) over stdio, for editors. pygls is the optional `lsp` extra."""
from __future__ import annotations

import argparse

from ..errors import CnncError
from .common import Command


def run_lsp(args: argparse.Namespace) -> int:
    try:
        from ..lsp.server import serve
    except ImportError as e:
        if e.name is None or not e.name.startswith(("pygls", "lsprotocol")):
            raise
        raise CnncError("`cnnc lsp` needs pygls: pip install 'cnnc[lsp]'") from None
    serve()
    return 0


LSP = Command("lsp", "the language server for editors, over stdio: diagnostics, hover, completion, ... as you type",
              run_lsp, network=True)
