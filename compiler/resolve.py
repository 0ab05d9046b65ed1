"""Document -> resolved tree: every block call expanded, every repeat unrolled, every argument evaluated
and checked against its op's signature, every node given its stable hierarchical name.

Block calls stay in the tree as `RCall` nodes (block, bound parameters, call site) around what they
expand to, so pictures and tables read them instead of resolving again; shape inference looks through
them.

Naming: each item of a sequence is named after its call (`conv`, `inception_a`), its merge (`concat`,
`add`) or the name written for it (`mixed0: ...`); a name used more than once in the same sequence is
numbered `_1, _2, ...` in order. List branches are `branch1, branch2, ...`; mapping branches keep their
keys. Paths join names with `/`: `mixed5/branch7x7/cbr_2/conv`. Parameters add `.weight`, `.bias`, ...
"""
from __future__ import annotations

import functools
from typing import Iterator, Mapping

from ..dsl import expr
from ..dsl.document import (AuxNode, CallNode, Document, ExpectNode, IfNode, Layer, MergeNode, NamedNode,
                            SeqNode, Setting, called_blocks)
from ..dsl.errors import ExprError
from ..dsl.family import REPEAT_INDEX, SHAPE_NAMES
from ..errors import CnncError, Location, did_you_mean
from ..record import Record, record
from .errors import ResolveError
from .graph import check_expect, merge_output, op_output
from .ir import Shape
from .limits import current as current_limits, raise_help
from .ops import KINDS, OPS, PASSTHROUGH, Attrs, OpDef, OpError
from .tree import (CompileWarning, RAux, RCall, RExpect, RMerge, RNode, ROp, RSeq, output_name,
                   without_calls)

__all__ = ["CompileWarning", "RAux", "RCall", "RExpect", "RMerge", "RNode", "ROp", "RSeq", "resolve",
           "without_calls"]


@record
class _Scope(Record):
    env: dict[str, expr.Value]
    trace: tuple[str, ...] = ()
    stack: tuple[str, ...] = ()


def resolve(doc: Document) -> tuple[RSeq, tuple[CompileWarning, ...]]:
    """Expand `doc` into a resolved tree; raises a located `CnncError` on the first problem."""
    resolver = _Resolver(doc)
    shape = tuple(doc.input)
    tree, _ = resolver.seq(doc.layers, "", _Scope({**resolver.constants, **_shape_names(shape)}), shape)
    used = called_blocks(doc)
    unused = [CompileWarning(f"block `{name}` is defined but never used", block.loc, "W0001")
              for name, block in doc.blocks.items() if name not in used]
    return tree, tuple(unused)


@functools.lru_cache(maxsize=1024)
def _shape_names(shape: Shape) -> Mapping[str, expr.Value]:
    """`in_channels`, `in_height`, `in_width` of an input of `shape` (a flat input has only channels);
    shared, never modified."""
    return {REPEAT_INDEX: 0, **dict(zip(SHAPE_NAMES, shape if len(shape) == 3 else shape[:1]))}


@record
class _Copy(Record):
    """Copy `index` of a repeated call (`call x N`): its arguments see `repeat_index`."""

    call: CallNode
    index: int


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _once(node: CallNode) -> CallNode:
    """The call without its repeat count."""
    return CallNode(expr.Item(node.item.col, node.item.call, None), node.text, node.loc)


