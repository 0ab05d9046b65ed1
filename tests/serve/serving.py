"""A real Triton Inference Server, from the nvidia-pytriton wheel, started on loopback and stopped by its pid.

Used by tests/serve and benchmarks/triton_load.py, in the environment tests/serve/setup.sh makes. What
the wheel needs (issue 15): its `tritonserver` binary's library folder `nvidia_pytriton.libs` on
LD_LIBRARY_PATH; a backend directory holding `python/{libtriton_python.so, triton_python_backend_utils.py,
triton_python_backend_stub}` (the stub for this interpreter's Python, from `python_backend_stubs/3.X`); the
interpreter's LIBDIR on LD_LIBRARY_PATH (the stub embeds libpython); this environment's `python3` first on
PATH (the stub finds its environment through it and ignores PYTHONPATH); numpy < 2.

The client speaks the KServe v2 HTTP protocol with http.client: JSON tensors, or the binary tensor data
extension (a JSON header of `Inference-Header-Content-Length` bytes, then the raw tensors).
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

READY_WITHIN_S = 60.0
SHM_PREFIX = "cnnc_serve"  # the Python backend's shared-memory regions are /dev/shm/<prefix>...


def missing() -> str:
    """Why a server cannot be started here, or "" when it can."""
    try:
        import pytriton  # noqa: F401
    except ImportError:
        return "nvidia-pytriton is not installed: run tests/serve/setup.sh, then .venv-serve/bin/pytest tests/serve"
    if int(np.__version__.split(".")[0]) >= 2:
        return f"numpy {np.__version__} is here; Triton's Python backend stub needs numpy < 2 (tests/serve/setup.sh)"
    paths = _paths()
    absent = [str(p) for p in paths.values() if not p.exists()]
    return f"the pytriton wheel lacks {', '.join(absent)}" if absent else ""


def _paths() -> dict[str, Path]:
    import pytriton

    root = Path(pytriton.__file__).parent / "tritonserver"
    python = root / "backends" / "python"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    libs = Path(pytriton.__file__).parent.parent / "nvidia_pytriton.libs"
    return {"binary": root / "bin" / "tritonserver", "libs": libs,
            "backend": python / "libtriton_python.so", "utils": python / "triton_python_backend_utils.py",
            "stub": root / "python_backend_stubs" / version / "triton_python_backend_stub"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shm_regions(prefix: str) -> list[str]:
    return sorted(p.name for p in Path("/dev/shm").iterdir() if p.name.startswith(prefix))


def processes(marker: str, grace_s: float = 10.0) -> list[str]:
    """The command lines of live processes naming `marker` (the server, and its stubs, which are given
    the shared-memory region's name), after waiting up to `grace_s` for them to go."""
    deadline = time.monotonic() + grace_s
    while True:
        found = []
        for proc in Path("/proc").iterdir():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                status = (proc / "status").read_text()
            except OSError:
                continue
            if marker in cmd and "(zombie)" not in status:
                found.append(f"{proc.name}: {cmd[:200]}")
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


class Server:
    """`with Server(repository, workdir, models) as server:` a tritonserver serving HTTP on 127.0.0.1 only
    (gRPC and metrics off), in explicit model-control mode with `models` loaded at start, READY within
    60 s or an error carrying its log; on leaving, stopped by its pid (SIGTERM, then SIGKILL after 30 s)."""

    def __init__(self, repository: Path, workdir: Path, models: list[str]) -> None:
        self.repository, self.workdir, self.models = repository, workdir, models
        self.port = free_port()
        self.prefix = f"{SHM_PREFIX}_{os.getpid()}_{self.port}_"
        self.log = workdir / "tritonserver.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        paths = _paths()
        backends = self.workdir / "backends"
        (backends / "python").mkdir(parents=True, exist_ok=True)
        for name in ("backend", "utils", "stub"):
            link = backends / "python" / paths[name].name
            if not link.exists():
                link.symlink_to(paths[name])
        return [str(paths["binary"]), f"--model-repository={self.repository}", f"--backend-directory={backends}",
                "--model-control-mode=explicit", *[f"--load-model={m}" for m in self.models],
                "--http-address=127.0.0.1", f"--http-port={self.port}", "--allow-grpc=false",
                "--allow-metrics=false", f"--backend-config=python,shm-region-prefix-name={self.prefix}",
                "--exit-timeout-secs=20", "--log-verbose=0"]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        libs = [str(_paths()["libs"]), str(sysconfig.get_config_var("LIBDIR"))]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libs + [p for p in [env.get("LD_LIBRARY_PATH", "")] if p])
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        return env

    def __enter__(self) -> Server:
        command = self.command()
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.environment(),
                                            stdin=subprocess.DEVNULL)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_WITHIN_S
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tritonserver exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if self.get("/v2/health/ready", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"tritonserver not READY within {READY_WITHIN_S:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM by pid (Triton unloads its models, the stubs free their regions), SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    # ---- HTTP ----------------------------------------------------------------------------------------
    def connection(self, timeout: float = 30) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, path: str, timeout: float = 30) -> tuple[int, dict]:
        return _request(self.connection(timeout), "GET", path)

    def post(self, path: str, body: dict | None = None, timeout: float = 60) -> tuple[int, dict]:
        return _request(self.connection(timeout), "POST", path, json.dumps(body or {}).encode())


def _request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else {}
    finally:
        conn.close()


def infer(conn: http.client.HTTPConnection, model: str, inputs: dict[str, np.ndarray], outputs: list[str],
          binary: bool = True) -> dict[str, np.ndarray]:
    """One KServe v2 inference request on an open (keep-alive) connection; raises on any error status."""
    if binary:
        raw = [np.ascontiguousarray(a, dtype=np.float32).tobytes() for a in inputs.values()]
        header = {"inputs": [{"name": n, "shape": list(a.shape), "datatype": "FP32",
                              "parameters": {"binary_data_size": len(r)}} for (n, a), r in zip(inputs.items(), raw)],
                  "outputs": [{"name": n, "parameters": {"binary_data": True}} for n in outputs]}
        head = json.dumps(header).encode()
        body = head + b"".join(raw)
        headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))}
    else:
        header = {"inputs": [{"name": n, "shape": list(a.shape), "datatype": "FP32",
                              "data": a.astype(np.float32).ravel().tolist()} for n, a in inputs.items()],
                  "outputs": [{"name": n, "parameters": {"binary_data": False}} for n in outputs]}
        body, headers = json.dumps(header).encode(), {"Content-Type": "application/json"}
    conn.request("POST", f"/v2/models/{model}/infer", body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {data[:500]!r}")
    length = int(response.getheader("Inference-Header-Content-Length") or len(data))
    result, offset, arrays = json.loads(data[:length]), length, {}
    for out in result["outputs"]:
        shape = [int(d) for d in out["shape"]]
        if "data" in out:
            arrays[out["name"]] = np.asarray(out["data"], dtype=np.float32).reshape(shape)
        else:
            size = int(out["parameters"]["binary_data_size"])
            arrays[out["name"]] = np.frombuffer(data[offset:offset + size], dtype=np.float32).reshape(shape)
            offset += size
    return arrays
