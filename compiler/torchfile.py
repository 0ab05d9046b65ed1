"""PyTorch checkpoints (`torch.save` of a state dict: `.pth`, `.pt`, `.bin`) read without torch and without
running anything from the file.

Such a file is a zip archive: `ARCHIVE/data.pkl`, a pickle of the dict, whose tensors refer to raw
storages `ARCHIVE/data/KEY`. A pickle is a program: its GLOBAL opcodes name any Python callable and its
REDUCE opcodes call them, which is how a hostile file runs code on `torch.load`. The unpickler here admits
a short list of globals only (the containers and torch's tensor-rebuild functions and storage types,
each replaced by a numpy equivalent of our own) and refuses every other one before anything is called. So
no callable from the file is ever looked up, let alone run, and a hostile `.pth` fails with the name it
tried to use.
"""
from __future__ import annotations

import collections
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import bfloat16_to_float32
from .errors import WeightsError


# torch storage types -> numpy dtypes ("BFloat16" is read as uint16 and widened by hand)
_STORAGES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "<u2",
             "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
             "ByteStorage": "u1", "BoolStorage": "?"}
_WRAPPERS = ("state_dict", "model", "state_dict_ema", "model_ema", "module", "net", "params")
"""Keys under which training scripts (timm's, torchvision's references, Lightning) keep the state dict."""


class _Storage:
    """A storage, as its persistent id names it; its bytes are read when a tensor is rebuilt from it."""

    def __init__(self, archive: _Archive, key: str, dtype: str, numel: int):
        self.archive, self.key, self.dtype, self.numel = archive, key, dtype, numel

    def array(self) -> np.ndarray:
        return self.archive.storage(self.key, self.dtype, self.numel)


class _Archive:
    def __init__(self, path: Path, zf: zipfile.ZipFile):
        self.path, self.zf = path, zf
        pickles = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise WeightsError(f"`{path}` is a zip file but not a PyTorch checkpoint (no ARCHIVE/data.pkl)")
        self.root = pickles[0][: -len("data.pkl")]
        order = f"{self.root}byteorder"
        self.big = order in zf.namelist() and zf.read(order).strip() == b"big"
        self.cache: dict[str, np.ndarray] = {}

    def storage(self, key: str, dtype: str, numel: int) -> np.ndarray:
        if key not in self.cache:
            try:
                raw = self.zf.read(f"{self.root}data/{key}")
            except KeyError:
                raise WeightsError(f"`{self.path}`: storage `{key}` is missing from the archive") from None
            kind = np.dtype(dtype).newbyteorder(">" if self.big else "<") if np.dtype(dtype).itemsize > 1 \
                else np.dtype(dtype)
            if len(raw) < numel * kind.itemsize:
                raise WeightsError(f"`{self.path}`: storage `{key}` is shorter than its {numel} elements")
            self.cache[key] = np.frombuffer(raw, kind, numel)
        return self.cache[key]


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple, stride: tuple, *_rest: Any) -> np.ndarray:
    """torch._utils._rebuild_tensor_v2: a strided view of the storage, copied."""
    if not isinstance(storage, _Storage):
        raise WeightsError("a tensor refers to something that is not a storage")
    data = storage.array()
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    end = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else offset
    if offset < 0 or any(s < 0 for s in stride) or end > len(data):
        raise WeightsError(f"a tensor of shape {list(size)} reaches outside its storage")
    view = np.lib.stride_tricks.as_strided(data[offset:], size, [s * data.itemsize for s in stride],
                                           writeable=False)
    if storage.dtype == "<u2":
        return bfloat16_to_float32(view)
    return np.array(view)


def _rebuild_parameter(data: np.ndarray, *_rest: Any) -> np.ndarray:
    return data  # an nn.Parameter is its tensor


class _Ignored:
    """An object that is kept only to be dropped (argparse.Namespace in a training checkpoint's `args`)."""

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def __setstate__(self, state: Any) -> None:
        pass


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("argparse", "Namespace"): _Ignored,
    **{("torch", name): name for name in _STORAGES},
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, archive: _Archive):
        super().__init__(file)
        self.archive = archive

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise WeightsError(f"`{self.archive.path}` refers to `{module}.{name}`, which a checkpoint of tensors "
                               f"never needs; cnnc refuses it (a pickle can run any code it names) and runs "
                               f"nothing from the file", code="E0602")
        return _ALLOWED[(module, name)]

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and pid[1] in _STORAGES):
            raise WeightsError(f"`{self.archive.path}`: an unexpected storage reference {str(pid)[:80]}")
        _, kind, key, _location, numel = pid
        return _Storage(self.archive, str(key), _STORAGES[kind], int(numel))


def read(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The floating-point tensors of a PyTorch state dict file, by name, in the file's order (integer
    buffers such as BN's `num_batches_tracked` left out). A dict that wraps the state dict (`{"state_dict":
    ..., "epoch": ...}`) is unwrapped."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise WeightsError(f"`{path}` is not a PyTorch zip checkpoint; files saved by torch before 1.6, or with "
                           f"`_use_new_zipfile_serialization=False`, must be saved again with torch.save (or as "
                           f".safetensors)")
    try:
        with zipfile.ZipFile(path) as zf:
            archive = _Archive(path, zf)
            with zf.open(f"{archive.root}data.pkl") as f:
                obj = _Unpickler(f, archive).load()
    except WeightsError:
        raise
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, OverflowError) as e:
        raise WeightsError(f"cannot read `{path}` as a PyTorch checkpoint: {e}") from None
    return _state_dict(obj, path)


def _state_dict(obj: Any, path: Path) -> dict[str, np.ndarray]:
    for _ in range(3):  # {"state_dict": {...}} and the like, possibly nested once or twice
        if isinstance(obj, dict) and not any(isinstance(v, np.ndarray) for v in obj.values()):
            inner = next((obj[k] for k in _WRAPPERS if isinstance(obj.get(k), dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise WeightsError(f"`{path}` holds no state dict (a dict of named tensors); found {type(obj).__name__}")
    tensors = {k: v for k, v in obj.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f"}
    if not tensors:
        raise WeightsError(f"`{path}` holds no floating-point tensors")
    prefix = "module."  # nn.DataParallel's wrapper, on every name
    if all(k.startswith(prefix) for k in tensors):
        tensors = {k[len(prefix):]: v for k, v in tensors.items()}
    return {k: v.astype(np.float32, copy=False) for k, v in tensors.items()}
