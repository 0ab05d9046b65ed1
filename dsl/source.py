"""Source text -> plain YAML data plus the position of every node in it.

YAML is read with PyYAML's safe composer only (no tags, no object construction), over libyaml's scanner
where PyYAML has it; a text libyaml refuses is read again by PyYAML's own scanner, whose messages say
more. While composing, guards refuse what could exhaust time or memory: oversized files, deep
nesting, alias bombs.
The result is the data (dicts, lists, scalars) and a map from each node's path — the tuple of keys and
indices that reach it — to its `Location`, so later stages can point at any value they reject.
"""
from __future__ import annotations

import bisect
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import yaml

from ..errors import Location
from ..record import Record, record
from .errors import SourceError

MAX_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NODES = 200_000
MAX_ALIASES = 100

NodePath = tuple  # of str keys and int indices


@record
class Source(Record):
    """A loaded file: its data, every node's position, and its lines for error messages."""

    file: str
    text: str
    data: Any
    positions: dict[NodePath, Location]

    def loc(self, path: NodePath) -> Location:
        """The position of the node at `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path not in self.positions and path:
            path = path[:-1]
        found = self.positions.get(path)
        return found if found is not None else Location(self.file, 1, 1, self._line(1))

    def _line(self, line: int) -> str:
        lines = self.text.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else ""


def read(path: str | Path, display: str | None = None) -> Source:
    """Read and load a YAML file; every failure is a located `SourceError`."""
    path = Path(path)
    name = display or str(path)
    if path.is_dir():
        raise SourceError(f"`{name}` is a directory, not a network file")
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SourceError(f"`{name}` is {size:,} bytes; network files are limited to {MAX_BYTES:,}")
        raw = path.read_bytes()
    except OSError as e:
        raise SourceError(f"cannot read `{name}`: {e.strerror or e}") from None
    return loads(raw, name)


def loads(raw: bytes | str, name: str = "<string>") -> Source:
    """Load YAML text (bytes are decoded as strict UTF-8)."""
    text = _decode(raw, name) if isinstance(raw, bytes) else raw
    if len(text) > MAX_BYTES:
        raise SourceError(f"the text is {len(text):,} characters; network files are limited to {MAX_BYTES:,}")
    lines = text.splitlines()

    def at(mark: yaml.Mark) -> Location:
        return Location(name, mark.line + 1, mark.column + 1,
                        lines[mark.line] if mark.line < len(lines) else "")

    root = _compose_fast(text, at)
    if root is _FAILED:  # libyaml refused it (or is missing): PyYAML's own composer says why, as it always did
        root = _compose(text, at, name)
    if root is None:
        raise SourceError(f"`{name}` is empty; a network file is a mapping with `network`, `input` "
                          f"and `layers`", Location(name, 1, 1, ""))
    overflow = _overflow(root, MAX_NODES)
    if overflow is not None:  # refused before converting: an alias bomb would take seconds to walk
        raise SourceError(f"the document expands to more than {MAX_NODES:,} nodes (aliases?)",
                          at(overflow.start_mark))
    converter = _Converter(text, at)
    data = converter.convert(root, ())
    return Source(name, text, data, converter.positions)


_FAILED = object()


def _compose_fast(text: str, at: Callable[[yaml.Mark], Location]) -> Any:
    """The composed document, scanned and parsed by libyaml (ten times faster) and composed by the same
    guarded composer; `_FAILED` where libyaml is missing or finds the text malformed."""
    if _FastLoader is None:
        return _FAILED
    try:
        loader = _FastLoader(text, at)
    except yaml.YAMLError:
        return _FAILED
    try:
        return loader.get_single_node()
    except yaml.YAMLError:
        return _FAILED
    finally:
        loader.dispose()


def _compose(text: str, at: Callable[[yaml.Mark], Location], name: str) -> Any:
    """The composed document by PyYAML's pure-Python scanner, whose messages are the ones users see."""
    lines = text.splitlines()
    try:
        loader = _GuardedLoader(text, at)
    except yaml.reader.ReaderError as e:  # a character YAML does not allow, found before parsing
        line = text.count("\n", 0, e.position)
        col = e.position - (text.rfind("\n", 0, e.position) + 1)
        code = e.character if isinstance(e.character, int) else ord(e.character)
        shown = lines[line] if line < len(lines) else ""
        raise SourceError(f"character U+{code:04X} is not allowed in YAML text",
                          Location(name, line + 1, col + 1, shown)) from None
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        mark, problem = e.problem_mark or e.context_mark, e.problem or e.context or "malformed YAML"
        if e.context_mark and (mark is None or mark.index >= len(text.rstrip())):
            mark, problem = e.context_mark, f"{e.context}, never closed: {problem}"
        raise SourceError(f"{problem} (YAML)", at(mark) if mark else None) from None
    except yaml.YAMLError as e:
        raise SourceError(f"malformed YAML: {e}") from None
    finally:
        loader.dispose()
    return root


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        before = raw[:e.start]
        line = before.count(b"\n") + 1
        start = before.rfind(b"\n") + 1
        col = len(raw[start:e.start].decode("utf-8", "replace")) + 1
        end = raw.find(b"\n", e.start)
        text = raw[start:end if end >= 0 else len(raw)].decode("utf-8", "replace")
        raise SourceError(f"`{name}` is not UTF-8 text: byte 0x{raw[e.start]:02x} at offset {e.start}",
                          Location(name, line, col, text)) from None


