"""cnnc: a declarative architecture language for convolutional networks, compiled to ONNX.

See `cnnc.api` for the functions re-exported here.
"""
__version__ = "0.1.0"

import os as _os

# Installed, the stage packages (dsl, compiler, runtime, architectures) sit inside this folder; in a
# source checkout they sit beside it, so `python -m cnnc` also works from the repository root.
if not _os.path.isdir(_os.path.join(_os.path.dirname(__file__), "dsl")):
    __path__.append(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))))  # noqa: F821

import importlib as _importlib  # noqa: E402
from typing import TYPE_CHECKING as _TYPE_CHECKING  # noqa: E402

if _TYPE_CHECKING:
    from .api import build, compile, compile_to, load, locate, save, summary  # noqa: A004
    from .compiler.limits import Limits, limits
    from .dsl.family import parameters
    from .errors import CnncError
    from .runtime import Session

# Imported on first use (PEP 562), so that `cnnc --version` and `import cnnc` pay for no stage until one
# is wanted: the API pulls in pydantic, lark and yaml; Session, onnxruntime.
_EXPORTS = {"build": "api", "compile": "api", "compile_to": "api", "load": "api", "locate": "api", "save": "api",
            "summary": "api", "Limits": "compiler.limits", "limits": "compiler.limits", "parameters": "dsl.family",
            "CnncError": "errors", "Session": "runtime"}


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(_importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):  # a submodule: `cnnc.api`, `cnnc.compiler`, ...
        try:
            return _importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module 'cnnc' has no attribute {name!r}")


__all__ = ["build", "compile", "compile_to", "load", "locate", "save", "summary", "parameters", "Session",
           "CnncError", "Limits", "limits", "__version__"]
