"""The complete networks shown in README.md and docs/language.md compile: examples cannot rot."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import cnnc
from cnnc.dsl.document import load_text

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [(f"{doc}#{i}", block)
            for doc in ("README.md", "docs/language.md")
            for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", (ROOT / doc).read_text(), re.S))
            if block.startswith("network:")]


def test_the_docs_have_complete_examples():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("name,text", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_documented_network_compiles(name, text):
    graph = cnnc.build(load_text(text, name))
    assert graph.layers and graph.output_shape


def test_language_reference_examples_use_every_op_and_construct():
    from cnnc.compiler.ops import OPS
    used_ops, used_keys = set(), set()
    for name, text in EXAMPLES:
        if not name.startswith("docs/language.md"):
            continue
        graph = cnnc.build(load_text(text, name), aux=True)
        used_ops |= {layer.op for layer in graph.layers}
        used_keys |= set(re.findall(r"(?:^|[{,\s-])(\w+):", text, re.M))
    assert set(OPS) <= used_ops, sorted(set(OPS) - used_ops)
    assert {"concat", "add", "mul", "expect", "aux", "if", "then", "else", "constants", "defaults", "blocks",
            "parameters", "variants"} <= used_keys, used_keys


def test_readme_tutorial_outputs_are_what_cnnc_prints(tmp_path, cli):
    readme = (ROOT / "README.md").read_text()
    tutorial = readme[readme.index("## Tutorial"):]
    (tmp_path / "tiny.yaml").write_text(re.search(r"```yaml\n(.*?)```", tutorial, re.S)[1])
    shown = re.search(r"\$ cnnc check tiny.yaml\n(.*?)\n", tutorial)[1]
    r = cli.run("check", "tiny.yaml", cwd=tmp_path, timeout=60)
    assert r.out.strip() == shown
    r = cli.run("summary", "tiny.yaml", "--depth", "1", cwd=tmp_path, timeout=60)
    shown = re.search(r"\$ cnnc summary tiny.yaml --depth 1\n(.*?)```", tutorial, re.S)[1]
    assert r.out.strip() == shown.strip()


def test_language_reference_op_table_is_the_registry_s():
    from cnnc import reference
    text = (ROOT / "docs/language.md").read_text()
    assert reference.BEGIN in text and reference.END in text
    assert reference.embed(text) == text, \
        "docs/language.md's op table is stale: regenerate it with `cnnc ops --markdown-into docs/language.md`"


def test_ops_command_lists_every_op_and_merge_with_its_arguments(cli):
    import json

    from cnnc.compiler.ops import MERGES, OPS
    r = cli.run("ops")
    assert r.code == 0
    for op in OPS.values():
        assert any(line.startswith(f"{op.name}(") or line == op.name for line in r.out.splitlines()), op.name
        for arg in op.args:
            assert re.search(rf"^    {arg.name} +{arg.kind} +{re.escape(arg.doc[:30])}", r.out, re.M), (op.name, arg)
    data = json.loads(cli.run("ops", "--json").out)
    assert [o["name"] for o in data["ops"]] == list(OPS)
    assert [m["name"] for m in data["merges"]] == list(MERGES)
    conv = next(o for o in data["ops"] if o["name"] == "conv")
    assert {"name": "groups", "kind": "int", "required": False, "doc": OPS["conv"].args[5].doc,
            "default": "1"} in conv["args"]


def test_ops_markdown_into_a_file_without_markers_is_a_located_refusal(cli, tmp_path):
    target = tmp_path / "notes.md"
    target.write_text("# notes\n")
    r = cli.run("ops", "--markdown-into", str(target))
    assert r.code == 2 and "has no generated op reference" in r.err and "Traceback" not in r.err
    assert target.read_text() == "# notes\n"


@pytest.mark.parametrize("width", [60, 80, 100])
def test_ops_reference_fits_the_terminal_it_is_printed_in(width):
    from cnnc import reference
    lines = reference.text(width).splitlines()
    assert max(len(line) for line in lines) <= width
    assert sum(len(line) > width - 10 for line in lines) > 0  # and uses it: wrapped, not just short
