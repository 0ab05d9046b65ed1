"""The words a network file reserves, and what a name is: plain values shared by the schema
(dsl/schema.py), the quick structural check (dsl/conforms.py), the document builder and the stages after
it, kept apart from the schema so that reading them imports no pydantic."""
from __future__ import annotations

from typing import Any, Literal

IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
MergeOp = Literal["concat", "add", "mul"]
MERGES: tuple[MergeOp, ...] = ("concat", "add", "mul")
RESERVED = (*MERGES, "expect", "aux", "if")  # the keys that make a mapping a layer of their kind
LABELLED_KEYS = ["label", "layers"]  # a labelled block's: `{label: NAME, layers: LAYER}`


def is_labelled(value: Any) -> bool:
    """Whether a block's value is a labelled block (a mapping with `label` and more) rather than a layer."""
    return isinstance(value, dict) and "label" in value and len(value) > 1


def labelled(value: Any) -> tuple[str | None, Any]:
    """A block's value as (its label or None, its layer)."""
    return (value["label"], value["layers"]) if is_labelled(value) else (None, value)