class _Guard(yaml.composer.Composer):
    """PyYAML's composer, refusing deep nesting, alias bombs and huge documents as it goes, before each
    step down (composing is recursive, so a check afterwards would come too late)."""

    at: Callable[[Any], Location]  # PyYAML's stubs allow events without marks; composed events have them
    depth: int
    aliases: int
    nodes: int

    if TYPE_CHECKING:  # provided by the parser each loader below mixes in
        def peek_event(self) -> Any: ...

    def _guard(self, at: Callable[[Any], Location]) -> None:
        self.at = at
        self.depth = self.aliases = self.nodes = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise SourceError(f"more than {MAX_NODES:,} YAML nodes", self.at(event.start_mark))
        if isinstance(event, yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise SourceError(f"more than {MAX_ALIASES} YAML aliases (`*name`); write the values out "
                                  f"or use a block", self.at(event.start_mark))
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if self.depth >= MAX_DEPTH:
                raise SourceError(f"nesting deeper than {MAX_DEPTH} levels", self.at(event.start_mark))
            self.depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1
        return super().compose_node(parent, index)


class _GuardedLoader(_Guard, yaml.SafeLoader):
    """The guarded composer over PyYAML's pure-Python reader, scanner and parser."""

    def __init__(self, text: str, at: Callable[[yaml.Mark], Location]):
        super().__init__(text)
        self._guard(at)


try:
    from yaml._yaml import CParser
except ImportError:  # PyYAML built without libyaml
    _FastLoader = None
else:
    class _FastLoader(_Guard, CParser, yaml.resolver.Resolver):  # type: ignore[no-redef]
        """The guarded composer over libyaml's scanner and parser: the same nodes and marks."""

        def __init__(self, text: str, at: Callable[[yaml.Mark], Location]):
            CParser.__init__(self, text)
            yaml.composer.Composer.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            self._guard(at)


_SCALARS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
            "tag:yaml.org,2002:null", "tag:yaml.org,2002:str"}


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [v for _k, v in node.value]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _overflow(root: yaml.Node, budget: int) -> yaml.Node | None:
    """The node at which walking `root` with its aliases expanded would pass `budget` nodes, or None.

    Each distinct node's expanded size is counted once (aliases share nodes), so this takes time in the
    size of the file, not of its expansion; the descent then finds the node a walk in order would stop
    at, skipping every subtree that fits."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) not in sizes:
            sizes[id(node)] = 1 + sum(size(child) for child in _children(node))
        return sizes[id(node)]

    if size(root) <= budget:
        return None
    node, left = root, budget
    while True:
        left -= 1
        if left < 0:
            return node
        for child in _children(node):
            if size(child) > left:
                node = child
                break
            left -= size(child)


class _Converter:
    """Builds plain data from composed nodes, recording positions; alias expansion is budgeted.

    In flow collections (`[a, b]`, `{k: v}`) YAML splits `cbr(48, 1x1)` at its comma. Plain scalars
    whose brackets are still open are joined back with what follows, from the exact source text, so
    `[cbr(48, 1x1), cbr(64, 5x5)]` is two calls, as a reader sees it.
    """

    def __init__(self, text: str, at):
        self.text, self.at = text, at
        self.budget = MAX_NODES
        self.positions: dict[NodePath, Location] = {}
        self._line_starts: list[int] | None = None

    def convert(self, node: yaml.Node, path: NodePath) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise SourceError(f"the document expands to more than {MAX_NODES:,} nodes (aliases?)",
                              self.at(node.start_mark))
        loc = self._value_loc(node) if isinstance(node, yaml.ScalarNode) else self.at(node.start_mark)
        self.positions.setdefault(path, loc)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            children = self._rejoin_items(node.value) if node.flow_style else node.value
            return [self.convert(v, path + (i,)) for i, v in enumerate(children)]
        if node.tag not in _SCALARS:
            raise SourceError(f"YAML tag `{node.tag}` is not allowed", self.at(node.start_mark))
        if node.tag in (_INT, _FLOAT) and len(node.value) > 40:
            raise SourceError(f"the number `{node.value[:20]}...` has {len(node.value)} characters; numbers "
                              f"here have at most 40", loc)
        return _LOADER.yaml_constructors[node.tag](_LOADER, node)

    def _mapping(self, node: yaml.MappingNode, path: NodePath) -> dict:
        pairs = self._rejoin_pairs(node.value) if node.flow_style else node.value
        out: dict[str, Any] = {}
        for key_node, value_node in pairs:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:null":
                raise SourceError("mapping keys must be plain names", self.at(key_node.start_mark))
            key = str(key_node.value)
            if key in out:
                raise SourceError(f"duplicate key `{key}`", self.at(key_node.start_mark))
            self.positions[path + (key, "<key>")] = self.at(key_node.start_mark)
            out[key] = self.convert(value_node, path + (key,))
        return out

    def _value_loc(self, node: yaml.ScalarNode) -> Location:
        """Where a scalar's value starts (after any anchor, tag and quote), with per-character
        locations when the value is not a verbatim slice of its line (line folding, escapes)."""
        text, i = self.text, node.start_mark.index
        while i < len(text) and text[i] in "&!":  # `&anchor` and `!!tag` before the value
            while i < len(text) and not text[i].isspace():
                i += 1
            while i < len(text) and text[i] in " \t":
                i += 1
        if node.style in ("'", '"') and i < len(text) and text[i] == node.style:
            i += 1
        value = node.value if isinstance(node.value, str) else ""
        loc = self._loc_at(i)
        raw = text[i:node.end_mark.index]
        if "\n" not in raw and (text[i:i + len(value)] == value or "\\" not in raw):
            return loc
        chars: list[Location] = []
        j, end = i, node.end_mark.index
        for ch in value:  # align value characters with source characters, past folds and escapes
            while j < end:
                c = text[j]
                if node.style == '"' and c == "\\":
                    if text[j + 1:j + 2] in ("\n", "\r"):  # an escaped line break yields nothing
                        j += 2
                        continue
                    chars.append(self._loc_at(j))
                    j += {"x": 4, "u": 6, "U": 10}.get(text[j + 1:j + 2], 2)
                    break
                if c == ch or (ch == " " and c in "\r\n"):
                    chars.append(self._loc_at(j))
                    j += 1
                    break
                j += 1
            else:
                chars.append(self._loc_at(max(end - 1, i)))
        return Location(loc.file, loc.line, loc.col, loc.text, tuple(chars) or None)

    def _loc_at(self, index: int) -> Location:
        if self._line_starts is None:  # found once, so that locating every scalar stays linear in the file
            self._line_starts = [0, *(m.end() for m in re.finditer("\n", self.text))]
        line = bisect.bisect_right(self._line_starts, index) - 1
        col = index - self._line_starts[line]
        return self.at(yaml.Mark("", index, line, col, None, index))  # no buffer: the pointer goes unread

    def _rejoin_items(self, nodes: list) -> list:
        out: list = []
        for node in nodes:
            if out and _open_brackets(out[-1]) > 0 and _plain(node):
                out[-1] = self._joined(out[-1], node)
            else:
                out.append(node)
        return out

    def _rejoin_pairs(self, pairs: list) -> list:
        out: list = []
        for key, value in pairs:
            dangling = out and _open_brackets(out[-1][1]) > 0 and _plain(key) and _empty(value)
            if dangling:
                out[-1] = (out[-1][0], self._joined(out[-1][1], key))
            else:
                out.append((key, value))
        return out

    def _joined(self, first: yaml.ScalarNode, last: yaml.Node) -> yaml.ScalarNode:
        text = self.text[first.start_mark.index:last.end_mark.index]
        return yaml.ScalarNode("tag:yaml.org,2002:str", text, first.start_mark, last.end_mark, style=None)


def _plain(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and not node.style  # plain: None from PyYAML, "" from libyaml


def _empty(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.value == "" and not node.style


def _open_brackets(node: yaml.Node) -> int:
    if not _plain(node) or not isinstance(node.value, str):
        return 0
    v = node.value
    return v.count("(") + v.count("[") - v.count(")") - v.count("]")


_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_LOADER = yaml.SafeLoader("")  # only its scalar constructors are used
