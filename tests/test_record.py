"""dsl/record.py: a `@dataclass(frozen=True, eq=False, repr=False)` class on `Record` compares, hashes and
shows itself exactly as the same class declared `@dataclass(frozen=True)` does."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pytest

from cnnc.dsl.record import Record


@dataclass(frozen=True)
class Plain:
    a: int
    b: Any = None
    hidden: str = field(default="h", repr=False)
    ignored: int = field(default=0, compare=False)
    unhashed: int = field(default=0, hash=False)


@dataclass(frozen=True, eq=False, repr=False)
class Lean(Record):
    a: int
    b: Any = None
    hidden: str = field(default="h", repr=False)
    ignored: int = field(default=0, compare=False)
    unhashed: int = field(default=0, hash=False)


@dataclass(frozen=True, eq=False, repr=False)
class LeanChild(Lean):
    c: int = 0


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
