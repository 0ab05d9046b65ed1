"""cnnc: a declarative architecture language for convolutional networks, compiled to ONNX.

See `cnnc.api` for the functions re-exported here.
"""
__version__ = "0.1.0"

import os as _os

# Installed, the stage packages (dsl, compiler, runtime, architectures) sit inside this folder; in a
# source checkout they sit beside it, so `python -m cnnc` also works from the repository root.
if not _os.path.isdir(_os.path.join(_os.path.dirname(__file__), "dsl")):
    __path__.append(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))))  # noqa: F821

from .api import build, compile, compile_to, load, locate, save, summary  # noqa: E402,A004
from .compiler.limits import Limits, limits  # noqa: E402
from .dsl.family import parameters  # noqa: E402
from .errors import CnncError  # noqa: E402


def __getattr__(name: str):
    if name == "Session":  # onnxruntime is imported only when a session is wanted
        from .runtime import Session
        return Session
    raise AttributeError(f"module 'cnnc' has no attribute {name!r}")


__all__ = ["build", "compile", "compile_to", "load", "locate", "save", "summary", "parameters", "Session",
           "CnncError", "Limits", "limits", "__version__"]
