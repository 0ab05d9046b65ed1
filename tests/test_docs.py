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
