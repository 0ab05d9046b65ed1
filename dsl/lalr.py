"""The parser of dsl/grammar.lark: lark makes its LALR tables ahead of time, this module runs them.

Building the parser with lark takes 80-130 ms, and even loading a parser lark saved costs importing lark
(about 55 ms) and making its lexers (15 ms more): together the largest part of the start-up of every
command that reads a network. `dsl/grammar.tables.json` holds what lark builds from the grammar, in lark's
own serialisation (the data `Lark.save` writes, as JSON instead of pickle: dicts, lists, strings and
numbers, nothing that runs), with the grammar text it was made from. `Parser` runs those tables as lark's
LALR parser runs them, with lark's contextual lexer (each parser state lexes only the terminals it
accepts, in lark's order of precedence, keywords told from names as lark tells them) and lark's tree
shape (anonymous tokens dropped, `?rule`s inlined when they have one child, `_rule`s spliced into their
parent, `None` for each absent `[optional]`, positions propagated as `propagate_positions` does). The
trees and errors are lark's, node for node (tests/test_lalr.py compares the two on every text the shipped
networks hold, errors and their prefixes included).

Where the file does not fit the grammar (edited since), lark builds the tables now, slower but the same.
Regenerate after editing the grammar with `python -m cnnc.dsl.lalr`; tests/test_lalr.py fails while the
file is stale. Lark numbers the states differently from one run to the next, so a remade file differs in
bytes, not in what it parses.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator, Union

GRAMMAR = Path(__file__).with_name("grammar.lark")
TABLES = Path(__file__).with_name("grammar.tables.json")
OPTIONS: dict[str, Any] = {"parser": "lalr", "propagate_positions": True, "start": ["item", "signature", "expr"],
                           "maybe_placeholders": True}
_SHIFT = 0  # lark's serialised actions: (0, state) shifts, (1, rule) reduces
_END = "$END"


class Token(str):
    """A terminal as it was read: its text, its terminal's name and its offset in the text."""

    __slots__ = ("type", "start_pos")
    type: str
    start_pos: int

    def __new__(cls, type_: str, value: str, start_pos: int) -> Token:
        token = super().__new__(cls, value)
        token.type, token.start_pos = type_, start_pos
        return token


class Tree:
    """A rule's node: its name (the alias where it has one), children, and the offset where it starts
    (None for a node that covers no text). `container` is where the text it was inlined from starts."""

    __slots__ = ("data", "children", "start_pos", "container")

    def __init__(self, data: str, children: list[Any], start_pos: int | None, container: int | None = None):
        self.data, self.children, self.start_pos, self.container = data, children, start_pos, container

    def __repr__(self) -> str:
        return f"Tree({self.data!r}, {self.children!r}, {self.start_pos})"


Child = Union[Tree, Token, None]


class ParseError(Exception):
    """Text the grammar does not accept."""


class UnexpectedToken(ParseError):
    """A terminal the parser cannot take where it stands (`$END` for text that ends too early)."""

    def __init__(self, token: Token):
        super().__init__(f"unexpected {token.type} {str(token)!r} at {token.start_pos}")
        self.token = token


class UnexpectedCharacters(ParseError):
    """Text that is no terminal at all."""

    def __init__(self, text: str, pos: int):
        super().__init__(f"unexpected character {text[pos]!r} at {pos}")
        self.char, self.pos_in_stream = text[pos], pos


