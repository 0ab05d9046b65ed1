"""`cnnc bench` and runtime/bench.py: the report's fields and their arithmetic, the MAC count's sources,
and the errors. No timing is asserted: the machines running the suite are shared."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import cnnc
from cnnc.runtime.bench import BenchError, Budget, bench, count_macs, side_by_side

from conftest import doc, drain

QUICK = Budget(seconds=0.02, warmup=1, min_iterations=3, max_iterations=20)
SMALL = "  - conv(8, 3x3, padding=same)\n  - batchnorm\n  - relu\n  - globalavgpool\n  - dense(5)\n  - softmax\n"


def small_model() -> tuple[bytes, int]:
    graph = cnnc.build(doc(SMALL))
    return cnnc.compiler.to_onnx(graph).SerializeToString(), graph.macs


def foreign_model(batch: int | str = "N") -> onnx.ModelProto:
    """A one-Conv model written by another tool, with a fixed or symbolic batch axis."""
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3])], "foreign",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 2, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 4, 4])],
        [helper.make_tensor("w", TensorProto.FLOAT, [4, 2, 3, 3], np.ones(72, np.float32))])
    return helper.make_model(graph, producer_name="elsewhere", opset_imports=[helper.make_opsetid("", 21)],
                             ir_version=10)


def test_report_has_one_result_per_batch_size_with_consistent_arithmetic():
    model, macs = small_model()
    seen = []
    report = bench(model, [1, 3], "cpu", macs=macs, macs_source="cnnc graph", name="t", budget=QUICK,
                   progress=lambda batch, fraction: seen.append((batch, fraction)))
    assert report.provider == "cpu" and report.input_shape == ["N", 3, 8, 8] and report.macs == macs
    assert [r.batch for r in report.results] == [1, 3]
    for r in report.results:
        assert QUICK.min_iterations <= r.iterations <= QUICK.max_iterations
        assert 0 < r.min_ms <= r.median_ms <= r.p90_ms
        assert r.images_per_s == pytest.approx(r.batch / (r.median_ms / 1e3))
        assert r.gflops == pytest.approx(2 * macs * r.batch / (r.median_ms / 1e3) / 1e9)
    assert {b for b, _ in seen} == {1, 3} and all(0 < f <= 1 for _, f in seen) and seen[-1][1] == 1


def test_unknown_macs_give_no_gflops():
    report = bench(small_model()[0], [2], "cpu", budget=QUICK)
    assert report.macs is None and report.macs_source == "unknown" and report.results[0].gflops is None


def test_io_binding_runs_on_the_cpu_too():
    report = bench(small_model()[0], [2], "cpu", io_binding=True, budget=QUICK)
    assert report.io_binding and report.results[0].iterations >= QUICK.min_iterations


def test_a_fixed_batch_size_other_than_the_one_asked_is_refused():
    with pytest.raises(BenchError, match="fixed batch size of 1; cannot run batch 4"):
        bench(foreign_model(1).SerializeToString(), [4], "cpu", budget=QUICK)


@pytest.mark.parametrize("name", ["lenet5", "nin_cifar10", "xception", "resnext50"])
def test_macs_recounted_from_the_onnx_graph_match_cnnc_summary(name):
    # sepconv (two Convs), towers stacked into grouped convs, dense layers as Gemm
    assert count_macs(cnnc.compile(name)) == cnnc.build(name).macs


def test_macs_recount_includes_the_depthwise_conv_of_trainable_subsampling():
    # LeNet-1998's subsampling is lowered to a depthwise 2x2 conv: 6x14x14x4 + 16x5x5x4 MACs that the
    # Keras convention (and `cnnc summary`) does not count
    assert count_macs(cnnc.compile("lenet5_1998")) - cnnc.build("lenet5_1998").macs == 6 * 14 * 14 * 4 + 16 * 5 * 5 * 4


def test_side_by_side_times_every_step_in_every_round():
    calls = []
    times = side_by_side({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, QUICK)
    assert len(times["a"]) == len(times["b"]) >= QUICK.min_iterations
    assert calls[2 * QUICK.warmup:2 * QUICK.warmup + 4] == ["a", "b", "a", "b"]


def test_cli_bench_of_a_network_prints_json(tmp_path, cli):
    r = cli.run("bench", "lenet5", "--batch", "1,2", "--provider", "cpu", "--seconds", "0.02", "--json")
    assert r.code == 0, r.err
    info = json.loads(r.out)
    assert info["model"] == "lenet5" and info["macs"] == 416_520 and info["macs_source"] == "cnnc graph"
    assert [x["batch"] for x in info["results"]] == [1, 2]
    assert all(x["gflops"] > 0 and x["images_per_s"] > 0 for x in info["results"])


def test_cli_bench_of_a_cnnc_onnx_recounts_its_macs_and_of_a_foreign_one_says_na(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")  # the first line whole
    assert cli.run("compile", "lenet5", "-o", "l.onnx", cwd=tmp_path).code == 0
    r = cli.run("bench", "l.onnx", "--batch", "2", "--provider", "cpu", "--seconds", "0.02", cwd=tmp_path)
    assert r.code == 0, r.err
    assert "416.5 K MACs per image (recounted from the ONNX graph)" in r.out
    assert "median ms" in r.out and "GFLOP/s" in r.out
    onnx.save(foreign_model(), tmp_path / "f.onnx")
    r = cli.run("bench", "f.onnx", "--batch", "1", "--provider", "cpu", "--seconds", "0.02", cwd=tmp_path)
    assert r.code == 0, r.err
    assert "MACs n/a (written by elsewhere, not cnnc)" in r.out
    rule = r.out.splitlines().index(next(line for line in r.out.splitlines() if set(line) == {"─"}))
    assert r.out.splitlines()[rule + 1].endswith("n/a")  # the one row: no GFLOP/s without MACs


def test_cli_bench_errors_are_user_errors(tmp_path, cli):
    onnx.save(foreign_model(1), tmp_path / "fixed.onnx")
    r = cli.run("bench", "fixed.onnx", "--batch", "1,8", "--provider", "cpu", cwd=tmp_path)
    assert r.code == 2 and "fixed batch size of 1; cannot run batch 8" in r.err
    r = cli.run("bench", "missing.onnx", cwd=tmp_path)
    assert r.code == 2 and "no such file" in r.err
    (tmp_path / "garbage.onnx").write_bytes(b"\xff\xff\xff\xff")
    r = cli.run("bench", "garbage.onnx", cwd=tmp_path)
    assert r.code == 2 and "cannot read `garbage.onnx` as an ONNX model" in r.err and "Traceback" not in r.err
    r = cli.run("bench", "lenet5", "--batch", "1,0")
    assert r.code == 2 and "expected a positive integer, got 0" in r.err


def test_cli_bench_on_cuda_runs_there_or_says_why_not(cli):
    r = cli.run("bench", "lenet5", "--batch", "1", "--provider", "cuda", "--io-binding", "--seconds", "0.02")
    if r.code == 0:
        assert "provider: cuda" in r.out
    else:
        assert r.code == 2 and "--provider cuda:" in r.err and "Traceback" not in r.err


def test_cli_bench_memory_reports_creation_and_peaks_beside_latency(cli):
    r = cli.run("bench", "lenet5", "--batch", "1,4", "--provider", "cpu", "--seconds", "0.02", "--memory", "--json")
    assert r.code == 0, r.err
    info = json.loads(r.out)
    assert info["create_s"] > 0 and info["peak_since"] in ("the mark", "process start")
    assert info["peak_create_mb"] >= info["rss_mb"] > 0 and info["rss_before_mb"] > 0  # a peak >= its RSS
    assert all(x["peak_rss_mb"] > 0 for x in info["results"])
    r = cli.run("bench", "lenet5", "--batch", "1", "--provider", "cpu", "--seconds", "0.02", "--memory")
    assert r.code == 0, r.err
    assert "session created in" in r.out and "before the session" in r.out and "peak RSS MB" in r.out
    plain = json.loads(cli.run("bench", "lenet5", "--batch", "1", "--provider", "cpu", "--seconds", "0.02",
                               "--json").out)
    assert plain["rss_mb"] is None and plain["results"][0]["peak_rss_mb"] is None and plain["create_s"] > 0


def test_bench_reports_each_step_before_it_begins_and_the_timed_runs_after_their_warm_up():
    model, _ = small_model()
    events: list = []
    bench(model, [1, 3], "cpu", budget=QUICK, stage=lambda what, batch: events.append((what, batch)),
          progress=lambda batch, fraction: events.append(("timed", batch)))
    steps = [e for i, e in enumerate(events) if e[0] != "timed" or events[i - 1][0] != "timed"]
    assert steps == [("session", None), ("warm-up", 1), ("timed", 1), ("warm-up", 3), ("timed", 3)]


def test_cli_bench_prints_what_it_benches_first_then_the_box_drawn_table(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    r = cli.run("bench", "lenet5", "--batch", "1,2", "--provider", "cpu", "--seconds", "0.02")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].startswith("lenet5: input [N, 1, 32, 32] float32, 416.5 K MACs per image")
    assert next(i for i, line in enumerate(lines) if line.startswith("provider: cpu")) > 0
    rule = next(i for i, line in enumerate(lines) if line and set(line) == {"─"})
    assert lines[rule - 1].split() == ["batch", "runs", "median", "ms", "p90", "ms", "images/s", "GFLOP/s"]
    assert [line.split()[0] for line in lines[rule + 1:rule + 3]] == ["1", "2"]
    assert max(len(line) for line in lines) <= 60


def _report(median_ms: float, p90_ms: float):
    from cnnc.runtime.bench import BatchResult, Report
    rows = (BatchResult(1, 50, 1.0, 1.1, 0.9, 1000.0, None),
            BatchResult(8, 50, median_ms, p90_ms, median_ms, 1.0, None))
    return Report("m", "cpu", 0, False, ["N", 3, 8, 8], "tensor(float)", None, "unknown", rows)


def test_a_p90_far_above_the_median_gets_a_note_that_the_median_is_the_figure_to_quote():
    from cnnc.cli.bench import NOISY, noise_note
    note = noise_note(_report(17.0, 69.0))
    assert note is not None and "at batch 8 the p90 is 4.1x the median" in note
    assert "the median is the figure to quote" in note
    assert noise_note(_report(17.0, 17.0 * NOISY * 0.99)) is None


def test_on_a_terminal_bench_shows_each_step_live_and_prints_the_header_first():
    import os
    import pty
    import subprocess
    import sys
    main, child = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR")}
    p = subprocess.Popen([sys.executable, "-m", "cnnc", "bench", "lenet5", "--batch", "1,2", "--provider", "cpu",
                          "--seconds", "0.3"], stdout=subprocess.PIPE, stderr=child, env={**env, "TERM": "xterm"})
    os.close(child)
    shown = drain(main)
    out = p.stdout.read().decode()
    assert p.wait(timeout=120) == 0
    live = shown.decode()
    for step in ("compiling lenet5", "creating the session", "batch    1  warm-up", "batch    2"):
        assert step in live, live
    assert out.splitlines()[0].startswith("lenet5: input [N, 1, 32, 32] float32") and "provider: cpu" in out
    assert "compiling" not in out  # the steps stay on the terminal, the results on stdout
