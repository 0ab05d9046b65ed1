"""cnnc's Triton model repositories served by a real `tritonserver` (Triton 2.51, from the nvidia-pytriton wheel).

In the environment of its own that tests/serve/setup.sh makes (numpy < 2), as .ci/run does:
    tests/serve/setup.sh && .venv-serve/bin/pytest tests/serve -n 0
Skipped, saying why, anywhere else (the default suite's environment has no pytriton), and a failure
instead when CNNC_SERVE_REQUIRED is set. One server, on 127.0.0.1 only, serves the module: the
Python-backend entry of `lenet5` (loaded at start) beside the default ONNX Runtime entry of the same
model, which this server has no backend for. The oracle is ONNX Runtime run directly, in this process,
on the `model.onnx` the server was given.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import serving  # noqa: E402

pytestmark = pytest.mark.serve
if serving.missing() and os.environ.get("CNNC_SERVE_REQUIRED"):  # .ci/run: a missing server is a failure
    pytest.fail(serving.missing(), pytrace=False)
if serving.missing():
    pytest.skip(serving.missing(), allow_module_level=True)

import onnxruntime as ort  # noqa: E402
from google.protobuf import json_format, text_format  # noqa: E402
from tritonclient.grpc import model_config_pb2  # noqa: E402  Triton's own ModelConfig message

NET, PYTHON, ORT = "lenet5", "lenet5", "lenet5_onnxruntime"
TOLERANCE = 1e-5
CLIENTS, REQUESTS, LOAD_TIMEOUT_S = 8, 50, 180


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("serve")
    repo = base / "models"
    repo.mkdir()
    for backend, name in (("python", PYTHON), ("onnxruntime", ORT)):  # onnxruntime: the default, production entry
        command = [str(Path(sys.executable).parent / "cnnc"), "export-triton", NET, str(base / backend), "--seed", "7"]
        subprocess.run(command + (["--backend", backend] if backend == "python" else []), check=True,
                       capture_output=True)
        shutil.move(base / backend / NET, repo / name)
    config = repo / ORT / "config.pbtxt"  # one repository, so the ONNX Runtime entry takes another name
    config.write_text(config.read_text().replace(f'name: "{NET}"', f'name: "{ORT}"'))
    return repo


@pytest.fixture(scope="module")
def server(repository, tmp_path_factory):
    server = serving.Server(repository, tmp_path_factory.mktemp("server"), [PYTHON])
    with server:
        yield server
    assert server.process is not None and server.process.returncode is not None, "tritonserver still running"
    assert serving.processes(server.prefix) == []  # no stub outlives it
    left = serving.shm_regions(server.prefix)
    for name in left:
        (Path("/dev/shm") / name).unlink()
    assert not left, f"tritonserver left shared-memory regions: {left}"


@pytest.fixture(scope="module")
def session(repository):
    return ort.InferenceSession(str(repository / PYTHON / "1" / "model.onnx"), providers=["CPUExecutionProvider"])


def _subset_mismatches(wrote, served, path: str = "") -> list[str]:
    """Where `served` (the server's JSON) differs from `wrote`, for every field `wrote` has."""
    if isinstance(wrote, dict):
        if not isinstance(served, dict):
            return [f"{path}: {served!r} is not a message"]
        return [m for k, v in wrote.items() for m in _subset_mismatches(v, served.get(k), f"{path}.{k}")]
    if isinstance(wrote, list):
        if not isinstance(served, list) or len(served) != len(wrote):
            return [f"{path}: {served!r} != {wrote!r}"]
        return [m for i, (a, b) in enumerate(zip(wrote, served)) for m in _subset_mismatches(a, b, f"{path}[{i}]")]
    return [] if str(wrote) == str(served) else [f"{path}: served {served!r}, cnnc wrote {wrote!r}"]


def test_the_server_listens_on_loopback_and_loads_the_python_entry(server):
    assert server.get(f"/v2/models/{PYTHON}/ready")[0] == 200
    assert f"Started HTTPService at 127.0.0.1:{server.port}" in server.log.read_text()
    assert "GRPCInferenceService" not in server.log.read_text()  # gRPC is off, and so are metrics


def test_the_configuration_the_server_reports_is_what_cnnc_wrote(server, repository):
    text = (repository / PYTHON / "config.pbtxt").read_text()
    wrote = json_format.MessageToDict(text_format.Parse(text, model_config_pb2.ModelConfig()),
                                      preserving_proto_field_name=True)
    assert {"name", "backend", "max_batch_size", "input", "output", "dynamic_batching", "instance_group"} <= set(wrote)
    status, served = server.get(f"/v2/models/{PYTHON}/config")
    assert status == 200
    assert _subset_mismatches(wrote, served) == []
    assert served["backend"] == "python" and served["default_model_filename"] == "model.py"


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("batch", [1, 3])
def test_answers_equal_onnxruntime_run_directly(server, session, batch, binary):
    x = np.random.default_rng(batch).standard_normal((batch, 1, 32, 32)).astype(np.float32)
    conn = server.connection()
    try:
        got = serving.infer(conn, PYTHON, {"input": x}, ["output"], binary=binary)["output"]
    finally:
        conn.close()
    want = session.run(["output"], {"input": x})[0]
    assert got.shape == want.shape == (batch, 10)
    assert float(np.abs(got - want).max()) <= TOLERANCE


def _client(server, inputs: list[np.ndarray]) -> list[np.ndarray]:
    conn = server.connection(timeout=30)
    try:
        return [serving.infer(conn, PYTHON, {"input": x}, ["output"])["output"] for x in inputs]
    finally:
        conn.close()


def test_concurrent_clients_get_every_answer_right_and_the_batcher_forms_batches(server, session):
    rng = np.random.default_rng(0)
    # batch sizes 1, 2, 3 in turn, every input different: a response split at the wrong row cannot match
    work = [[rng.standard_normal((1 + (c + r) % 3, 1, 32, 32)).astype(np.float32) for r in range(REQUESTS)]
            for c in range(CLIENTS)]
    before = server.get(f"/v2/models/{PYTHON}/stats")[1]["model_stats"][0]
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(_client, server, inputs) for inputs in work]
        done, not_done = wait(futures, timeout=LOAD_TIMEOUT_S)
    assert not not_done, f"{len(not_done)} clients still running after {LOAD_TIMEOUT_S} s"
    errors = [repr(f.exception()) for f in futures if f.exception()]
    assert errors == []
    assert [len(f.result()) for f in futures] == [REQUESTS] * CLIENTS  # none lost
    mismatched = [(c, r) for c, f in enumerate(futures) for r, (x, got) in enumerate(zip(work[c], f.result()))
                  if got.shape != (len(x), 10)
                  or np.abs(got - session.run(["output"], {"input": x})[0]).max() > TOLERANCE]
    assert mismatched == []
    after = server.get(f"/v2/models/{PYTHON}/stats")[1]["model_stats"][0]
    requests, samples = CLIENTS * REQUESTS, sum(len(x) for inputs in work for x in inputs)
    executions = int(after["execution_count"]) - int(before["execution_count"])
    assert int(after["inference_count"]) - int(before["inference_count"]) == samples
    assert int(after["inference_stats"]["fail"]["count"]) == int(before["inference_stats"]["fail"]["count"])
    assert executions < requests, "the dynamic batcher never ran two requests together"
    assert max(int(b["batch_size"]) for b in after["batch_stats"]) > 3  # more than any one request holds


