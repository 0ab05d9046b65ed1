"""Limits on what a network may expand to, so that a typo is refused at once instead of exhausting time
or memory (`filters: 640000000` is a located error in milliseconds, not an out-of-memory kill).

The limits in force are a context variable: `with cnnc.limits(params=10**10): cnnc.compile(...)`, or
`cnnc check --limit params=1e10`. The YAML reader's own limits (file size, nesting, aliases) are fixed:
see dsl/source.py.
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import fields, replace
from typing import Iterator

from ..record import Record, record


@record
class Limits(Record):
    repeat: int = 10_000  # one `x N`
    layers: int = 100_000  # ops after expansion
    calls: int = 100_000  # expanded calls of any kind, so that empty blocks cannot expand forever
    depth: int = 64  # blocks calling blocks
    params: int = 4_000_000_000  # parameters (and constants) of the whole network: 16 GB as float32
    activation_mb: int = 4096  # the largest single tensor at batch 1, in MiB of float32

    @classmethod
    def parse(cls, items: list[str]) -> Limits:
        """`["params=1e10", "layers=500000"]` -> Limits; raises ValueError with a readable message."""
        limits = cls()
        names = [f.name for f in fields(cls)]
        for item in items:
            key, _, text = item.partition("=")
            if key not in names or not text:
                raise ValueError(f"`{item}`: a limit is NAME=VALUE with NAME one of {', '.join(names)}")
            try:
                value = float(text)
            except ValueError:
                value = -1
            if not (value >= 1 and value == int(value)):
                raise ValueError(f"`{item}`: the value must be a positive whole number")
            limits = replace(limits, **{key: int(value)})
        return limits


_current: contextvars.ContextVar[Limits] = contextvars.ContextVar("cnnc_limits", default=Limits())  # noqa: B039 (frozen)


def current() -> Limits:
    return _current.get()


@contextlib.contextmanager
def limits(base: Limits | None = None, **changes: int) -> Iterator[Limits]:
    """Use other limits inside a `with` block: `with limits(params=10**10): ...`."""
    value = replace(base or current(), **changes)
    token = _current.set(value)
    try:
        yield value
    finally:
        _current.reset(token)


def raise_help(name: str, value: int) -> str:
    """The `help:` line of an error for a limit passed: how to raise it."""
    return (f"if the network really is this large, raise the limit: `--limit {name}={value * 10}` on the command "
            f"line, `cnnc.limits({name}={value * 10})` in Python")
