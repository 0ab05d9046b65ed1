"""The structure of a cnnc document, as pydantic models (and, from them, a JSON Schema).

A *layer node* is one of: a call string, a list (sequence), `concat:` or `add:` with branches,
`expect:` with a shape, `aux:` with a train-only head, or a one-key mapping that names the node under
it. The union is discriminated by a function of the raw value, so a mistake is reported against the one
kind it was meant to be. `json_schema()` turns the same models into the JSON Schema that editors use for
completion and hover help (`cnnc schema`, shipped as `dsl/cnnc.schema.json`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from typing_extensions import TypeAliasType

from pydantic import (BaseModel, ConfigDict, Discriminator, Field, RootModel, StringConstraints, Tag,
                      field_validator)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue

from .keys import IDENTIFIER_PATTERN, RESERVED, is_labelled  # the reserved words: keys.py needs no pydantic

Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
Scalar = Union[bool, int, float, str]
TAGS = ("call", "sequence", *RESERVED, "named", "list", "mapping", "block_layer", "labelled_block")  # union tags
SCHEMA_FILE = "cnnc.schema.json"  # beside this module; `cnnc schema` prints the same text


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


def _block_kind(value: Any) -> str:
    """A block's value: a layer, or (a mapping with `label` and more) a labelled block."""
    if is_labelled(value) or isinstance(value, LabelledBlock):
        return "labelled_block"
    return "block_layer"


def _branches_kind(value: Any) -> str | None:
    return "list" if isinstance(value, list) else "mapping" if isinstance(value, dict) else None


def _with_split_pieces(schema: dict[str, Any]) -> None:
    """JSON Schema only: let a list of layers hold numbers and booleans too.

    YAML splits a flow list at every comma, also inside a call's parentheses: a plain YAML reader (an
    editor) sees `[cbr(f, 3x3, 2, 1)]` as the strings `cbr(f` and `3x3`, the number 2 and the string
    `1)`. cnnc joins the pieces back before validating (dsl/source.py); an editor cannot, so its schema
    accepts such pieces rather than flag a valid file.
    """
    schema["items"] = {"anyOf": [schema["items"], {
        "type": ["number", "boolean"],
        "description": "A piece of a call that YAML split at a comma inside a flow list; cnnc joins the "
                       "pieces back."}]}


Branches = Annotated[
    Union[Annotated[list["LayerNode"], Tag("list"),
                    Field(title="Branch list", json_schema_extra=_with_split_pieces,
                          description="Unnamed branches, named `branch1`, `branch2`, ... in order; "
                                      "`call x N` here means N parallel copies of the call.")],
          Annotated[dict[Identifier, "LayerNode"], Tag("mapping"),
                    Field(title="Named branches", description="Branch name -> layer; the names become part "
                          "of the layer names (`mixed0/branch5x5/...`). `identity` passes the input "
                          "through.")]],
    Discriminator(_branches_kind, custom_error_type="branches",
                  custom_error_message="branches are a list of layers, or a mapping from branch name to "
                                       "layer"),
]


class Concat(_Strict):
    """Parallel branches, each fed the same input, joined on the channel axis (an Inception module)."""

    concat: Branches = Field(description="The branches: a list, or a mapping from branch name to branch. "
                                         "`call x N` in the list means N parallel copies.")


class Add(_Strict):
    """Parallel branches, each fed the same input, summed element-wise (a residual connection when one
    branch is `identity`)."""

    add: Branches = Field(description="The branches to sum: a list, or a mapping from name to branch "
                                      "(e.g. `shortcut: identity`, `residual: [...]`).")


class Mul(_Strict):
    """Parallel branches, each fed the same input, multiplied element-wise with broadcasting (a
    squeeze-excitation gate: `[C, H, W]` times `[C, 1, 1]`)."""

    mul: Branches = Field(description="The branches to multiply: a list, or a mapping from name to branch "
                                      "(e.g. `features: identity`, `gate: [globalavgpool(keepdims=true), ...]`).")


class Expect(_Strict):
    """An assertion on the shape at this point of a sequence, checked when the network is compiled."""

    expect: list[Union[int, str]] = Field(description="The expected shape without the batch axis, e.g. [768, 17, 17]; "
                                                     "a size may be an expression (`[dims[3], 7, 7]`).")


class Aux(_Strict):
    """A train-only head: a branch that taps the tensor at this point and is left out of the compiled
    model unless auxiliary outputs are asked for. The main path continues unchanged."""

    aux: LayerNode = Field(description="The head's layers, fed the tensor at this point. Name it "
                                      "(`aux1: {aux: [...]}`): the name becomes the extra output's name.")


