"""ONNX model -> an ONNX Runtime session on the best provider that actually initialises.

onnxruntime-gpu lists CUDAExecutionProvider even where the CUDA libraries are missing, and then prints
a long error log when a session tries it. `auto` probes CUDA with that output silenced, keeps it only
when the session really runs on it, and otherwise falls back to the CPU; `reason` says why.

Sessions are lean by default (`lean=False` turns it off): a single-file model given by its path is
loaded with its weights read in place from the file (runtime/inplace.py), so the parsed protobuf never
holds a second copy of them; and on glibc, whose malloc otherwise keeps the memory ONNX Runtime frees
while it builds a session (the protobuf's copy, the tensors graph optimisation replaces, prepacking's
originals), large blocks are mapped and unmapped one by one while the session is built, and the heap is
trimmed once it is. The process then holds the session's live memory, no more: benchmarks/RESULTS.md, "Session
memory", measures each factor.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import os
import sys
from typing import Iterator, Literal

import numpy as np

from .errors import RuntimeUnavailable

Provider = Literal["auto", "cpu", "cuda"]
_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (native libraries write there directly)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _in_place(path: str, options) -> bytes | str:
    """The model at `path` with its weights referred to in place (see the module doc), or the path
    itself when the file cannot be read that way (ONNX Runtime then reports what is wrong with it)."""
    from .inplace import NotAModel, in_place
    try:
        model = in_place(path)
    except (OSError, NotAModel):
        return path
    folder = os.path.dirname(os.path.abspath(path))
    options.add_session_config_entry("session.model_external_initializers_file_folder_path", folder)
    return model


def _create(ort, source: bytes | str, model: bytes | str, options, providers: list[str]):
    """A session over `source`; should ONNX Runtime refuse the in-place form, over the model as given."""
    try:
        return ort.InferenceSession(source, options, providers=providers)
    except Exception:  # onnxruntime raises its own Fail/InvalidGraph types
        if source is model:
            raise
        return ort.InferenceSession(model, options, providers=providers)


_M_MMAP_THRESHOLD = -3


@functools.cache
def _libc():
    """glibc's malloc controls, or None (another C library, another OS)."""
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except (OSError, TypeError):  # TypeError: Windows has no process-wide symbol table to open
        return None


def _map_large_blocks(on: bool) -> None:
    """On: blocks of 128 KiB and more mapped on their own, and unmapped when freed (glibc's starting
    threshold, which it otherwise raises to the size of each large block freed, up to 32 MiB: then ONNX
    Runtime's freed weight copies stay in the heap and the next ones are allocated beside them). Off: the
    threshold where glibc's own rises to, 32 MiB, so that what runs afterwards allocates as it would."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, (128 << 10) if on else (32 << 20))


def _trim_heap() -> None:
    """Free heap pages handed back to the system (glibc keeps them otherwise)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@contextlib.contextmanager
def _lean_heap(lean: bool) -> Iterator[None]:
    """While a session is built, large blocks mapped one by one; afterwards, the heap trimmed."""
    if not lean:
        yield
        return
    _map_large_blocks(True)
    try:
        yield
    finally:
        _map_large_blocks(False)
        _trim_heap()


class Session:
    """An inference session. `provider` is the one that runs it: 'cuda' or 'cpu'. `lean`: load the model
    with its weights in place and hand freed memory back (the module doc says how; on by default)."""

    def __init__(self, model: bytes | str | os.PathLike, provider: Provider = "auto", threads: int = 0,
                 lean: bool = True):
        import onnxruntime as ort

        ort.set_default_logger_severity(3)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        model = os.fspath(model) if not isinstance(model, bytes) else model
        self.reason = ""
        source = _in_place(model, options) if lean and isinstance(model, str) else model
        with _lean_heap(lean):
            session = self._try_cuda(ort, source, model, options, provider) if provider in ("auto", "cuda") else None
            if session is None:
                session = _create(ort, source, model, options, [_NAMES["cpu"]])
        self._session = session
        self.provider = "cuda" if self._session.get_providers()[0] == _NAMES["cuda"] else "cpu"
        self.input = self._session.get_inputs()[0]
        self.output_names = [o.name for o in self._session.get_outputs()]

    def _try_cuda(self, ort, source, model, options, provider: Provider):
        if _NAMES["cuda"] not in ort.get_available_providers():
            self.reason = "this onnxruntime build has no CUDA provider"
        else:
            try:
                with _quiet_stderr():
                    if hasattr(ort, "preload_dlls"):  # CUDA/cuDNN installed as pip packages (onnxruntime >= 1.21)
                        with contextlib.redirect_stdout(io.StringIO()):  # it prints what it cannot find
                            ort.preload_dlls()
                    session = _create(ort, source, model, options, [_NAMES["cuda"], _NAMES["cpu"]])
                if session.get_providers()[0] == _NAMES["cuda"]:
                    return session
                self.reason = "CUDA did not initialise (no GPU, or CUDA/cuDNN libraries missing)"
            except Exception as e:  # onnxruntime raises its own Fail/RuntimeException types
                self.reason = f"CUDA failed: {str(e).splitlines()[0]}"
        if provider == "cuda":
            raise RuntimeUnavailable(f"--provider cuda: {self.reason}")
        return None

    @property
    def inner(self):
        """The underlying `onnxruntime.InferenceSession` (for I/O binding, profiling, ...)."""
        return self._session

    @property
    def metadata(self) -> dict[str, str]:
        """The model's metadata properties (cnnc records its version, the network and the seed)."""
        return dict(self._session.get_modelmeta().custom_metadata_map)

    @property
    def input_shape(self) -> list:
        return list(self.input.shape)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Run the model on a batch; returns the first output."""
        return self._session.run(self.output_names[:1], {self.input.name: x})[0]

    def run_all(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self._session.run(None, {self.input.name: x})))
