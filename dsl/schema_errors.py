"""Schema errors, located: pydantic's verdict on a file dsl/conforms.py could not accept, as `CnncError`s
at the YAML positions they are about (unknown keys first, with the nearest name; union tags left out)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import CnncError, MultipleErrors, did_you_mean
from .errors import SchemaError
from .keys import LABELLED_KEYS, RESERVED
from .source import NodePath, Source

if TYPE_CHECKING:
    from pydantic import ValidationError
    from pydantic_core import ErrorDetails


def validate(src: Source) -> None:
    """Validate `src.data` against the schema; its errors, located, are raised as a `CnncError`."""
    from pydantic import ValidationError

    from . import schema
    try:
        schema.Network.model_validate(src.data)
    except ValidationError as e:
        raise _schema_errors(e, src) from None


def _schema_errors(error: ValidationError, src: Source) -> CnncError:
    found: list[tuple[int, CnncError]] = []
    seen: set[NodePath] = set()
    unknown: set[tuple] = set()  # (parent path, key) of each unknown key, for the missing key it may be
    details = error.errors()
    paths = [_yaml_path(e["loc"], src) for e in details]
    unknown.update(p[:-1] for e, p in zip(details, paths) if e["type"] == "extra_forbidden" and p)
    for e, path in zip(details, paths):
        if e["type"] == "missing" and path[:-1] in unknown:
            continue  # `layer:` misspelt: the unknown key says it all (did you mean `layers`?)
        if path not in seen:  # a union's members each complain; the first says enough
            seen.add(path)
            at_key = e["type"] == "extra_forbidden" or (e["loc"] and e["loc"][-1] == "[key]")
            loc = src.positions.get(path + ("<key>",)) if at_key else None
            error_ = SchemaError(_message(e, path), loc or src.loc(path), code=_CODES.get(e["type"], ""))
            found.append((0 if e["type"] == "extra_forbidden" else 1, error_))
    ordered = [err for _, err in sorted(found, key=lambda pair: pair[0])]  # the unknown keys first: they explain
    return ordered[0] if len(ordered) == 1 else MultipleErrors(ordered)


def _yaml_path(loc: tuple, src: Source) -> NodePath:
    """Pydantic's error location, less its union tags, as a path into the YAML data."""
    path: tuple = ()
    data = src.data
    for i, element in enumerate(loc):
        following = loc[i + 1] if i + 1 < len(loc) else None
        if isinstance(data, dict) and _is_tag(str(element)) and (
                following in data or isinstance(following, str) and i + 2 == len(loc)):
            continue  # a union tag that happens to equal a key; the real key (maybe a missing one) comes next
        if (isinstance(data, dict) and element in data
                or isinstance(data, list) and isinstance(element, int) and element < len(data)):
            path, data = path + (element,), data[element]
        elif isinstance(data, dict) and isinstance(element, str) and element not in data and \
                element == loc[-1] and not _is_tag(element):
            path = path + (element,)  # a missing or extra key: the last element names it
    return path


def _is_tag(element: str) -> bool:
    from . import schema
    return element in schema.TAGS or "[" in element  # "[" : pydantic's names for unions and keys


_CODES = {"extra_forbidden": "E0201", "missing": "E0202", "string_pattern_mismatch": "E0203"}


def _message(e: ErrorDetails, path: NodePath) -> str:
    where = _dotted(path)
    if e["type"] == "extra_forbidden":
        from . import schema
        key = path[-1] if path else "?"
        top, layer = list(schema.Network.model_fields), list(RESERVED)
        labelled = len(e["loc"]) > 1 and e["loc"][-2] == "labelled_block"  # the union member tried says which
        allowed = top if len(path) == 1 else LABELLED_KEYS if labelled else layer
        return f"unknown key `{key}`{did_you_mean(str(key), allowed)}; expected one of: {', '.join(allowed)}"
    if e["type"] == "missing":
        return f"missing key `{path[-1] if path else e['loc'][-1]}`"
    if e["type"] == "string_pattern_mismatch" and "A-Za-z_" in str(e.get("ctx", {}).get("pattern", "")):
        got = str(e.get("input"))
        fixed = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in got).lstrip("0123456789")
        return (f"`{got}` is not a name: a name is ASCII letters, digits and `_`, not starting with a digit"
                f"{f' (e.g. `{fixed}`)' if fixed else ''}")
    got = e.get("input")
    shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
    msg = e["msg"].removeprefix("Value error, ") if e["type"] == "value_error" else e["msg"]
    return f"{where}: {msg[0].lower() + msg[1:]} (got {shown})" if where else f"{msg} (got {shown})"


def _dotted(path: NodePath) -> str:
    out = ""
    for element in path:
        out += f"[{element}]" if isinstance(element, int) else (f".{element}" if out else str(element))
    return out
