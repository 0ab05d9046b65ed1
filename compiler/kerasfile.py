"""Keras weights (`.weights.h5`, `.keras`, and the legacy whole-model `.h5`) read with h5py, in cnnc's layouts.

Keras 3 stores a layer's variables by position (`layers/conv2d_3/vars/0`), under a name made from the
layer's class and a counter in the order of the model's layers (by depth: `keras_order` puts the network's
layers in that order for the matching); the legacy format stores them under the layers' own names
(`model_weights/block1_conv1/block1_conv1/kernel:0`), which Keras numbers in creation order. Either way each
tensor gets its role (weight, bias, running_mean, ...) and is put in cnnc's layout as it is read: a conv
kernel from HWIO to OIHW, a depthwise kernel (kh, kw, C, m) to (C*m, 1, kh, kw), a dense kernel (in, out)
transposed. The one change that needs the network too, a dense layer after a channels-last flatten (its rows
in H, W, C order, cnnc's in C, H, W), is `reorder_flatten`, applied once the tensor's parameter is known
(`flatten_reorder` makes the function the matching calls, from the network).
"""
from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .checkpoint import Checkpoint
from .errors import WeightsError
from .ir import Graph, Layer

INSTALL = "reading Keras weights needs h5py: pip install h5py (or pip install 'cnnc[keras]')"

# Keras 3 variables by position, per layer class (the name before its `_N`)
_BY_POSITION = {
    "conv1d": ("kernel", "bias"), "conv2d": ("kernel", "bias"), "dense": ("kernel", "bias"),
    "depthwise_conv2d": ("depthwise_kernel", "bias"),
    "separable_conv2d": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "layer_normalization": ("gamma", "beta"), "group_normalization": ("gamma", "beta"),
    "p_re_lu": ("alpha",),
}
_BN_ROLES = {4: ("gamma", "beta", "moving_mean", "moving_variance"), 3: ("beta", "moving_mean", "moving_variance"),
             2: ("moving_mean", "moving_variance")}  # three: scale=False (InceptionV3's), the common case
_ROLES = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
          "moving_variance": "running_var", "depthwise_kernel": "depthwise_weight",
          "pointwise_kernel": "pointwise_weight", "alpha": "weight"}


def read(path: str | os.PathLike) -> Checkpoint:
    try:
        import h5py
    except ImportError:
        raise WeightsError(f"`{path}`: {INSTALL}") from None
    path = Path(path)
    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as zf:
                if "model.weights.h5" not in zf.namelist():
                    raise WeightsError(f"`{path}` is a zip file but not a Keras model (no model.weights.h5)")
                data: Any = io.BytesIO(zf.read("model.weights.h5"))
        else:
            data = path
        with h5py.File(data, "r") as f:
            legacy = "model_weights" in f or "layer_names" in f.attrs
            raw = _legacy(f) if legacy else _by_position(f)
    except WeightsError:
        raise
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as e:
        raise WeightsError(f"cannot read `{path}` as Keras weights: {e}") from None
    tensors, roles, layouts = {}, {}, {}
    for layer, role, value in raw:
        name = f"{layer}.{role}"
        tensors[name], layouts[name] = _to_cnnc(role, value)
        roles[name] = _ROLES.get(role, role)
    if not tensors:
        raise WeightsError(f"`{path}` holds no Keras weights")
    return Checkpoint(tensors, ordered=False, roles=roles, layouts=layouts, convert=flatten_reorder,
                      network_order=None if legacy else keras_order)


def _by_position(f: Any) -> list[tuple[str, str, np.ndarray]]:
    out: list[tuple[str, str, np.ndarray]] = []

    def visit(name: str, obj: Any) -> None:
        if name.endswith("/vars") and len(obj):
            layer = name[: -len("/vars")].replace("layers/", "").replace("/", ".")
            kind = re.sub(r"_\d+$", "", layer.rsplit(".", 1)[-1])
            values = [np.asarray(obj[str(i)], np.float32) for i in range(len(obj))]
            roles = _BN_ROLES.get(len(values)) if kind == "batch_normalization" else _BY_POSITION.get(kind)
            if roles is None or len(roles) < len(values):
                roles = tuple(f"v{i}" for i in range(len(values)))
            out.extend((layer, role, v) for role, v in zip(roles, values))  # a layer without bias: fewer values

    f.visititems(visit)
    return out


