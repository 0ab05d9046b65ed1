"""Whether a document's data certainly satisfies the schema (dsl/schema.py), decided without pydantic.

Validating with pydantic means importing it and building the schema's validators, about a third of
`cnnc check`'s start-up, and a well-formed file (nearly every file read) needs neither. `conforms` walks
the plain data dsl/source.py makes (dicts with str keys, lists, str, int, float, bool, None) and says True
only where every rule of the schema holds; anything else, including whatever it does not know, is False,
and the document goes to pydantic, whose verdict and errors are the ones users see. So it may turn away
more than the schema does (which costs time, never a verdict) but never accepts more: tests/test_conforms.py
holds it to pydantic on every shipped network and on every one-value change to them. A rule added to the
schema and not here only sends the files that use it through pydantic.
"""
from __future__ import annotations

import math
import re
from typing import Any

from .keys import IDENTIFIER_PATTERN, LABELLED_KEYS, MERGES, RESERVED, is_labelled

_NAME = re.compile(IDENTIFIER_PATTERN)  # used with fullmatch: "a\n" is no name
_TOP = frozenset({"network", "input", "description", "defaults", "parameters", "variants", "constants",
                  "preprocessing", "blocks", "layers"})
_PREPROCESSING = frozenset({"resize", "crop", "interpolation", "mean", "std"})
_IF = frozenset({"if", "then", "else"})
_LABELLED = frozenset(LABELLED_KEYS)
_DEPTH = 80  # deeper than YAML may nest (dsl/source.py's MAX_DEPTH): left to pydantic
_BIG = 1 << 63  # larger integers are left to pydantic


def conforms(data: Any) -> bool:
    """True when `data` is certainly a valid network file's data (schema.Network accepts it)."""
    if type(data) is not dict or not data.keys() <= _TOP:
        return False
    return (_name(data.get("network")) and _input(data.get("input"))
            and _optional(data, "description", _str, none=True)
            and _optional(data, "defaults", lambda v: _mapping(v, lambda attrs: _mapping(attrs, _scalar)))
            and _optional(data, "parameters", lambda v: _mapping(v, _constant))
            and _optional(data, "variants", lambda v: _mapping(v, lambda sets: _mapping(sets, _constant)))
            and _optional(data, "constants", lambda v: _mapping(v, _constant))
            and _optional(data, "preprocessing", _preprocessing, none=True)
            and _optional(data, "blocks", lambda v: type(v) is dict and all(_block(b) for b in v.values()))
            and type(data.get("layers")) is list and len(data["layers"]) >= 1
            and all(_node(v, 0) for v in data["layers"]))


def _optional(data: dict, key: str, check: Any, none: bool = False) -> bool:
    if key not in data:
        return True
    value = data[key]
    return (none and value is None) or bool(check(value))


def _str(value: Any) -> bool:
    """A str pydantic reads as one: not one with a lone surrogate (from a YAML escape such as "\\ud800")."""
    if type(value) is not str:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _name(value: Any) -> bool:
    return _str(value) and _NAME.fullmatch(value) is not None


def _int(value: Any) -> bool:
    return type(value) is int and -_BIG < value < _BIG


def _scalar(value: Any) -> bool:
    kind = type(value)
    return _str(value) or kind is bool or _int(value) or (kind is float and math.isfinite(value))


def _constant(value: Any, depth: int = 0) -> bool:
    if type(value) is list:
        return depth < _DEPTH and all(_constant(v, depth + 1) for v in value)
    return _scalar(value)


def _mapping(value: Any, check: Any) -> bool:
    """A mapping from names to values that pass `check`."""
    return type(value) is dict and all(_name(k) and check(v) for k, v in value.items())


def _size(value: Any) -> bool:
    return (_int(value) and value > 0) or _str(value)


def _input(value: Any) -> bool:
    return type(value) is list and 1 <= len(value) <= 3 and all(_size(v) for v in value)


def _numbers(value: Any) -> bool:
    return _str(value) or (type(value) is list and all(
        _str(v) or _int(v) or (type(v) is float and math.isfinite(v)) for v in value))


def _preprocessing(value: Any) -> bool:
    return (type(value) is dict and value.keys() <= _PREPROCESSING and {"resize", "crop", "mean", "std"} <= value.keys()
            and _size(value["resize"]) and _size(value["crop"]) and _numbers(value["mean"])
            and _numbers(value["std"]) and _str(value.get("interpolation", "")))


def _block(value: Any) -> bool:
    """A block's value: a layer, or `{label: NAME, layers: LAYER}`."""
    if is_labelled(value):
        label = value["label"]
        return (value.keys() == _LABELLED and _str(label) and 1 <= len(label) <= 60
                and _node(value["layers"], 0))
    return _node(value, 0)


def _node(value: Any, depth: int) -> bool:
    """A layer node (schema.py's `LayerNode`), the mapping's kind chosen as `_node_kind` chooses it."""
    kind = type(value)
    if kind is str:
        return _str(value)
    if depth >= _DEPTH:
        return False
    if kind is list:
        return all(_node(v, depth + 1) for v in value)
    if kind is not dict:
        return False
    tag = next((key for key in RESERVED if key in value), None)
    if tag is None:  # `name: layer`
        return len(value) == 1 and all(_name(k) and _node(v, depth + 1) for k, v in value.items())
    if tag in MERGES:
        return len(value) == 1 and _branches(value[tag], depth + 1)
    if tag == "expect":
        shape = value["expect"]
        return len(value) == 1 and type(shape) is list and all(_int(v) or _str(v) for v in shape)
    if tag == "aux":
        return len(value) == 1 and _node(value["aux"], depth + 1)
    return (value.keys() <= _IF and "then" in value and type(value["if"]) in (bool, str)
            and _node(value["then"], depth + 1) and (value.get("else") is None or _node(value["else"], depth + 1)))


def _branches(value: Any, depth: int) -> bool:
    if type(value) is list:
        return all(_node(v, depth) for v in value)
    return type(value) is dict and all(_name(k) and _node(v, depth) for k, v in value.items())
