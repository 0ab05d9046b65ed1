"""Label helpers shared by the op definitions' `Drawing`s: how sizes and strides read in a picture."""
from __future__ import annotations

from typing import Callable

from .base import Attrs


def size(pair: tuple[int, int]) -> str:
    return f"{pair[0]}x{pair[1]}"


def stride(attrs: Attrs) -> str:
    """`` for stride 1, `/2` for 2x2, `/1x2` otherwise."""
    s = attrs.get("stride") or (1, 1)
    return "" if s == (1, 1) else f"/{s[0]}" if s[0] == s[1] else f"/{size(s)}"


def fixed(text: str) -> Callable[[Attrs, bool], str]:
    """A label that is the same text in every style."""
    return lambda a, paper: text


def windowed(op: str, kind: str = "") -> Callable[[Attrs, bool], str]:
    """`maxpool 3x3/2` in the overview, `3x3 maxpool, /2` inside a block; a `kind` follows the op in
    brackets (`2x2 subsampling (trainable), /2`)."""
    name = f"{op} ({kind})" if kind else op

    def label(a: Attrs, paper: bool) -> str:
        if paper:
            return f"{size(a['kernel'])} {name}{', ' + stride(a) if stride(a) else ''}"
        return f"{op} {size(a['kernel'])}{stride(a)}{f' ({kind})' if kind else ''}"
    return label


def units(op: str) -> Callable[[Attrs, bool], str]:
    """`dense 1000` in the overview, `dense, 1000` inside a block."""
    return lambda a, paper: f"{op}, {a['units']}" if paper else f"{op} {a['units']}"
