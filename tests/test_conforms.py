"""dsl/conforms.py, the quick structural check that spares a well-formed file pydantic, against pydantic
itself: it accepts every shipped network (so `cnnc check` of one never builds the schema's validators),
and of every document made by changing one value of a shipped network, removing one key or adding one,
it accepts none that the schema refuses."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

from cnnc.dsl import schema
from cnnc.dsl.conforms import conforms
from cnnc.dsl.source import read

ARCHITECTURES = Path(__file__).resolve().parent.parent / "architectures"
SHIPPED = sorted(ARCHITECTURES.glob("*.yaml"))
# Small networks that between them use every kind of node and top-level key (mutated below).
MUTATED = ["lenet5_1998", "mobilenet_v3", "efficientnet", "googlenet", "inception_resnet_v2", "alexnet_torchvision"]
REPLACEMENTS: list[Any] = [None, True, False, 0, -3, 7, 2 ** 70, 1.5, float("nan"), float("inf"), "", "relu",
                           "1bad", "if", "\ud800", "é", [], [1], ["relu"], [[True]], {}, {"a": "relu"},
                           {"a": 1}, {"bad key": "relu"}, {"expect": [1]}, {"expect": [True]}, {"aux": "relu"},
                           {"if": True}, {"if": 1, "then": "relu"}, {"if": "x", "then": "relu", "else": None},
                           {"add": ["relu"], "mul": ["relu"]}, {"concat": {"1x": "relu"}},
                           {"label": "A"}, {"label": "", "layers": "relu"}, {"label": "A" * 61, "layers": "relu"},
                           {"label": "A", "layers": "relu"}, {"label": "A", "layers": "relu", "x": 1}]
ADDED: list[tuple[str, Any]] = [("extra", 1), ("label", "A"), ("layers", "relu"), ("then", "relu"), ("else", None),
                                ("if", "x"), ("add", ["relu"]), ("expect", [1]), ("interpolation", "nearest")]


def pydantic_accepts(data: Any) -> bool:
    try:
        schema.Network.model_validate(data)
    except ValidationError:
        return False
    return True


def paths(data: Any, path: tuple = (), items: int | None = None) -> Iterator[tuple]:
    """Every path into `data`; with `items`, into only the first and last `items` of each list."""
    yield path
    if isinstance(data, dict):
        for key, value in data.items():
            yield from paths(value, path + (key,), items)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            if items is None or i < items or i >= len(data) - items:
                yield from paths(value, path + (i,), items)


def at(data: Any, path: tuple) -> Any:
    for step in path:
        data = data[step]
    return data


def mutations(data: dict) -> Iterator[str]:
    """Changes `data` in place, one change at a time, saying what it changed and undoing it before the next:
    each value replaced, each key removed, each mapping given one more key."""
    for path in list(paths(data, items=2)):
        parent = at(data, path[:-1]) if path else None
        if path:
            old = parent[path[-1]]
            for new in REPLACEMENTS:
                parent[path[-1]] = copy.deepcopy(new)
                yield f"{path} = {new!r}"
            parent[path[-1]] = old
            if isinstance(parent, dict):
                items = list(parent.items())
                del parent[path[-1]]
                yield f"del {path}"
                parent.clear()
                parent.update(items)
        node = at(data, path)
        if isinstance(node, dict):
            for key, new in ADDED:
                if key not in node:
                    node[key] = copy.deepcopy(new)
                    yield f"{path}[{key!r}] = {new!r}"
                    del node[key]


@pytest.mark.parametrize("file", SHIPPED, ids=[f.stem for f in SHIPPED])
def test_every_shipped_network_conforms_without_pydantic(file: Path):
    data = read(file).data
    assert conforms(data)
    assert pydantic_accepts(data)


@pytest.mark.parametrize("name", MUTATED)
def test_nothing_the_schema_refuses_conforms(name: str):
    data = read(ARCHITECTURES / f"{name}.yaml").data
    accepted = refused = 0
    original = copy.deepcopy(data)
    for what in mutations(data):
        if conforms(data):
            accepted += 1
            assert pydantic_accepts(data), f"{name}: conforms() accepts {what}, which the schema refuses"
        else:
            refused += 1
    assert accepted and refused  # both sides were exercised
    assert data == original  # every change was undone


def test_the_mutations_reach_every_kind_of_node():
    """The networks mutated above use every key of the schema, so every rule is changed somewhere."""
    used: set[str] = set()
    for name in MUTATED:
        data = read(ARCHITECTURES / f"{name}.yaml").data
        used.update(step for path in paths(data) for step in path if isinstance(step, str))
    keys = set(schema.Network.model_fields) | set(schema.RESERVED) | {"then", "else", "label"} | \
        set(schema.Preprocessing.model_fields) - {"interpolation"}
    assert keys <= used, (f"no network in MUTATED uses {sorted(keys - used)}: add one that does, so that its "
                           f"rule in dsl/conforms.py is tried against the schema")


@pytest.mark.parametrize("data", [
    None, [], "network: x", {"network": "x", "input": [1], "layers": []},
    {"network": "x", "input": [1, 2, 3, 4], "layers": ["relu"]},
    {"network": "x", "input": [True], "layers": ["relu"]},
    {"network": "x", "input": [1], "layers": ["relu"], "unknown": 1},
    {"network": "x", "input": [1], "layers": [{"a": "relu", "b": "relu"}]},
    {"network": "x", "input": [1], "layers": [{"if": "c"}]},
    {"network": "x", "input": [1], "layers": [{"add": ["relu"], "extra": 1}]},
    {"network": "x", "input": [1], "layers": ["relu"], "defaults": {"conv": {"bias": [1]}}},
], ids=["none", "list", "str", "no-layers", "four-axes", "bool-size", "unknown-key", "two-names", "if-without-then",
        "merge-with-extra", "list-default"])
def test_refused_documents_do_not_conform(data: Any):
    assert not conforms(data)
    assert not pydantic_accepts(data)
