"""The errors of the runtime stage: a provider that cannot run here, a model that cannot be benchmarked
or quantized as asked. Each is a `CnncError`, so the CLI reports it like any other user error (exit 2).

They keep the root's `kind`, "error": `cnnc run`, `bench` and `quantize` print them as
`error[E07xx]: MESSAGE`.
"""
from __future__ import annotations

from ..errors import CnncError


class RuntimeUnavailable(CnncError):
    """The requested provider cannot run here."""

    code = "E0701"


class BenchError(CnncError):
    """The model cannot be benchmarked as asked (e.g. a fixed batch size other than the one requested)."""

    code = "E0702"


class QuantizeError(CnncError):
    """The model or the calibration inputs cannot be used (the message says why)."""

    code = "E0703"


class ImageError(CnncError):
    """An image that cannot be read, or preprocessing that cannot be applied (the message says which)."""

    code = "E0704"
