"""An ONNX model -> an entry of an NVIDIA Triton Inference Server model repository.

`cnnc export-triton NET REPO` writes `REPO/NAME/1/model.onnx` and `REPO/NAME/config.pbtxt`, the model
configuration in protobuf text format as Triton documents it (docs/user_guide/model_configuration.md of
triton-inference-server/server): the `onnxruntime` backend, `max_batch_size` with the batch axis left out
of every `dims`, each input and output with its name, data type and shape, the dynamic batcher, and one
instance on the GPU or the CPU. The names, types and dims are read from the ONNX model itself, so the
configuration cannot disagree with the model it sits beside.

With `--backend python` the same configuration names Triton's Python backend instead, and `1/model.py`
(the template `triton_model.py.txt`, copied as is) runs `1/model.onnx` with ONNX Runtime inside the
server: a server without the ONNX Runtime backend (PyTriton's) can then serve the model.
"""
from __future__ import annotations

import os
from pathlib import Path
from importlib import resources
from typing import TYPE_CHECKING, Literal

from .errors import CnncError
from .files import write_text

if TYPE_CHECKING:
    import onnx

Backend = Literal["onnxruntime", "python"]
# Triton's ONNX Runtime backend (`platform: "onnxruntime_onnx"` is the older spelling), or its Python backend
BACKENDS: tuple[Backend, ...] = ("onnxruntime", "python")
BACKEND: Backend = "onnxruntime"
PYTHON_MODEL = "triton_model.py.txt"  # package data: the Python backend's model.py
MAX_QUEUE_DELAY_US = 100  # the batcher may hold a request this long to fill a batch (Triton's own example)

# ONNX TensorProto element types -> Triton model-configuration data types (Triton's datatype table)
DATA_TYPES = {1: "TYPE_FP32", 2: "TYPE_UINT8", 3: "TYPE_INT8", 4: "TYPE_UINT16", 5: "TYPE_INT16",
              6: "TYPE_INT32", 7: "TYPE_INT64", 8: "TYPE_STRING", 9: "TYPE_BOOL", 10: "TYPE_FP16",
              11: "TYPE_FP64", 12: "TYPE_UINT32", 13: "TYPE_UINT64", 16: "TYPE_BF16"}


def config(model: onnx.ModelProto, name: str, max_batch_size: int = 8, gpu: bool = False,
           comment: str = "", backend: Backend = BACKEND) -> str:
    """The `config.pbtxt` text for `model`, served as `name` by `backend`. Every input and output must
    have a symbolic first (batch) axis and fixed other axes, as cnnc's models do."""
    if max_batch_size < 1:
        raise CnncError(f"--max-batch must be at least 1, got {max_batch_size}")
    if backend not in BACKENDS:
        raise CnncError(f"unknown Triton backend `{backend}`; expected one of {', '.join(BACKENDS)}")
    initializers = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    lines = [f"# {line}" for line in comment.splitlines()]
    lines += [f'name: "{_escape(name)}"', f'backend: "{backend}"', f"max_batch_size: {max_batch_size}"]
    lines += _tensors("input", inputs) + _tensors("output", model.graph.output)
    lines += ["dynamic_batching {", f"  max_queue_delay_microseconds: {MAX_QUEUE_DELAY_US}", "}",
              "instance_group [", "  {", "    count: 1", f"    kind: {'KIND_GPU' if gpu else 'KIND_CPU'}", "  }",
              "]"]
    return "\n".join(lines) + "\n"


def _tensors(kind: str, values) -> list[str]:
    entries = []
    for v in values:
        entries.append(["  {", f'    name: "{_escape(v.name)}"', f"    data_type: {_data_type(v)}",
                        f"    dims: [ {', '.join(str(d) for d in _dims(v))} ]", "  }"])
    lines = [f"{kind} ["]
    for i, entry in enumerate(entries):
        lines += entry[:-1] + [entry[-1] + ("," if i < len(entries) - 1 else "")]
    return lines + ["]"]


def _data_type(value) -> str:
    elem = value.type.tensor_type.elem_type
    if elem not in DATA_TYPES:
        raise CnncError(f"`{value.name}` has ONNX element type {elem}, which Triton's ONNX Runtime backend "
                        f"does not take")
    return DATA_TYPES[elem]


def _dims(value) -> list[int]:
    """The shape without its batch axis, which `max_batch_size` stands for."""
    dims = list(value.type.tensor_type.shape.dim)
    if not dims or dims[0].HasField("dim_value"):
        raise CnncError(f"`{value.name}` has no symbolic batch axis; Triton's batching needs one")
    out = []
    for d in dims[1:]:
        out.append(d.dim_value if d.HasField("dim_value") else -1)  # -1: a variable-size axis
    if not out:
        raise CnncError(f"`{value.name}` is only a batch axis; Triton needs at least one more dimension")
    return out


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def export(model: onnx.ModelProto, name: str, repository: str | os.PathLike, max_batch_size: int = 8,
           gpu: bool = False, comment: str = "", backend: Backend = BACKEND) -> Path:
    """Write `REPOSITORY/NAME/1/model.onnx` and `REPOSITORY/NAME/config.pbtxt` (and `1/model.py` for the
    Python backend); returns the model's folder.

    The configuration is checked before anything is written, and each file is written atomically.
    """
    from .api import save

    text = config(model, name, max_batch_size, gpu, comment, backend)
    folder = Path(repository) / name
    if Path(repository).exists() and not Path(repository).is_dir():
        raise CnncError(f"`{repository}` is a file; give a folder for the model repository")
    try:
        (folder / "1").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CnncError(f"cannot create `{folder / '1'}`: {e.strerror or e}") from None
    save(model, folder / "1" / "model.onnx")
    if backend == "python":
        _write_text(folder / "1" / "model.py", python_model())
    _write_text(folder / "config.pbtxt", text)
    return folder


def python_model() -> str:
    """The Python backend's `model.py`: the same text for every model (it reads names from config.pbtxt)."""
    return resources.files("cnnc").joinpath(PYTHON_MODEL).read_text(encoding="utf-8")


def _write_text(path: Path, text: str) -> None:
    write_text(path, text)