class If(_Strict):
    """A layer chosen by a condition when the network is built: `then` where it is true, `else` (or
    nothing) where it is false. MobileNet-v2's inverted residual adds its input only when
    `stride == 1 and in_channels == filters`."""

    condition: Union[bool, str] = Field(alias="if", description="A boolean expression: comparisons "
                                        "(`== != < <= > >=`) joined by `and`, `or`, `not`, over parameters, "
                                        "constants and the block's input shape (`in_channels`, ...).")
    then: LayerNode = Field(description="The layer where the condition is true.")
    otherwise: LayerNode | None = Field(None, alias="else", description="The layer where it is false "
                                        "(default: nothing, the input passes through).")


class Named(RootModel[dict[Identifier, "LayerNode"]]):
    """A one-key mapping `name: layer` that names the layer under it (`mixed5: inception_b(160)`): the
    name becomes its node's name and the prefix of its parameters' names."""

    # The discriminator sends a mapping here only when it has none of the reserved keys; say so in the
    # JSON Schema too, so that exactly one member of the layer union matches any document.
    model_config = ConfigDict(json_schema_extra={
        "minProperties": 1, "maxProperties": 1,
        "propertyNames": {"pattern": IDENTIFIER_PATTERN, "not": {"enum": list(RESERVED)}}})

    @field_validator("root")
    @classmethod
    def _one_key(cls, value: dict) -> dict:
        if len(value) != 1:
            raise ValueError(f"a named layer is a mapping with exactly one key (its name); got "
                             f"{len(value)} keys: {', '.join(value)}")
        return value


# mypy cannot yet read a self-referential `TypeAliasType` (python/mypy#18252); it checks against the
# same unions written as plain recursive aliases. Pydantic gets the `TypeAliasType`s, which carry the
# tags and descriptions and become the named `$defs` of the JSON Schema.
if TYPE_CHECKING:
    from typing import TypeAlias

    LayerNode: TypeAlias = Union[str, list["LayerNode"], Concat, Add, Mul, Expect, Aux, If, Named]
    ConstantValue: TypeAlias = Union[Scalar, list["ConstantValue"]]
else:
    LayerNode = TypeAliasType("LayerNode", Annotated[
        Union[
            Annotated[str, Tag("call"),
                      Field(title="Call", description="A call of an op or a block, with positional then "
                            "keyword arguments: `conv(64, 3x3, stride=2, padding=same)`, `relu`, "
                            "`cbr(32, 3x3)`; `call x N` repeats it N times in a row.",
                            examples=["conv(64, 3x3, stride=2)", "batchnorm", "relu", "inception_a(64) x 3"])],
            Annotated[list["LayerNode"], Tag("sequence"),
                      Field(title="Sequence", json_schema_extra=_with_split_pieces,
                            description="Layers applied one after another; nested lists are spliced into the "
                                        "enclosing one.")],
            Annotated[Concat, Tag("concat")],
            Annotated[Add, Tag("add")],
            Annotated[Mul, Tag("mul")],
            Annotated[Expect, Tag("expect")],
            Annotated[Aux, Tag("aux")],
            Annotated[If, Tag("if")],
            Annotated[Named, Tag("named")],
        ],
        Discriminator(_node_kind, custom_error_type="layer_node",
                      custom_error_message="a layer is a call such as `conv(64, 3x3)`, a list of layers, "
                                           "`concat:`/`add:`/`mul:` with branches, `expect: [C, H, W]`, "
                                           "`if:`/`then:`/`else:`, or `name: layer`"),
        Field(description="A layer: a call such as `conv(64, 3x3)`, a list of layers, `concat:`, `add:` or "
                          "`mul:` with branches, `expect: [C, H, W]`, `aux: head`, `if: COND` with `then:` "
                          "and `else:`, or `name: layer`."),
    ])

    ConstantValue = TypeAliasType("ConstantValue", Annotated[
        Union[Scalar, list["ConstantValue"]],
        Field(description="A number, a boolean, an expression string such as `2*f` or `3x3`, or a list of "
                          "them, nested as deep as needed."),
    ])


class LabelledBlock(_Strict):
    """A block with the name its paper gives it, for pictures: `block35(s): {label: Inception-ResNet-A,
    layers: [...]}`. The block's own name still names its layers (`block35_1/...`)."""

    label: Annotated[str, StringConstraints(min_length=1, max_length=60)] = Field(
        description="The block's display name, as its paper writes it (`Inception-ResNet-A`, `Reduction-B`): "
                    "the title of its box in `cnnc draw`, with the call (`block35(0.17)`) under it.")
    layers: LayerNode = Field(description="The block's layer, as a block without a label is written.")


BlockValue = Annotated[
    Union[Annotated[LayerNode, Tag("block_layer")], Annotated[LabelledBlock, Tag("labelled_block")]],
    Discriminator(_block_kind),
    Field(description="A block's layer, or `{label: NAME, layers: LAYER}` to give it a display name."),
]


