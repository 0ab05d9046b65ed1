"""The JSON Schema for editors: generated from dsl/schema.py, shipped, and true to the shipped networks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from cnnc.architectures import names, path as shipped
from cnnc.dsl import schema
from cnnc.dsl.document import load_text
from cnnc.errors import CnncError

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "dsl" / schema.SCHEMA_FILE
COMMENT = "# yaml-language-server: $schema=../dsl/cnnc.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    generated = schema.json_schema()
    jsonschema.Draft202012Validator.check_schema(generated)
    return jsonschema.Draft202012Validator(generated)


def test_cnnc_schema_prints_the_shipped_schema_file():
    r = subprocess.run([sys.executable, "-m", "cnnc", "schema"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == schema.json_schema_text()
    assert SCHEMA_FILE.read_text(encoding="utf-8") == r.stdout, \
        "dsl/cnnc.schema.json is stale: regenerate it with `cnnc schema > dsl/cnnc.schema.json`"
    assert json.loads(r.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_model_and_field_has_a_description_for_hover_help():
    generated = schema.json_schema()
    assert generated["description"]
    for name, definition in generated["$defs"].items():
        assert definition.get("description"), name
        for key, prop in definition.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{key}"
    for key, prop in generated["properties"].items():
        assert prop.get("description"), key
    layer = generated["$defs"]["LayerNode"]["oneOf"]
    assert all(member.get("description") or "$ref" in member for member in layer)


@pytest.mark.parametrize("name", names())
def test_shipped_network_starts_with_the_schema_comment_and_validates(name, validator):
    text = shipped(name).read_text(encoding="utf-8")
    assert text.splitlines()[0] == COMMENT
    target = shipped(name).parent / "../dsl/cnnc.schema.json"  # where the comment points, installed or not
    assert target.is_file() and target.read_bytes() == SCHEMA_FILE.read_bytes()
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(yaml.safe_load(text))]
    assert errors == []


def test_the_schema_file_ships_as_package_data():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    package_data = pyproject[pyproject.index("[tool.setuptools.package-data]"):]
    line = next(l for l in package_data.splitlines() if l.startswith('"cnnc.dsl"'))
    assert "*.json" in line or schema.SCHEMA_FILE in line


GOOD = [
    "network: t\ninput: [3, 8, 8]\nlayers: [conv(8, 3x3), relu]\n",
    "network: t\ninput: [3, 8, 8]\nlayers:\n  - named:\n      concat:\n        a: conv(4, 1x1)\n"
    "        b: [maxpool(2x2, stride=1, padding=same), identity]\n",
    "network: t\ninput: [3, 8, 8]\nlayers:\n  - add: [identity, [conv(3, 3x3, padding=same)]]\n  - expect: [3, 8, 8]\n",
    "network: t\ninput: [3, 8, 8]\nblocks:\n  cr(f, k=3x3): [conv(f, k), relu]\n"
    "layers:\n  - aux1: {aux: [globalavgpool, dense(2)]}\n  - cr(4) x 2\n",
    "network: t\ninput: [3, 8, 8]\nconstants: {c: [[0, 1], [1, 2]], w: 2}\ndefaults: {conv: {bias: false}}\n"
    "layers: [conv(w, 3x3, connections=c)]\n",
    # a flow list that YAML splits inside a call: to a plain YAML reader the `2` is a bare number
    "network: t\ninput: [3, 8, 8]\nblocks:\n  cbr(f, s, k): [conv(f, k, stride=s), relu]\nlayers: [cbr(8, 2, 3x3)]\n",
]

BAD = [  # (document, why): each is refused by cnnc and by the JSON Schema
    ("network: t\ninput: [3, 8, 8]\n", "no layers"),
    ("network: t\ninput: [3, 8, 8]\nlayers: []\n", "empty layers"),
    ("network: t-1\ninput: [3, 8, 8]\nlayers: [relu]\n", "a name that is not an identifier"),
    ("network: t\ninput: [0, 8, 8]\nlayers: [relu]\n", "a zero-sized input"),
    ("network: t\ninput: [3, 8, 8, 1]\nlayers: [relu]\n", "a 4-D input"),
    ("network: t\ninput: [3, 8, 8]\nlayer: [relu]\nlayers: [relu]\n", "an unknown top-level key"),
    ("network: t\ninput: [3, 8, 8]\nlayers:\n  - concat: [relu]\n    extra: 1\n", "a merge with an extra key"),
    ("network: t\ninput: [3, 8, 8]\nlayers:\n  - {a: relu, b: relu}\n", "a named layer with two names"),
    ("network: t\ninput: [3, 8, 8]\nlayers:\n  - expect: [3, true]\n", "a shape with a boolean in it"),
    ("network: t\ninput: [3, 8, 8]\nlayers:\n  - concat: 3\n", "branches that are a number"),
    ("network: t\ninput: [3, 8, 8]\nlayers:\n  - add: {bad-name: relu}\n", "a branch name with a dash"),
    ("network: t\ninput: [3, 8, 8]\ndefaults: {conv: 3}\nlayers: [relu]\n", "defaults that are not a mapping"),
    ("network: t\ninput: [3, 8, 8]\nlayers:\n  - aux: [relu]\n    name: x\n", "aux with an extra key"),
]


@pytest.mark.parametrize("text", GOOD)
def test_documents_cnnc_accepts_are_valid_under_the_schema(text, validator):
    load_text(text, "t.yaml")
    assert list(validator.iter_errors(yaml.safe_load(text))) == []


@pytest.mark.parametrize("text,why", BAD, ids=[b[1] for b in BAD])
def test_documents_cnnc_refuses_are_refused_by_the_schema(text, why, validator):
    with pytest.raises(CnncError):
        load_text(text, "t.yaml")
    assert list(validator.iter_errors(yaml.safe_load(text))), why


NEWER_THAN_DRAFT_7 = {"prefixItems", "unevaluatedProperties", "unevaluatedItems", "dependentSchemas",
                      "dependentRequired", "$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef",
                      "minContains", "maxContains"}


def _keys(node) -> set[str]:
    if isinstance(node, dict):
        return set(node).union(*(_keys(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_keys(v) for v in node)) if node else set()
    return set()


@pytest.mark.parametrize("name", ["inception_v3", "resnext50_grouped", "lenet5_1998"])
def test_the_schema_works_for_draft_7_validators_too(name):
    # the YAML language server behind VS Code's YAML extension implements draft 7; the schema keeps to
    # draft-7 keywords (its `$defs` are reached by plain JSON pointers), so it means the same there
    generated = schema.json_schema()
    assert not _keys(generated) & NEWER_THAN_DRAFT_7
    errors = list(jsonschema.Draft7Validator(generated).iter_errors(yaml.safe_load(shipped(name).read_text())))
    assert errors == []
