"""`preprocessing:` — how the reference prepares an image for a network (resize the shorter side,
centre-crop, scale to [0, 1], normalise per channel): evaluated with the document's names, and checked
against its input. The compiler writes it to the model's metadata (`cnnc.preprocessing`)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from . import expr
from .errors import SchemaError
from .source import Source

if TYPE_CHECKING:
    from .document import Document

INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


def evaluate(data: dict, sizes: Callable[..., tuple[int, ...]], env: dict[str, expr.Value],
             src: Source) -> dict[str, object]:
    """The section's values: `sizes(values, path, keys)` evaluates resize and crop (positive integers);
    the interpolation may be an expression too."""
    resize, crop = sizes([data["resize"], data["crop"]], ("preprocessing",), ("resize", "crop"))
    where = src.loc(("preprocessing", "interpolation"))
    how = expr.evaluate(expr.parse(data.get("interpolation", "bilinear"), "expr", where), env, where)
    if how not in INTERPOLATIONS:
        raise SchemaError(f"`interpolation` must be one of {', '.join(INTERPOLATIONS)}, got {expr.describe(how)}",
                          where)
    return {"resize": resize, "crop": crop, "interpolation": how,
            "mean": _numbers(data["mean"], "mean", env, src), "std": _numbers(data["std"], "std", env, src)}


def _numbers(value: object, key: str, env: dict[str, expr.Value], src: Source) -> list[float]:
    """A list of numbers, written as one or as an expression giving one (`mean: mean`)."""
    where = src.loc(("preprocessing", key))
    if isinstance(value, str):
        value = expr.evaluate(expr.parse(value, "expr", where), env, where)
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            at = src.loc(("preprocessing", key, i))
            item = expr.evaluate(expr.parse(item, "expr", at), env, at)
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            shown = expr.describe(item) if isinstance(item, (str, tuple)) else repr(item)
            raise SchemaError(f"`preprocessing.{key}` is a list of numbers, got {shown}", where)
        out.append(float(item))
    return out


def check(doc: Document) -> None:
    """The crop is the input's height and width; mean and std have a value per input channel."""
    pre, loc = doc.preprocessing, doc.source.loc
    if pre is None:
        return
    if len(doc.input) == 3 and doc.input[1:] != (pre["crop"], pre["crop"]):
        raise SchemaError(f"`preprocessing` crops {pre['crop']}x{pre['crop']} but the input is "
                          f"{doc.input[1]}x{doc.input[2]}", loc(("preprocessing", "crop")))
    for key in ("mean", "std"):
        values = pre[key]
        if not isinstance(values, list) or len(values) != doc.input[0]:
            raise SchemaError(f"`preprocessing.{key}` needs one value per input channel ({doc.input[0]})",
                              loc(("preprocessing", key)))
