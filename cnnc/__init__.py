"""cnnc: a declarative architecture language for convolutional networks, compiled to ONNX.

See `cnnc.api` for the functions re-exported here.
"""
__version__ = "0.1.0"

from .api import build, compile, load, locate, save, summary  # noqa: E402,A004
from .dsl.errors import CnncError  # noqa: E402


def __getattr__(name: str):
    if name == "Session":  # onnxruntime is imported only when a session is wanted
        from .runtime import Session
        return Session
    raise AttributeError(f"module 'cnnc' has no attribute {name!r}")


__all__ = ["build", "compile", "load", "locate", "save", "summary", "Session", "CnncError", "__version__"]
