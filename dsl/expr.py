"""Inline expressions: text -> typed syntax nodes (dsl/syntax.py, via dsl/grammar.lark) -> values.

Evaluation is the small function `evaluate` over those nodes, with the expression functions
(`make_divisible`, ...); nothing is ever handed to Python's `eval`. The syntax's names are re-exported
here: `expr.parse`, `expr.Item`, ... are what the rest of cnnc uses.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping

from ..errors import Location, did_you_mean
from .errors import ExprError
from .syntax import (MAX_DIGITS, MAX_NESTING, MAX_OPERATORS, BinOp, Call, Choice, Compare, Const, Function,
                     Index, Item, ListExpr, Logic, Name, Neg, Node, Not, Param, Signature, Value, parse)

__all__ = ["MAX_DIGITS", "MAX_NESTING", "MAX_OPERATORS", "BinOp", "Call", "Choice", "Compare", "Const",
           "Function", "Index", "Item", "ListExpr", "Logic", "Name", "Neg", "Node", "Not", "Param", "Signature",
           "Value", "parse", "evaluate", "describe", "call_function", "make_divisible", "FUNCTIONS",
           "LIST_FUNCTIONS", "SYMBOLS", "ROUNDING_HINT"]

ROUNDING_HINT = "; a float becomes an integer only through round(), floor(), ceil() or make_divisible()"

SYMBOLS: Mapping[str, Value] = {"same": "same", "valid": "valid", "true": True, "false": False,
                                "identity": "identity", "bilinear": "bilinear", "bicubic": "bicubic",
                                "nearest": "nearest"}


# ---- evaluation ---------------------------------------------------------------------------------
def evaluate(node: Node, env: Mapping[str, Value], loc: Location) -> Value:
    """The value of `node`, with names looked up in `env` and then in the language's symbols."""
    match node:
        case Const(value=value):
            return value
        case Name(id=name):
            if name in env:
                return env[name]
            if name in SYMBOLS:
                return SYMBOLS[name]
            raise ExprError(f"unknown name `{name}`{did_you_mean(name, [*env, *SYMBOLS])}",
                            loc.shifted(node.col), code="E0301")
        case ListExpr(items=items):
            return tuple(evaluate(i, env, loc) for i in items)
        case Neg(operand=operand):
            return -_number(evaluate(operand, env, loc), "-", node, loc)
        case BinOp(op=op, left=left, right=right):
            a, b = evaluate(left, env, loc), evaluate(right, env, loc)
            return _arith(op, a, b, node, loc)
        case Not(operand=operand):
            return not _truth(evaluate(operand, env, loc), "not", node, loc)
        case Logic(op=op, left=left, right=right):
            first = _truth(evaluate(left, env, loc), op, node, loc)
            if first == (op == "or"):  # `true or ...`, `false and ...`: decided
                return first
            return _truth(evaluate(right, env, loc), op, node, loc)
        case Choice(then=then, condition=condition, otherwise=otherwise):
            chosen = then if _truth(evaluate(condition, env, loc), "if", node, loc) else otherwise
            return evaluate(chosen, env, loc)
        case Compare(op=op, left=left, right=right):
            return _compare(op, evaluate(left, env, loc), evaluate(right, env, loc), node, loc)
        case Index(target=target, index=index):
            return _item(evaluate(target, env, loc), evaluate(index, env, loc), node, loc)
        case Function(name=name, args=args):
            return call_function(name, [evaluate(a, env, loc) for a in args], node, loc)
    raise ExprError(f"`{type(node).__name__}` is not a value", loc.shifted(node.col))


