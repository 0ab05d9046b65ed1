"""`@record`: frozen dataclasses whose methods are written once, for the classes every command imports.

`@dataclass(frozen=True)` compiles up to six methods for every class with `exec`: 0.7-1.2 ms a class on
this project's machine, about 60 ms for the fifty classes `cnnc compile` imports, half of its own import
time. A class declared `@record` on `Record` is a dataclass (fields, `dataclasses.replace`, `fields`,
`asdict` all work) with no method generated as it is made; its methods behave as the generated ones do:
- `__init__` takes the fields by position or by name, with their defaults and default factories; a class
  that makes many instances gets it compiled, as dataclasses would, after its first `COMPILE_AFTER`;
- assigning or deleting an attribute raises `dataclasses.FrozenInstanceError`;
- equal when of the same class with equal fields (those not `compare=False`), hashed by the same fields
  (less those `hash=False`), shown as `Name(field=value, ...)` leaving out the fields `repr=False`: these
  written once, in `Record`.
Making the class costs about 0.07 ms (tests/test_record.py holds each behaviour to the dataclass's).
It sits in `cnnc` itself, beside wire.py, because every stage declares such classes and none may import
another's.
"""
from __future__ import annotations

from dataclasses import MISSING, FrozenInstanceError, dataclass, fields
from typing import TYPE_CHECKING, Any, Callable, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:
    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda f: f

T = TypeVar("T", bound=type)


@dataclass_transform(frozen_default=True, eq_default=True)
def record(cls: T) -> T:
    """The class as a frozen dataclass whose methods come from `Record` (see the module's docstring)."""
    if not issubclass(cls, Record):
        raise TypeError(f"@record class {cls.__name__} does not derive from Record")
    # Record writes __init__ itself and calls no __post_init__: either would be silently lost
    for method, found in (("__init__", "__init__" in cls.__dict__), ("__post_init__", hasattr(cls, "__post_init__"))):
        if found:
            raise TypeError(f"@record class {cls.__name__} defines {method}; use @dataclass(frozen=True)")
    dataclass(init=False, eq=False, repr=False)(cls)
    type.__setattr__(cls, "__init__", _early_init)  # each class its own, until it has made COMPILE_AFTER
    return cls


COMPILE_AFTER = 64  # instances a record class makes before it is given a compiled `__init__`
_MADE: dict[type, int] = {}


def _early_init(self: Record, *args: Any, **kwargs: Any) -> None:
    """A record class's `__init__` for its first `COMPILE_AFTER` instances: binds the arguments to the
    fields as a dataclass's `__init__` would (the same refusals), without compiling anything; then the class
    gets its own compiled `__init__` (`_compile`: 0.2 ms once, half the time per instance after). Most
    classes make only a few instances a command, and compiling each would cost more than it saves."""
    cls = self.__class__
    made = _MADE[cls] = _MADE.get(cls, 0) + 1
    if made > COMPILE_AFTER:
        init = _compile(cls)
        type.__setattr__(cls, "__init__", init)
        init(self, *args, **kwargs)
        return
    spec = _spec(cls)
    if len(args) > len(spec.init):
        raise TypeError(f"{cls.__qualname__}() takes {len(spec.init)} arguments, {len(args)} given")
    values = {name: value for (name, _, _), value in zip(spec.init, args)}
    for name, default, factory in spec.init[len(args):]:
        if name in kwargs:
            values[name] = kwargs.pop(name)
        elif default is not MISSING:
            values[name] = default
        elif factory is not MISSING:
            values[name] = factory()
        else:
            raise TypeError(f"{cls.__qualname__}() is missing `{name}`")
    if kwargs:
        twice = [k for k in kwargs if k in values]
        raise TypeError(f"{cls.__qualname__}() got {', '.join(map(repr, twice or kwargs))} "
                        f"{'twice' if twice else 'unexpected'}")
    self.__dict__.update(values)


def _compile(cls: type) -> Callable[..., None]:
    """The `__init__` dataclasses would write for the record class `cls`: its fields as parameters, in
    order, with their defaults (a default factory called when its argument is left out), each stored in
    the instance's dict. Made from the names of the fields the class declares (identifiers, never text
    from a user)."""
    params, body = [], ["d = self.__dict__"]
    scope: dict[str, Any] = {"MISSING": MISSING}
    for name, default, factory in _spec(cls).init:
        if default is not MISSING:
            scope[f"default_{name}"] = default
            params.append(f"{name}=default_{name}")
        elif factory is not MISSING:
            scope[f"factory_{name}"] = factory
            params.append(f"{name}=MISSING")
            body.append(f"if {name} is MISSING: {name} = factory_{name}()")
        else:
            params.append(name)
        body.append(f"d[{name!r}] = {name}")
    exec(f"def __init__(self, {', '.join(params)}):\n" + "".join(f"    {line}\n" for line in body), scope)
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


class _Spec:
    """A record class's fields: those `__init__` takes (with default and default factory), those
    compared, those hashed, those shown."""

    __slots__ = ("init", "compare", "hash", "show")

    def __init__(self, cls: type):
        all_ = fields(cls)
        self.init = tuple((f.name, f.default, f.default_factory) for f in all_ if f.init)
        self.compare = tuple(f.name for f in all_ if f.compare)
        self.hash = tuple(f.name for f in all_ if (f.compare if f.hash is None else f.hash))
        self.show = tuple(f.name for f in all_ if f.repr)


_SPECS: dict[type, _Spec] = {}


def _spec(cls: type) -> _Spec:
    found = _SPECS.get(cls)
    if found is None:
        found = _SPECS[cls] = _Spec(cls)
    return found


class Record:
    """The base of `@record` classes (see the module's docstring)."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        names = _spec(self.__class__).compare
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in _spec(self.__class__).hash))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _spec(self.__class__).show)
        return f"{self.__class__.__qualname__}({shown})"
