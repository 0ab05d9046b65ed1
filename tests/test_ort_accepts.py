"""Every model cnnc writes loads and runs: each op's every argument at its boundary values, on a small
input. What cnnc accepts, ONNX Runtime must load and run to finite outputs; what ONNX Runtime would refuse
(a pool's padding as large as its window, LRN's alpha or beta at 0), cnnc refuses first, at the call."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import cnnc
from cnnc.compiler.ops import OPS
from cnnc.dsl.document import load_text
from cnnc.errors import CnncError

ort = pytest.importorskip("onnxruntime")

BOUNDARIES = {"float": [0, -1, -0.5, 0.5, 1e30, 1e-30], "positive": [1e-30, 1e30], "int": [1, 2, 3, 1000],
              "index": [0, 1, 1000], "rate": [0, 0.999], "size": ["1x1", "2x2", "9x9", "1x100"],
              "kernel": ["1x1", "2x2", "8x8", "9x9"], "padding": [0, 1, 4, "[0, 5]", "[1, 2, 3, 4]", "same"],
              "bool": ["true", "false"]}
REQUIRED = {"int": 4, "float": 1.0, "size": "3x3", "kernel": "3x3", "positive": 1.0, "index": 0, "rate": 0.1,
            "table": "[[0]]"}


def calls() -> list[str]:
    out = []
    for name, op in sorted(OPS.items()):
        for arg in op.args:
            others = [f"{a.name}={REQUIRED.get(a.kind, 1)}" for a in op.args if a.default is ... and a is not arg]
            out += [f"{name}({', '.join([*others, f'{arg.name}={v}'])})" for v in BOUNDARIES.get(arg.kind, [])]
    return out


def test_what_cnnc_compiles_onnx_runtime_loads_and_runs():
    compiled, refused, failures = 0, 0, []
    x = np.random.default_rng(0).random((2, 4, 8, 8), dtype=np.float32)
    warnings.simplefilter("ignore")
    ort.set_default_logger_severity(4)
    for call in calls():
        text = f'network: t\ninput: [4, 8, 8]\nlayers:\n  - "{call}"\n'
        try:
            model = cnnc.compile(load_text(text, "t.yaml"))
        except CnncError as e:
            assert e.loc is not None, (call, str(e))  # refused where it is written
            refused += 1
            continue
        compiled += 1
        try:
            session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            out = session.run(None, {session.get_inputs()[0].name: x})[0]
            if not np.isfinite(out).all():
                failures.append(f"{call}: non-finite output")
        except Exception as e:  # noqa: BLE001 - any refusal by ONNX Runtime is the failure looked for
            failures.append(f"{call}: {str(e).splitlines()[0][:160]}")
    assert compiled > 100 and refused > 20, (compiled, refused)
    assert not failures, failures
