"""The YAML reader: libyaml's scanner where it exists, PyYAML's own where libyaml refuses the text; both
must give the same data and the same position for every node."""
from __future__ import annotations

import pytest

from cnnc.architectures import names, path
from cnnc.dsl import source

UNICODE = ("network: ünïcødé\ninput: [3, 8, 8]\nlayers:\n  - \"conv(4,\n     3x3)\"\n  - 'a''b'\n  - |\n"
           "    text\n  - é: [a, {b: c}, d]\n  - [conv(8, 1x1), cbr(48, 1x1)]\n  - {k: conv(4, 1x1)}\n")


def _both(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[source.Source, source.Source]:
    fast = source.loads(text, "f.yaml")
    with monkeypatch.context() as m:
        m.setattr(source, "_FastLoader", None)
        slow = source.loads(text, "f.yaml")
    return fast, slow


@pytest.mark.skipif(source._FastLoader is None, reason="PyYAML without libyaml")
@pytest.mark.parametrize("text", [*(path(n).read_text() for n in names()), UNICODE],
                         ids=[*names(), "unicode_quoting_and_flow"])
def test_libyaml_and_pyyaml_give_the_same_data_and_positions(text, monkeypatch):
    fast, slow = _both(text, monkeypatch)
    assert fast.data == slow.data
    assert fast.positions == slow.positions
    assert {p: (loc.line, loc.col, loc.chars) for p, loc in fast.positions.items()} == \
        {p: (loc.line, loc.col, loc.chars) for p, loc in slow.positions.items()}


@pytest.mark.parametrize("text,says", [
    ("a: b: c\n", "mapping values are not allowed here"),
    ("\t- x\n", "found character '\\t' that cannot start any token"),
    ("a: [1, 2\n", "never closed"),
])
def test_malformed_yaml_gets_pyyaml_s_own_message(text, says):
    with pytest.raises(source.SourceError) as info:
        source.loads(text, "f.yaml")
    assert says in str(info.value) and str(info.value).startswith("f.yaml:1:")


def test_the_guards_hold_on_the_libyaml_path_too():
    deep = "a: " + "[" * 70 + "]" * 70 + "\n"
    with pytest.raises(source.SourceError, match="nesting deeper than"):
        source.loads(deep, "f.yaml")
