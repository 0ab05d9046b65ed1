"""Every diagnostic has a stable code, and `cnnc explain CODE` explains each code cnnc can give."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from cnnc.errors import CnncError
from cnnc.explain import CODES, explain

ROOT = Path(__file__).parent.parent
SOURCES = [p for folder in ("cnnc", "dsl", "compiler", "runtime") for p in (ROOT / folder).rglob("*.py")
           if p.name != "explain.py"]


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_code_in_the_sources_and_every_error_class_is_explained():
    import cnnc.compiler.errors  # noqa: F401  (the error classes register as subclasses on import)
    import cnnc.dsl.errors  # noqa: F401
    import cnnc.runtime.errors  # noqa: F401
    given = {m for p in SOURCES for m in re.findall(r'"([EW]0\d{3})"', p.read_text())}
    assert len(given) > 20
    classes = {sub.code for sub in _subclasses(CnncError)}
    assert not (given | classes) - CODES.keys(), (given | classes) - CODES.keys()


@pytest.mark.parametrize("code", list(CODES))
def test_each_explanation_has_a_title_and_says_more_than_it(code):
    text = explain(code)
    assert text.startswith(f"{code}: {CODES[code].title}") and len(CODES[code].explanation) > len(CODES[code].title)


@pytest.mark.parametrize(("body", "code"), [
    ("layers:\n  - conv(filters=16, 3x3)\n", "E0303"),
    ("blocks:\n  cb(a=1, b): [conv(a, 3x3)]\nlayers:\n  - cb(b=2)\n", "E0304"),
    ("layers:\n  - cnov(8, 3x3)\n", "E0401"),
    ("layers:\n  - conv_1: conv(8, 3x3)\n  - conv(8, 3x3)\n  - conv(8, 3x3)\n", "E0403"),
    ("layers:\n  - batchnorm(eps=-1)\n", "E0404"),
    ("layers:\n  - conv(8, 3x3)\n  - add: {shortcut: identity, residual: [conv(4, 1x1)]}\n", "E0501"),
    ("layers:\n  - expect: [4, 8, 8]\n", "E0502"),
    ("layers:\n  - conv(8, 9x9)\n", "E0503"),
    ("layer:\n  - relu\n", "E0201"),
    ("layers:\n  - my conv: relu\n", "E0203"),
    ("layers:\n  - conv(width, 3x3)\n", "E0301"),
])
def test_a_mistake_s_message_carries_its_code_and_points_to_explain(tmp_path, cli, body, code):
    (tmp_path / "t.yaml").write_text(f"network: t\ninput: [3, 8, 8]\n{body}")
    r = cli.run("check", str(tmp_path / "t.yaml"))
    assert r.code == 2 and f"[{code}]: " in r.err and f"`cnnc explain {code}` says more" in r.err, r.err


def test_a_kernel_larger_than_its_input_says_how_to_fit(tmp_path, cli):
    (tmp_path / "t.yaml").write_text("network: t\ninput: [3, 8, 8]\nlayers:\n  - conv(8, 9x9)\n")
    r = cli.run("check", str(tmp_path / "t.yaml"))
    assert r.code == 2 and "help: `padding=same` keeps the size" in r.err and "(its input is 8 high)" in r.err


def test_a_limit_and_a_warning_carry_theirs(tmp_path, cli):
    (tmp_path / "t.yaml").write_text("network: t\ninput: [3, 8, 8]\nlayers:\n  - relu x 50\n")
    r = cli.run("check", str(tmp_path / "t.yaml"), "--limit", "layers=10")
    assert r.code == 2 and "[E0801]" in r.err and "help: if the network really is this large" in r.err
    (tmp_path / "w.yaml").write_text("network: t\ninput: [3, 8, 8]\nblocks:\n  b: [relu]\nlayers:\n  - relu\n")
    r = cli.run("check", str(tmp_path / "w.yaml"))
    assert r.code == 0 and "warning[W0001]: block `b` is defined but never used" in r.err


def test_cnnc_explain_prints_one_code_lists_them_all_and_refuses_an_unknown_one(cli):
    r = cli.run("explain", "e0501")
    assert r.code == 0 and r.out.startswith("E0501: branches that do not merge") and "For example:" in r.out
    r = cli.run("explain")
    assert r.code == 0 and all(code in r.out for code in CODES)
    r = cli.run("explain", "E0599")
    assert r.code == 2 and "did you mean `E0503`?" in r.err
