"""The op registry: every op and every merge of the language, each one definition (compiler/ops/base.py
says what a definition holds), gathered from an explicit list of family modules.

Every other table in cnnc is derived from `OPS` and `MERGES`: the resolver's vocabulary, shape
inference, lowering, the tower and BN-folding passes, the pictures, `cnnc ops` and the op reference in
docs/language.md. To add an op, add its `OpDef` to a family module's `DEFINITIONS` (CONTRIBUTING.md).
"""
from __future__ import annotations

from typing import Iterable

from ...dsl.keys import MERGES as MERGE_KEYWORDS
from . import activation, conv, dense, lecun, merge, norm, pool
from .base import (FUNCTION_KINDS, KINDS, Arg, Attrs, Drawing, Emitter, MergeDef, OpDef, OpError, no_params,
                   window)

FAMILIES = (conv, pool, activation, norm, dense, lecun)


class RegistryError(Exception):
    """A definition is incomplete or inconsistent: a bug in cnnc, found when the registry is built."""


def _check_op(op: OpDef) -> None:
    where = f"op `{op.name}`"
    if not op.name.isidentifier() or not op.doc:
        raise RegistryError(f"{where}: needs an identifier name and a doc line")
    for field in ("infer", "params", "macs", "lower", "prepare"):
        if not callable(getattr(op, field)):
            raise RegistryError(f"{where}: `{field}` is not a function")
    if not isinstance(op.draw, Drawing) or not callable(op.draw.label):
        raise RegistryError(f"{where}: needs a Drawing with a label function")
    if op.draw.mark is not None and op.draw.kind not in FUNCTION_KINDS:
        raise RegistryError(f"{where}: only functions (norm, activation, ...) are drawn as marks")
    if op.draw.shown and op.draw.mark is None:
        raise RegistryError(f"{where}: only a mark is shown under its layer; give the Drawing a mark")
    names = [a.name for a in op.args]
    if len(set(names)) != len(names):
        raise RegistryError(f"{where}: an argument is named twice: {names}")
    for arg in op.args:
        if arg.kind not in KINDS or not arg.doc:
            raise RegistryError(f"{where}: argument `{arg.name}` needs a kind from {sorted(KINDS)} and a doc line")
    if op.draw.wire and not op.passthrough:
        raise RegistryError(f"{where}: only a pass-through op can be drawn as a bare line")
    if op.passthrough and (op.params is not no_params or op.per_channel):
        raise RegistryError(f"{where}: a pass-through op owns no tensors and is not stacked")


def _check_merge(m: MergeDef) -> None:
    if not m.name.isidentifier() or not m.doc or not m.legend:
        raise RegistryError(f"merge `{m.name}`: needs an identifier name, a doc line and a legend entry")
    for field in ("infer", "lower"):
        if not callable(getattr(m, field)):
            raise RegistryError(f"merge `{m.name}`: `{field}` is not a function")


def build_registry(ops: Iterable[OpDef], merges: Iterable[MergeDef],
                   keywords: Iterable[str] = MERGE_KEYWORDS) -> tuple[dict[str, OpDef], dict[str, MergeDef]]:
    """The registry of `ops` and `merges`, refusing incomplete or clashing definitions; `keywords` are
    the merge keys the document schema accepts (dsl/schema.py), which must be exactly the merges."""
    op_table: dict[str, OpDef] = {}
    merge_table: dict[str, MergeDef] = {}
    for op in ops:
        _check_op(op)
        if op.name in op_table:
            raise RegistryError(f"op `{op.name}` is defined twice")
        op_table[op.name] = op
    for m in merges:
        _check_merge(m)
        if m.name in merge_table or m.name in op_table:
            raise RegistryError(f"merge `{m.name}` is defined twice, or has an op's name")
        merge_table[m.name] = m
    if set(keywords) != set(merge_table):
        raise RegistryError(f"the document schema's merges {sorted(keywords)} are not the registry's "
                            f"{sorted(merge_table)}: add the merge to dsl/schema.py too")
    return op_table, merge_table


OPS, MERGES = build_registry((op for family in FAMILIES for op in family.DEFINITIONS), merge.DEFINITIONS)

# Derived views, for the passes that ask one question of every layer (merges are neither).
PASSTHROUGH = frozenset(name for name, op in OPS.items() if op.passthrough)
PER_CHANNEL = frozenset(name for name, op in OPS.items() if op.per_channel)

__all__ = ["OPS", "MERGES", "PASSTHROUGH", "PER_CHANNEL", "KINDS", "Arg", "Attrs", "Drawing", "Emitter", "MergeDef",
           "OpDef", "OpError",
           "RegistryError", "build_registry", "window"]
