"""The parser of dsl/grammar.lark, its LALR tables built ahead of time.

Lark constructs the LALR tables of a grammar when a parser is made: 80-130 ms, the largest single part of
`cnnc check`'s start-up. `dsl/grammar.tables.json` holds the parser lark builds from the grammar as lark's
own serialisation of it (the data `Lark.save` writes, as JSON instead of pickle: dicts, lists, strings
and numbers, nothing that runs), with the grammar text and lark version it was made from; loading it
takes about 5 ms. It is used only when both match the grammar file and the lark installed; otherwise
the parser is built from the grammar, as it always was (so an install with another lark than the one
recorded, which pyproject.toml allows, starts 80-130 ms slower and parses the same). Regenerate after
editing the grammar (or upgrading lark) with `python -m cnnc.dsl.lalr`; tests/test_lalr.py fails while the
file is stale. Lark numbers the states differently from one run to the next, so a remade file differs in
bytes, not in what it parses (which the test compares).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lark
from lark import Lark
from lark.grammar import Rule
from lark.lexer import TerminalDef

GRAMMAR = Path(__file__).with_name("grammar.lark")
TABLES = Path(__file__).with_name("grammar.tables.json")
OPTIONS: dict[str, Any] = {"parser": "lalr", "propagate_positions": True, "start": ["item", "signature", "expr"],
                           "maybe_placeholders": True}


def build() -> Lark:
    """The parser, its tables constructed from the grammar now."""
    return Lark.open(GRAMMAR.name, rel_to=str(GRAMMAR), **OPTIONS)


def parser() -> Lark:
    """The parser: from the tables made ahead of time where they fit this grammar and lark, else built."""
    return load() or build()


def load() -> Lark | None:
    """The parser from `TABLES`, or None where the file is missing or made from another grammar or lark."""
    try:
        stored = json.loads(TABLES.read_text(encoding="utf-8"), object_hook=_int_keys)
        grammar = GRAMMAR.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("lark") != lark.__version__ or stored.get("grammar") != grammar:
        return None
    return Lark.load({"data": stored["data"], "memo": stored["memo"]})


def tables_text() -> str:
    """The text of `TABLES` for the grammar file and the lark installed."""
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
