"""Families of networks: parameters declared at the top of a file, named variants that set them, and
overrides from the command line or the API.

    parameters: {width: 1.0, depth: 1.0, resolution: 224}
    variants:
      efficientnet_b0: {}
      efficientnet_b3: {width: 1.2, depth: 1.4, resolution: 300}

A document is built for one choice (`Selection`): a variant, or none (the parameters' own values), and
any overrides (`--set width=1.1`, `cnnc.parameters(width=1.1)`). The values chosen are plain expression
values by the time the compiler sees them; constants, defaults and `input` may use them.
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import field
from typing import Any, Callable, Iterator, Mapping

from ..errors import CnncError, Location, did_you_mean
from ..record import Record, record
from . import expr
from .errors import SchemaError

SHAPE_NAMES = ("in_channels", "in_height", "in_width")
"""Names that every expression may read: the shape of the input of the innermost block call (at the
top level, of the network)."""
REPEAT_INDEX = "repeat_index"
"""In the arguments of `call x N`: which copy, from 0 (0 outside a repeat)."""
PROVIDED_NAMES = (*SHAPE_NAMES, REPEAT_INDEX)
"""Names cnnc provides; nothing in a file may define them."""

COMMAND_LINE = "<--set>"


@record
class Selection(Record):
    """Which member of a family to build: a variant (None: the parameters' own values) and overrides,
    each `NAME -> value` (an expression text, or a number or boolean)."""

    variant: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)


_current: contextvars.ContextVar[Selection] = contextvars.ContextVar("cnnc_selection", default=Selection())  # noqa: B039


def current() -> Selection:
    return _current.get()


@contextlib.contextmanager
def selecting(selection: Selection) -> Iterator[Selection]:
    """Build networks inside a `with` block for `selection` (its overrides added to those in force)."""
    base = current()
    value = Selection(selection.variant or base.variant, {**base.overrides, **selection.overrides})
    token = _current.set(value)
    try:
        yield value
    finally:
        _current.reset(token)


def parameters(**values: Any) -> contextlib.AbstractContextManager[Selection]:
    """`with cnnc.parameters(width=1.1): cnnc.compile("efficientnet_b0")`: override a family's
    parameters (numbers, booleans, or expression texts) for everything built inside the block."""
    return selecting(Selection(None, values))


def parse_overrides(items: list[str]) -> dict[str, str]:
    """`["width=1.1", "depth=2"]` -> `{"width": "1.1", "depth": "2"}`; raises CnncError when malformed."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier() or not text.strip():
            raise CnncError(f"--set `{item}`: write NAME=VALUE, e.g. `--set width=1.1`")
        out[key] = text
    return out


Evaluate = Callable[[Any, tuple, dict[str, expr.Value]], expr.Value]
"""(YAML value, path into the file, names in scope) -> its value, as the document builder evaluates it."""


def choose(data: dict, selection: Selection, evaluate: Evaluate, loc: Callable[[tuple], Location]) \
        -> tuple[str | None, dict[str, expr.Value]]:
    """The variant chosen and every parameter's value: declared values, then the variant's, then the
    overrides. Raises a located `CnncError` for an unknown variant or parameter."""
    declared = data.get("parameters", {})
    variants = data.get("variants", {})
    values: dict[str, expr.Value] = {}
    for name, value in declared.items():
        _not_reserved(name, loc(("parameters", name, "<key>")))
        values[name] = evaluate(value, ("parameters", name), dict(values))
    for name, settings in variants.items():  # every variant, chosen or not: a typo is found at once
        for key in settings:
            _declared(key, declared, loc(("variants", name, key, "<key>")), f"variant `{name}`")
    variant = selection.variant
    if variant is not None and variant != data.get("network"):
        if variant not in variants:
            where = loc(("variants", "<key>")) if variants else loc(("network",))
            listed = f"; its variants: {', '.join(variants)}" if variants else "; it declares no variants"
            raise SchemaError(f"`{variant}` is not a variant of `{data.get('network')}`"
                              f"{did_you_mean(variant, list(variants))}{listed}", where)
        chosen = dict(values)
        for name, value in variants[variant].items():
            chosen[name] = evaluate(value, ("variants", variant, name), dict(values))
        values = chosen
    else:
        variant = None
    given = dict(values)
    for name, value in selection.overrides.items():
        where = Location(COMMAND_LINE, 1, 1, f"{name}={value}")
        _declared(name, declared, where, "--set")
        try:
            node = expr.parse(value, "expr", where.shifted(len(name) + 1)) if isinstance(value, str) else None
            given[name] = expr.evaluate(node, values, where.shifted(len(name) + 1)) if node else value
        except CnncError as e:
            raise CnncError(f"--set {name}: {e.message}", e.loc, code=e.code) from None
    return variant, given


def _declared(name: str, declared: Mapping[str, Any], where: Location, who: str) -> None:
    if name not in declared:
        known = f"; its parameters: {', '.join(declared)}" if declared else "; the file declares no `parameters`"
        kind = CnncError if who == "--set" else SchemaError
        raise kind(f"{who} sets `{name}`, which is not a parameter{did_you_mean(name, list(declared))}"
                          f"{known}", where)


def _not_reserved(name: str, where: Location) -> None:
    if name in PROVIDED_NAMES:
        what = "the copy's index in a repeat" if name == REPEAT_INDEX else "the shape of a block's input"
        raise SchemaError(f"`{name}` is {what}, which cnnc provides; choose another name", where)


def check_name(name: str, where: Location) -> None:
    """Refuse a constant or block parameter named like one of `PROVIDED_NAMES`."""
    _not_reserved(name, where)


def variants_of(data: Any) -> list[str]:
    """The variant names a file's data declares (for finding a shipped network by a variant's name)."""
    if not isinstance(data, dict) or not isinstance(data.get("variants"), dict):
        return []
    return [name for name in data["variants"] if isinstance(name, str)]
