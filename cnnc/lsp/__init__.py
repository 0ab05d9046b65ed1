"""cnnc's language server (`cnnc lsp`): the compiler, in-process, behind the Language Server Protocol.

- analysis.py: network text -> an `Analysis` (the document, its resolved tree and graph, its problems),
  and each source line's layers; no LSP types, so the benchmark and tests can use it directly.
- features.py: from an `Analysis` and a position, the answers (hover text, completions, definitions,
  symbols, inlay hints) as plain data.
- server.py: the pygls server that turns those into LSP messages over stdio (pygls is the optional `lsp`
  extra: `pip install 'cnnc[lsp]'`).
"""
