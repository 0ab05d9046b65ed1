"""cnnc/record.py: a `@record` class on `Record` is made, compares, hashes and shows itself exactly as the
same class declared `@dataclass(frozen=True)` does."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pytest

from cnnc.record import COMPILE_AFTER, Record, record


@dataclass(frozen=True)
class Plain:
    a: int
    b: Any = None
    hidden: str = field(default="h", repr=False)
    ignored: int = field(default=0, compare=False)
    unhashed: int = field(default=0, hash=False)


@record
class Lean(Record):
    a: int
    b: Any = None
    hidden: str = field(default="h", repr=False)
    ignored: int = field(default=0, compare=False)
    unhashed: int = field(default=0, hash=False)


@record
class LeanChild(Lean):
    c: int = 0


@dataclass(frozen=True)
class PlainWithFactory:
    a: int
    items: list = field(default_factory=list)




CASES = [((1,), (1,)), ((1, (2, 3)), (1, (2, 3))), ((1,), (2,)), ((1, "x", "y"), (1, "x", "z")),
         ((1, None, "h", 5), (1, None, "h", 6)), ((1, None, "h", 0, 1), (1, None, "h", 0, 2))]


@pytest.mark.parametrize("left,right", CASES)
def test_a_record_compares_and_hashes_as_the_dataclass_would(left: tuple, right: tuple):
    assert (Lean(*left) == Lean(*right)) == (Plain(*left) == Plain(*right))
    assert (Lean(*left) != Lean(*right)) == (Plain(*left) != Plain(*right))
    assert hash(Lean(*left)) == hash(Plain(*left))
    assert repr(Lean(*left)).replace("Lean", "Plain", 1) == repr(Plain(*left))


def test_a_record_is_still_a_frozen_dataclass():
    lean = Lean(1, [2])
    with pytest.raises(dataclasses.FrozenInstanceError):
        lean.a = 2  # type: ignore[misc]
    assert dataclasses.replace(lean, a=3) == Lean(3, [2]) and dataclasses.is_dataclass(lean)
    with pytest.raises(TypeError):  # unhashable field: as the dataclass
        hash(lean)
    assert Lean(1) != LeanChild(1) and LeanChild(1, c=2) != LeanChild(1, c=3) and LeanChild(1) == LeanChild(1)
    assert (Lean(1) == 1) is False and Lean(1).__eq__(1) is NotImplemented
    assert repr(LeanChild(1, c=2)) == "LeanChild(a=1, b=None, ignored=0, unhashed=0, c=2)"


TAKEN = [((1,), {}), ((1, [2]), {}), ((), {"a": 1}), ((), {"items": [3], "a": 1}), ((1,), {"items": [4]})]
REFUSED = [((), {}), ((1, [], 3), {}), ((1,), {"a": 2}), ((1,), {"colour": 2})]


@pytest.mark.parametrize("compiled", [False, True], ids=["early", "compiled"])
def test_a_record_is_made_from_the_arguments_the_dataclass_takes(compiled: bool):
    """Both ways a record class's instances are made: its first ones, and those after it compiled its own."""
    @record
    class Fresh(Record):
        a: int
        items: list = field(default_factory=list)

    for _ in range(COMPILE_AFTER + 1 if compiled else 0):
        Fresh(0)
    assert (Fresh.__init__.__name__ == "__init__") is compiled
    for args, kwargs in TAKEN:
        lean, plain = Fresh(*args, **kwargs), PlainWithFactory(*args, **kwargs)
        assert (lean.a, lean.items) == (plain.a, plain.items)
    assert Fresh(1).items is not Fresh(1).items  # a new default each time
    for args, kwargs in REFUSED:
        with pytest.raises(TypeError):
            PlainWithFactory(*args, **kwargs)
        with pytest.raises(TypeError):
            Fresh(*args, **kwargs)


def test_a_subclass_is_made_with_its_own_fields_after_its_base_compiled():
    for _ in range(COMPILE_AFTER + 1):
        Lean(0)
    assert LeanChild(1, c=2).c == 2 and Lean(1).a == 1


def test_a_record_cannot_be_changed_or_made_without_record():
    lean = Lean(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        del lean.a
    with pytest.raises(dataclasses.FrozenInstanceError):
        lean.new = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="does not derive from Record"):
        record(type("Loose", (), {"__annotations__": {"a": "int"}}))
    for method in ("__init__", "__post_init__"):  # Record would silently leave either out
        with pytest.raises(TypeError, match=f"defines {method}"):
            record(type("Own", (Record,), {"__annotations__": {"a": "int"}, method: lambda self, *a: None}))
    with pytest.raises(TypeError, match="defines __post_init__"):  # inherited, from a base that is no record
        record(type("Heir", (Record, type("Base", (), {"__post_init__": lambda self: None})), {}))