def _join(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name


class _Resolver:
    def __init__(self, doc: Document):
        self.doc = doc
        self.layers = 0
        self.calls = 0
        self.limits = current_limits()
        self._sites: dict[int, tuple[CallNode, dict[str, expr.Value], dict[str, Location]]] = {}
        self._bound: dict[tuple, Attrs] = {}  # shared, never modified: later stages copy before changing
        self._written: dict[int, tuple[CallNode, str]] = {}  # a call site's text and place, for traces
        self.constants = {**doc.parameters, **{key: setting.value for key, setting in doc.constants.items()}}
        for name, block in doc.blocks.items():
            if name in OPS:
                raise ResolveError(f"block `{name}` has the name of an op; choose another name", block.loc)
        for op, settings in doc.defaults.items():
            self._check_defaults(op, settings)

    def _check_defaults(self, op: str, settings: dict[str, Setting]) -> None:
        key_loc = self.doc.source.loc
        if op in self.doc.blocks:
            raise ResolveError(f"`defaults` names `{op}`, which is a block, not an op: `defaults:` sets ops' "
                               f"arguments; give a block parameter a default in its signature instead "
                               f"(`{op}(..., NAME=VALUE)` under `blocks:`)", key_loc(("defaults", op, "<key>")),
                               code="E0402")
        if op not in OPS:
            raise ResolveError(f"`defaults` names `{op}`, which is not an op{did_you_mean(op, OPS)}",
                               key_loc(("defaults", op, "<key>")), code="E0401")
        args = {a.name: a for a in OPS[op].args}
        for key, setting in settings.items():
            if key not in args:
                raise ResolveError(f"`{op}` has no argument `{key}`{did_you_mean(key, args)}; its "
                                   f"arguments are: {', '.join(args) or 'none'}",
                                   key_loc(("defaults", op, key, "<key>")))
            try:
                KINDS[args[key].kind](setting.value)
            except ValueError as e:
                raise ResolveError(f"`defaults` for `{op}`: `{key}` must be {e}", setting.loc) from None

    # -- sequences and names --
    def seq(self, node: SeqNode, path: str, scope: _Scope, shape: Shape,
            name: str | None = None) -> tuple[RSeq, Shape]:
        if not node.items:
            return RSeq((), path, name), shape
        items = list(self._expand(node, scope))
        counts: dict[str, int] = {}  # plain dicts: a Counter costs more than the rest of an empty block
        for base, _, _ in items:
            if base is not None:
                counts[base] = counts.get(base, 0) + 1
        seen: dict[str, int] = {}
        out = []
        for base, written, child in items:
            if base is None:
                item, shape = self.node(child, path, scope, shape)
            else:
                seen[base] = seen.get(base, 0) + 1
                unique = f"{base}_{seen[base]}" if counts[base] > 1 else base
                item, shape = self.node(child, _join(path, unique), scope, shape, written)
            out.append(item)
        return RSeq(tuple(out), path, name), shape

    def _expand(self, node: SeqNode, scope: _Scope) -> Iterator[tuple[str | None, str | None, Layer | _Copy]]:
        """(base name, name written, node) for each item of a sequence; repeats unrolled, nested lists
        spliced."""
        for item in node.items:
            if isinstance(item, CallNode):
                one = _once(item)
                if item.item.repeat is None:
                    yield item.item.call.name, None, item
                else:
                    yield from ((item.item.call.name, None, _Copy(one, i)) for i in range(self._repeat(item, scope)))
            elif isinstance(item, SeqNode):
                yield from self._expand(item, scope)
            elif isinstance(item, NamedNode):
                yield item.name, item.name, item.node
            elif isinstance(item, MergeNode):
                yield item.op, None, item
            elif isinstance(item, AuxNode):
                yield "aux", None, item
            elif isinstance(item, IfNode):
                chosen = self._choose(item, scope)
                if chosen is not None:  # the layer chosen stands in the sequence as if written there
                    yield from self._expand(SeqNode((chosen,), item.loc), scope)
            else:
                yield None, None, item

    def _repeat(self, node: CallNode, scope: _Scope) -> int:
        if node.item.repeat is None:
            return 1
        n = self._eval(node.item.repeat, node, scope)
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= self.limits.repeat:
            hint = expr.ROUNDING_HINT if isinstance(n, float) else ""
            raise self._error(f"a repeat count must be an integer from 0 to {self.limits.repeat:,}, got "
                              f"{expr.describe(n)}{hint}", node.loc.shifted(node.item.repeat.col), scope)
        return n

    def _choose(self, node: IfNode, scope: _Scope) -> Layer | None:
        """The layer an `if:` picks in `scope`: `then` or `else` (None when there is no `else`)."""
        if node.condition is None:
            return node.otherwise
        value = self._eval_at(node.condition, scope.env, node.loc, scope)
        if not isinstance(value, bool):
            raise self._error(f"a condition must be `true` or `false`, got {expr.describe(value)}",
                              node.loc.shifted(node.condition.col), scope)
        return node.then if value else node.otherwise

    # -- nodes --
    def node(self, node: Layer | _Copy, path: str, scope: _Scope, shape: Shape,
             name: str | None = None) -> tuple[RNode, Shape]:
        """The resolved node and its output shape, for an input of `shape`."""
        if isinstance(node, _Copy):
            call = node.call.item.call
            if call.args or call.kwargs:  # only arguments can read `repeat_index`
                scope = _Scope({**scope.env, REPEAT_INDEX: node.index}, scope.trace, scope.stack)
            return self.call(node.call, path, scope, shape, name)
        if isinstance(node, CallNode):
            if node.item.repeat is not None:
                return self.seq(SeqNode((node,), node.loc), path, scope, shape, name)
            return self.call(node, path, scope, shape, name)
        if isinstance(node, SeqNode):
            return self.seq(node, path, scope, shape, name)
        if isinstance(node, NamedNode):
            return self.node(node.node, path, scope, shape, name or node.name)
        if isinstance(node, MergeNode):
            return self.merge(node, path, scope, shape, name)
        if isinstance(node, AuxNode):
            head, _ = self.node(node.node, path or "aux", scope, shape)
            return RAux(path or "aux", head, node.loc, scope.trace), shape
        if isinstance(node, IfNode):
            chosen = self._choose(node, scope)
            if chosen is None:
                return RSeq((), path, name), shape
            return self.node(chosen, path, scope, shape, name)
        expect = RExpect(self._sizes(node, scope), node.loc, scope.trace)
        check_expect(expect, shape)
        return expect, shape

    def merge(self, node: MergeNode, path: str, scope: _Scope, shape: Shape,
              name: str | None = None) -> tuple[RMerge, Shape]:
        branches: list[tuple[str, Layer | _Copy]] = []
        groups: list[tuple[str, int]] = []
        for branch in node.branches:
            if branch.name is not None:
                branches.append((branch.name, branch.node))
                groups.append((branch.name, 1))
                continue
            inner = branch.node
            if not (isinstance(inner, CallNode) and inner.item.repeat is not None):
                groups.append((f"branch{len(branches) + 1}", 1))
                branches.append((f"branch{len(branches) + 1}", inner))
                continue
            copies, one = self._repeat(inner, scope), _once(inner)  # `tower x 32` in a branch list: 32 branches
            if copies:
                groups.append((f"branch{len(branches) + 1}", copies))
                branches.extend((f"branch{len(branches) + 1}", _Copy(one, i)) for i in range(copies))
        if not branches:
            raise self._error(f"`{node.op}` needs at least one branch", node.loc, scope)
        outs = [self.node(b, _join(path, label), scope, shape) for label, b in branches]
        merged = RMerge(path or node.op, node.op, tuple(b for b, _ in outs), node.loc, scope.trace, tuple(groups),
                        name)
        return merged, merge_output(merged, [(output_name(b, "", PASSTHROUGH), s) for b, s in outs])

    def call(self, node: CallNode, path: str, scope: _Scope, shape: Shape,
             name: str | None = None) -> tuple[RNode, Shape]:
        self.calls += 1
        if self.calls > self.limits.calls:
            raise self._error(f"the network expands to more than {self.limits.calls:,} calls (limit `calls`)",
                              node.loc, scope, raise_help("calls", self.limits.calls), "E0801")
        call = node.item.call
        args = [self._eval(a, node, scope) for a in call.args]
        kwargs = {}
        for key, value, col in call.kwargs:
            if key in kwargs:
                raise self._error(f"argument `{key}` given twice", node.loc.shifted(col), scope)
            kwargs[key] = self._eval(value, node, scope)
        path = path or call.name
        if call.name in self.doc.blocks:
            return self.block(node, path, args, kwargs, scope, shape, name)
        if call.name in OPS:
            op = self.op(node, path, args, kwargs, scope, name)
            return op, op_output(op, shape)[1]
        known = [*self.doc.blocks, *OPS]
        raise self._error(f"unknown op or block `{call.name}`{did_you_mean(call.name, known)}",
                          node.loc.shifted(call.col), scope, code="E0401")

    def op(self, node: CallNode, path: str, args: list, kwargs: dict, scope: _Scope,
           name: str | None = None) -> ROp:
        spec = OPS[node.item.call.name]
        site = self._sites.get(id(node))
        if site is None:  # what the call site decides is the same for every expansion: computed once
            site = self._sites[id(node)] = self._site(node, spec)
        _node, defaults, arg_locs = site
        key = (spec.name, tuple(args), tuple(kwargs.items()))
        try:
            attrs = self._bound.get(key)
            if attrs is None:  # repeats bind the same arguments again and again
                attrs = self._bound[key] = spec.bind(args, {**defaults, **kwargs})
        except OpError as e:
            loc = arg_locs.get(e.arg, node.loc) if e.arg is not None else node.loc
            raise self._error(str(e), loc, scope, code="E0404") from None
        self.layers += 1
        if self.layers > self.limits.layers:
            raise self._error(f"the network expands to more than {self.limits.layers:,} layers (limit `layers`)",
                              node.loc, scope, raise_help("layers", self.limits.layers), "E0801")
        return ROp(path, spec.name, attrs, node.loc, scope.trace, arg_locs, name)

    def _site(self, node: CallNode, spec: OpDef) -> tuple[CallNode, dict[str, expr.Value], dict[str, Location]]:
        """The file defaults a call of `spec` at `node` takes (those it does not set itself) and where
        each argument is written; the node is kept so that its id is not reused."""
        call = node.item.call
        given = {a.name for a in spec.args[:len(call.args)]} | {key for key, _v, _c in call.kwargs}
        settings = {k: s for k, s in self.doc.defaults.get(spec.name, {}).items() if k not in given}
        arg_locs = {k: s.loc for k, s in settings.items()}
        arg_locs.update((a.name, node.loc.shifted(v.col)) for a, v in zip(spec.args, call.args))
        arg_locs.update((key, node.loc.shifted(col)) for key, _v, col in call.kwargs)
        return node, {k: s.value for k, s in settings.items()}, arg_locs

    def block(self, node: CallNode, path: str, args: list, kwargs: dict, scope: _Scope, shape: Shape,
              written: str | None = None) -> tuple[RCall, Shape]:
        name = node.item.call.name
        block = self.doc.blocks[name]
        if name in scope.stack:
            cycle = " -> ".join((*scope.stack[scope.stack.index(name):], name))
            raise self._error(f"block `{name}` calls itself ({cycle})", node.loc, scope)
        if len(scope.stack) >= self.limits.depth:
            raise self._error(f"blocks nest more than {self.limits.depth} deep (limit `depth`)", node.loc, scope,
                              raise_help("depth", self.limits.depth), "E0801")
        env = self._bind(block.signature, node, args, kwargs, scope, shape)
        where = self._written.get(id(node))
        if where is None:  # the same for every expansion of this call site
            where = self._written[id(node)] = (node, f"`{node.text}` at {node.loc}")
        frame = f"{path}: {where[1]}"
        inner = _Scope(env, (*scope.trace, frame), (*scope.stack, name))
        params = tuple((p.name, env[p.name]) for p in block.signature.params)
        body, out = self.node(block.body, path, inner, shape)
        return RCall(path, name, tuple(args), tuple(kwargs.items()), params, body, node.loc, written,
                     node.text), out

    def _bind(self, sig: expr.Signature, node: CallNode, args: list, kwargs: dict, scope: _Scope,
              shape: Shape) -> dict:
        params = sig.params
        names = [p.name for p in params]
        call = node.item.call
        if len(args) > len(params):
            raise self._error(f"block `{sig.name}({', '.join(names)})` takes {_plural(len(params), 'argument')}, "
                              f"got {len(args)}", node.loc.shifted(call.args[len(params)].col), scope)
        for key in kwargs:
            if key not in names:
                raise self._error(f"block `{sig.name}` has no parameter `{key}`{did_you_mean(key, names)}",
                                  self._arg_loc(node, key), scope)
        env: dict[str, expr.Value] = {**self.constants, **_shape_names(shape)}
        def_loc = self.doc.blocks[sig.name].loc
        for i, p in enumerate(params):
            if i < len(args):
                if p.name in kwargs:
                    raise self._error(f"parameter `{p.name}` given twice", self._arg_loc(node, p.name), scope)
                value = args[i]
            elif p.name in kwargs:
                value = kwargs[p.name]
            elif p.default is not None:
                value = self._eval_at(p.default, env, def_loc, scope)
            else:
                raise self._error(f"block `{sig.name}` needs parameter `{p.name}`", node.loc, scope)
            env[p.name] = self._typed(sig.name, p, value, node, scope)
        return env

    def _typed(self, block: str, p: expr.Param, value: expr.Value, node: CallNode, scope: _Scope):
        if p.type is None:
            return value
        if p.type not in KINDS:
            raise self._error(f"block `{block}` declares `{p.name}` with unknown type `{p.type}`"
                              f"{did_you_mean(p.type, KINDS)}; types are: {', '.join(KINDS)}",
                              self.doc.blocks[block].loc.shifted(p.col), scope)
        try:
            return KINDS[p.type](value)
        except ValueError as e:
            raise self._error(f"block `{block}` parameter `{p.name}` must be {e}",
                              self._arg_loc(node, p.name, block), scope) from None

    def _sizes(self, node: ExpectNode, scope: _Scope) -> tuple[int, ...]:
        """An `expect:`'s sizes, its expressions evaluated in `scope`."""
        out = []
        for i, size in enumerate(node.shape):
            if isinstance(size, expr.Node):
                loc = node.size_locs[i]
                value = self._eval_at(size, scope.env, loc, scope)
                if isinstance(value, bool) or not isinstance(value, int):
                    raise self._error(f"an expected size must be an integer, got {expr.describe(value)}", loc, scope)
                size = value
            out.append(size)
        return tuple(out)

    # -- helpers --
    def _eval(self, node: expr.Node, call: CallNode, scope: _Scope) -> expr.Value:
        return self._eval_at(node, scope.env, call.loc, scope)

    def _eval_at(self, node: expr.Node, env: dict, loc: Location, scope: _Scope) -> expr.Value:
        try:
            return expr.evaluate(node, env, loc)
        except ExprError as e:
            raise ExprError(e.message, e.loc, scope.trace, e.help, e.code) from None

    def _arg_loc(self, node: CallNode, arg: str | None, block: str | None = None) -> Location:
        """Where argument `arg` of a call is written: its keyword, or its position for a block."""
        call = node.item.call
        for key, _value, col in call.kwargs:
            if key == arg:
                return node.loc.shifted(col)
        if block is not None:
            names = [p.name for p in self.doc.blocks[block].signature.params]
            if arg in names and names.index(arg) < len(call.args):
                return node.loc.shifted(call.args[names.index(arg)].col)
        return node.loc

    def _error(self, message: str, loc: Location, scope: _Scope, help: str = "", code: str = "") -> CnncError:
        return ResolveError(message, loc, scope.trace, help, code)
