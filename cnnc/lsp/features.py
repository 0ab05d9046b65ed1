"""The language server's answers, from an `Analysis` and a 0-based position, as plain data.

Hover: a layer's output shape, parameters and MACs; a block call's signature, bound arguments and the
layers it expands to; an op's reference from the registry (cnnc/reference.py). Completion: op, merge and
block names, the keyword arguments of the op or block being called (with their defaults), `defaults:`
keys (ops, then their arguments), parameter names in `variants:`. Definition: a block call -> the
block's key. Symbols: blocks and named layers, nested as written. Inlay hints: each layer line's output
shape. When the text does not build, `fallback` (the last analysis that did) supplies the names.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ..compiler.ops import MERGES, OPS, OpDef
from ..compiler.tree import RCall, RMerge, ROp
from ..dsl import document as d
from ..dsl.keys import RESERVED
from ..reference import signature, value_text
from .analysis import Analysis, Shape, Site, layer_count

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY = re.compile(r"^(\s*)(?:-\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*:")
SHOWN = 6  # instances listed in a hover before "..."


@dataclass(frozen=True)
class Completion:
    label: str
    kind: Literal["op", "merge", "block", "keyword", "argument", "parameter"]
    detail: str = ""
    doc: str = ""
    insert: str | None = None


@dataclass(frozen=True)
class Symbol:
    name: str
    kind: Literal["block", "layer"]
    line: int
    col: int
    detail: str = ""
    children: tuple[Symbol, ...] = field(default=())


def word_at(line: str, col: int) -> tuple[str, int] | None:
    """The identifier under the column, and its start."""
    for m in _IDENT.finditer(line):
        if m.start() <= col <= m.end():
            return m.group(), m.start()
    return None


def _shape(shape: Shape | None) -> str:
    return "?" if shape is None else "[" + ", ".join(map(str, shape)) + "]"


def _doc(a: Analysis, fallback: Analysis | None) -> d.Document | None:
    return a.doc or (fallback.doc if fallback else None)


# ---- hover --------------------------------------------------------------------------------------------
def hover(a: Analysis, line: int, col: int, fallback: Analysis | None = None) -> str | None:
    """Markdown for the position, or None."""
    text = a.lines[line] if line < len(a.lines) else ""
    word = word_at(text, col)
    site = a.site_at(line, col)
    doc = _doc(a, fallback)
    parts: list[str] = []
    if word and doc and word[0] in doc.blocks:
        parts.append(block_signature(doc, word[0]))
        if site and site.col == word[1] and isinstance(site.nodes[0], RCall):
            parts.append(_call_text(site))
    elif site and site.col <= col and (word is None or word[1] >= site.col):
        parts.append(_site_text(a, site))
        if word and word[1] == site.col and word[0] in OPS:
            parts.append(op_reference(OPS[word[0]]))
    elif word and word[0] in OPS:
        parts.append(op_reference(OPS[word[0]]))
    elif word and word[0] in MERGES:
        parts.append(f"**`{word[0]}:`** (merge): {MERGES[word[0]].doc}")
    elif a.sites_at(line):  # a name or a key before the line's layers: all of them
        parts.extend(_site_text(a, s) for s in a.sites_at(line))
    return "\n\n---\n\n".join(parts) if parts else None


def _site_text(a: Analysis, site: Site) -> str:
    node = site.nodes[0]
    if isinstance(node, RCall):
        return _call_text(site)
    what = f"`{node.op}`" if isinstance(node, (ROp, RMerge)) else "layer"
    if len(site.nodes) == 1:
        layer = a.layers.get(getattr(node, "path", ""))
        lines = [f"**{what}** `{getattr(node, 'path', '')}` → **{_shape(site.shapes[0])}**"]
        if layer is not None:
            lines.append(f"parameters: {layer.param_count:,} · "
                         f"MACs: {layer.macs:,}")
        return "  \n".join(lines)
    rows = [f"**{what}**, built {len(site.nodes)} times here:"]
    for n, shape in list(zip(site.nodes, site.shapes))[:SHOWN]:
        layer = a.layers.get(getattr(n, "path", ""))
        extra = f" · {layer.param_count:,} params · {layer.macs:,} MACs" \
            if layer is not None else ""
        rows.append(f"- `{getattr(n, 'path', '')}` → {_shape(shape)}{extra}")
    if len(site.nodes) > SHOWN:
        rows.append(f"- ... and {len(site.nodes) - SHOWN} more")
    return "\n".join(rows)


def _call_text(site: Site) -> str:
    calls = [n for n in site.nodes if isinstance(n, RCall)]
    if not calls:
        return ""
    first = calls[0]
    bound = ", ".join(f"{k}={value_text(v)}" for k, v in first.params) or "no arguments"
    if len(calls) == 1:
        return (f"`{first.path}`: {bound}  \nexpands to **{layer_count(first.body)} layers** → "
                f"**{_shape(site.shapes[0])}**")
    rows = [f"called {len(calls)} times here:"]
    for call, shape in list(zip(calls, site.shapes))[:SHOWN]:
        args = ", ".join(f"{k}={value_text(v)}" for k, v in call.params)
        rows.append(f"- `{call.path}` ({args}): {layer_count(call.body)} layers → {_shape(shape)}")
    if len(calls) > SHOWN:
        rows.append(f"- ... and {len(calls) - SHOWN} more")
    return "\n".join(rows)


def block_signature(doc: d.Document, name: str) -> str:
    block = doc.blocks[name]
    return f"**block** `{_signature_text(doc, name)}` (defined at line {block.loc.line})"


def _signature_text(doc: d.Document, name: str) -> str:
    for key in (doc.source.data or {}).get("blocks", {}) if isinstance(doc.source.data, dict) else ():
        if isinstance(key, str) and key.split("(")[0].strip() == name:
            return " ".join(key.split())
    return name


def op_reference(op: OpDef) -> str:
    lines = [f"**op** `{signature(op)}`", "", op.doc]
    lines += [f"- `{a.name}` ({a.kind}{'' if a.default is ... else ', default ' + _default(a.default)}): {a.doc}"
              for a in op.args]
    return "\n".join(lines)


def _default(value: Any) -> str:
    return "none" if value is None else value_text(value)


# ---- completion ---------------------------------------------------------------------------------------
def complete(a: Analysis, line: int, col: int, fallback: Analysis | None = None) -> list[Completion]:
    lines = a.lines
    text = lines[line] if line < len(lines) else ""
    prefix = text[:col]
    doc = _doc(a, fallback)
    section = _section(lines, line)
    callee = _callee(prefix)
    if callee is not None:
        return _arguments(callee[0], callee[1], doc)
    if section == "defaults":
        owner = _owner(lines, line, prefix)
        if owner is None:
            return [Completion(name, "op", signature(op), op.doc, f"{name}: ") for name, op in OPS.items() if op.args]
        return _arguments(owner, prefix.split(":", 1)[1] if _KEY.match(prefix) else prefix, doc, style=": ")
    if section == "variants":
        declared = _declared_parameters(doc)
        return [Completion(p, "parameter", f"parameter (default {v})", insert=f"{p}: ") for p, v in declared.items()]
    if section in ("layers", "blocks"):
        return _layer_names(doc)
    return []


def _layer_names(doc: d.Document | None) -> list[Completion]:
    items = [Completion(name, "op", signature(op), op.doc) for name, op in OPS.items()]
    items += [Completion(name, "merge", "merge of branches", m.doc, f"{name}:") for name, m in MERGES.items()]
    items += [Completion(k, "keyword", "cnnc keyword") for k in RESERVED if k not in MERGES]
    if doc is not None:
        items += [Completion(name, "block", _signature_text(doc, name), f"block defined at line {b.loc.line}")
                  for name, b in doc.blocks.items()]
    return items


def _arguments(callee: str, inside: str, doc: d.Document | None, style: str = "=") -> list[Completion]:
    """The keyword arguments of op or block `callee` not yet written in `inside` (the call's text so far)."""
    used = set(re.findall(r"([A-Za-z_]\w*)\s*[=:]", inside))
    if callee in OPS:
        return [Completion(arg.name, "argument", f"{arg.kind}" + ("" if arg.default is ... else
                           f" = {_default(arg.default)}"), arg.doc, f"{arg.name}{style}")
                for arg in OPS[callee].args if arg.name not in used]
    if doc is not None and callee in doc.blocks:
        sig = doc.blocks[callee].signature
        return [Completion(p.name, "argument", "required" if p.default is None else
                           f"default {_param_default(doc, callee, p.name)}", f"parameter of block `{callee}`",
                           f"{p.name}{style}")
                for p in sig.params if p.name not in used]
    return []


def _param_default(doc: d.Document, block: str, param: str) -> str:
    """The default's text as the signature writes it, to the comma or parenthesis that ends it at its own
    depth (`max(1, 3)` and `[1, 1]` whole)."""
    sig = _signature_text(doc, block)
    m = re.search(rf"\b{param}\s*(?::\s*\w+\s*)?=\s*", sig)
    if m is None:
        return "?"
    depth, end = 0, m.end()
    while end < len(sig) and not (depth == 0 and sig[end] in ",)"):
        depth += (sig[end] in "([{") - (sig[end] in ")]}")
        end += 1
    return sig[m.end():end].strip() or "?"


def _callee(prefix: str) -> tuple[str, str] | None:
    """The name of the innermost call whose parenthesis is open before the cursor, and its text so far."""
    depth = 0
    for i in range(len(prefix) - 1, -1, -1):
        c = prefix[i]
        if c in ")]":
            depth += 1
        elif c in "([":
            if depth == 0:
                if c == "[":
                    return None
                name = re.search(r"([A-Za-z_]\w*)\s*$", prefix[:i])
                return (name.group(1), prefix[i + 1:]) if name else None
            depth -= 1
    return None


def _section(lines: list[str], line: int) -> str | None:
    """The top-level key the line is under."""
    for i in range(min(line, len(lines) - 1), -1, -1):
        m = re.match(r"^([A-Za-z_]\w*)\s*:", lines[i])
        if m and (i < line or not lines[i][:1].isspace()):
            return m.group(1) if i < line else None
    return None


def _owner(lines: list[str], line: int, prefix: str) -> str | None:
    """In `defaults:`, the op whose arguments are being written: on this line before `:`, or above."""
    here = _KEY.match(prefix)
    if here and len(here.group(1)) > 0:
        return here.group(2)
    indent = len(prefix) - len(prefix.lstrip())
    if indent <= 2:
        return None
    for i in range(line - 1, -1, -1):
        m = _KEY.match(lines[i])
        if m and len(m.group(1)) < indent:
            return m.group(2)
    return None


def _declared_parameters(doc: d.Document | None) -> dict[str, str]:
    data = doc.source.data if doc is not None else None
    params = data.get("parameters") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in params.items()} if isinstance(params, dict) else {}


