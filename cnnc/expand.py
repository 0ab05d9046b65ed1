"""Resolved tree -> a flat cnnc document: every block call and repeat written out, every argument explicit.

`cnnc expand NET` prints it. The result is itself a valid cnnc file that builds the same graph under the
same names: each block call becomes a named list (`mixed5: [...]`), so hierarchical layer and parameter
names survive; each op call spells out every argument, file defaults and built-in defaults included;
constants, defaults and blocks are gone. An item is written without its name where the language would
give it that name anyway (`relu`, `maxpool_1`), so the text stays close to what a person would write.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import yaml

from .compiler.ops import OPS
from .compiler.resolve import RAux, RExpect, RMerge, RNode, ROp, RSeq, resolve, without_calls
from .dsl.document import Document


def expand(doc: Document, header: str | None = None) -> str:
    """The fully expanded network as YAML text, with `header` (or a default one) as its first comment."""
    data: dict[str, Any] = {"network": doc.name}
    if doc.description:
        data["description"] = doc.description
    data["input"] = _Flow(doc.input)
    tree, _warnings = resolve(doc)
    data["layers"] = _sequence(without_calls(tree), "")
    header = header or (f"{doc.name}, expanded by `cnnc expand` from {doc.source.file}: every block call and\n"
                        f"repeat resolved, every argument explicit; it builds the same graph under the same names.")
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1 << 20, allow_unicode=True)


# ---- the tree as plain data ---------------------------------------------------------------------
def call_text(node: ROp) -> str:
    """`conv(64, 3x3, stride=2x2, padding=same, ...)`: required arguments by position, the rest by name."""
    args = []
    for arg in OPS[node.op].args:
        value = node.attrs.get(arg.name)
        if value is None:  # an unset optional argument (a pool's stride, a conv's connection table)
            continue
        text = _value(value, arg.kind)
        args.append(text if arg.default is ... else f"{arg.name}={text}")
    return f"{node.op}({', '.join(args)})" if args else node.op


def _value(value: Any, kind: str = "") -> str:
    """`value` as cnnc source; pairs are written `3x3` only where the argument is a size."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # repr round-trips floats exactly: 0.001, 1e-05, 0.6666666666666666
    if isinstance(value, str):
        return value  # the symbols `same` and `valid`
    if isinstance(value, tuple):
        if kind in ("kernel", "size") and len(value) == 2:
            return f"{value[0]}x{value[1]}"
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as a cnnc value")


def _sequence(seq: RSeq, path: str) -> list:
    """The items of `seq`, whose children are named under `path`."""
    items: list[tuple[str | None, str | None, RNode]] = []  # (name, name the language would give, node)
    for child in seq.items:
        if isinstance(child, RExpect):
            items.append((None, None, child))
            continue
        first = _first_path(child)
        if first is None:  # a list of nothing but `expect:` checks, or nothing at all: inline its checks
            items.extend((None, None, e) for e in _expects(child))
            continue
        name = _relative(first, path).split("/", 1)[0]
        natural = {ROp: lambda c: c.op, RMerge: lambda c: c.op, RAux: lambda c: "aux"}.get(type(child))
        items.append((name, natural(child) if natural else None, child))
    bare = _bare(items)
    out = []
    for (key, _natural, child), unnamed in zip(items, bare):
        value = _node(child, f"{path}/{key}" if path and key else key or path)
        out.append(value if unnamed or key is None else {key: value})
    return out


def _bare(items: list[tuple[str | None, str | None, RNode]]) -> list[bool]:
    """Which items to write without their names: those the language would name (and number, as in
    `maxpool_1`, `maxpool_2`) exactly as they are named now. Writing every name is always right, since
    the names in a sequence are distinct; start from all that could do without and drop the misnamed."""
    bare = [natural is not None and name is not None and (name == natural or _numbered(name, natural))
            for name, natural, _ in items]
    while True:
        bases = [natural if b else name for (name, natural, _), b in zip(items, bare)]
        counts = Counter(b for b in bases if b is not None)
        seen: Counter[str] = Counter()
        wrong: set[str] = set()  # the bases under which some item would be misnamed
        for base, (name, _natural, _child) in zip(bases, items):
            if base is not None:
                seen[base] += 1
                if (f"{base}_{seen[base]}" if counts[base] > 1 else base) != name:
                    wrong.add(base)
        if not wrong:
            return bare
        # a misnamed item shares its base with at least one bare item (names are distinct): name those
        bare = [b and base not in wrong for b, base in zip(bare, bases)]


def _numbered(name: str, base: str) -> bool:
    head, _, number = name.rpartition("_")
    return head == base and number.isdigit()


def _node(node: RNode, path: str) -> Any:
    """The layer that resolves to `node` when it is resolved at `path`."""
    if isinstance(node, ROp):
        return call_text(node)
    if isinstance(node, RSeq):
        return _sequence(node, path)
    if isinstance(node, RMerge):
        return {node.op: _branches(node)}
    if isinstance(node, RAux):
        return {"aux": _node(node.node, path)}
    if isinstance(node, RExpect):
        return {"expect": _Flow(node.shape)}
    raise TypeError(f"a {type(node).__name__} in an expanded tree (`without_calls` dissolves them): a cnnc bug")


def _branches(merge: RMerge) -> Any:
    """A merge's branches: a list when they are `branch1, branch2, ...` in order, else a mapping."""
    names: list[str] = []
    for i, branch in enumerate(merge.branches):
        first = _first_path(branch)
        name = _relative(first, merge.path).split("/", 1)[0] if first is not None else None
        if name is None or name in names:  # an empty branch (`[]`) leaves no name behind: pick a free one
            name = next(n for n in (f"branch{i + 1}", *(f"branch{i + 1}_{k}" for k in range(1, 10**6)))
                        if n not in names)
        names.append(name)
    values = [_node(b, f"{merge.path}/{n}") for b, n in zip(merge.branches, names)]
    if names == [f"branch{i + 1}" for i in range(len(names))]:
        return values
    return dict(zip(names, values))


def _first_path(node: RNode) -> str | None:
    """The path of the first named node at or under `node`."""
    if isinstance(node, (ROp, RMerge, RAux)):
        return node.path
    if isinstance(node, RSeq):
        return next((p for p in map(_first_path, node.items) if p is not None), None)
    return None


def _expects(node: RNode) -> list[RExpect]:
    if isinstance(node, RExpect):
        return [node]
    return [e for item in node.items for e in _expects(item)] if isinstance(node, RSeq) else []


def _relative(path: str, parent: str) -> str:
    if not parent:
        return path
    if not path.startswith(parent + "/"):
        raise ValueError(f"`{path}` is not under `{parent}`")  # the resolver's naming changed: a cnnc bug
    return path[len(parent) + 1:]


# ---- YAML output --------------------------------------------------------------------------------
class _Flow(list):
    """A list written inline: shapes (`input: [3, 224, 224]`, `expect: [64, 56, 56]`)."""


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)  # indent list items under their key


_Dumper.add_representer(_Flow, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
