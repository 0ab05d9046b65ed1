"""ONNX model -> an ONNX Runtime session on the best provider that actually initialises.

onnxruntime-gpu lists CUDAExecutionProvider even where the CUDA libraries are missing, and then prints
a long error log when a session tries it. `auto` probes CUDA with that output silenced, keeps it only
when the session really runs on it, and otherwise falls back to the CPU; `reason` says why.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
from typing import Literal

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


class Session:
    """An inference session. `provider` is the one that runs it: 'cuda' or 'cpu'."""

    def __init__(self, model: bytes | str | os.PathLike, provider: Provider = "auto", threads: int = 0):
        import onnxruntime as ort

        ort.set_default_logger_severity(3)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        model = os.fspath(model) if not isinstance(model, bytes) else model
        self.reason = ""
        session = self._try_cuda(ort, model, options, provider) if provider in ("auto", "cuda") else None
        if session is None:
            session = ort.InferenceSession(model, options, providers=[_NAMES["cpu"]])
        self._session = session
        self.provider = "cuda" if self._session.get_providers()[0] == _NAMES["cuda"] else "cpu"
        self.input = self._session.get_inputs()[0]
        self.output_names = [o.name for o in self._session.get_outputs()]

    def _try_cuda(self, ort, model, options, provider: Provider):
        if _NAMES["cuda"] not in ort.get_available_providers():
            self.reason = "this onnxruntime build has no CUDA provider"
        else:
            try:
                with _quiet_stderr():
                    if hasattr(ort, "preload_dlls"):  # CUDA/cuDNN installed as pip packages (onnxruntime >= 1.21)
                        with contextlib.redirect_stdout(io.StringIO()):  # it prints what it cannot find
                            ort.preload_dlls()
                    session = ort.InferenceSession(model, options, providers=[_NAMES["cuda"], _NAMES["cpu"]])
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
