"""A cnnc model served by a real Triton server under concurrent load, against ONNX Runtime in-process.

Run by hand (not a test), from the repository root, in the environment tests/serve/setup.sh makes:

    tests/serve/setup.sh && .venv-serve/bin/python benchmarks/triton_load.py [--network lenet5]
        [--clients 8] [--requests 200] [--batch 1] [--rounds 2]

`cnnc export-triton NET --backend python` writes the entry; tests/serve/serving.py starts PyTriton's
`tritonserver` (2.51, Python backend, CPU instance, dynamic batching) on 127.0.0.1. The same model, the same
inputs and the same number of concurrent clients then run two ways, taking turns round by round:
`direct`, threads sharing one ONNX Runtime session in this process (the floor: no transport, no batcher),
and `triton`, threads each holding a keep-alive HTTP connection and sending KServe v2 binary requests.
Every answer is checked against ONNX Runtime (max |diff| <= 1e-5). Prints requests/s, p50 and p99 latency,
the batcher's mean executed batch, and a Markdown table for benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "serve"))
import serving  # noqa: E402

TOLERANCE = 1e-5


class Direct:
    """Threads sharing one ONNX Runtime session (its `run` is thread-safe)."""

    def __init__(self, session: ort.InferenceSession, input_name: str, output: str) -> None:
        self.session, self.input, self.output = session, input_name, output

    def open(self) -> None:
        return None

    def run(self, state: None, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.output], {self.input: x})[0]

    def close(self, state: None) -> None:
        pass


class Triton:
    """Threads each holding one keep-alive HTTP connection, sending KServe v2 binary requests."""

    def __init__(self, server: serving.Server, model: str, input_name: str, output: str) -> None:
        self.server, self.model, self.input, self.output = server, model, input_name, output

    def open(self):
        return self.server.connection(timeout=60)

    def run(self, conn, x: np.ndarray) -> np.ndarray:
        return serving.infer(conn, self.model, {self.input: x}, [self.output])[self.output]

    def close(self, conn) -> None:
        conn.close()


def run_clients(way, work: list[list[np.ndarray]]) -> tuple[float, list[float], list[np.ndarray]]:
    """Wall seconds, per-request latencies (s) and the answers, one thread per list of `work`."""
    def client(inputs: list[np.ndarray]) -> list[tuple[float, np.ndarray]]:
        state, out = way.open(), []
        try:
            for x in inputs:
                start = time.perf_counter()
                y = way.run(state, x)
                out.append((time.perf_counter() - start, y))
            return out
        finally:
            way.close(state)

    start = time.perf_counter()
    with ThreadPoolExecutor(len(work)) as pool:
        results = list(pool.map(client, work, timeout=600))
    wall = time.perf_counter() - start
    return wall, [t for r in results for t, _ in r], [y for r in results for _, y in r]


def summary(name: str, wall: float, latencies: list[float]) -> dict:
    ms = np.asarray(latencies) * 1e3
    return {"way": name, "rps": len(latencies) / wall, "p50": float(np.percentile(ms, 50)),
            "p99": float(np.percentile(ms, 99)), "n": len(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--network", default="lenet5")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200, help="per client, per round")
    parser.add_argument("--batch", type=int, default=1, help="the batch of each request")
    parser.add_argument("--max-batch", type=int, default=8, help="the entry's max_batch_size")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if serving.missing():
        raise SystemExit(serving.missing())
    import cnnc
    from cnnc import triton

    model = cnnc.compile(args.network)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "models"
        triton.export(model, args.network, repo, args.max_batch, backend="python")
        onnx_path = repo / args.network / "1" / "model.onnx"
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        input_name, output = session.get_inputs()[0].name, session.get_outputs()[0].name
        shape = [args.batch] + [int(d) for d in session.get_inputs()[0].shape[1:]]
        rng = np.random.default_rng(0)
        work = [[rng.standard_normal(shape).astype(np.float32) for _ in range(args.requests)]
                for _ in range(args.clients)]
        want = [session.run([output], {input_name: x})[0] for inputs in work for x in inputs]
        rows: list[dict] = []
        with serving.Server(repo, Path(tmp), [args.network]) as server:
            ways = {"direct": Direct(session, input_name, output),
                    "triton": Triton(server, args.network, input_name, output)}
            run_clients(ways["triton"], [inputs[:10] for inputs in work])  # warm-up
            for _ in range(args.rounds):
                for name, way in ways.items():
                    before = server.get(f"/v2/models/{args.network}/stats")[1]["model_stats"][0]
                    wall, latencies, got = run_clients(way, work)
                    worst = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
                    if worst > TOLERANCE:
                        raise SystemExit(f"{name}: an answer differs from onnxruntime by {worst:.2e}")
                    row = summary(name, wall, latencies)
                    after = server.get(f"/v2/models/{args.network}/stats")[1]["model_stats"][0]
                    executions = int(after["execution_count"]) - int(before["execution_count"])
                    row["mean_batch"] = ((int(after["inference_count"]) - int(before["inference_count"])) / executions
                                         if executions else None)
                    rows.append(row)
                    print(f"{name:7s} {row['rps']:8.1f} req/s  p50 {row['p50']:7.2f} ms  p99 {row['p99']:7.2f} ms"
                          + (f"  mean executed batch {row['mean_batch']:.2f}" if row["mean_batch"] else ""),
                          flush=True)
    table(rows, args)


def table(rows: list[dict], args: argparse.Namespace) -> None:
    direct = [r for r in rows if r["way"] == "direct"]
    print(f"\n{args.network}, {args.clients} clients x {args.requests} requests of batch {args.batch}, "
          f"max_batch_size {args.max_batch}; Python {platform.python_version()}, onnxruntime {ort.__version__}\n")
    print("| round | way | requests/s | p50 ms | p99 ms | mean executed batch | requests/s vs direct |")
    print("|---|---|---|---|---|---|---|")
    for i, r in enumerate(rows):
        base = direct[min(i // 2, len(direct) - 1)]
        batch = f"{r['mean_batch']:.2f}" if r["mean_batch"] else "-"
        print(f"| {i // 2 + 1} | {r['way']} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {batch} | "
              f"{r['rps'] / base['rps']:.2f}x |")


if __name__ == "__main__":
    main()