def _legacy(f: Any) -> list[tuple[str, str, np.ndarray]]:
    root = f.get("model_weights", f)
    out: list[tuple[str, str, np.ndarray]] = []
    for layer in [n.decode() if isinstance(n, bytes) else n for n in root.attrs.get("layer_names", list(root))]:
        group = root[layer]
        for weight in group.attrs.get("weight_names", []):
            weight = weight.decode() if isinstance(weight, bytes) else weight
            role = weight.rsplit("/", 1)[-1].split(":")[0]
            out.append((layer, role, np.asarray(group[weight], np.float32)))
    return out


def _to_cnnc(role: str, value: np.ndarray) -> tuple[np.ndarray, str]:
    """A Keras tensor in cnnc's layout, and what was done to it."""
    if role in ("kernel", "pointwise_kernel") and value.ndim == 4:
        return np.ascontiguousarray(value.transpose(3, 2, 0, 1)), "HWIO -> OIHW"
    if role == "kernel" and value.ndim == 3:  # Conv1D (k, in, out)
        return np.ascontiguousarray(value.transpose(2, 1, 0)), "WIO -> OIW"
    if role == "depthwise_kernel" and value.ndim == 4:
        kh, kw, c, m = value.shape
        return np.ascontiguousarray(value.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw)), "HWCM -> (C*M)1HW"
    if role == "kernel" and value.ndim == 2:
        return np.ascontiguousarray(value.T), "transpose (in, out) -> (out, in)"
    return value, ""


def flatten_reorder(full: Graph) -> Callable[[np.ndarray, str], tuple[np.ndarray, str]]:
    """For the network `full`: (a tensor, its parameter's name) -> `reorder_flatten` of it, given the map
    its layer's input flattened (its input traced back through any flatten to the C x H x W before it)."""
    produced = {layer.output: layer for layer in full.layers}

    def source_shape(tensor: str) -> tuple[int, ...]:
        layer = produced.get(tensor)
        if layer is not None and layer.op == "flatten":
            return source_shape(layer.inputs[0])
        return full.input_shape if layer is None else layer.shape
    inputs = {p.name: source_shape(layer.inputs[0]) for layer in full.layers for p in layer.params if layer.inputs}
    return lambda value, name: reorder_flatten(value, inputs.get(name))


def reorder_flatten(value: np.ndarray, source_shape: tuple[int, ...] | None) -> tuple[np.ndarray, str]:
    """A dense weight [out, H*W*C] whose input Keras flattened channels-last, reordered to cnnc's
    channels-first flatten, when `source_shape` (the dense layer's input, C x H x W) has H*W > 1."""
    if source_shape is None or len(source_shape) != 3 or source_shape[1] * source_shape[2] == 1 \
            or value.ndim != 2 or value.shape[1] != int(np.prod(source_shape)):
        return value, ""
    c, h, w = source_shape
    out = value.reshape(value.shape[0], h, w, c).transpose(0, 3, 1, 2).reshape(value.shape[0], c * h * w)
    return np.ascontiguousarray(out), "rows from Keras's H, W, C flatten to C, H, W"


def keras_order(layers: list[Layer]) -> list[Layer]:
    """The network's layers in the order Keras 3 numbers a functional model's layers when it saves them
    (`conv2d`, `conv2d_1`, ... in `.weights.h5`): by depth, the longest path to the output, deepest first,
    and in the network's own order within a depth (Keras's traversal order, branches as written)."""
    consumers: dict[str, list[int]] = {}
    for i, layer in enumerate(layers):
        for t in layer.inputs:
            consumers.setdefault(t, []).append(i)
    depth = [0] * len(layers)
    for i in range(len(layers) - 1, -1, -1):  # layers are in data-flow order: consumers come later
        depth[i] = max((depth[j] + 1 for j in consumers.get(layers[i].output, ())), default=0)
    return [layers[i] for i in sorted(range(len(layers)), key=lambda i: (-depth[i], i))]
