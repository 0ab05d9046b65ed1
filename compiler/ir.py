"""The intermediate representation: a flat, topologically ordered list of layers with shapes.

Produced by compiler/graph.py from the resolved tree, consumed by lowering and by `summary`.
Shapes never include the batch axis. Everything here is frozen; passes return new values.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import field, replace
from typing import Any, Iterable, Literal

from ..errors import Location
from ..record import Record, record

Shape = tuple[int, ...]
Init = Literal["he_normal", "zeros", "ones", "fill", "sign"]  # fill: every element `Param.fill`; sign: random +-1


@record
class Param(Record):
    """One named tensor of the network; `name` is `layer/path.weight` style.

    Learned tensors are trainable; running statistics are not. A `constant` (LeNet's RBF prototypes)
    is fixed by the architecture: it is named, initialised and loadable like the others, but it is no
    parameter and is not counted. `fill` is the initial value of every element when `init` is `fill`
    (PReLU's slope 0.25, a layer scale's `init`).
    """

    name: str
    shape: Shape
    trainable: bool
    init: Init
    fan_in: int = 1
    constant: bool = False
    fill: float = 0.0

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@record
class Layer(Record):
    """One op applied to named input tensors, producing the tensor `output` of shape `shape`."""

    name: str
    op: str
    attrs: dict[str, Any]
    inputs: tuple[str, ...]
    output: str
    shape: Shape
    params: tuple[Param, ...] = ()
    macs: int = 0
    loc: Location | None = field(default=None, compare=False)
    head: str | None = field(default=None, compare=False)  # the train-only head it belongs to, if any
    # the block calls it was expanded from, outermost first: (call's path, call as written, where)
    calls: tuple[tuple[str, str, Location], ...] = field(default=(), compare=False)

    @property
    def param_count(self) -> int:
        return sum(p.size for p in self.params if not p.constant)


@record
class Graph(Record):
    name: str
    input_shape: Shape
    layers: tuple[Layer, ...]
    output: str
    output_shape: Shape
    aux: tuple[tuple[str, str, Shape], ...] = ()  # train-only heads kept: (output name, tensor, shape)
    aux_heads: tuple[str, ...] = ()  # every train-only head of the network, kept or not
    warnings: tuple[Any, ...] = field(default=(), compare=False)  # resolve.CompileWarning: legal but suspicious
    warning_heads: tuple[str | None, ...] = field(default=(), compare=False)  # the head of each warning, if any
    description: str = field(default="", compare=False)  # the document's `description:`

    def inference(self) -> Graph:
        """This graph without its train-only heads: what runs at inference (the default model)."""
        if not self.aux:
            return self
        kept = [i for i, head in enumerate(self.warning_heads) if head is None]
        return replace(self, layers=tuple(layer for layer in self.layers if layer.head is None), aux=(),
                       warnings=tuple(self.warnings[i] for i in kept), warning_heads=(None,) * len(kept))

    def uses(self, layers: Iterable[Layer] | None = None) -> Counter:
        """How often each tensor is read, by `layers` (default: all) and as an output of the graph."""
        uses = Counter(i for layer in (self.layers if layers is None else layers) for i in layer.inputs)
        uses.update([self.output, *(tensor for _, tensor, _ in self.aux)])
        return uses

    @property
    def params(self) -> list[Param]:
        return [p for layer in self.layers for p in layer.params]

    def counts(self) -> dict[str, int]:
        """Parameter counts as Keras reports them: total, trainable, non-trainable."""
        trainable = sum(p.size for p in self.params if p.trainable and not p.constant)
        frozen = sum(p.size for p in self.params if not p.trainable and not p.constant)
        return {"total": trainable + frozen, "trainable": trainable, "non_trainable": frozen}

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)
