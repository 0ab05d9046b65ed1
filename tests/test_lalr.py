"""dsl/lalr.py: the parser loaded from the tables made ahead of time is the parser lark builds from
dsl/grammar.lark, and the tables are used only while they fit the grammar and lark."""
from __future__ import annotations

import json
from pathlib import Path

import lark
import pytest

from cnnc.dsl import lalr, syntax
from cnnc.dsl.source import read

ARCHITECTURES = Path(__file__).resolve().parent.parent / "architectures"


def texts() -> list[tuple[str, str]]:
    """(start, text): every call and block signature of the shipped networks, a few more errors, and
    prefixes of them all (most of them errors, ending in the parser's states)."""
    found: set[tuple[str, str]] = set()

    def walk(value: object) -> None:
        if isinstance(value, str):
            found.add(("item", value))
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for k, v in value.items():
                if k == "if" and isinstance(v, str):
                    found.add(("expr", v))
                walk(v)

    for file in sorted(ARCHITECTURES.glob("*.yaml")):
        data = read(file).data
        walk(data["layers"])
        for key, body in data.get("blocks", {}).items():
            found.add(("signature", key))
            walk(body)
    extra = ["conv(64,, 3)", "x 2", "relu x2", "f(a=1, 2)", "b(x=1, y)", "a ? b", "[1, 2", "'unclosed", "1 if 2",
             "not", "a[", "3x", "conv(64)) x 3", "a b c", "f(**x)", "é"]
    found.update((start, text) for text in extra for start in ("item", "signature", "expr"))
    prefixes = sorted({(start, text[:i]) for start, text in found for i in range(len(text))} - found)
    return sorted(found) + prefixes[::8]  # every eighth prefix: enough to end in every state, in seconds


def outcome(parser: lark.Lark, start: str, text: str) -> object:
    """What a user sees of parsing `text`: the syntax nodes, or the error's offset and description."""
    try:
        return syntax._ToNodes().transform(parser.parse(text, start=start))
    except lark.exceptions.VisitError as e:
        return ("misplaced", e.orig_exc.col, str(e.orig_exc)) if isinstance(e.orig_exc, syntax._Misplaced) else e
    except lark.exceptions.UnexpectedInput as e:
        return (type(e).__name__, syntax._error_offset(e, text), syntax._describe(e, text))


def test_the_tables_were_made_from_this_grammar_by_this_lark():
    stored = json.loads(lalr.TABLES.read_text(encoding="utf-8"))
    assert stored["grammar"] == lalr.GRAMMAR.read_text(encoding="utf-8"), \
        "dsl/grammar.lark changed: run `python -m cnnc.dsl.lalr` to remake dsl/grammar.tables.json"
    assert stored["lark"] == lark.__version__, \
        f"lark is {lark.__version__} now: run `python -m cnnc.dsl.lalr` to remake dsl/grammar.tables.json"
    assert lalr.load() is not None


def test_the_loaded_parser_reads_every_text_as_the_built_one():
    loaded, built = lalr.load(), lalr.build()
    assert loaded is not None
    cases = texts()
    assert len(cases) > 1500
    errors = 0
    for start, text in cases:
        expected = outcome(built, start, text)
        errors += isinstance(expected, tuple)
        assert outcome(loaded, start, text) == expected, (start, text)
    assert errors > 100  # error states are compared too, not only successful parses


def test_the_loaded_parser_keeps_the_options_syntax_relies_on():
    loaded = lalr.load()
    assert loaded is not None
    assert loaded.options.propagate_positions and loaded.options.maybe_placeholders
    assert loaded.options.start == lalr.OPTIONS["start"] and loaded.options.parser == "lalr"


@pytest.mark.parametrize("stale", ["grammar", "lark", "missing", "garbled"])
def test_tables_that_do_not_fit_are_not_used(tmp_path, monkeypatch, stale: str):
    stored = json.loads(lalr.TABLES.read_text(encoding="utf-8"))
    if stale == "grammar":
        stored["grammar"] += "// edited\n"
    elif stale == "lark":
        stored["lark"] = "0.0.1"
    path = tmp_path / "grammar.tables.json"
    if stale != "missing":
        path.write_text("{not json" if stale == "garbled" else json.dumps(stored), encoding="utf-8")
    monkeypatch.setattr(lalr, "TABLES", path)
    assert lalr.load() is None
    assert outcome(lalr.parser(), "item", "conv(64, 3x3) x 2") == outcome(lalr.build(), "item", "conv(64, 3x3) x 2")
