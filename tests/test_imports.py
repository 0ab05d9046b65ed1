"""Data flows one way: `dsl` knows nothing of the compiler or ONNX, `compiler` nothing of the runtime
or the CLI, `runtime` nothing of YAML or the stages before it. Checked on the source with `ast`, not by
importing it, so that a lazy import inside a function (or under TYPE_CHECKING) counts as much as one at
the top; relative imports are resolved against the installed layout (pyproject's `package-dir`)."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each top-level folder and the package it installs as.
PACKAGES = {"cnnc": "cnnc", "dsl": "cnnc.dsl", "compiler": "cnnc.compiler", "runtime": "cnnc.runtime"}
FORBIDDEN = {
    "dsl": ("cnnc.compiler", "cnnc.runtime", "cnnc.cli", "cnnc.api", "onnx", "onnxruntime"),
    "compiler": ("cnnc.runtime", "cnnc.cli", "onnxruntime"),
    "runtime": ("cnnc.dsl", "cnnc.compiler", "cnnc.cli", "cnnc.api", "yaml", "lark"),
}


def module_name(file: Path) -> tuple[str, bool]:
    """The dotted module a source file installs as, and whether it is a package's `__init__`."""
    folder, *rest = file.relative_to(ROOT).with_suffix("").parts
    is_package = rest[-1] == "__init__"
    parts = [PACKAGES[folder], *(rest[:-1] if is_package else rest)]
    return ".".join(parts), is_package


def imported(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module `source` (the text of `module`) may import: `import a.b` gives `a.b`; `from x import
    y` gives `x` and `x.y` (y may be a submodule); relative imports are made absolute; so are
    `importlib.import_module("...")` and `__import__("...")` with a literal name."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                if node.level - 1 >= len(anchor):
                    raise ValueError(f"{module}: `from {'.' * node.level}{base}` goes above the top package")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and _dynamic(node.func) and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found.add(node.args[0].value)
    return found


def _dynamic(func: ast.expr) -> bool:
    return (isinstance(func, ast.Name) and func.id in ("__import__", "import_module")) or \
        (isinstance(func, ast.Attribute) and func.attr == "import_module")


def violations(stage: str, sources: dict[str, tuple[str, bool]]) -> list[str]:
    """`module: imports X` for each forbidden import; `sources` maps a module to (its text, is_package)."""
    bad = []
    for module, (text, is_package) in sorted(sources.items()):
        for name in sorted(imported(text, module, is_package)):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[stage]):
                bad.append(f"{module}: imports {name}")
    return bad


def stage_sources(stage: str) -> dict[str, tuple[str, bool]]:
    out = {}
    for file in sorted((ROOT / stage).rglob("*.py")):
        module, is_package = module_name(file)
        out[module] = (file.read_text(encoding="utf-8"), is_package)
    return out


@pytest.mark.parametrize("stage", list(FORBIDDEN))
def test_each_stage_imports_nothing_downstream(stage: str):
    sources = stage_sources(stage)
    assert sources, f"no sources found under {stage}/"
    assert violations(stage, sources) == []


def test_the_layout_is_pyprojects():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_dir = config["tool"]["setuptools"]["package-dir"]
    for folder, package in PACKAGES.items():
        assert package_dir[package] == folder


# ---- the checker itself ------------------------------------------------------------------------
@pytest.mark.parametrize("stage,module,source,caught", [
    ("dsl", "cnnc.dsl.schema", "from ..compiler import lower\n", "cnnc.compiler"),
    ("dsl", "cnnc.dsl.schema", "from .. import compiler\n", "cnnc.compiler"),
    ("dsl", "cnnc.dsl.schema", "def f():\n    import onnx.helper\n", "onnx.helper"),
    ("compiler", "cnnc.compiler.ops.base", "from ...runtime.session import Session\n", "cnnc.runtime.session"),
    ("compiler", "cnnc.compiler.lower", "from cnnc import cli\n", "cnnc.cli"),
    ("compiler", "cnnc.compiler.lower", "import importlib\nimportlib.import_module('onnxruntime')\n", "onnxruntime"),
    ("compiler", "cnnc.compiler.lower", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                        "    import onnxruntime as ort\n", "onnxruntime"),
    ("runtime", "cnnc.runtime.bench", "from ..dsl.document import load\n", "cnnc.dsl.document"),
    ("runtime", "cnnc.runtime.bench", "import yaml\n", "yaml"),
    ("runtime", "cnnc.runtime.bench", "from lark import Lark\n", "lark"),
], ids=["dsl-relative-compiler", "dsl-relative-package", "dsl-lazy-onnx", "compiler-runtime", "compiler-cli",
        "compiler-import-module", "compiler-type-checking", "runtime-dsl", "runtime-yaml", "runtime-lark"])
def test_the_checker_catches_a_violation(stage: str, module: str, source: str, caught: str):
    assert f"{module}: imports {caught}" in violations(stage, {module: (source, False)})


