"""The errors of the compiler stage: calls and arguments, shapes, weights."""
from __future__ import annotations

from ..errors import CnncError


class ResolveError(CnncError):
    """A call, block or argument is wrong (unknown name, wrong type, recursion, ...)."""

    kind = "error"


class ShapeError(CnncError):
    """Shapes do not fit together, or an `expect:` does not hold."""

    kind = "shape error"


class WeightsError(CnncError):
    """A weights file does not match the network's parameters."""

    kind = "weights error"