class _Lexer:
    """lark's BasicLexer over `terminals`: one alternation in lark's order, first match wins; a string
    terminal that a pattern also matches whole (a keyword that is also a NAME) is found through the
    pattern and renamed."""

    def __init__(self, terminals: list[dict[str, Any]], ignore: frozenset[str]):
        order = sorted(terminals, key=lambda t: (-t["priority"], -_max_width(t), -len(t["pattern"]["value"]),
                                                 t["name"]))
        strings = [t for t in order if t["pattern"]["__type__"] == "PatternStr"]
        self.keywords: dict[str, dict[str, str]] = {}
        embedded: set[str] = set()
        for t in order:
            if t["pattern"]["__type__"] == "PatternRE":
                words = {s["pattern"]["value"]: s["name"] for s in strings if s["priority"] == t["priority"]
                         and _prefix(_regexp(t), s["pattern"]["value"]) == s["pattern"]["value"]}
                if words:
                    self.keywords[t["name"]] = words
                    embedded.update(words.values())
        self.regex = re.compile("|".join(f"(?P<{t['name']}>{_regexp(t)})" for t in order if t["name"] not in embedded))
        self.ignore = ignore

    def next(self, text: str, pos: int) -> Token | int | None:
        """The next token from `pos`, None at the end of the text, or the offset of a character no
        terminal matches."""
        while pos < len(text):
            m = self.regex.match(text, pos)
            if m is None:
                return pos
            kind = m.lastgroup or ""
            if kind not in self.ignore:
                value = m.group(0)
                return Token(self.keywords.get(kind, {}).get(value, kind), value, pos)
            pos = m.end()
        return None


class Parser:
    """lark's LALR parser of the serialised tables `data` (with `memo`, lark's shared definitions)."""

    def __init__(self, data: dict[str, Any], memo: dict[int, Any]):
        frontend = data["parser"]
        table = frontend["parser"]
        names = table["tokens"]
        self._states = {state: {names[k]: (action, memo[arg["@"]] if action != _SHIFT else arg)
                                for k, (action, arg) in actions.items()} for state, actions in table["states"].items()}
        self._start, self._end = table["start_states"], table["end_states"]
        conf = frontend["lexer_conf"]
        self._terminals = {memo[t["@"]]["name"]: memo[t["@"]] for t in conf["terminals"]}
        self._ignore = frozenset(conf["ignore"])
        self._lexers: dict[frozenset[str], _Lexer] = {}
        self._by_state: dict[int, _Lexer] = {}
        self._root: _Lexer | None = None  # every terminal: made for the first error, which it reports

    def parse(self, text: str, start: str) -> Tree:
        """The tree of `text` read as `start`, or a `ParseError`."""
        stack: list[int] = [self._start[start]]
        values: list[Child] = []
        last: Token | None = None
        for token in self._tokens(text, stack):
            self._feed(token, stack, values)
            last = token
        return self._feed(Token(_END, "", last.start_pos if last is not None else 0), stack, values, self._end[start])

    def _tokens(self, text: str, stack: list[int]) -> Iterator[Token]:
        pos = 0
        while True:
            found = self._lexer(stack[-1]).next(text, pos)
            if isinstance(found, int):  # as lark: a terminal not accepted here is reported as a token
                if self._root is None:
                    self._root = _Lexer(list(self._terminals.values()), self._ignore)
                token = self._root.next(text, found)
                raise UnexpectedToken(token) if isinstance(token, Token) else UnexpectedCharacters(text, found)
            if found is None:
                return
            yield found
            pos = found.start_pos + len(found)

    def _lexer(self, state: int) -> _Lexer:
        lexer = self._by_state.get(state)
        if lexer is None:
            accepts = frozenset(self._states[state]) | self._ignore
            lexer = self._lexers.get(accepts)
            if lexer is None:
                lexer = self._lexers[accepts] = _Lexer([t for n, t in self._terminals.items() if n in accepts],
                                                       self._ignore)
            self._by_state[state] = lexer
        return lexer

    def _feed(self, token: Token, stack: list[int], values: list[Child], end: int | None = None) -> Any:
        while True:
            action, arg = self._states[stack[-1]].get(token.type, (None, None))
            if action is None:
                raise UnexpectedToken(token)
            if action == _SHIFT:
                stack.append(arg)
                values.append(token)
                return None
            size = len(arg["expansion"])
            children = values[len(values) - size:] if size else []
            if size:
                del stack[-size:], values[-size:]
            stack.append(self._states[stack[-1]][arg["origin"]["name"]][1])
            values.append(_build(arg, children))
            if end is not None and stack[-1] == end:
                return values[-1]


