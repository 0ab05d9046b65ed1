"""The structure of a cnnc document, as pydantic models (and, from them, a JSON Schema).

A *layer node* is one of: a call string, a list (sequence), `concat:` or `add:` with branches,
`expect:` with a shape, or a one-key mapping that names the node under it. The union is discriminated
by a function of the raw value, so a mistake is reported against the one kind it was meant to be.
"""
from __future__ import annotations

from typing import Annotated, Any, Union

from typing_extensions import TypeAliasType

from pydantic import (BaseModel, ConfigDict, Discriminator, Field, RootModel, StringConstraints, Tag,
                      field_validator)

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Scalar = Union[bool, int, float, str]
MERGES = ("concat", "add")
RESERVED = (*MERGES, "expect", "aux")
TAGS = ("call", "sequence", *RESERVED, "named", "list", "mapping")  # the union tags used below


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _node_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "call"
    if isinstance(value, list):
        return "sequence"
    if isinstance(value, dict):
        return next((key for key in RESERVED if key in value), "named")
    if isinstance(value, BaseModel):
        return value.__class__.__name__.lower()
    return None


def _branches_kind(value: Any) -> str | None:
    return "list" if isinstance(value, list) else "mapping" if isinstance(value, dict) else None


Branches = Annotated[
    Union[Annotated[list["LayerNode"], Tag("list")],
          Annotated[dict[Identifier, "LayerNode"], Tag("mapping")]],
    Discriminator(_branches_kind, custom_error_type="branches",
                  custom_error_message="branches are a list of layers, or a mapping from branch name to "
                                       "layer"),
]


class Concat(_Strict):
    """Parallel branches, each fed the same input, joined on the channel axis."""

    concat: Branches = Field(description="The branches: a list, or a mapping from branch name to branch. "
                                         "`call x N` in the list means N parallel copies.")


class Add(_Strict):
    """Parallel branches, each fed the same input, summed element-wise (a residual connection when one "
    branch is `identity`)."""

    add: Branches = Field(description="The branches to sum: a list, or a mapping from name to branch "
                                      "(e.g. `shortcut: identity`, `residual: [...]`).")


class Expect(_Strict):
    """An assertion on the shape at this point of a sequence, checked when the network is compiled."""

    expect: list[int] = Field(description="The expected shape without the batch axis, e.g. [768, 17, 17].")


class Aux(_Strict):
    """A train-only head: a branch that taps the tensor at this point and is left out of the compiled
    model unless auxiliary outputs are asked for. The main path continues unchanged."""

    aux: LayerNode = Field(description="The head's layers, fed the tensor at this point. Name it "
                                      "(`aux1: {aux: [...]}`): the name becomes the extra output's name.")


class Named(RootModel[dict[Identifier, "LayerNode"]]):
    """A one-key mapping `name: node` that gives the node under it a name."""

    @field_validator("root")
    @classmethod
    def _one_key(cls, value: dict) -> dict:
        if len(value) != 1:
            raise ValueError(f"a named layer is a mapping with exactly one key (its name); got "
                             f"{len(value)} keys: {', '.join(value)}")
        return value


LayerNode = TypeAliasType("LayerNode", Annotated[
    Union[
        Annotated[str, Tag("call")],
        Annotated[list["LayerNode"], Tag("sequence")],
        Annotated[Concat, Tag("concat")],
        Annotated[Add, Tag("add")],
        Annotated[Expect, Tag("expect")],
        Annotated[Aux, Tag("aux")],
        Annotated[Named, Tag("named")],
    ],
    Discriminator(_node_kind, custom_error_type="layer_node",
                  custom_error_message="a layer is a call such as `conv(64, 3x3)`, a list of layers, "
                                       "`concat:`/`add:` with branches, `expect: [C, H, W]`, or "
                                       "`name: layer`"),
])


ConstantValue = TypeAliasType("ConstantValue", Union[Scalar, list["ConstantValue"]])


class Network(_Strict):
    """A cnnc network file."""

    network: Identifier = Field(description="The network's name (used for the ONNX graph name).")
    input: list[Annotated[int, Field(gt=0)]] = Field(
        min_length=1, max_length=3,
        description="The input shape without the batch axis: [channels, height, width].")
    description: str | None = Field(None, description="One line saying what this network is.")
    defaults: dict[Identifier, dict[Identifier, Scalar]] = Field(
        default_factory=dict,
        description="Per-op attribute defaults for this file, e.g. `conv: {bias: false}`; a call's own "
                    "arguments override them.")
    constants: dict[Identifier, ConstantValue] = Field(
        default_factory=dict,
        description="Named values usable in every expression of the file, e.g. LeNet's connection "
                    "table `c3: [[0, 1, 2], [1, 2, 3], ...]`.")
    blocks: dict[str, LayerNode] = Field(
        default_factory=dict,
        description="Reusable blocks: `name(param, param: type = default, ...)` -> layer node.")
    layers: list[LayerNode] = Field(min_length=1, description="The network, from input to output.")


Aux.model_rebuild()
Concat.model_rebuild()
Add.model_rebuild()
Named.model_rebuild()
Network.model_rebuild()