# ---- definition, symbols, inlay hints -----------------------------------------------------------------
def definition(a: Analysis, line: int, col: int, fallback: Analysis | None = None) -> tuple[int, int] | None:
    """Where the block named under the cursor is defined (its key), 0-based."""
    text = a.lines[line] if line < len(a.lines) else ""
    word = word_at(text, col)
    doc = _doc(a, fallback)
    if word is None or doc is None or word[0] not in doc.blocks:
        return None
    loc = doc.blocks[word[0]].loc
    return loc.line - 1, loc.col - 1


def symbols(a: Analysis, fallback: Analysis | None = None) -> list[Symbol]:
    doc = _doc(a, fallback)
    if doc is None:
        return []
    out = [Symbol(name, "block", b.loc.line - 1, b.loc.col - 1, _signature_text(doc, name), _named(b.body))
           for name, b in doc.blocks.items()]
    return out + list(_named(doc.layers))


def _named(node: d.Layer) -> tuple[Symbol, ...]:
    if isinstance(node, d.NamedNode):
        return (Symbol(node.name, "layer", node.loc.line - 1, node.loc.col - 1, children=_named(node.node)),)
    if isinstance(node, d.SeqNode):
        return tuple(s for item in node.items for s in _named(item))
    if isinstance(node, d.MergeNode):
        return tuple(s for b in node.branches for s in _named(b.node))
    if isinstance(node, d.AuxNode):
        return _named(node.node)
    if isinstance(node, d.IfNode):
        return _named(node.then) + (_named(node.otherwise) if node.otherwise is not None else ())
    return ()


def inlay_hints(a: Analysis, first: int, last: int) -> list[tuple[int, int, str]]:
    """(line, column, label): after each line of lines `first` to `last` that builds layers, the output
    shape of the last thing written on it (all the instances' shapes when they differ, up to three)."""
    hints = []
    for line in range(max(first, 0), min(last, len(a.lines) - 1) + 1):
        sites = a.sites_at(line)
        if not sites:
            continue
        shapes = list(dict.fromkeys(sites[-1].shapes))
        if None in shapes:
            continue
        label = " | ".join(_shape(s) for s in shapes[:3]) + (" | ..." if len(shapes) > 3 else "")
        hints.append((line, len(a.lines[line].rstrip()), f"→ {label}"))
    return hints
