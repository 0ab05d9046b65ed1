"""`Record`: equality, hashing and repr by fields, written once for the stage's frozen dataclasses.

`@dataclass(frozen=True)` compiles six methods for every class with `exec`: about 1 ms a class on this
project's machine, most of the time that importing dsl/ takes, and every command that reads a network pays
it. Three of the six (`__eq__`, `__hash__`, `__repr__`) are the same code for every class, so the classes
here are declared `@dataclass(frozen=True, eq=False, repr=False)` and inherit them from `Record`, which
behaves as the generated ones do: equal when of the same class with equal fields, hashed by the fields,
shown as `Name(field=value, ...)` leaving out the fields declared `repr=False`.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any

_FIELDS: dict[type, tuple[tuple[str, ...], ...]] = {}  # class -> its fields compared, hashed and shown


def _names(cls: type) -> tuple[tuple[str, ...], ...]:
    found = _FIELDS.get(cls)
    if found is None:
        all_ = fields(cls)
        found = _FIELDS[cls] = (tuple(f.name for f in all_ if f.compare),
                                tuple(f.name for f in all_ if (f.compare if f.hash is None else f.hash)),
                                tuple(f.name for f in all_ if f.repr))
    return found


class Record:
    """A base for `@dataclass(frozen=True, eq=False, repr=False)` classes (see the module's docstring)."""

    __slots__ = ()

    def _values(self, which: int) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _names(self.__class__)[which])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values(0) == other._values(0)

    def __hash__(self) -> int:
        return hash(self._values(1))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _names(self.__class__)[2])
        return f"{self.__class__.__qualname__}({shown})"
