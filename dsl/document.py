"""A network file -> a validated `Document`: typed layer nodes with every expression parsed.

This is the whole `dsl` stage: read the YAML (dsl/source.py), validate its structure (dsl/schema.py),
parse the inline expressions (dsl/expr.py). Errors of all three kinds are located at `file:line:col`;
schema and expression errors are collected so that one run reports all of them.
"""
from __future__ import annotations

from dataclasses import field
from pathlib import Path
from typing import Union

from . import expr, family, preprocessing
from ..errors import CnncError, Location, MultipleErrors
from ..record import Record, record
from .conforms import conforms
from .errors import ExprError, SchemaError
from .family import Selection
from .keys import MERGES, MergeOp, labelled
from .schema_errors import validate
from .source import NodePath, Source, loads, read


# ---- the typed document -------------------------------------------------------------------------
@record
class CallNode(Record):
    """One call, e.g. `cbr(64, 3x3) x 2`; `text` is the source string."""

    item: expr.Item
    text: str
    loc: Location


@record
class SeqNode(Record):
    items: tuple[Layer, ...]
    loc: Location


@record
class Branch(Record):
    name: str | None  # None for list branches: they are named branch1, branch2, ...
    node: Layer


@record
class MergeNode(Record):
    op: MergeOp
    branches: tuple[Branch, ...]
    loc: Location


@record
class ExpectNode(Record):
    shape: tuple[int | expr.Node, ...]  # sizes, or expressions evaluated where the network is built
    loc: Location
    size_locs: tuple[Location, ...] = ()


@record
class AuxNode(Record):
    node: Layer
    loc: Location


@record
class IfNode(Record):
    """`if: COND`, `then: LAYER`, `else: LAYER` (None: nothing); `condition` is None after a parse error."""

    condition: expr.Node | None
    then: Layer
    otherwise: Layer | None
    loc: Location  # of the condition


@record
class NamedNode(Record):
    name: str
    node: Layer
    loc: Location


Layer = Union[CallNode, SeqNode, MergeNode, ExpectNode, AuxNode, IfNode, NamedNode]


@record
class BlockDef(Record):
    signature: expr.Signature
    body: Layer
    loc: Location
    label: str | None = None  # its display name in pictures (`Inception-ResNet-A`)


@record
class Setting(Record):
    """One per-file default: its value and where it was written."""

    value: expr.Value
    loc: Location


@record
class Document(Record):
    """A validated network, built for one member of its family: `name` is the variant's name when one
    was chosen (`family` is the file's `network:`), `parameters` the values chosen for the file's
    parameters; constants, defaults and `input` are evaluated with them."""

    name: str
    input: tuple[int, ...]
    description: str | None
    defaults: dict[str, dict[str, Setting]]
    constants: dict[str, Setting]
    blocks: dict[str, BlockDef]
    layers: SeqNode
    source: Source = field(repr=False)
    family: str = ""
    variant: str | None = None
    variants: tuple[str, ...] = ()
    parameters: dict[str, expr.Value] = field(default_factory=dict)
    preprocessing: dict[str, object] | None = None  # resize, crop, interpolation, mean, std (evaluated)


# ---- loading ------------------------------------------------------------------------------------
def load(path: str | Path, display: str | None = None, selection: Selection | None = None) -> Document:
    """Read and validate a network file, for the family member `selection` (default: the current one,
    dsl/family.py)."""
    return build(read(path, display), selection)


def load_text(text: str, name: str = "<string>", selection: Selection | None = None) -> Document:
    """Validate network text (for tests and the Python API)."""
    return build(loads(text, name), selection)