def _build(rule: dict[str, Any], children: list[Child]) -> Child:
    """The node of `rule` reduced over `children`, as lark's tree builder makes it."""
    options = rule["options"]
    first = next((c for c in children if isinstance(c, Token) or (isinstance(c, Tree) and c.start_pos is not None)),
                 None)
    start = None if first is None else first.start_pos if isinstance(first, Token) else \
        first.container if first.container is not None else first.start_pos
    kept: list[Child] = []
    slots = options["empty_indices"] or [False] * len(rule["expansion"])
    symbols = iter(zip(rule["expansion"], children))
    for empty in slots:
        if empty:
            kept.append(None)
            continue
        symbol, child = next(symbols)
        if symbol["__type__"] == "Terminal" and symbol.get("filter_out") and not options["keep_all_tokens"]:
            continue
        if symbol["__type__"] == "NonTerminal" and symbol["name"].startswith("_"):
            assert isinstance(child, Tree)
            kept += child.children
        else:
            kept.append(child)
    if options["expand1"] and not rule["alias"] and len(kept) == 1:
        node = kept[0]
        if isinstance(node, Tree) and start is not None:
            node.container = start
        return node
    return Tree(rule["alias"] or rule["origin"]["name"], kept, start)


def _regexp(terminal: dict[str, Any]) -> str:
    pattern = terminal["pattern"]
    if pattern["flags"]:
        raise ValueError(f"terminal {terminal['name']}: regex flags are not supported")
    return re.escape(pattern["value"]) if pattern["__type__"] == "PatternStr" else pattern["value"]


def _max_width(terminal: dict[str, Any]) -> int:
    pattern = terminal["pattern"]
    return len(pattern["value"]) if pattern["__type__"] == "PatternStr" else pattern["_width"][1]


def _prefix(regexp: str, text: str) -> str | None:
    m = re.match(regexp, text)
    return m.group(0) if m else None


def parser() -> Parser:
    """The parser: from the tables made ahead of time where they fit the grammar, else made by lark now."""
    stored = load()
    return Parser(*stored) if stored is not None else Parser(*made())


def load() -> tuple[dict[str, Any], dict[int, Any]] | None:
    """The tables in `TABLES` (data and memo), or None where the file is missing, garbled or made from
    another grammar."""
    try:
        stored = json.loads(TABLES.read_text(encoding="utf-8"), object_hook=_int_keys)
        grammar = GRAMMAR.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("grammar") != grammar:
        return None
    return stored["data"], stored["memo"]


def made() -> tuple[dict[str, Any], dict[int, Any]]:
    """The tables lark builds from the grammar now, as `load` gives them."""
    stored = json.loads(tables_text(), object_hook=_int_keys)
    return stored["data"], stored["memo"]


def build() -> Any:
    """lark's own parser of the grammar (a `lark.Lark`): what the tables are made from, and what
    tests/test_lalr.py holds `Parser` to."""
    from lark import Lark

    return Lark.open(GRAMMAR.name, rel_to=str(GRAMMAR), **OPTIONS)


def tables_text() -> str:
    """The text of `TABLES` for the grammar file, made by the lark installed."""
    import lark
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    data, memo = build().memo_serialize([TerminalDef, Rule])
    stored = {"lark": lark.__version__, "grammar": GRAMMAR.read_text(encoding="utf-8"), "data": data, "memo": memo}
    return json.dumps(stored, ensure_ascii=False, separators=(",", ":")) + "\n"


def _int_keys(obj: dict[str, Any]) -> dict[Any, Any]:
    """JSON's object keys are strings; lark's tables key states, tokens and memo entries by int (no name in
    them is made of digits: terminals and rules are named by the grammar's identifiers)."""
    return {int(k) if k.isdigit() else k: v for k, v in obj.items()}


def main() -> None:
    TABLES.write_text(tables_text(), encoding="utf-8")
    print(f"wrote {TABLES}")


if __name__ == "__main__":
    main()
