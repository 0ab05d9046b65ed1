"""The foundation every stage shares: source locations, the one error hierarchy's root, name suggestions.

Every user-facing failure is a `CnncError` carrying a `Location` (file, line, column, the source line)
and, for errors inside expanded blocks, the expansion path that led there. `str(error)` is the message
the CLI prints: what is wrong, where, and a caret under the spot. Each stage defines its own subclasses
(dsl/errors.py, compiler/errors.py, runtime/errors.py); this module imports nothing of any stage.
"""
from __future__ import annotations

import difflib
from dataclasses import field
from typing import Iterable

from .record import Record, record


@record
class Location(Record):
    """A 1-based line and column in a source file; `text` is that line of the file.

    The location of a YAML string value may carry `chars`: the location of each character of the value,
    for values that span lines or contain escapes, where "offset into the value" is not "column + offset".
    """

    file: str
    line: int
    col: int
    text: str = ""
    chars: tuple[Location, ...] | None = field(default=None, repr=False, compare=False)

    def shifted(self, offset: int) -> Location:
        """The location of the character `offset` places into the value that starts here."""
        if self.chars:
            return self.chars[min(max(offset, 0), len(self.chars) - 1)]
        return Location(self.file, self.line, self.col + offset, self.text)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class CnncError(Exception):
    """A user error: bad input, reported with its location (and, where there is one, a `help:` line with
    the concrete fix). The CLI exits 2 on it."""

    kind = "error"
    code = "E0000"  # each subclass has its own; a raise site may give a finer one (cnnc/explain.py lists them)

    def __init__(self, message: str, loc: Location | None = None, trace: tuple[str, ...] = (), help: str = "",
                 code: str = ""):
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.trace = trace
        self.help = help  # what to do about it, when there is one concrete fix
        self.code = code or type(self).code

    def __str__(self) -> str:
        kind = f"{self.kind}[{self.code}]"
        head = f"{self.loc}: {kind}: {self.message}" if self.loc else f"{kind}: {self.message}"
        lines = [head]
        if self.loc and self.loc.text:
            text, col = _window(self.loc.text.rstrip("\n").expandtabs(1), self.loc.col - 1)
            lines.append("    " + text)
            lines.append("    " + " " * col + "^")
        if self.trace:
            lines.append("  expanded from:")
            lines.extend(f"    {frame}" for frame in self.trace)
        if self.help:
            lines.append(f"  help: {self.help}")
        return "\n".join(lines)


class MultipleErrors(CnncError):
    """Several independent errors found in one pass (schema errors are reported together)."""

    def __init__(self, errors: list[CnncError]):
        super().__init__(f"{len(errors)} errors")
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def _window(text: str, col: int, width: int = 100) -> tuple[str, int]:
    """At most `width` characters of a long source line around `col`, and the caret's new column."""
    if len(text) <= width:
        return text, max(col, 0)
    start = min(max(col - width // 2, 0), len(text) - width)
    prefix = "..." if start else ""
    return prefix + text[start:start + width] + ("..." if start + width < len(text) else ""), \
        col - start + len(prefix)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ' (did you mean `x`?)' suffix naming the closest candidate, or '' when none is close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""
