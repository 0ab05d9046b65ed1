"""The pictures' visual tables: colours and legend names per kind, and the measures both pictures
share.

Consumes nothing; produces the constants the layouts and the legend read. The kinds are the op
registry's (`Drawing.kind`, `MergeDef.module`, compiler/ops/base.py); only what they look like is here.
"""
from __future__ import annotations

from .labels import FuncKind, LayerKind
from .views import ModuleKind

# Colours: modules by kind (the deck's yellow, green, orange), plain layers by kind, functions.
MODULE_COLOURS: dict[ModuleKind, tuple[str, str]] = {
    "inception": ("#ffe27a", "#b8930b"), "residual": ("#b9e3a0", "#4a8f2f"), "gate": ("#bfe0f0", "#2f7fa6"),
    "reduction": ("#ffbf80", "#cc6f14")}
LAYER_COLOURS: dict[LayerKind, tuple[str, str]] = {
    "conv": ("#cfe0fb", "#3b6fb6"), "pool": ("#e4d8f5", "#7654a8"), "dense": ("#f9d0de", "#b4436b"),
    "other": ("#e8e8e8", "#7a7a7a")}
FUNC_COLOURS: dict[FuncKind, tuple[str, str, str]] = {  # fill, stroke, text
    "norm": ("#d2efe9", "#23806f", "#11453c"), "activation": ("#ffffff", "#8a8a8a", "#333333"),
    "softmax": ("#3d3d3d", "#3d3d3d", "#ffffff"), "scale": ("#fff4cc", "#a8893a", "#4a3c12")}
MODULE_NAMES: dict[ModuleKind, str] = {"inception": "Inception-style module (concat)",
                                       "residual": "residual module (add)",
                                       "gate": "gating module (mul)",
                                       "reduction": "reduction module (stride 2)"}
LAYER_NAMES: dict[LayerKind, str] = {"conv": "convolution", "pool": "pooling", "dense": "dense",
                                     "other": "other layer"}
FUNC_NAMES: dict[FuncKind, str] = {"norm": "normalisation", "activation": "activation", "softmax": "softmax",
                                   "scale": "scaling"}
INK, MUTED = "#222222", "#666666"
AUX_FILL, AUX_STROKE = "#eef3fa", "#6f84a3"
GROUP_FILL, GROUP_STROKE = "#f7f7f7", "#9c9c9c"
MARGIN = 24.0  # around each picture; where each line of the legend starts
STACK = 4.0  # the offset of each shadow box behind something repeated
