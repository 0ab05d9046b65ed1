"""Inline expressions as text -> typed syntax nodes (via dsl/grammar.lark): the parsing half of
dsl/expr.py, which evaluates them.

Three kinds of text are parsed: an *item* (`inception_a(64) x 2`), a block *signature*
(`cbr(filters, kernel k, int stride=1)`) and a bare *value* (`3x3`, `4*f`). Each transformer method makes
one node kind; nothing is ever handed to Python's `eval`.
"""
from __future__ import annotations

from functools import cache, lru_cache
from typing import Any, Callable, Union

from ..errors import Location
from ..record import Record, record
from . import lalr
from .lalr import ParseError, Tree, UnexpectedCharacters, UnexpectedToken
from .errors import ExprError

Value = Union[int, float, bool, str, tuple]
"""What an expression evaluates to. Lists and kernels are tuples; symbols (`same`) are str."""


# ---- syntax nodes -------------------------------------------------------------------------------
@record
class Node(Record):
    col: int  # 0-based offset of the node in its text


@record
class Const(Node):
    value: Value


@record
class Name(Node):
    id: str


@record
class ListExpr(Node):
    items: tuple[Node, ...]


@record
class BinOp(Node):
    op: str
    left: Node
    right: Node


@record
class Neg(Node):
    operand: Node


@record
class Not(Node):
    operand: Node


@record
class Logic(Node):
    """`and` / `or`, evaluated left to right and only as far as needed."""

    op: str
    left: Node
    right: Node


@record
class Choice(Node):
    """`a if cond else b`: only the side chosen is evaluated."""

    then: Node
    condition: Node
    otherwise: Node


@record
class Compare(Node):
    op: str
    left: Node
    right: Node


@record
class Index(Node):
    """`widths[2]`: an item of a list, counted from 0 (negative counts from the end)."""

    target: Node
    index: Node


@record
class Function(Node):
    """A call of one of the expression functions (`FUNCTIONS`): `make_divisible(32 * width, 8)`."""

    name: str
    args: tuple[Node, ...]


@record
class Call(Node):
    name: str
    args: tuple[Node, ...]
    kwargs: tuple[tuple[str, Node, int], ...]  # (keyword, value, column of the keyword)
    has_parens: bool


@record
class Item(Node):
    call: Call
    repeat: Node | None


@record
class Param(Node):
    name: str
    type: str | None
    default: Node | None


@record
class Signature(Node):
    name: str
    params: tuple[Param, ...]


# ---- parsing ------------------------------------------------------------------------------------
def _col(meta_or_token: object) -> int:
    return getattr(meta_or_token, "start_pos", 0) or 0  # offset into the text (it may span lines)


def _bin(op: str) -> Callable[[Any, Any, list[Node]], BinOp]:
    """A transformer method building a `BinOp` for `op` (one per arithmetic rule)."""
    def method(self: Any, meta: Any, children: list[Node]) -> BinOp:
        return BinOp(_col(meta), op, children[0], children[1])
    return method


class _Misplaced(Exception):
    """A well-formed text whose parts are in an order the language refuses (raised while building nodes)."""

    def __init__(self, col: int, why: str, code: str):
        super().__init__(why)
        self.col, self.why, self.code = col, why, code