class Preprocessing(_Strict):
    """How the reference prepares an image for the network (torchvision's `weights.transforms()`):
    resize the shorter side to `resize`, centre-crop `crop` x `crop`, scale to [0, 1], subtract `mean`
    and divide by `std` per channel. Recorded in the compiled model's metadata (`cnnc.preprocessing`)."""

    resize: Union[Annotated[int, Field(gt=0)], str] = Field(description="The shorter side after resizing, in "
                                                                       "pixels; may be an expression.")
    crop: Union[Annotated[int, Field(gt=0)], str] = Field(description="The centre crop's side, in pixels (the "
                                                                     "input's height and width); may be an "
                                                                     "expression.")
    interpolation: str = Field("bilinear", description="The resize's interpolation: `bilinear`, `bicubic` or "
                                                       "`nearest` (or an expression giving one).")
    mean: Union[list[Union[float, int, str]], str] = Field(description="Per-channel mean subtracted after "
                                                           "scaling to [0, 1]; may be an expression.")
    std: Union[list[Union[float, int, str]], str] = Field(description="Per-channel standard deviation divided "
                                                          "by; may be an expression.")


class Network(_Strict):
    """A cnnc network file: a convolutional network, from its input shape to its output, written as
    reusable blocks and a list of layers. Reference: docs/language.md."""

    network: Identifier = Field(description="The network's name (used for the ONNX graph name).")
    input: list[Union[Annotated[int, Field(gt=0)], str]] = Field(
        min_length=1, max_length=3,
        description="The input shape without the batch axis: [channels, height, width]; a size may be an "
                    "expression over the parameters (`[3, resolution, resolution]`).")
    description: str | None = Field(None, description="One line saying what this network is.")
    defaults: dict[Identifier, dict[Identifier, Scalar]] = Field(
        default_factory=dict,
        description="Per-op attribute defaults for this file, e.g. `conv: {bias: false}`; a call's own "
                    "arguments override them.")
    parameters: dict[Identifier, ConstantValue] = Field(
        default_factory=dict,
        description="A family's parameters with their values, usable in every expression of the file and "
                    "set by a variant or on the command line (`--set width=1.1`), e.g. `{width: 1.0, "
                    "depth: 1.0, resolution: 224}`.")
    variants: dict[Identifier, dict[Identifier, ConstantValue]] = Field(
        default_factory=dict,
        description="Named members of the family, each setting some parameters, e.g. `efficientnet_b3: "
                    "{width: 1.2, depth: 1.4, resolution: 300}`; each is a network of its own name "
                    "(`cnnc compile efficientnet_b3`).")
    constants: dict[Identifier, ConstantValue] = Field(
        default_factory=dict,
        description="Named values usable in every expression of the file, e.g. LeNet's connection "
                    "table `c3: [[0, 1, 2], [1, 2, 3], ...]`.")
    preprocessing: Preprocessing | None = Field(None, description="How the reference prepares an image for "
                                                "this network: resize, crop, interpolation, mean, std.")
    blocks: dict[str, BlockValue] = Field(
        default_factory=dict,
        description="Reusable blocks: the key is a signature `name(param, int param, param=default, ...)`, "
                    "the value the block's layer, e.g. `cbr(filters, kernel, stride=1): [conv(filters, "
                    "kernel, stride=stride), batchnorm, relu]`; `{label: NAME, layers: LAYER}` gives it the "
                    "name its paper uses in pictures.")
    layers: list[LayerNode] = Field(min_length=1, description="The network, from input to output.",
                                    json_schema_extra=_with_split_pieces)


LabelledBlock.model_rebuild()
Aux.model_rebuild()
If.model_rebuild()
Concat.model_rebuild()
Add.model_rebuild()
Mul.model_rebuild()
Named.model_rebuild()
Network.model_rebuild()


# ---- JSON Schema --------------------------------------------------------------------------------
class _EditorSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema with identifier-keyed mappings closed: pydantic writes their key pattern as
    `patternProperties`, which lets any other key through; `propertyNames` rejects it, as validation does."""

    def dict_schema(self, schema) -> JsonSchemaValue:
        out = super().dict_schema(schema)
        patterns = out.get("patternProperties")
        if patterns and len(patterns) == 1 and "additionalProperties" not in out:
            (pattern, values), = patterns.items()
            out = {key: v for key, v in out.items() if key != "patternProperties"}
            out.update(propertyNames={"pattern": pattern}, additionalProperties=values)
        return out

    def generate(self, schema, mode="validation") -> JsonSchemaValue:
        out = super().generate(schema, mode)
        return {"$schema": self.schema_dialect, "title": "cnnc network file",
                **{k: v for k, v in out.items() if k != "title"}}


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a network file, with a description on every model and field."""
    return Network.model_json_schema(schema_generator=_EditorSchema)


def json_schema_text() -> str:
    """`json_schema()` as the text of `dsl/cnnc.schema.json` (and of `cnnc schema`)."""
    import json
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
