"""`cnnc lsp` end to end: a real LSP client (pytest-lsp) drives the server in its own process over stdio.

Each test opens its own document (its own URI), so the tests share the one server per module (per xdist
worker) and run in any order. Expected shapes, parameter counts and lines are worked out by hand from
the small network below. Skipped when pygls or pytest-lsp is missing (both are in the `test` extra).
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp")
pytest.importorskip("pygls")
from lsprotocol import types as t  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402

on_the_server = pytest.mark.asyncio(loop_scope="module")  # the tests that share the module's server

NET = """\
network: tiny
input: [3, 32, 32]
defaults:
  conv: {padding: same}
blocks:
  cbr(filters, kernel=3x3): [conv(filters, kernel), batchnorm, relu]
  res(c):
    add:
      shortcut: identity
      residual: [cbr(c), conv(c, 3x3)]
layers:
  - stem: cbr(16)
  - res(16)
  - pool: globalavgpool
  - dense(10)
"""
LINES = NET.splitlines()
STEM, RES, DENSE = LINES.index("  - stem: cbr(16)"), LINES.index("  - res(16)"), LINES.index("  - dense(10)")


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=[sys.executable, "-m", "cnnc", "lsp"]))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(t.InitializeParams(capabilities=client_capabilities("visual-studio-code")))
    yield
    await lsp_client.shutdown_session()


async def _open(client: LanguageClient, name: str, text: str = NET) -> str:
    uri = Path(f"/tmp/cnnc-lsp-test/{name}.yaml").as_uri()
    client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(uri, "yaml", 1, text)))
    await client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return uri


async def _change(client: LanguageClient, uri: str, text: str, version: int) -> list[t.Diagnostic]:
    client.text_document_did_change(t.DidChangeTextDocumentParams(
        t.VersionedTextDocumentIdentifier(version=version, uri=uri), [t.TextDocumentContentChangeWholeDocument(text)]))
    await client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return list(client.diagnostics[uri])


async def _hover(client: LanguageClient, uri: str, line: int, col: int) -> str:
    found = await client.text_document_hover_async(t.HoverParams(t.TextDocumentIdentifier(uri), t.Position(line, col)))
    assert found is not None and isinstance(found.contents, t.MarkupContent)
    return found.contents.value


async def _complete(client: LanguageClient, uri: str, line: int, col: int) -> dict[str, t.CompletionItem]:
    found = await client.text_document_completion_async(
        t.CompletionParams(t.TextDocumentIdentifier(uri), t.Position(line, col)))
    items = found.items if isinstance(found, t.CompletionList) else found or []
    return {item.label: item for item in items}


@on_the_server
async def test_a_valid_file_gets_an_empty_diagnostics_list(client: LanguageClient):
    uri = await _open(client, "valid")
    assert list(client.diagnostics[uri]) == []


@on_the_server
async def test_an_edit_that_breaks_a_shape_is_reported_at_the_merge_and_cleared_when_mended(client: LanguageClient):
    uri = await _open(client, "shape")
    broken = NET.replace("  - res(16)", "  - res(32)")
    [problem] = await _change(client, uri, broken, 2)
    assert problem.severity == t.DiagnosticSeverity.Error
    assert "shape" in problem.message and "[16, 32, 32]" in problem.message and "[32, 32, 32]" in problem.message
    add = LINES.index("    add:")
    assert (problem.range.start.line, problem.range.start.character, problem.range.end.character) == (add, 4, 7)
    [frame] = problem.related_information or []
    assert frame.location.range.start == t.Position(RES, 4) and "res(32)" in frame.message
    assert await _change(client, uri, NET, 3) == []


@on_the_server
async def test_a_syntax_error_is_located_and_a_warning_is_a_warning(client: LanguageClient):
    uri = await _open(client, "syntax")
    [problem] = await _change(client, uri, NET.replace("dense(10)", "dense(10"), 2)
    assert problem.severity == t.DiagnosticSeverity.Error and problem.range.start.line == DENSE
    unused = NET.replace("blocks:\n", "blocks:\n  spare: [relu]\n")
    [warning] = await _change(client, uri, unused, 3)
    assert warning.severity == t.DiagnosticSeverity.Warning and "spare" in warning.message
    assert warning.range.start.line == LINES.index("blocks:") + 1


@on_the_server
async def test_yaml_that_is_no_network_gets_no_diagnostics(client: LanguageClient):
    uri = await _open(client, "workflow", "name: ci\non: [push]\njobs:\n  test: {runs-on: ubuntu-latest}\n")
    assert list(client.diagnostics[uri]) == []
    [problem] = await _change(client, uri, "network: t\ninput: [3, 8, 8]\n", 2)  # now it is one: `layers` missing
    assert "layers" in problem.message


@on_the_server
async def test_hover_on_a_layer_shows_its_shape_parameters_and_macs(client: LanguageClient):
    from cnnc.compiler.ops import OPS
    uri = await _open(client, "hover_layer")
    text = await _hover(client, uri, DENSE, LINES[DENSE].index("dense") + 1)
    assert "→ **[10]**" in text and "parameters: 170" in text and "MACs: 160" in text  # 16*10 + 10; 16*10
    assert OPS["dense"].doc in text  # the op's reference follows


@on_the_server
async def test_hover_on_a_block_call_shows_its_signature_arguments_and_layer_count(client: LanguageClient):
    uri = await _open(client, "hover_block")
    text = await _hover(client, uri, STEM, LINES[STEM].index("cbr") + 1)
    assert "cbr(filters, kernel=3x3)" in text and "filters=16" in text
    assert "3 layers" in text and "[16, 32, 32]" in text
    text = await _hover(client, uri, RES, LINES[RES].index("res") + 1)
    assert "res(c)" in text and "6 layers" in text  # cbr's 3, a conv, the identity, the add


@on_the_server
async def test_hover_on_an_op_shows_its_reference(client: LanguageClient):
    from cnnc.compiler.ops import OPS
    uri = await _open(client, "hover_op")
    line = LINES.index("  cbr(filters, kernel=3x3): [conv(filters, kernel), batchnorm, relu]")
    text = await _hover(client, uri, line, LINES[line].index("batchnorm") + 2)
    assert OPS["batchnorm"].doc in text and "built 2 times" in text


@on_the_server
async def test_completion_offers_ops_blocks_arguments_and_defaults_keys(client: LanguageClient):
    uri = await _open(client, "complete")
    typing = NET.replace("  - dense(10)\n", "  - dense(10)\n  - \n  - conv(8, 3x3, \n")
    lines = typing.splitlines()
    await _change(client, uri, typing, 2)  # does not build: the names come from the last text that did
    here = lines.index("  - ")
    names = await _complete(client, uri, here, 4)
    assert {"conv", "maxpool", "concat", "cbr", "res", "expect"} <= set(names)
    args = await _complete(client, uri, here + 1, len(lines[here + 1]))
    assert {"stride", "padding", "groups"} <= set(args) and args["stride"].detail and "1" in args["stride"].detail
    block = await _complete(client, uri, STEM, LINES[STEM].index("(") + 1)
    assert set(block) == {"filters", "kernel"} and "3x3" in (block["kernel"].detail or "")
    conv = LINES.index("  conv: {padding: same}")
    keys = await _complete(client, uri, conv, len(LINES[conv]) - 1)
    assert "stride" in keys and "padding" not in keys
    ops = await _complete(client, uri, conv, 3)
    assert {"conv", "batchnorm", "dense"} <= set(ops)


@on_the_server
async def test_definition_goes_from_a_block_call_to_the_block(client: LanguageClient):
    uri = await _open(client, "definition")
    found = await client.text_document_definition_async(
        t.DefinitionParams(t.TextDocumentIdentifier(uri), t.Position(RES, LINES[RES].index("res") + 1)))
    assert isinstance(found, t.Location) and found.range.start == t.Position(LINES.index("  res(c):"), 2)


@on_the_server
async def test_document_symbols_are_the_blocks_and_the_named_layers(client: LanguageClient):
    uri = await _open(client, "symbols")
    found = await client.text_document_document_symbol_async(t.DocumentSymbolParams(t.TextDocumentIdentifier(uri)))
    by_name = {s.name: s for s in found or [] if isinstance(s, t.DocumentSymbol)}
    assert set(by_name) == {"cbr", "res", "stem", "pool"}
    assert by_name["res"].kind == t.SymbolKind.Function and by_name["stem"].range.start.line == STEM


@on_the_server
async def test_inlay_hints_show_each_layer_lines_output_shape(client: LanguageClient):
    uri = await _open(client, "hints")
    found = await client.text_document_inlay_hint_async(t.InlayHintParams(
        t.TextDocumentIdentifier(uri), t.Range(t.Position(0, 0), t.Position(len(LINES), 0))))
    hints = {h.position.line: h.label for h in found or []}
    assert hints[STEM] == "→ [16, 32, 32]" and hints[RES] == "→ [16, 32, 32]"
    assert hints[LINES.index("  - pool: globalavgpool")] == "→ [16]" and hints[DENSE] == "→ [10]"
    assert LINES.index("network: tiny") not in hints


def _garbage() -> list[str]:
    """Edits a person (or a cat) might make: random bytes, truncations, huge numbers, deep nesting, and
    seeded line-level mutants of a shipped architecture."""
    rng = random.Random(14)
    shipped = (Path(__file__).parent.parent / "architectures" / "resnet50.yaml").read_text()
    noise = "".join(chr(rng.randrange(1, 0x3000)) for _ in range(400))
    out = ["network: g\n", "network: g\n\x00\xff:::\n- [", "network: g\n" + noise, "layers: " + noise,
           NET[:len(NET) // 2],
           NET.replace("dense(10)", "dense(99999999999999999999999)"), NET.replace("[3, 32, 32]", "[3, 1e30, 32]"),
           NET.replace("res(16)", "res(16) x 100000000"), "layers: " + "[" * 5000 + "]" * 5000,
           NET.replace("cbr(16)", "cbr(" + "(" * 500 + "1" + ")" * 500 + ")"), NET.replace("  ", "\t")]
    lines = shipped.splitlines()
    for _ in range(6):
        mutant = lines[:]
        i, j = rng.randrange(len(mutant)), rng.randrange(len(mutant))
        mutant[i], mutant[j] = mutant[j], mutant[i][: rng.randrange(len(mutant[i]) + 1)]
        out.append("\n".join(mutant))
    return out


@on_the_server
async def test_garbage_edits_never_kill_the_server(client: LanguageClient):
    uri = await _open(client, "garbage")
    for version, text in enumerate(_garbage(), start=2):
        problems = await _change(client, uri, text, version)
        assert all("internal error" not in p.message for p in problems), (text[:200], problems)
        await client.text_document_hover_async(t.HoverParams(t.TextDocumentIdentifier(uri), t.Position(3, 3)))
        await client.text_document_inlay_hint_async(t.InlayHintParams(
            t.TextDocumentIdentifier(uri), t.Range(t.Position(0, 0), t.Position(200, 0))))
    assert await _change(client, uri, NET, 100) == []
    never_opened = Path("/tmp/cnnc-lsp-test/never-opened.yaml").as_uri()
    assert await client.text_document_hover_async(
        t.HoverParams(t.TextDocumentIdentifier(never_opened), t.Position(0, 0))) is None
    assert "[10]" in await _hover(client, uri, DENSE, LINES[DENSE].index("dense") + 1)


def test_an_unexpected_exception_becomes_one_internal_error_at_line_1(monkeypatch: pytest.MonkeyPatch):
    from cnnc.lsp import analysis

    def broken(*args: object) -> None:
        raise RuntimeError("boom")
    monkeypatch.setattr(analysis, "build_tree", broken)
    [problem] = analysis.check(NET, "t.yaml").problems
    assert (problem.line, problem.severity) == (0, "error") and "internal error: RuntimeError: boom" in problem.message


def test_cnnc_lsp_without_pygls_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    from cnnc.cli import main
    monkeypatch.setitem(sys.modules, "pygls.lsp.server", None)
    monkeypatch.delitem(sys.modules, "cnnc.lsp.server", raising=False)
    assert main(["lsp"]) == 2
    assert "pip install 'cnnc[lsp]'" in capsys.readouterr().err


def test_completion_shows_a_default_that_holds_commas_whole():
    from cnnc.lsp import analysis, features
    text = ("network: n\ninput: [3, 8, 8]\nblocks:\n  b(c, k=max(1, 3), s=[1, 1]): [conv(c, k, stride=s)]\n"
            "layers:\n  - b(4, \n")
    ok = analysis.check(text.replace("  - b(4, \n", "  - b(4)\n"), "t.yaml")
    line = text.splitlines().index("  - b(4, ")
    shown = {c.label: c.detail for c in features.complete(analysis.check(text, "t.yaml"), line, 9, fallback=ok)}
    assert shown["k"] == "default max(1, 3)" and shown["s"] == "default [1, 1]"
