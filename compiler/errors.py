"""The errors of the compiler stage: calls and arguments, shapes, weights."""
from __future__ import annotations

from ..errors import CnncError


class ResolveError(CnncError):
    """A call, block or argument is wrong (unknown name, wrong type, recursion, ...)."""

    kind = "error"
    code = "E0400"


class ShapeError(CnncError):
    """Shapes do not fit together, or an `expect:` does not hold."""

    kind = "shape error"
    code = "E0500"


class WeightsError(CnncError):
    """A weights file does not match the network's parameters."""

    kind = "weights error"
    code = "E0600"
