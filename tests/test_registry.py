"""The op registry: every entry is complete, the derived views agree with it, and `build_registry`
refuses an incomplete or clashing definition (each made from a real one with `dataclasses.replace`)."""
from __future__ import annotations

import typing
from dataclasses import replace

import pytest

import cnnc
from cnnc.compiler.ops import (FAMILIES, KINDS, MERGES, OPS, PASSTHROUGH, PER_CHANNEL, Drawing, RegistryError,
                               build_registry, merge)
from cnnc.compiler.ops.base import FUNCTION_KINDS, DrawKind, Towers, no_params
from cnnc.dsl.keys import MERGES as MERGE_KEYWORDS

from test_ops import CASES, document

ALL_OPS = tuple(op for family in FAMILIES for op in family.DEFINITIONS)
CONV, RELU = OPS["conv"], OPS["relu"]


def case_attrs() -> list[tuple[str, str, dict]]:
    """(case id, op, the attributes of the case's layer of that op, as built)."""
    out = []
    for case in CASES:
        if case.op in OPS:
            layer = next(layer for layer in cnnc.build(document(case)).layers if layer.op == case.op)
            out.append((case.id, case.op, layer.attrs))
    return out


# ---- every entry is complete -------------------------------------------------------------------
def test_the_registry_is_its_families_in_order_and_nothing_else():
    assert list(OPS) == [op.name for op in ALL_OPS]
    assert list(MERGES) == [m.name for m in merge.DEFINITIONS]
    assert set(MERGES) == set(MERGE_KEYWORDS) and not set(OPS) & set(MERGES)
    assert build_registry(ALL_OPS, merge.DEFINITIONS) == (OPS, MERGES)


@pytest.mark.parametrize("name", list(OPS))
def test_every_op_is_complete(name: str):
    op = OPS[name]
    assert op.name == name and name.isidentifier() and op.doc.strip()
    for field in ("infer", "params", "macs", "lower", "prepare"):
        assert callable(getattr(op, field)), field
    assert op.bn_fold is None or callable(op.bn_fold)
    assert isinstance(op.passthrough, bool) and isinstance(op.per_channel, bool)
    assert not (op.passthrough and (op.per_channel or op.params is not no_params))
    names = [a.name for a in op.args]
    assert len(set(names)) == len(names)
    for arg in op.args:
        assert arg.name.isidentifier() and arg.kind in KINDS and arg.doc.strip(), arg
        if arg.default not in (..., None):  # a default is a value of its own kind, already normalised
            assert KINDS[arg.kind](arg.default) == arg.default, arg


@pytest.mark.parametrize("name", list(OPS))
def test_every_op_has_a_drawing(name: str):
    draw = OPS[name].draw
    assert isinstance(draw, Drawing) and callable(draw.label)
    assert draw.kind in typing.get_args(DrawKind)
    assert draw.mark is None or (draw.kind in FUNCTION_KINDS and draw.mark.strip())


CASE_ATTRS = case_attrs()


@pytest.mark.parametrize("case,name,attrs", CASE_ATTRS, ids=[c for c, _, _ in CASE_ATTRS])
def test_every_label_reads_the_cases_attributes(case: str, name: str, attrs: dict):
    for paper in (False, True):
        label = OPS[name].draw.label(attrs, paper)
        assert isinstance(label, str) and label.strip(), (case, paper)


@pytest.mark.parametrize("name", list(MERGES))
def test_every_merge_is_complete(name: str):
    m = MERGES[name]
    assert m.name == name and name.isidentifier() and m.doc.strip() and m.legend.strip()
    assert callable(m.infer) and callable(m.lower)
    assert m.towers is None or m.towers in typing.get_args(Towers)
    assert m.module in ("inception", "residual", "gate")


@pytest.mark.parametrize("kind,value,ok", [
    ("int", 1, True), ("int", 0, False), ("index", 0, True), ("index", 5, True), ("index", -1, False),
    ("index", True, False), ("index", 1.0, False), ("rate", 0.0, True), ("rate", 1.0, False),
])
def test_argument_kinds_accept_their_values_only(kind: str, value, ok: bool):
    if ok:
        assert KINDS[kind](value) == value
    else:
        with pytest.raises(ValueError):
            KINDS[kind](value)


def test_the_derived_views_are_the_traits():
    assert {name for name, op in OPS.items() if op.passthrough} == PASSTHROUGH
    assert {name for name, op in OPS.items() if op.per_channel} == PER_CHANNEL


# ---- incomplete definitions are refused --------------------------------------------------------
def with_arg(op, index: int, **changes):
    args = list(op.args)
    args[index] = replace(args[index], **changes)
    return replace(op, args=tuple(args))


