"""The pygls server of `cnnc lsp`: LSP messages over stdio <-> analysis.py and features.py.

Each open file is checked on open and on every change (full text sync) and its diagnostics published
(an empty list once it is mended). Requests are answered from the latest check, and where that one
failed, names (blocks, their definitions, symbols) from the last check that built. A failure inside a
handler is logged and answered with nothing: the server never dies of a file.
"""
from __future__ import annotations

import logging
from typing import Callable, TypeVar
from urllib.parse import unquote, urlparse

from lsprotocol import types as t
from pygls.lsp.server import LanguageServer

from .. import __version__
from ..compiler.limits import Limits, current as current_limits
from ..dsl.family import Selection, current as current_selection
from . import features
from .analysis import Analysis, Problem, check

_log = logging.getLogger("cnnc.lsp")
R = TypeVar("R")

_KINDS = {"op": t.CompletionItemKind.Function, "merge": t.CompletionItemKind.Keyword,
          "block": t.CompletionItemKind.Class, "keyword": t.CompletionItemKind.Keyword,
          "argument": t.CompletionItemKind.Property, "parameter": t.CompletionItemKind.Variable}


class CnncServer(LanguageServer):
    """The language server, with the latest check of each open file and the last one that built."""

    def __init__(self, bounds: Limits | None = None, selection: Selection | None = None) -> None:
        super().__init__("cnnc", __version__, text_document_sync_kind=t.TextDocumentSyncKind.Full)
        self.bounds = bounds or current_limits()
        self.selection = selection or current_selection()
        self.latest: dict[str, Analysis] = {}
        self.built: dict[str, Analysis] = {}

    def recheck(self, uri: str, text: str) -> Analysis:
        analysis = check(text, display_name(uri), self.selection, self.bounds)
        self.latest[uri] = analysis
        if analysis.doc is not None:
            self.built[uri] = analysis
        self.text_document_publish_diagnostics(
            t.PublishDiagnosticsParams(uri, [diagnostic(p, uri) for p in analysis.problems]))
        return analysis

    def answer(self, uri: str, fn: Callable[[Analysis, Analysis | None], R]) -> R | None:
        try:
            analysis = self.latest.get(uri)
            if analysis is None:  # asked before it was opened: the file as it is on disk
                analysis = self.recheck(uri, self.workspace.get_text_document(uri).source)
            return fn(analysis, self.built.get(uri))
        except Exception:  # a bug in a feature: logged, answered with nothing
            _log.exception("cnnc lsp: a request failed")
            return None


def display_name(uri: str) -> str:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


def _range(line: int, start: int, end: int) -> t.Range:
    return t.Range(t.Position(line, start), t.Position(line, end))


def diagnostic(p: Problem, uri: str) -> t.Diagnostic:
    related = [t.DiagnosticRelatedInformation(t.Location(uri, _range(r.line, r.col, r.col)),
                                              f"expanded from {r.message}") for r in p.related]
    error = p.severity == "error"
    return t.Diagnostic(_range(p.line, p.start, p.end), f"{p.kind}: {p.message}" if error else p.message,
                        t.DiagnosticSeverity.Error if error else t.DiagnosticSeverity.Warning,
                        code=p.code, source="cnnc", related_information=related or None)


def _symbol(s: features.Symbol) -> t.DocumentSymbol:
    where = _range(s.line, s.col, s.col + len(s.name))
    kind = t.SymbolKind.Function if s.kind == "block" else t.SymbolKind.Field
    return t.DocumentSymbol(s.name, kind, where, where, detail=s.detail or None,
                            children=[_symbol(c) for c in s.children] or None)


def make_server(bounds: Limits | None = None, selection: Selection | None = None) -> CnncServer:
    server = CnncServer(bounds, selection)

    @server.feature(t.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CnncServer, params: t.DidOpenTextDocumentParams) -> None:
        ls.recheck(params.text_document.uri, params.text_document.text)

    @server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CnncServer, params: t.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.recheck(uri, ls.workspace.get_text_document(uri).source)

    @server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CnncServer, params: t.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.latest.pop(uri, None)
        ls.built.pop(uri, None)
        ls.text_document_publish_diagnostics(t.PublishDiagnosticsParams(uri, []))

    @server.feature(t.TEXT_DOCUMENT_HOVER)
    def hover(ls: CnncServer, params: t.HoverParams) -> t.Hover | None:
        pos = params.position
        text = ls.answer(params.text_document.uri, lambda a, b: features.hover(a, pos.line, pos.character, b))
        return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, text)) if text else None

    @server.feature(t.TEXT_DOCUMENT_COMPLETION, t.CompletionOptions(trigger_characters=["(", ",", " ", "{"]))
    def completion(ls: CnncServer, params: t.CompletionParams) -> t.CompletionList:
        uri, pos = params.text_document.uri, params.position
        found = ls.answer(uri, lambda a, b: features.complete(a, pos.line, pos.character, b)) or []
        return t.CompletionList(False, [t.CompletionItem(c.label, kind=_KINDS[c.kind], detail=c.detail or None,
                                                         documentation=c.doc or None, insert_text=c.insert)
                                        for c in found])

    @server.feature(t.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: CnncServer, params: t.DefinitionParams) -> t.Location | None:
        uri, pos = params.text_document.uri, params.position
        where = ls.answer(uri, lambda a, b: features.definition(a, pos.line, pos.character, b))
        return t.Location(uri, _range(where[0], where[1], where[1])) if where else None

    @server.feature(t.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def document_symbol(ls: CnncServer, params: t.DocumentSymbolParams) -> list[t.DocumentSymbol]:
        return [_symbol(s) for s in ls.answer(params.text_document.uri, features.symbols) or []]

    @server.feature(t.TEXT_DOCUMENT_INLAY_HINT, t.InlayHintOptions(resolve_provider=False))
    def inlay_hint(ls: CnncServer, params: t.InlayHintParams) -> list[t.InlayHint]:
        r = params.range
        found = ls.answer(params.text_document.uri, lambda a, b: features.inlay_hints(a, r.start.line, r.end.line))
        return [t.InlayHint(t.Position(line, col), label, kind=t.InlayHintKind.Type, padding_left=True)
                for line, col, label in found or []]

    return server


def serve() -> None:
    """Run over stdin and stdout until the client says exit."""
    make_server().start_io()
