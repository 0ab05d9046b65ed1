"""What `cnnc draw --expand NAME` may open, and which view a name opens.

Consumes the document (its name and blocks) and the view tree (views.py); produces the view a name
stands for and the words that say which one it is. A name opens when it is
- a block's name: its first call (`block35` is `block35_1`, "call 1 of 10");
- a path, as the overview and `cnnc summary` print them: a call (`mixed5`, `block8_10`), a named
  sequence (`entry_flow`, `exit_flow/block14`), a branch (`mixed5/branch7x7`), a layer (`c3/conv`);
- a name written in the document (`block14`, `mlp1`): the first view that carries it.
An unknown name is a `CnncError` that suggests the nearest name that opens and lists a few.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from ..dsl.document import Document
from ..errors import CnncError, did_you_mean
from .views import Target, VBlock, VSeq, walk

How = Literal["block", "path", "name"]


@dataclass(frozen=True)
class Found:
    """The view a name opens, and how the name was read: as a block, a path, or a written name."""

    view: Target
    how: How
    key: str
    named: int = 1  # views that carry this written name (`mlp1` in each of NiN's three mlpconvs)


def names(tree: VSeq) -> dict[str, Found]:
    """Every name that opens, each with the view it opens: block names first, then paths, then the
    names written in the document (the first view that carries each)."""
    out: dict[str, Found] = {}
    written: dict[str, list[Target]] = {}
    for view, _ in walk(tree):
        if isinstance(view, VBlock) and view.block not in out:
            out[view.block] = Found(view, "block", view.block)
        if view.name:
            written.setdefault(view.name, []).append(view)
    for view, _ in walk(tree):
        if view.path and view.path not in out:
            out[view.path] = Found(view, "path", view.path)
    for name, carriers in written.items():
        if name not in out:
            out[name] = Found(carriers[0], "name", name, len(carriers))
    return out


def find(doc: Document, tree: VSeq, target: str) -> Found:
    """The view `target` opens, or an error that suggests what could have been meant."""
    known = names(tree)
    found = known.get(target)
    if found is not None:
        return found
    if target in doc.blocks:
        raise CnncError(f"--expand `{target}`: block `{target}` is defined in `{doc.name}` but never called, so "
                        f"it has no concrete arguments or shapes to draw")
    near = difflib.get_close_matches(target, list(known), n=6, cutoff=0.5)
    shown = near or [k for k in known if "/" not in k][:6]
    same = [k for k in known if k.lower() == target.lower()]  # `C3` for `c3`: too short for difflib
    suggestion = f" (did you mean `{same[0]}`?)" if same else did_you_mean(target, known)
    raise CnncError(f"--expand `{target}`: `{doc.name}` has no block, call, sequence or layer `{target}`"
                    f"{suggestion}",
                    help=f"names that open ({len(known)} in all) include {', '.join(f'`{k}`' for k in shown)}; "
                         f"a path such as `{_a_path(known)}` opens the view at that path")


def _a_path(known: dict[str, Found]) -> str:
    return next((k for k in known if "/" in k), next(iter(known), "stem"))


def calls(tree: VSeq, block: str) -> list[tuple[VBlock, int]]:
    """The calls of `block` in the network, in order, each with the copies it stands for."""
    return [(v, n) for v, n in walk(tree) if isinstance(v, VBlock) and v.block == block]


def which_call(tree: VSeq, view: VBlock) -> tuple[int, int]:
    """The position of call `view` among its block's calls (1-based, copies counted) and their number."""
    position, total = 0, 0
    for call, copies in calls(tree, view.block):
        if call is view:
            position = total + 1
        total += copies
    return position, total