def build(src: Source, selection: Selection | None = None) -> Document:
    if not isinstance(src.data, dict):
        kind = "list" if isinstance(src.data, list) else type(src.data).__name__
        raise SchemaError(f"a network file is a mapping with `network`, `input` and `layers`; this one "
                          f"is a {kind}", src.loc(()))
    if not conforms(src.data):  # a file certainly valid needs no pydantic (dsl/conforms.py); others do
        validate(src)
    builder = _Builder(src)
    variant, parameters = family.choose(src.data, selection or family.current(), builder.strict_value, src.loc)
    constants: dict[str, Setting] = {}
    for key, value in src.data.get("constants", {}).items():
        if key in parameters:
            raise SchemaError(f"`{key}` is both a parameter and a constant", src.loc(("constants", key, "<key>")))
        family.check_name(key, src.loc(("constants", key, "<key>")))
        builder.env = {**parameters, **{k: c.value for k, c in constants.items()}}
        constants[key] = builder.constant(value, ("constants", key))
    builder.env = {**parameters, **{k: c.value for k, c in constants.items()}}
    doc = Document(
        name=variant or src.data["network"],
        input=builder.shape(src.data["input"]),
        description=src.data.get("description"),
        defaults={op: {key: builder.setting(value, ("defaults", op, key)) for key, value in attrs.items()}
                  for op, attrs in src.data.get("defaults", {}).items()},
        constants=constants,
        blocks=builder.blocks(src.data.get("blocks", {})),
        layers=builder.sequence(src.data["layers"], ("layers",)),
        source=src,
        family=src.data["network"],
        variant=variant,
        variants=tuple(src.data.get("variants", {})),
        parameters=parameters,
        preprocessing=builder.preprocessing(src.data.get("preprocessing")),
    )
    preprocessing.check(doc)
    if builder.errors:
        raise builder.errors[0] if len(builder.errors) == 1 else MultipleErrors(builder.errors)
    return doc


