"""The runtime stage: run an ONNX model in ONNX Runtime, on CUDA when it really works, else the CPU.

`bench` (latency and throughput) and `quantize` (int8 for CPUs) are imported by their commands only."""
from .errors import BenchError, QuantizeError, RuntimeUnavailable
from .session import Session

__all__ = ["Session", "RuntimeUnavailable", "BenchError", "QuantizeError"]