class _ToNodes:
    """A parse tree -> syntax nodes: one method per rule (its alias where it has one), given the tree
    (for its position) and its children made into nodes already."""

    def transform(self, tree: Tree) -> Any:
        children = [self.transform(c) if isinstance(c, Tree) else c for c in tree.children]
        return getattr(self, tree.data)(tree, children)

    def int(self, meta, children):
        return Const(_col(meta), int(children[0]))

    def float(self, meta, children):
        return Const(_col(meta), float(children[0]))

    def kernel(self, meta, children):
        h, w = str(children[0]).split("x")
        return Const(_col(meta), (int(h), int(w)))

    def name(self, meta, children):
        return Name(_col(meta), str(children[0]))

    def string(self, meta, children):
        return Const(_col(meta), str(children[0])[1:-1])

    def list(self, meta, children):
        return ListExpr(_col(meta), tuple(c for c in children if c is not None))

    def neg(self, meta, children):
        return Neg(_col(meta), children[0])

    def index(self, meta, children):
        target, index = children
        return Index(index.col, target, index)

    def choice(self, meta, children):
        then, condition, otherwise = children
        return Choice(condition.col, then, condition, otherwise)

    def not_(self, meta, children):
        return Not(_col(meta), children[0])

    def and_(self, meta, children):
        return Logic(_col(meta), "and", children[0], children[1])

    def or_(self, meta, children):
        return Logic(_col(meta), "or", children[0], children[1])

    def compare(self, meta, children):
        left, op, right = children
        return Compare(_col(op), str(op), left, right)

    def function(self, meta, children):
        name, *args = children
        return Function(_col(name), str(name), tuple(a for a in args if a is not None))

    add, sub, mul = _bin("+"), _bin("-"), _bin("*")
    floordiv, truediv, mod, pow = _bin("//"), _bin("/"), _bin("%"), _bin("**")

    def kwarg(self, meta, children):
        key, value = children
        return ("kw", str(key), value, _col(key))

    def args(self, meta, children):
        return [c for c in children if c is not None]

    def call(self, meta, children):
        name, *rest = children
        args = rest[0] if rest and rest[0] is not None else []
        keyword = next((a for a in args if isinstance(a, tuple)), None)
        late = next((a for a in args[args.index(keyword):] if not isinstance(a, tuple)), None) if keyword else None
        if late is not None and keyword is not None:
            raise _Misplaced(late.col, f"a positional argument follows the keyword argument `{keyword[1]}=`: "
                                       f"positional arguments come first; move this one before `{keyword[1]}=`, "
                                       f"or name it too", "E0303")
        positional = tuple(a for a in args if not isinstance(a, tuple))
        keywords = tuple((a[1], a[2], a[3]) for a in args if isinstance(a, tuple))
        return Call(_col(name), str(name), positional, keywords, has_parens=len(rest) > 0)

    def item(self, meta, children):
        call = children[0]
        repeat = children[2] if len(children) == 3 else None
        return Item(call.col, call, repeat)

    def param(self, meta, children):
        name, default = children
        return Param(_col(name), str(name), None, default)

    def typed_param(self, meta, children):
        ptype, name, default = children
        return Param(_col(ptype), str(name), str(ptype), default)

    def params(self, meta, children):
        return [c for c in children if c is not None]

    def signature(self, meta, children):
        name, *rest = children
        params = rest[0] if rest and rest[0] is not None else []
        first = next((p for p in params if p.default is not None), None)
        late = next((p for p in params[params.index(first):] if p.default is None), None) if first else None
        if late is not None and first is not None:
            raise _Misplaced(late.col, f"parameter `{late.name}` has no default but follows `{first.name}`, which "
                                       f"has one: parameters with defaults come last, e.g. `{name}({late.name}, "
                                       f"{first.name}=...)`", "E0304")
        return Signature(_col(name), str(name), tuple(params))


@cache
def _parser() -> lalr.Parser:
    return lalr.parser()  # grammar.lark's, its tables made ahead of time (dsl/lalr.py)


_WHAT = {"item": "a layer call such as `conv(64, 3x3)` or `block(1) x 2`",
         "signature": "a block signature such as `cbr(filters, kernel, stride=1)`",
         "expr": "a value such as `3`, `3x3`, `2*f` or `same`"}


@lru_cache(maxsize=4096)
def _parse_cached(text: str, start: str) -> Node | tuple[int, str] | tuple[int, str, str]:
    try:
        return _ToNodes().transform(_parser().parse(text, start))
    except _Misplaced as e:
        return (e.col, e.why, e.code)
    except ParseError as e:
        return (_error_offset(e, text), _describe(e, text))


MAX_NESTING = 32  # brackets inside brackets
MAX_OPERATORS = 200  # arithmetic operators in one expression (each one is a level of the syntax tree)
MAX_DIGITS = 30


def _too_complex(text: str) -> tuple[int, str] | None:
    """Where and why `text` is too deep or too long to parse, checked before parsing (whose recursion
    such text would exhaust)."""
    depth = operators = digits = 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
            if depth > MAX_NESTING:
                return i, f"brackets nest more than {MAX_NESTING} deep"
        elif ch in ")]":
            depth -= 1
        elif ch in "+-*/%":
            operators += 1
            if operators > MAX_OPERATORS:
                return i, f"it has more than {MAX_OPERATORS} operators"
        digits = digits + 1 if ch.isdigit() else 0
        if digits > MAX_DIGITS:
            return i - digits + 1, f"a number has more than {MAX_DIGITS} digits"
    return None


def parse(text: str, start: str, loc: Location) -> Node:
    """Parse `text` as `start` ('item', 'signature' or 'expr'); errors are located from `loc`."""
    result = _too_complex(text) or _parse_cached(text, start)
    if isinstance(result, tuple):
        col, why, *code = result
        shown = text if len(text) <= 80 else text[:77] + "..."
        shown = shown.replace("\n", "\\n").replace("\r", "\\r").replace("\t", " ")
        raise ExprError(f"cannot read `{shown}` as {_WHAT[start]}: {why}", loc.shifted(col),
                        code=code[0] if code else "E0302")
    return result


def _error_offset(e: ParseError, text: str) -> int:
    if isinstance(e, UnexpectedCharacters):
        return e.pos_in_stream
    assert isinstance(e, UnexpectedToken)
    if e.token.type == "$END":
        return len(text.rstrip())  # just past the last character: where the missing part belongs
    return e.token.start_pos


def _describe(e: ParseError, text: str) -> str:
    if isinstance(e, UnexpectedCharacters):
        return f"unexpected character {e.char!r}"
    assert isinstance(e, UnexpectedToken)
    token = e.token
    if token.type == "$END":
        return "it ends too early (an unclosed bracket or a missing value?)"
    hint = ""
    if token.type == "NAME" and str(token).startswith("x") and str(token)[1:].isdigit():
        hint = f" (write a repeat as `x {str(token)[1:]}`, with a space)"
    return f"unexpected `{token}`{hint}"
