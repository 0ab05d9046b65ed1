"""The errors of the runtime stage: a provider that cannot run here, a model that cannot be benchmarked
or quantized as asked. Each is a `CnncError`, so the CLI reports it like any other user error (exit 2).

They keep the root's `kind`, "error": `cnnc run`, `bench` and `quantize` have always printed them as
`error: MESSAGE`, and still do.
"""
from __future__ import annotations

from ..errors import CnncError


class RuntimeUnavailable(CnncError):
    """The requested provider cannot run here."""


class BenchError(CnncError):
    """The model cannot be benchmarked as asked (e.g. a fixed batch size other than the one requested)."""


class QuantizeError(CnncError):
    """The model or the calibration inputs cannot be used (the message says why)."""


class ImageError(CnncError):
    """An image that cannot be read, or preprocessing that cannot be applied (the message says which)."""