def ops_with(bad, instead_of=CONV) -> list:
    return [bad if op is instead_of else op for op in ALL_OPS]


BROKEN_OPS = [
    pytest.param(with_arg(CONV, 1, doc=""), "argument `kernel` needs a kind .* and a doc line", id="arg-without-doc"),
    pytest.param(with_arg(CONV, 1, kind="shape"), "argument `kernel` needs a kind", id="arg-of-unknown-kind"),
    pytest.param(with_arg(CONV, 1, name="filters"), r"an argument is named twice: \['filters', 'filters'",
                 id="arg-named-twice"),
    pytest.param(replace(CONV, doc=""), "op `conv`: needs an identifier name and a doc line", id="op-without-doc"),
    pytest.param(replace(CONV, name="conv-2d"), "op `conv-2d`: needs an identifier name", id="name-not-identifier"),
    pytest.param(replace(CONV, infer=None), "op `conv`: `infer` is not a function", id="infer-missing"),
    pytest.param(replace(CONV, lower="Conv"), "op `conv`: `lower` is not a function", id="lower-not-a-function"),
    pytest.param(replace(CONV, draw=None), "op `conv`: needs a Drawing", id="no-drawing"),
    pytest.param(replace(CONV, draw=Drawing("conv", "conv")), "op `conv`: needs a Drawing with a label function",
                 id="label-not-a-function"),
    pytest.param(replace(CONV, draw=replace(CONV.draw, mark="C")), "only functions .* are drawn as marks",
                 id="mark-on-a-box"),
    pytest.param(replace(CONV, draw=replace(CONV.draw, shown=True)), "only a mark is shown under its layer",
                 id="shown-without-a-mark"),
    pytest.param(replace(CONV, passthrough=True), "a pass-through op owns no tensors", id="passthrough-with-params"),
]


@pytest.mark.parametrize("bad,message", BROKEN_OPS)
def test_build_registry_refuses_an_incomplete_op(bad, message: str):
    with pytest.raises(RegistryError, match=message):
        build_registry(ops_with(bad), merge.DEFINITIONS)


def test_a_per_channel_passthrough_is_refused():
    identity = OPS["identity"]
    with pytest.raises(RegistryError, match="op `identity`: a pass-through op owns no tensors and is not stacked"):
        build_registry(ops_with(replace(identity, per_channel=True), identity), merge.DEFINITIONS)


def test_an_op_defined_twice_is_refused():
    with pytest.raises(RegistryError, match="op `relu` is defined twice"):
        build_registry([*ALL_OPS, replace(RELU, doc="another relu")], merge.DEFINITIONS)


def test_a_merge_defined_twice_or_named_like_an_op_is_refused():
    add = MERGES["add"]
    with pytest.raises(RegistryError, match="merge `add` is defined twice"):
        build_registry(ALL_OPS, [*merge.DEFINITIONS, add])
    with pytest.raises(RegistryError, match="merge `relu` is defined twice, or has an op's name"):
        build_registry(ALL_OPS, [*merge.DEFINITIONS, replace(add, name="relu")], [*MERGE_KEYWORDS, "relu"])


@pytest.mark.parametrize("changes,message", [
    ({"doc": ""}, "needs an identifier name, a doc line and a legend entry"),
    ({"legend": ""}, "needs an identifier name, a doc line and a legend entry"),
    ({"infer": None}, "`infer` is not a function"),
    ({"lower": None}, "`lower` is not a function"),
], ids=["no-doc", "no-legend", "no-infer", "no-lower"])
def test_build_registry_refuses_an_incomplete_merge(changes: dict, message: str):
    merges = [replace(m, **changes) if m.name == "concat" else m for m in merge.DEFINITIONS]
    with pytest.raises(RegistryError, match=f"merge `concat`: {message}"):
        build_registry(ALL_OPS, merges)


def test_the_merges_must_be_exactly_the_schemas_merge_keywords():
    with pytest.raises(RegistryError, match=r"the document schema's merges \['concat'\] are not the registry's "
                                            r"\['add', 'concat', 'mul'\]: add the merge to dsl/schema.py too"):
        build_registry(ALL_OPS, merge.DEFINITIONS, ("concat",))
    with pytest.raises(RegistryError, match="not the registry's"):
        build_registry(ALL_OPS, merge.DEFINITIONS, (*MERGE_KEYWORDS, "stack"))
    with pytest.raises(RegistryError, match=r"the document schema's merges \['add', 'concat', 'mul'\] are not the "
                                            r"registry's \['add', 'mul'\]"):
        build_registry(ALL_OPS, [m for m in merge.DEFINITIONS if m.name != "concat"])
