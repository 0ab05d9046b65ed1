"""dsl/lalr.py: the parser run from the tables made ahead of time reads every text as the parser lark
builds from dsl/grammar.lark, and the tables are used only while they fit the grammar."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lark
import pytest

from cnnc.dsl import lalr
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


def lark_outcome(parser: lark.Lark, start: str, text: str) -> object:
    """lark's reading of `text`: its tree (each node's name, children and start, each token's type, text
    and offset), or its error (the offending token, or the offset of the character no terminal matches)."""
    def shape(node: object) -> object:
        if isinstance(node, lark.Tree):
            where = None if node.meta.empty else node.meta.start_pos
            return (node.data, [shape(c) for c in node.children], where)
        if isinstance(node, lark.Token):
            return (node.type, str(node), node.start_pos)
        return node

    try:
        return shape(parser.parse(text, start=start))
    except lark.exceptions.UnexpectedToken as e:
        return ("token", e.token.type, str(e.token), e.token.start_pos if e.token.type != "$END" else None)
    except lark.exceptions.UnexpectedCharacters as e:
        return ("characters", e.pos_in_stream)


def cnnc_outcome(parser: lalr.Parser, start: str, text: str) -> object:
    """`lark_outcome` of cnnc's parser."""
    def shape(node: object) -> object:
        if isinstance(node, lalr.Tree):
            return (node.data, [shape(c) for c in node.children], node.start_pos)
        if isinstance(node, lalr.Token):
            return (node.type, str(node), node.start_pos)
        return node

    try:
        return shape(parser.parse(text, start))
    except lalr.UnexpectedToken as e:
        return ("token", e.token.type, str(e.token), e.token.start_pos if e.token.type != "$END" else None)
    except lalr.UnexpectedCharacters as e:
        return ("characters", e.pos_in_stream)


def test_the_tables_were_made_from_this_grammar():
    stored = json.loads(lalr.TABLES.read_text(encoding="utf-8"))
    assert stored["grammar"] == lalr.GRAMMAR.read_text(encoding="utf-8"), \
        "dsl/grammar.lark changed: run `python -m cnnc.dsl.lalr` to remake dsl/grammar.tables.json"
    assert lalr.load() is not None


def test_the_parser_reads_every_text_as_lark_does():
    """Node for node and error for error, against the parser lark builds from the grammar now."""
    stored = lalr.load()
    assert stored is not None
    ours, theirs = lalr.Parser(*stored), lalr.build()
    cases = texts()
    assert len(cases) > 1500
    errors = kinds = 0
    seen: set[str] = set()
    for start, text in cases:
        expected = lark_outcome(theirs, start, text)
        errors += isinstance(expected, tuple) and expected[0] in ("token", "characters")
        if isinstance(expected, tuple) and expected[0] == "token":
            seen.add(expected[1])
        assert cnnc_outcome(ours, start, text) == expected, (start, text)
    kinds = len(seen)
    assert errors > 100 and kinds > 10  # error states are compared too, with many kinds of offending token


def test_keywords_and_the_repeat_are_told_from_names_as_lark_tells_them():
    ours, theirs = lalr.parser(), lalr.build()
    for start, text in [("item", "conv x 2"), ("item", "conv x2"), ("item", "x(1) x 2"), ("item", "xx"),
                        ("expr", "a if b else c"), ("expr", "iffy"), ("expr", "not notes"), ("expr", "a or b"),
                        ("expr", "x"), ("signature", "b(int x, if)"), ("expr", "(a) + b"), ("expr", "((a))*b")]:
        assert cnnc_outcome(ours, start, text) == lark_outcome(theirs, start, text), (start, text)


def test_the_tables_made_now_read_as_the_stored_ones():
    stored = lalr.load()
    assert stored is not None
    loaded, made = lalr.Parser(*stored), lalr.Parser(*lalr.made())
    for start, text in texts()[::7]:
        assert cnnc_outcome(made, start, text) == cnnc_outcome(loaded, start, text), (start, text)


@pytest.mark.parametrize("stale", ["grammar", "missing", "garbled"])
def test_tables_that_do_not_fit_are_not_used(tmp_path, monkeypatch, stale: str):
    stored = json.loads(lalr.TABLES.read_text(encoding="utf-8"))
    if stale == "grammar":
        stored["grammar"] += "// edited\n"
    path = tmp_path / "grammar.tables.json"
    if stale != "missing":
        path.write_text("{not json" if stale == "garbled" else json.dumps(stored), encoding="utf-8")
    monkeypatch.setattr(lalr, "TABLES", path)
    assert lalr.load() is None
    text = "conv(64, 3x3) x 2"
    assert cnnc_outcome(lalr.parser(), "item", text) == lark_outcome(lalr.build(), "item", text)


def test_reading_a_network_does_not_import_lark():
    code = ("import sys, cnnc; cnnc.build('inception_v3'); "
            "assert 'lark' not in sys.modules, sorted(m for m in sys.modules if m.startswith('lark'))")
    subprocess.run([sys.executable, "-c", code], check=True)