class _Builder:
    """Walks data that the schema accepted, parsing expressions and collecting their errors."""

    def __init__(self, src: Source):
        self.src = src
        self.errors: list[CnncError] = []
        self.env: dict[str, expr.Value] = {}  # the names settings and constants may use

    def strict_value(self, value, path: NodePath, env: dict[str, expr.Value]) -> expr.Value:
        """A parameter's value (a YAML value, expression strings evaluated in `env`); raises at once,
        since everything after depends on it."""
        if isinstance(value, list):
            return tuple(self.strict_value(v, path + (i,), env) for i, v in enumerate(value))
        if not isinstance(value, str):
            return value
        loc = self.src.loc(path)
        return expr.evaluate(expr.parse(value, "expr", loc), env, loc)

    def preprocessing(self, data: dict | None) -> dict[str, object] | None:
        return None if data is None else preprocessing.evaluate(data, self.shape, self.env, self.src)

    def shape(self, dims: list, where: NodePath = ("input",), keys: tuple | None = None) -> tuple[int, ...]:
        """`input:`, its expression sizes evaluated: positive integers."""
        out = []
        for i, value in enumerate(dims):
            if isinstance(value, str):
                loc = self.src.loc(where + ((keys[i] if keys else i),))
                value = expr.evaluate(expr.parse(value, "expr", loc), self.env, loc)
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    what = "an input size" if keys is None else f"`{keys[i]}`"
                    raise SchemaError(f"{what} must be a positive integer, got {expr.describe(value)}"
                                      f"{expr.ROUNDING_HINT if isinstance(value, float) else ''}", loc)
            out.append(value)
        if keys is None and len(out) == 2:  # the schema allows 1 to 3 axes; no op takes two
            raise SchemaError(f"`input: {list(out)}` has 2 axes; write [channels, height, width] for an image "
                              f"(e.g. [1, {out[0]}, {out[1]}]) or [features] for a vector: the batch axis is "
                              f"implicit", self.src.loc(where))
        return tuple(out)

    def parse(self, text: str, start: str, path: NodePath) -> expr.Node | None:
        try:
            return expr.parse(text, start, self.src.loc(path))
        except ExprError as e:
            self.errors.append(e)
            return None

    def setting(self, value, path: NodePath) -> Setting:
        loc = self.src.loc(path)
        if isinstance(value, str):
            node = self.parse(value, "expr", path)
            try:
                value = expr.evaluate(node, self.env, loc) if node is not None else value
            except ExprError as e:
                self.errors.append(e)
        return Setting(value, loc)

    def constant(self, value, path: NodePath) -> Setting:
        """A YAML value as an expression value: lists become tuples, strings are parsed."""
        if isinstance(value, list):
            items = [self.constant(v, path + (i,)).value for i, v in enumerate(value)]
            return Setting(tuple(items), self.src.loc(path))
        return self.setting(value, path)

    def blocks(self, data: dict) -> dict[str, BlockDef]:
        out: dict[str, BlockDef] = {}
        for key in data:
            block = self.block(key, ("blocks", key))
            name = block.signature.name
            if name in out:
                self.errors.append(SchemaError(f"block `{name}` is defined twice (first at {out[name].loc})",
                                               block.loc))
            out.setdefault(name, block)
        return out

    def block(self, key: str, path: NodePath) -> BlockDef:
        loc = self.src.loc(path + ("<key>",))
        sig = self.parse(key, "signature", path + ("<key>",))
        label, value = labelled(self.src.data["blocks"][key])  # `{label: NAME, layers: LAYER}`
        body = self.node(value, path if label is None else path + ("layers",))
        if not isinstance(sig, expr.Signature):  # None: the parse error is collected already
            return BlockDef(expr.Signature(0, key, ()), body, loc, label)
        seen: set[str] = set()
        for param in sig.params:
            if param.name in family.PROVIDED_NAMES:
                self.errors.append(SchemaError(f"`{param.name}` is provided by cnnc (the block's input shape, or a "
                                               f"repeat's index); name the parameter differently",
                                               loc.shifted(param.col)))
            if param.name in seen:
                self.errors.append(SchemaError(f"block `{sig.name}` declares parameter `{param.name}` twice",
                                               loc.shifted(param.col)))
            seen.add(param.name)
        return BlockDef(sig, body, loc, label)

    def sequence(self, items: list, path: NodePath) -> SeqNode:
        return SeqNode(tuple(self.node(v, path + (i,)) for i, v in enumerate(items)), self.src.loc(path))

    def node(self, value, path: NodePath) -> Layer:
        loc = self.src.loc(path)
        if isinstance(value, str):
            item = self.parse(value, "item", path)
            return CallNode(item if isinstance(item, expr.Item) else _NOTHING, value, loc)
        if isinstance(value, list):
            return self.sequence(value, path)
        for op in MERGES:
            if op in value:
                branches = value[op]
                if isinstance(branches, dict):
                    items = [Branch(k, self.node(v, path + (op, k))) for k, v in branches.items()]
                else:
                    items = [Branch(None, self.node(v, path + (op, i))) for i, v in enumerate(branches)]
                return MergeNode(op, tuple(items), loc)
        if "if" in value:
            cond_loc = self.src.loc(path + ("if",))
            cond = value["if"]
            node = expr.Const(0, cond) if isinstance(cond, bool) else self.parse(cond, "expr", path + ("if",))
            otherwise = value.get("else")
            return IfNode(node, self.node(value["then"], path + ("then",)),
                          None if otherwise is None else self.node(otherwise, path + ("else",)), cond_loc)
        if "expect" in value:
            sizes = [v if isinstance(v, int) else self.parse(v, "expr", path + ("expect", i))
                     for i, v in enumerate(value["expect"])]
            return ExpectNode(tuple(expr.Const(0, 0) if v is None else v for v in sizes), loc,
                              tuple(self.src.loc(path + ("expect", i)) for i in range(len(sizes))))
        if "aux" in value:
            return AuxNode(self.node(value["aux"], path + ("aux",)), loc)
        (name, inner), = value.items()
        return NamedNode(name, self.node(inner, path + (name,)), self.src.loc(path + (name, "<key>")))


_NOTHING = expr.Item(0, expr.Call(0, "identity", (), (), False), None)  # stands in after a parse error


def called_blocks(doc: Document) -> set[str]:
    """The blocks that the layers call, directly or through other blocks, on either side of every `if:`
    (a block that only a variant's choice leaves out is used; one called only by unused blocks is not)."""
    found: set[str] = set()
    todo: list[Layer] = [doc.layers]
    while todo:
        node = todo.pop()
        if isinstance(node, CallNode):
            name = node.item.call.name
            if name in doc.blocks and name not in found:
                found.add(name)
                todo.append(doc.blocks[name].body)
        elif isinstance(node, SeqNode):
            todo.extend(node.items)
        elif isinstance(node, MergeNode):
            todo.extend(b.node for b in node.branches)
        elif isinstance(node, (AuxNode, NamedNode)):
            todo.append(node.node)
        elif isinstance(node, IfNode):
            todo.extend(n for n in (node.then, node.otherwise) if n is not None)
    return found

