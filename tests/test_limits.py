"""Limits refuse runaway networks at once, and can be raised; warnings flag legal but suspicious files."""
from __future__ import annotations

import time
import warnings

import pytest

import cnnc
from cnnc.compiler.limits import Limits, limits
from cnnc.compiler.resolve import CompileWarning
from cnnc.compiler.errors import ResolveError, ShapeError

from conftest import doc


@pytest.mark.parametrize("layer,limit", [("conv(640000000, 3x3)", "activation_mb"),
                                         ("dense(640000000)", "params")])
def test_a_huge_typo_is_refused_in_well_under_a_second(tmp_path, layer, limit, cli):
    path = tmp_path / "big.yaml"
    flatten = "  - flatten\n" if layer.startswith("dense") else ""
    path.write_text(f"network: big\ninput: [64, 32, 32]\nlayers:\n{flatten}  - {layer}\n")
    start = time.perf_counter()
    r = cli.run("check", str(path), timeout=60)
    line = 5 if flatten else 4
    assert r.code == 2 and f"limit `{limit}`" in r.err and f"big.yaml:{line}:5:" in r.err, r.err
    assert time.perf_counter() - start < 10  # the check itself takes milliseconds


def test_limits_can_be_raised_and_lowered():
    net = doc("  - conv(8, 3x3) x 3\n")
    with limits(layers=2), pytest.raises(ResolveError, match="more than 2 layers"):
        cnnc.build(net)
    with limits(repeat=2), pytest.raises(ResolveError, match="from 0 to 2,"):
        cnnc.build(net)
    with limits(params=100), pytest.raises(ShapeError, match="limit `params`"):
        cnnc.build(net)
    assert len(cnnc.build(net).layers) == 3  # the defaults are back after the `with`


def test_cli_limit_option(tmp_path, cli):
    path = tmp_path / "n.yaml"
    path.write_text("network: n\ninput: [3, 8, 8]\nlayers:\n  - conv(8, 3x3) x 3\n")
    assert cli.run("check", str(path), timeout=60).code == 0
    r = cli.run("check", str(path), "--limit", "layers=2", timeout=60)
    assert r.code == 2 and "n.yaml:4:" in r.err and "limit `layers`" in r.err
    r = cli.run("check", str(path), "--limit", "layerz=2", timeout=60)
    assert r.code == 2 and "NAME=VALUE" in r.err and "Traceback" not in r.err


def test_limits_parse_rejects_nonsense():
    assert Limits.parse(["params=1e10"]).params == 10**10
    for bad in ["params", "params=", "params=-1", "params=1.5", "nope=3", "params=x"]:
        with pytest.raises(ValueError):
            Limits.parse([bad])


def test_an_unused_block_is_a_located_warning_not_an_error(tmp_path, cli):
    path = tmp_path / "n.yaml"
    path.write_text("network: n\ninput: [3, 8, 8]\nblocks:\n  used: relu\n  helper: [conv(4, 1x1)]\n"
                    "  dead: helper\nlayers:\n  - used\n")
    r = cli.run("check", str(path), timeout=60)
    assert r.code == 0
    assert "n.yaml:6:3: warning[W0001]: block `dead` is defined but never used" in r.err
    assert "n.yaml:5:3: warning[W0001]: block `helper` is defined but never used" in r.err  # used only by dead code
    assert "used`" not in r.err.replace("never used", "")


def test_a_strided_window_that_skips_input_is_a_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cnnc.build(doc("  - maxpool(2x2, stride=3)\n  - conv(4, 1x1, stride=2)\n", "[3, 12, 12]"))
    messages = [str(w.message) for w in caught if issubclass(w.category, CompileWarning)]
    assert len(messages) == 1 and "kernel 2x2 and stride 3x3" in messages[0]  # 1x1/2 is ResNet's idiom


def test_shipped_architectures_build_without_warnings():
    from cnnc.architectures import names
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        for name in names():
            cnnc.build(name)
