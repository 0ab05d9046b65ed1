"""The `cnnc` command as a user runs it: from another folder, by name or by path.

Most tests run it in this process (the `cli` fixture, conftest.py); a few run `python -m cnnc` in a real
process, where the process is what is tested: the entry point's exit status, a signal during a write,
and the quiet CUDA probing of a freshly started onnxruntime."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import onnx
import pytest


def cnnc(*args: str, cwd=None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m cnnc ARGS...` in a real process (test_lowering.py uses it too)."""
    return subprocess.run([sys.executable, "-m", "cnnc", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def test_list_shows_every_shipped_architecture_with_its_input_and_parameters(cli):
    r = cli.run("list")
    assert r.code == 0, r.err
    for name, params in [("lenet5", "61,706"), ("vgg16", "138,357,544"), ("resnet50", "25,636,712"),
                         ("inception_v3", "23,851,784")]:
        line = next(l for l in r.out.splitlines() if l.startswith(name + " "))
        assert params in line
    assert "3x299x299" in r.out


def test_list_folds_a_family_into_one_row_and_names_its_variants(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")  # room for the exact spans (narrower: test_list_fits_80_columns...)
    r = cli.run("list")
    assert r.code == 0, r.err
    row = next(l for l in r.out.splitlines() if l.startswith("efficientnet (8) "))
    assert "3x224x224 … 3x600x600" in row and "5,330,564 … 66,658,680" in row
    assert not any(l.startswith("efficientnet_b3") for l in r.out.splitlines())
    assert "  efficientnet: efficientnet_b0, efficientnet_b1," in r.out


def test_list_fits_80_columns_in_box_drawing_style_and_gives_small_macs_a_unit(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    r = cli.run("list")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert set(lines[1]) == {"─"} and not any(set(line) <= {"-", " "} and line for line in lines)
    lenet = next(line for line in lines if line.startswith("lenet5 "))
    assert lenet.endswith(" 416.5 K") and "61,706" in lenet  # 416,520 MACs, not `0.000 G`
    family = next(line for line in lines if line.startswith("efficientnet (8) "))
    assert "5.331 … 66.66 M" in family and "0.386 … 37.75 G" in family


@pytest.mark.parametrize("columns", [72, 60])
def test_list_narrower_than_its_columns_leaves_columns_out_rather_than_cut_a_number(cli, monkeypatch, columns: int):
    monkeypatch.setenv("COLUMNS", str(columns))
    r = cli.run("list")
    assert r.code == 0, r.err
    table = r.out.split("\nvariants")[0].splitlines()
    assert max(len(line) for line in table) <= columns
    assert not any(re.search(r"[0-9,.]…$", line) for line in table), r.out  # no `28,589,12…`
    assert ("params" in table[0]) is (columns >= 72) and "MACs" not in table[0]


def test_list_json_has_every_name_a_command_accepts(cli):
    from cnnc.architectures import names
    entries = json.loads(cli.run("list", "--json").out)
    assert [e["name"] for e in entries] == names()
    b3 = next(e for e in entries if e["name"] == "efficientnet_b3")
    assert b3["file"] == "efficientnet.yaml" and b3["variant"] == "efficientnet_b3"
    assert b3["input_shape"] == [3, 300, 300] and b3["params"]["total"] == 12_320_528
    assert next(e for e in entries if e["name"] == "lenet5")["variant"] is None


@pytest.mark.parametrize("name,total", [("resnet50", 25_636_712), ("inception_v3", 23_851_784)])
def test_summary_json_has_counts_and_layers(name, total, cli):
    r = cli.run("summary", name, "--json")
    assert r.code == 0, r.err
    info = json.loads(r.out)
    assert info["name"] == name and info["params"]["total"] == total
    assert {"name", "op", "output_shape", "params", "macs"} <= set(info["layers"][0])
    assert info["output_shape"] == [1000]


def test_summary_table_ends_with_keras_style_totals(cli):
    r = cli.run("summary", "resnet50", "--wide")  # full names (else shortened to fit: test_summary.py)
    assert r.code == 0
    assert "total params: 25,636,712   trainable: 25,583,592   non-trainable: 53,120" in r.out
    assert "conv2/conv_block/add/shortcut/conv" in r.out


def test_check_is_fast_and_reports_the_shapes(cli):
    r = cli.run("check", "inception_v3")
    assert r.code == 0 and "[3, 299, 299] -> [1000]" in r.out


def test_compile_by_name_from_another_folder_then_run(tmp_path, cli):
    r = cli.run("compile", "lenet5", "-o", "l.onnx", cwd=tmp_path)
    assert r.code == 0, r.err
    onnx.checker.check_model(onnx.load(tmp_path / "l.onnx"), full_check=True)
    r = cli.run("run", "l.onnx", "--batch", "4", cwd=tmp_path)
    assert r.code == 0, r.err
    assert "input [4, 1, 32, 32] -> output [4, 10]" in r.out
    assert "provider: cpu" in r.out and "top-5" in r.out
    assert "Traceback" not in r.err and "EP Error" not in r.err and "[E:" not in r.err


def test_compile_a_user_file_by_path_with_default_output_name(tmp_path, cli):
    (tmp_path / "mine.yaml").write_text("network: mine\ninput: [3, 16, 16]\nlayers: [conv(4, 3x3), relu, "
                                        "globalavgpool, dense(2), softmax]\n")
    r = cli.run("compile", "mine.yaml", cwd=tmp_path)
    assert r.code == 0, r.err
    assert (tmp_path / "mine.onnx").is_file()


def test_run_with_an_input_file_uses_it(tmp_path, cli):
    cli.run("compile", "lenet5", "-o", "l.onnx", cwd=tmp_path)
    x = np.zeros((2, 1, 32, 32), np.float32)
    np.save(tmp_path / "x.npy", x)
    r = cli.run("run", "l.onnx", "--input", "x.npy", cwd=tmp_path)
    assert r.code == 0 and "input [2, 1, 32, 32]" in r.out
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 32, 32), np.float32))
    r = cli.run("run", "l.onnx", "--input", "bad.npy", cwd=tmp_path)
    assert r.code == 2 and "[2, 3, 32, 32]" in r.err and "Traceback" not in r.err


def test_asking_for_cuda_where_it_cannot_run_is_a_clear_user_error(tmp_path, cli):
    import onnxruntime as ort
    cli.run("compile", "lenet5", "-o", "l.onnx", cwd=tmp_path)
    r = cli.run("run", "l.onnx", "--provider", "cuda", cwd=tmp_path)
    session_ok = "CUDAExecutionProvider" in ort.get_available_providers() and r.code == 0
    if not session_ok:  # no usable GPU here: one clear line, exit 2
        assert r.code == 2 and "cuda" in r.err.lower() and "Traceback" not in r.err
        assert len(r.err.strip().splitlines()) == 1


def test_unknown_architecture_name_suggests_the_closest():
    r = cnnc("compile", "resnet51")  # a real process: the entry point's own exit status
    assert r.returncode == 2 and "did you mean `resnet50`" in r.stderr and "Traceback" not in r.stderr


def test_an_interrupted_compile_leaves_the_old_output_and_no_temporary_file(tmp_path):
    import signal
    import time

    out = tmp_path / "vgg.onnx"
    out.write_bytes(b"previous model")
    proc = subprocess.Popen([sys.executable, "-m", "cnnc", "compile", "vgg16", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:  # interrupt it while it writes
        if any(p.name != "vgg.onnx" and p.stat().st_size > 0 for p in tmp_path.iterdir()):
            break
        time.sleep(0.001)
    assert proc.poll() is None, f"the compile ended before it could be interrupted: {proc.communicate()}"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vgg.onnx"]


def test_run_says_the_weights_are_untrained_for_a_cnnc_model():
    r = cnnc("run", "lenet5")  # a real process: `python -m cnnc` runs, probing CUDA in a fresh onnxruntime
    assert r.returncode == 0, r.stderr
    assert "model: lenet5, random untrained weights, seed 0" in r.stdout
    assert "Failed to load" not in r.stdout + r.stderr  # CUDA probing stays quiet on a machine without it


def test_run_finds_a_model_s_external_data_beside_it_from_any_folder(cli, tmp_path):
    import cnnc
    (tmp_path / "models").mkdir()
    written = cnnc.api.compile_to("lenet5", tmp_path / "models" / "lenet5.onnx", external_data_above=1024)
    assert written.data_path is not None and written.data_path.exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = cli.run("run", written.path, "--batch", "2", cwd=elsewhere)
    assert r.code == 0, r.err
    assert "input [2, 1, 32, 32] -> output [2, 10]" in r.out
