from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.dsl.document import load_text


def net(body: str, input_shape: str = "[3, 8, 8]", extra: str = "") -> cnnc.compiler.ir.Graph:
    """Build a small network from a `layers:` body (and optional extra top-level YAML)."""
    return cnnc.build(doc(body, input_shape, extra))


def doc(body: str, input_shape: str = "[3, 8, 8]", extra: str = ""):
    text = f"network: t\ninput: {input_shape}\n{extra}layers:\n{body}"
    return load_text(text, "t.yaml")


def run_onnx(model, x: np.ndarray) -> np.ndarray:
    return cnnc.Session(model.SerializeToString(), "cpu").run(x)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
