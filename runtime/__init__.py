"""The runtime stage: run an ONNX model in ONNX Runtime, on CUDA when it really works, else the CPU."""
from .session import Session, RuntimeUnavailable

__all__ = ["Session", "RuntimeUnavailable"]
