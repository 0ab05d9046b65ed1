"""The runtime stage: run an ONNX model in ONNX Runtime, on CUDA when it really works, else the CPU.

`bench` (latency and throughput) and `quantize` (int8 for CPUs) are imported by their commands only."""
from .session import Session, RuntimeUnavailable

__all__ = ["Session", "RuntimeUnavailable"]