def _number(value: Value, op: str, node: Node, loc: Location) -> int | float:
    """`value` itself if it is a number (not a bool), else a located error for `op`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExprError(f"`{op}` needs numbers, got {describe(value)}", loc.shifted(node.col))
    return value


def _item(sequence: Value, index: Value, node: Node, loc: Location) -> Value:
    if not isinstance(sequence, tuple):
        raise ExprError(f"only a list can be indexed, got {describe(sequence)}", loc.shifted(node.col))
    if isinstance(index, bool) or not isinstance(index, int):
        raise ExprError(f"a list index must be an integer, got {describe(index)}", loc.shifted(node.col))
    if not -len(sequence) <= index < len(sequence):
        raise ExprError(f"index {index} is out of range for a list of {len(sequence)} items",
                        loc.shifted(node.col))
    return sequence[index]


def _truth(value: Value, op: str, node: Node, loc: Location) -> bool:
    if not isinstance(value, bool):
        raise ExprError(f"`{op}` needs `true` or `false`, got {describe(value)}", loc.shifted(node.col))
    return value


def _compare(op: str, left: Value, right: Value, node: Node, loc: Location) -> bool:
    if op in ("==", "!="):
        same = type(left) is type(right) and left == right or (
            _is_number(left) and _is_number(right) and left == right)
        return same if op == "==" else not same
    a, b = _number(left, op, node, loc), _number(right, op, node, loc)
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _is_number(value: Value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _arith(op: str, left: Value, right: Value, node: Node, loc: Location) -> Value:
    if isinstance(left, tuple) or isinstance(right, tuple):  # sizes item by item: `kernel // 2` is `1x1`
        return _itemwise(op, left, right, node, loc)
    a, b = _number(left, op, node, loc), _number(right, op, node, loc)
    if op in ("//", "/", "%") and b == 0:
        raise ExprError(f"division by zero in `{op}`", loc.shifted(node.col))
    if op == "**":
        return _checked(_power(a, b, node, loc), "`**`", node, loc)
    result = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
              "//": lambda: a // b, "/": lambda: a / b, "%": lambda: a % b}[op]()
    return _checked(result, f"`{op}`", node, loc)


def _power(a: int | float, b: int | float, node: Node, loc: Location) -> int | float:
    """`a ** b`: an integer for integers and a non-negative integer exponent, else a float; the size of
    an integer result is judged before it is computed (`10 ** 10 ** 10` must not hang)."""
    if a == 0 and b < 0:
        raise ExprError(f"`0 ** {b}` is a division by zero", loc.shifted(node.col))
    if isinstance(a, int) and isinstance(b, int) and b >= 0:
        if abs(a) > 1 and b * math.log2(abs(a)) > 53:
            raise ExprError(f"`{a} ** {b}` is too large", loc.shifted(node.col))
        return a**b
    if a < 0 and not float(b).is_integer():
        raise ExprError(f"`({a}) ** {b}`: a negative number has no real power {b}", loc.shifted(node.col))
    try:
        return math.pow(a, b)
    except OverflowError:
        raise ExprError(f"`{a} ** {b}` is too large", loc.shifted(node.col)) from None


def _itemwise(op: str, left: Value, right: Value, node: Node, loc: Location) -> tuple:
    if isinstance(left, tuple) and isinstance(right, tuple):
        if len(left) != len(right):
            raise ExprError(f"`{op}` needs lists of one length, got {describe(left)} and {describe(right)}",
                            loc.shifted(node.col))
        return tuple(_arith(op, a, b, node, loc) for a, b in zip(left, right))
    if isinstance(left, tuple):
        return tuple(_arith(op, a, right, node, loc) for a in left)
    assert isinstance(right, tuple)  # one of the two is, or this is not called
    return tuple(_arith(op, left, b, node, loc) for b in right)


def _checked(result: int | float, what: str, node: Node, loc: Location) -> int | float:
    if isinstance(result, int) and abs(result) > 2**53 or isinstance(result, float) and not math.isfinite(result):
        raise ExprError(f"{what} gives {result}, which is too large", loc.shifted(node.col))
    return result


# ---- functions ----------------------------------------------------------------------------------
def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """torchvision's `_make_divisible` (MobileNet, EfficientNet): `value` rounded to the nearest multiple
    of `divisor` (halves up), at least `min_value` (default `divisor`), and never more than 10% below
    `value`."""
    low = divisor if min_value is None else min_value
    rounded = max(low, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _round(x: float) -> int:
    return round(x)  # halves to even, as Python's and numpy's round


def _log(x: float) -> float:
    if x <= 0:
        raise ValueError(f"`log` needs a positive number, got `{x}`")
    return math.log(x)


MAX_RANGE = 4096
"""The longest list `range(n)` makes (a network's repeat counts are far below it)."""


def _range(n: int) -> tuple[int, ...]:
    if isinstance(n, float) or not 0 <= n <= MAX_RANGE:
        raise ValueError(f"`range` needs an integer from 0 to {MAX_RANGE}, got `{n}`")
    return tuple(range(n))


def _runs(items: tuple) -> list[list]:
    """`[value, count]` for each run of equal neighbours in `items`."""
    out: list[list] = []
    for item in items:
        if out and out[-1][0] == item:
            out[-1][1] += 1
        else:
            out.append([item, 1])
    return out


FUNCTIONS: Mapping[str, tuple[Callable[..., int | float], int, int, str]] = {
    # name: (function, fewest arguments, most arguments, what it gives), on numbers; given lists, each
    # applies item by item, as arithmetic does, except that `min`/`max` of one list is its smallest/largest
    "min": (min, 1, 64, "the smallest of its arguments"),
    "max": (max, 1, 64, "the largest of its arguments"),
    "round": (_round, 1, 1, "the nearest integer, halves to even (Python's and numpy's `round`)"),
    "floor": (math.floor, 1, 1, "the largest integer <= x"),
    "ceil": (math.ceil, 1, 1, "the smallest integer >= x"),
    "log": (_log, 1, 1, "the natural logarithm of x > 0"),
    "make_divisible": (make_divisible, 2, 3, "`make_divisible(v, divisor, min_value=divisor)`: torchvision's "
                       "`_make_divisible`, the nearest multiple of `divisor`, at least `min_value`, never "
                       "more than 10% below v"),
}
LIST_FUNCTIONS: Mapping[str, tuple[Callable[[tuple], Value], str]] = {
    # name: (function of one list, what it gives)
    "len": (len, "the number of items of a list"),
    "runs": (lambda xs: tuple(v for v, _ in _runs(xs)), "each run of equal neighbours, kept once: "
             "`runs([48, 104, 104])` is `[48, 104]`"),
    "run_lengths": (lambda xs: tuple(n for _, n in _runs(xs)), "the length of each run of equal neighbours: "
                    "`run_lengths([48, 104, 104])` is `[1, 2]`"),
}


def call_function(name: str, args: list[Value], node: Node, loc: Location) -> Value:
    """The value of the expression function `name` on `args`."""
    if name not in FUNCTIONS and name not in LIST_FUNCTIONS and name != "range":
        known = [*FUNCTIONS, "range", *LIST_FUNCTIONS]
        raise ExprError(f"unknown function `{name}`{did_you_mean(name, known)}; functions are: "
                        f"{', '.join(known)}", loc.shifted(node.col))
    fewest, most = FUNCTIONS[name][1:3] if name in FUNCTIONS else (1, 1)
    if not fewest <= len(args) <= most:
        wanted = str(fewest) if fewest == most else f"{fewest} to {most}"
        plural = "" if wanted == "1" else "s"
        raise ExprError(f"`{name}` takes {wanted} argument{plural}, got {len(args)}", loc.shifted(node.col))
    if name in LIST_FUNCTIONS:
        if not isinstance(args[0], tuple):
            raise ExprError(f"`{name}` needs a list, got {describe(args[0])}", loc.shifted(node.col))
        return LIST_FUNCTIONS[name][0](args[0])
    lists = [a for a in args if isinstance(a, tuple)]
    if name in ("min", "max") and len(args) == 1 and lists:  # `min(widths)`: its smallest item
        if not lists[0]:
            raise ExprError(f"`{name}` of an empty list", loc.shifted(node.col))
        args = list(lists[0])
    elif lists:  # item by item, as arithmetic: `min(group_width, widths)`
        if len({len(a) for a in lists}) > 1:
            raise ExprError(f"`{name}` needs lists of one length, got "
                            f"{' and '.join(describe(a) for a in lists)}", loc.shifted(node.col))
        return tuple(call_function(name, [a[i] if isinstance(a, tuple) else a for a in args], node, loc)
                     for i in range(len(lists[0])))
    numbers = [_number(a, name, node, loc) for a in args]
    if name == "make_divisible" and any(isinstance(a, float) or a < 1 for a in numbers[1:]):
        raise ExprError(f"`make_divisible`'s divisor and minimum must be positive integers, got "
                        f"{', '.join(describe(a) for a in args[1:])}", loc.shifted(node.col))
    try:
        if name == "range":
            return _range(numbers[0])  # type: ignore[arg-type]
        result: int | float = FUNCTIONS[name][0](*numbers)
    except ValueError as e:
        raise ExprError(str(e), loc.shifted(node.col)) from None
    return _checked(result, f"`{name}`", node, loc)


def describe(value: Value) -> str:
    """A value as a user would write it, with its kind: `3x3` (kernel), `64` (int)."""
    if isinstance(value, bool):
        return f"`{str(value).lower()}` (bool)"
    if isinstance(value, tuple):
        if len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return f"`{value[0]}x{value[1]}` (kernel)"
        return f"`[{', '.join(str(v) for v in value)}]` (list)"
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{value}` ({type(value).__name__})"