def test_the_production_entry_fails_to_load_only_for_want_of_the_onnxruntime_backend(server, repository):
    # a control: the same entry with a misspelt field fails on its configuration, with another reason
    broken = repository / f"{ORT}_broken"
    shutil.copytree(repository / ORT, broken)
    config = broken / "config.pbtxt"
    config.write_text(config.read_text().replace(f'name: "{ORT}"', f'name: "{ORT}_broken"')
                      .replace("max_batch_size:", "max_batch:"))
    status, body = server.post(f"/v2/repository/models/{ORT}/load")
    assert status == 400
    broken_status, broken_body = server.post(f"/v2/repository/models/{ORT}_broken/load")
    assert broken_status != 200, broken_body
    states = {m["name"]: m for m in server.post("/v2/repository/index")[1]}
    assert states[PYTHON]["state"] == "READY"
    assert states[ORT]["state"] == "UNAVAILABLE"
    assert "unable to find backend library for backend 'onnxruntime'" in states[ORT]["reason"], states[ORT]
    # the control's configuration is refused by the server's own parser, and the production one's is not
    assert states.get(f"{ORT}_broken", {}).get("state") != "READY" and "failed to poll" in broken_body["error"]
    log = server.log.read_text()
    assert 'has no field named "max_batch"' in log and f"Poll failed for model directory '{ORT}_broken'" in log
    assert f"Poll failed for model directory '{ORT}'" not in log
    assert server.get(f"/v2/models/{PYTHON}/ready")[0] == 200  # the served model is untouched
