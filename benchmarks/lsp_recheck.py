"""Re-check speed of `cnnc lsp`: Inception-ResNet-v2 (862 layers) checked again after a one-character edit.

Run by hand (not a test), from the repository root, with the `lsp` extra installed:

    python benchmarks/lsp_recheck.py [--rounds 30]

Three timings, taking turns within every round, medians (and the slowest) over the rounds:

- `in-process`: what the server does on each change, `cnnc.lsp.analysis.check(text)` (load the text,
  resolve, infer every shape, index each line's layers), after a one-character edit that keeps the file
  valid (a digit of the description), and after one that breaks a shape (`block35`'s 320 -> 321);
- its stages for the valid edit: `load_text` (dsl), `build_tree` (compiler) and the rest;
- `round trip`: a real `cnnc lsp` process over stdio (pygls's client), from sending `didChange` to
  receiving its `publishDiagnostics`: what an editor waits for.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from pathlib import Path

from lsprotocol import types as t
from pygls.lsp.client import LanguageClient

from cnnc.compiler import build_tree
from cnnc.dsl.document import load_text
from cnnc.lsp.analysis import check

HERE = Path(__file__).resolve().parent.parent
SOURCE = (HERE / "architectures" / "inception_resnet_v2.yaml").read_text()
VALID = ("(Keras flavor) for 299x299", "(Keras flavor) for 298x299")  # a digit of the description
BREAKING = ("- conv(320, 1x1, bias=true)", "- conv(321, 1x1, bias=true)")  # block35's up projection


def edited(edit: tuple[str, str], odd: bool) -> str:
    assert edit[0] in SOURCE
    return SOURCE.replace(*edit) if odd else SOURCE


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


async def round_trips(texts: list[str]) -> list[float]:
    client = LanguageClient("cnnc-bench", "0")
    received: asyncio.Queue = asyncio.Queue()

    @client.feature(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def diagnostics(params: t.PublishDiagnosticsParams) -> None:
        received.put_nowait(params)

    await client.start_io(sys.executable, "-m", "cnnc", "lsp")
    await client.initialize_async(t.InitializeParams(capabilities=t.ClientCapabilities()))
    client.initialized(t.InitializedParams())
    uri = (HERE / "bench.yaml").as_uri()
    client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(uri, "yaml", 1, SOURCE)))
    await received.get()
    times = []
    for version, text in enumerate(texts, start=2):
        start = time.perf_counter()
        change = t.TextDocumentContentChangeWholeDocument(text)
        client.text_document_did_change(t.DidChangeTextDocumentParams(
            t.VersionedTextDocumentIdentifier(version=version, uri=uri), [change]))
        await received.get()
        times.append(time.perf_counter() - start)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    check(SOURCE, "inception_resnet_v2.yaml")  # imports and caches warm, as in a running server
    times: dict[str, list[float]] = {}
    for i in range(args.rounds):
        odd = i % 2 == 1
        for label, edit in (("valid edit", VALID), ("breaking edit", BREAKING)):
            text = edited(edit, odd)
            gc.collect()
            took, analysis = timed(check, text, "inception_resnet_v2.yaml")
            assert bool(analysis.problems) == (odd and edit is BREAKING), analysis.problems  # type: ignore[attr-defined]
            times.setdefault(f"in-process, {label}", []).append(took)
        text = edited(VALID, odd)
        gc.collect()
        dsl, doc = timed(load_text, text, "inception_resnet_v2.yaml")
        compiler, _ = timed(build_tree, doc)
        times.setdefault("  load_text (dsl)", []).append(dsl)
        times.setdefault("  build_tree (compiler)", []).append(compiler)
    trips = asyncio.run(round_trips([edited(VALID, i % 2 == 1) for i in range(args.rounds)]))
    times["round trip over stdio, valid edit"] = trips
    print(f"| inception_resnet_v2, {args.rounds} rounds | median ms | slowest ms | / in-process median |")
    print("|---|---|---|---|")
    base = statistics.median(times["in-process, valid edit"])
    for label, values in times.items():
        median = statistics.median(values)
        print(f"| {label} | {median * 1e3:.1f} | {max(values) * 1e3:.1f} | {median / base:.2f} |")


if __name__ == "__main__":
    main()
