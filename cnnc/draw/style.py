"""The pictures' visual tables: colours and legend names per kind, and the measures both pictures
share.

Consumes nothing; produces the constants the layouts and the legend read. The kinds are the op
registry's (`Drawing.kind`, `MergeDef.module`, compiler/ops/base.py); only what they look like is here.
"""
from __future__ import annotations

from typing import Literal

from .labels import FuncKind, LayerKind

# What a module is built around, by its merge (the registry's `MergeDef.module`) and what surrounds it: a
# concat of branches (Inception), of the input and new features (DenseNet), of a channel split or two
# paths followed by a channel shuffle (ShuffleNet); a sum (residual); a product (a gate).
Structure = Literal["concat", "dense", "shuffle", "residual", "gate"]

# Colours: modules by structure (the deck's yellow and green), plain layers by kind, functions. Downsampling
# is not a colour: a `/2` tag on the box.
MODULE_COLOURS: dict[Structure, tuple[str, str]] = {
    "concat": ("#ffe27a", "#b8930b"), "dense": ("#f3d9a4", "#9a6b1c"), "shuffle": ("#f1d2ee", "#a0509a"),
    "residual": ("#b9e3a0", "#4a8f2f"), "gate": ("#bfe0f0", "#2f7fa6")}
LAYER_COLOURS: dict[LayerKind, tuple[str, str]] = {
    "conv": ("#cfe0fb", "#3b6fb6"), "pool": ("#e4d8f5", "#7654a8"), "dense": ("#f9d0de", "#b4436b"),
    "other": ("#e8e8e8", "#7a7a7a")}
FUNC_COLOURS: dict[FuncKind, tuple[str, str, str]] = {  # fill, stroke, text
    "norm": ("#d2efe9", "#23806f", "#11453c"), "activation": ("#ffffff", "#8a8a8a", "#333333"),
    "softmax": ("#3d3d3d", "#3d3d3d", "#ffffff"), "scale": ("#fff4cc", "#a8893a", "#4a3c12")}
MODULE_NAMES: dict[Structure, str] = {"concat": "concat module (branches side by side)",
                                      "dense": "dense connection (input concat new features)",
                                      "shuffle": "concat + channel shuffle",
                                      "residual": "residual module (add)",
                                      "gate": "gating module (multiply)"}
LAYER_NAMES: dict[LayerKind, str] = {"conv": "convolution", "pool": "pooling", "dense": "dense",
                                     "other": "other layer"}
FUNC_NAMES: dict[FuncKind, str] = {"norm": "normalisation", "activation": "activation", "softmax": "softmax",
                                   "scale": "scaling"}
INK, MUTED = "#222222", "#666666"
AUX_FILL, AUX_STROKE = "#eef3fa", "#6f84a3"
GROUP_FILL, GROUP_STROKE = "#f7f7f7", "#9c9c9c"
MARGIN = 24.0  # around each picture; where each line of the legend starts
STACK = 4.0  # the offset of each shadow box behind something repeated
MARK_NAMES = {"repeat": "N copies in sequence", "parallel": "N parallel paths (towers)",
              "down": "downsamples (stride 2)"}