@pytest.mark.parametrize("stage,module,is_package,source", [
    ("dsl", "cnnc.dsl.document", False, "from ..errors import CnncError\nfrom . import expr\nimport yaml\n"),
    ("compiler", "cnnc.compiler", True, "from ..dsl.document import Document\nfrom .ops import OPS\nimport onnx\n"),
    ("compiler", "cnnc.compiler.ops", True, "from ...dsl.schema import MERGES\nfrom . import conv\n"),
    ("runtime", "cnnc.runtime.session", False, "from .errors import RuntimeUnavailable\nimport onnxruntime\n"),
    ("runtime", "cnnc.runtime.quantize", False, "from ..files import atomic_file\nimport onnx\n"),
], ids=["dsl", "compiler-init", "ops-init", "runtime", "runtime-files"])
def test_the_checker_lets_allowed_imports_pass(stage: str, module: str, is_package: bool, source: str):
    assert violations(stage, {module: (source, is_package)}) == []


def test_relative_imports_resolve_against_the_installed_packages():
    assert imported("from ...dsl.expr import Value\n", "cnnc.compiler.ops.base") >= {"cnnc.dsl.expr"}
    assert imported("from ..ir import Layer\n", "cnnc.compiler.ops.conv") >= {"cnnc.compiler.ir"}
    assert imported("from . import conv\n", "cnnc.compiler.ops", is_package=True) == \
        {"cnnc.compiler.ops", "cnnc.compiler.ops.conv"}
    assert module_name(ROOT / "compiler" / "ops" / "base.py") == ("cnnc.compiler.ops.base", False)
    assert module_name(ROOT / "dsl" / "__init__.py") == ("cnnc.dsl", True)
    with pytest.raises(ValueError, match="goes above the top package"):
        imported("from .... import x\n", "cnnc.dsl.schema")


CHECK_NEEDS_NONE_OF = ("numpy", "onnx", "onnxruntime", "pydantic", "pydantic_core", "cnnc.dsl.schema", "rich")


def _check_imports(*argv: str) -> tuple[int, list[str]]:
    """`cnnc ARGV` run in a fresh process: its exit status, and which of `CHECK_NEEDS_NONE_OF` it imported."""
    import subprocess
    import sys
    code = (f"import json, sys\nfrom cnnc.cli import main\ncode = main({list(argv)!r})\n"
            f"print(json.dumps([code, sorted(m for m in {CHECK_NEEDS_NONE_OF!r} if m in sys.modules)]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    status, found = json.loads(r.stdout.strip().splitlines()[-1])
    return status, found


@pytest.mark.parametrize("net", ["lenet5", "inception_resnet_v2", "efficientnet_b0", "mobilenet_v3_large"])
def test_check_imports_only_what_it_needs(net: str):
    """`cnnc check` of a well-formed network stays quick to start: no ONNX or numpy (the op definitions need
    neither; lowering imports them), no pydantic (dsl/conforms.py recognises a well-formed file), no rich."""
    assert _check_imports("check", net) == (0, [])


def test_check_of_a_malformed_file_still_has_pydantic_say_why(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("network: bad\ninput: [3, 8, 8]\nlayers:\n  - relu\n  - concat: 3\n", encoding="utf-8")
    status, found = _check_imports("check", str(bad))
    assert status == 2 and "pydantic" in found and "cnnc.dsl.schema" in found


def test_import_cnnc_and_version_load_no_stage_until_one_is_used():
    """`import cnnc` and `cnnc --version` pay for neither the language stack nor ONNX; the names
    `cnnc` exports, and its submodules, are imported when first used."""
    import subprocess
    import sys
    heavy = ("pydantic", "lark", "yaml", "numpy", "onnx", "onnxruntime", "cnnc.api", "cnnc.dsl", "cnnc.compiler")
    code = (f"import sys\nimport cnnc\nfrom cnnc.cli import main\nheavy = {heavy!r}\n"
            "try:\n    main(['--version'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n"
            "from cnnc import Limits, CnncError\n"
            "assert cnnc.build is cnnc.api.build and cnnc.compiler.to_onnx and Limits and CnncError\n"
            "try:\n    cnnc.no_such_name\nexcept AttributeError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-2] == "[]", r.stdout
    assert lines[-1] == "module 'cnnc' has no attribute 'no_such_name'"


def test_a_command_line_builds_only_its_subcommands_parser(capsys):
    """`cnnc check ...` builds the parser of `check` alone; `--help` and a mistyped command still see all
    of them (cnnc/cli/__init__.py `_parser`)."""
    from cnnc.cli import _parser
    from cnnc.cli.commands import COMMANDS
    names = [c.name for c in COMMANDS]
    assert list(_parser("check")._subparsers._group_actions[0].choices) == ["check"]
    assert list(_parser()._subparsers._group_actions[0].choices) == names
    from cnnc.cli import main
    for argv in (["--help"], ["chek", "lenet5"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr()
        assert all(name in out.out + out.err for name in names), argv
    with pytest.raises(SystemExit) as exit_:
        main(["check", "--help"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("usage: cnnc check")
