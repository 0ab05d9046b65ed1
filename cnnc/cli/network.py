"""The subcommands about a network file: list, check, summary, expand, draw, schema, ops, export-triton,
compile and weights. Each is its arguments and a thin run over the Python API (cnnc.api and friends)."""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from .. import __version__
from .common import (AUX_HELP, JSON_HELP, NET_HELP, SEED_HELP, WEIGHTS_HELP, WEIGHTS_MAP_HELP, Command,
                     ProgressBar, compile_options, depth, positive, shape, table)


def _net(c: argparse.ArgumentParser) -> None:
    c.add_argument("net", help=NET_HELP)


def _seed(c: argparse.ArgumentParser) -> None:
    c.add_argument("--seed", type=int, default=0, help=SEED_HELP)


# ---- list --------------------------------------------------------------------------------------------
def list_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("--json", action="store_true",
                   help="every name a command accepts, with its file, variant, input shape, counts and MACs")


def run_list(args: argparse.Namespace) -> int:
    from .. import api
    from ..architectures import find, names, variant_names
    entries: list[dict[str, Any]] = []
    for name in names():
        graph = api.build(name)
        file, variant = find(name) or (None, None)
        entries.append({"name": name, "file": file.name if file else None, "variant": variant,
                        "input_shape": list(graph.input_shape), "params": graph.counts(), "macs": graph.macs})
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    order = {name: i for i, name in enumerate(variant_names())}
    families: dict[str, list[dict[str, Any]]] = {}
    for entry in sorted(entries, key=lambda e: order.get(e["name"], 0)):  # a family's variants: one row
        families.setdefault(entry["file"][:-5] if entry["variant"] else entry["name"], []).append(entry)
    from ..table import Column, print_table, si_span, width_for
    rows = []
    for name, members in sorted(families.items()):
        inputs = sorted({tuple(e["input_shape"]) for e in members}, key=lambda s: s[1:])
        params = sorted(e["params"]["total"] for e in members)
        macs = sorted(e["macs"] for e in members)
        rows.append((name + (f" ({len(members)})" if members[0]["variant"] else ""),
                     _narrowing(_input_span(inputs[0], inputs[-1]), _input_span(inputs[0], inputs[-1], True)),
                     _narrowing(_span(f"{params[0]:,}", f"{params[-1]:,}"), si_span(params[0], params[-1])),
                     si_span(macs[0], macs[-1])))
    # where the terminal is narrow, a family's spans are written shorter: `5.331 … 66.66 M`, `… 600x600`
    # too narrow even so: MACs go, then params (`summary` has both), never a number cut short
    print_table([Column("name"), Column("input", shrink=19), Column("params", right=True, shrink=15, drop=1),
                 Column("MACs", right=True, drop=2)], rows)
    print("\nvariants (each a name for every command):")
    width = min(width_for(sys.stdout), 100)
    for name, members in sorted(families.items()):
        if members[0]["variant"]:
            print(textwrap.fill(", ".join(e["name"] for e in members), width, initial_indent=f"  {name}: ",
                                subsequent_indent=" " * (len(name) + 4), break_on_hyphens=False))
    return 0


def _span(low: str, high: str) -> str:
    return low if low == high else f"{low} … {high}"


def _narrowing(text: str, short: str) -> Any:
    """A cell that is `text`, or `short` where its column is narrowed."""
    from ..table import Cell
    return Cell(((text, ""),), lambda width: Cell(((short, ""),)))


def _input_span(low: tuple[int, ...], high: tuple[int, ...], short: bool = False) -> str:
    """`3x224x224 … 3x600x600`; `short`: the channels written once where they agree (`3x224x224 … 600x600`)."""
    b = high[1:] if short and high[0] == low[0] else high
    return _span("x".join(map(str, low)), "x".join(map(str, b))) if low != high else "x".join(map(str, low))


LIST = Command("list", "the shipped architectures, a family's variants on one line", run_list,
               arguments=list_arguments)


# ---- check -------------------------------------------------------------------------------------------
def run_check(args: argparse.Namespace) -> int:
    from .. import api
    graph = api.build(args.net)
    counts = graph.counts()
    print(f"{graph.name}: ok — {len(graph.layers)} layers, {shape(graph.input_shape)} -> "
          f"{shape(graph.output_shape)}, {counts['total']:,} parameters, {graph.macs:,} MACs")
    return 0


CHECK = Command("check", "every static check, without making weights", run_check, arguments=_net, network=True)


# ---- summary -----------------------------------------------------------------------------------------
def summary_arguments(c: argparse.ArgumentParser) -> None:
    _net(c)
    c.add_argument("--json", action="store_true", help=JSON_HELP)
    c.add_argument("--aux", action="store_true", help="list the train-only heads' layers too")
    c.add_argument("--depth", type=depth, default=None, metavar="N",
                   help="show N levels of the block hierarchy, deeper ones summed into their block "
                        "(default: all)")
    c.add_argument("--no-fold", action="store_true", help="list every repeat instead of folding identical "
                                                          "ones into one row (`inception_a ×3 (total)`)")
    c.add_argument("--wide", action="store_true",
                   help="full layer names even where the table is then wider than the terminal (by default "
                        "it fits: a long path is shortened from the left, `…/branch1/conv`)")


def run_summary(args: argparse.Namespace) -> int:
    from .. import api
    from ..compiler import build_tree
    tree, full = build_tree(api.load(args.net))  # one build: the table's blocks and both views' counts
    info = api.summary_of(full, args.aux)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    from ..summary_table import origins_in, print_summary, rows
    print_summary(info, rows(info["layers"], origins_in(tree), args.depth, fold=not args.no_fold),
                  width=None if args.wide else -1)
    return 0


SUMMARY = Command("summary", "the layers grouped by block: shapes, parameters, MACs, totals", run_summary,
                  arguments=summary_arguments, network=True)


# ---- expand ------------------------------------------------------------------------------------------
def run_expand(args: argparse.Namespace) -> int:
    from .. import api
    from ..expand import expand
    sys.stdout.write(expand(api.load(args.net)))
    return 0


EXPAND = Command("expand", "the network with every block call and repeat written out, as YAML", run_expand,
                 arguments=_net, network=True)


# ---- draw --------------------------------------------------------------------------------------------
def draw_arguments(c: argparse.ArgumentParser) -> None:
    _net(c)
    c.add_argument("-o", "--output", help="the picture to write, .svg, .png or .pdf by its suffix (default: "
                                          "NAME.svg, or NAME_BLOCK.svg; the suffix of --format)")
    c.add_argument("--format", choices=("svg", "png", "pdf"),
                   help="the picture's format, where the file name does not say it (PNG and PDF need CairoSVG: "
                        "pip install 'cnnc[draw]')")
    c.add_argument("--dpi", type=int, default=300, help="a PNG's resolution, for print (default: 300)")
    c.add_argument("--expand", metavar="NAME",
                   help="draw one part opened up (branches side by side): a block (its first call), a call, "
                        "named sequence or layer by the name or path the overview shows (mixed5, entry_flow, "
                        "mixed5/branch7x7)")


def run_draw(args: argparse.Namespace) -> int:
    from .. import api
    from ..draw import format_of, render, write
    from ..draw.formats import check_dpi, renderer
    fmt = format_of(args.output, args.format)
    if fmt != "svg":  # before any drawing: a missing renderer or a bad --dpi is known at once
        renderer(fmt)
        check_dpi(args.dpi)
    doc = api.load(args.net)
    svg = render(doc, expand=args.expand)
    out = Path(args.output or (f"{doc.name}_{args.expand.replace('/', '_')}.{fmt}" if args.expand
                               else f"{doc.name}.{fmt}"))
    size = write(svg, out, fmt, args.dpi)
    print(f"wrote {out} ({size / 1e3:.1f} kB{f', {args.dpi} dpi' if fmt == 'png' else ''})")
    return 0


DRAW = Command("draw", "a picture of the network, or of one block inside it (SVG, PNG or PDF)", run_draw,
               arguments=draw_arguments, network=True)


# ---- schema ------------------------------------------------------------------------------------------
def run_schema(args: argparse.Namespace) -> int:
    from ..dsl.schema import json_schema_text
    sys.stdout.write(json_schema_text())
    return 0


SCHEMA = Command("schema", "the JSON Schema of network files, for editor completion", run_schema)


# ---- ops ---------------------------------------------------------------------------------------------
def ops_arguments(c: argparse.ArgumentParser) -> None:
    form = c.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print a JSON object (ops, arguments, traits)")
    form.add_argument("--markdown", action="store_true", help="print the Markdown tables of docs/language.md")
    form.add_argument("--markdown-into", metavar="FILE", type=Path,
                      help="replace the generated tables in FILE (between their marker comments)")


def run_ops(args: argparse.Namespace) -> int:
    from .. import reference
    if args.json:
        print(json.dumps(reference.reference(), indent=2))
    elif args.markdown:
        sys.stdout.write(reference.markdown())
    elif args.markdown_into:
        reference.embed_into(args.markdown_into)
    else:
        sys.stdout.write(reference.text())
    return 0


OPS = Command("ops", "the op reference: every op's arguments, defaults and meaning", run_ops, ops_arguments)


# ---- export-triton -----------------------------------------------------------------------------------
def export_triton_arguments(c: argparse.ArgumentParser) -> None:
    _net(c)
    c.add_argument("repository", metavar="REPO_DIR", help="the model repository folder (made if missing)")
    c.add_argument("--gpu", action="store_true", help="run the instance on the GPU (default: the CPU)")
    c.add_argument("--max-batch", type=positive, default=8, help="Triton's max_batch_size (default 8)")
    c.add_argument("--backend", choices=["onnxruntime", "python"], default="onnxruntime",
                   help="Triton's ONNX Runtime backend (default), or its Python backend with a model.py that "
                        "runs the model with ONNX Runtime")
    _seed(c)
    _weights(c)


def _weights(c: argparse.ArgumentParser) -> None:
    c.add_argument("--weights", help=WEIGHTS_HELP)
    c.add_argument("--weights-map", metavar="FILE", help=WEIGHTS_MAP_HELP)


def run_export_triton(args: argparse.Namespace) -> int:
    from .. import api
    from ..triton import export
    doc = api.load(args.net)
    model = api.compile(doc, seed=args.seed, weights=args.weights, weights_map=args.weights_map)
    weights = f"weights from {Path(args.weights).name}" if args.weights else f"seed {args.seed}"
    folder = export(model, doc.name, args.repository, args.max_batch, args.gpu,
                    f"Triton model configuration, written by cnnc {__version__} from {doc.source.file} ({weights}).",
                    args.backend)
    files = [folder / "1" / "model.onnx"] + ([folder / "1" / "model.py"] if args.backend == "python" else [])
    print(f"wrote {', '.join(map(str, files))} and {folder / 'config.pbtxt'} "
          f"({'python backend, ' if args.backend == 'python' else ''}{'GPU' if args.gpu else 'CPU'} instance, "
          f"max batch {args.max_batch})")
    return 0


EXPORT_TRITON = Command("export-triton", "write a Triton Inference Server model repository entry",
                        run_export_triton, arguments=export_triton_arguments, network=True)


# ---- compile -----------------------------------------------------------------------------------------
def compile_arguments(c: argparse.ArgumentParser) -> None:
    _net(c)
    c.add_argument("-o", "--output", help="the .onnx file to write (default: NAME.onnx)")
    _seed(c)
    _weights(c)
    c.add_argument("--aux", action="store_true", help=AUX_HELP)
    compile_options(c)


def run_compile(args: argparse.Namespace) -> int:
    from .. import api
    doc = api.load(args.net)
    out = Path(args.output or f"{doc.name}.onnx")
    with ProgressBar("writing weights") as bar:
        written = api.compile_to(doc, out, seed=args.seed, aux=args.aux, weights=args.weights, dtype=args.dtype,
                                 fold_bn=args.fold_bn, progress=bar.update, weights_map=args.weights_map)
    files = f"{out} and its weights {written.data_path}" if written.data_path else f"{out}"
    print(f"wrote {files} ({written.size / 1e6:.1f} MB; outputs: {', '.join(written.outputs)})")
    return 0


COMPILE = Command("compile", "write an ONNX model", run_compile, arguments=compile_arguments, network=True)


# ---- weights -----------------------------------------------------------------------------------------
def weights_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("net", metavar="NET", help=NET_HELP + "; or `map CHECKPOINT NET`: print how CHECKPOINT's "
                   "tensors map onto NET's parameters (checkpoint name, cnnc name, shape, layout change, how "
                   "it was decided), to review before `--weights`")
    c.add_argument("more", nargs="*", help=argparse.SUPPRESS)
    c.add_argument("-o", "--output", help="a .safetensors or .npz file (the template; required without `map`)")
    _seed(c)
    c.add_argument("--weights-map", metavar="FILE", help=WEIGHTS_MAP_HELP + " (with `map`)")
    c.add_argument("--json", action="store_true", help="with `map`: " + JSON_HELP)


def run_weights(args: argparse.Namespace) -> int:
    from .. import api
    from ..compiler import checkpoint
    from ..errors import CnncError
    if args.net == "map":
        if len(args.more) != 2:
            raise CnncError("write `cnnc weights map CHECKPOINT NET`")
        return _print_mapping(api.weights_mapping(args.more[0], args.more[1], weights_map=args.weights_map), args)
    if args.more:
        raise CnncError(f"unexpected arguments: {' '.join(args.more)} (`cnnc weights NET -o FILE`, or "
                        f"`cnnc weights map CHECKPOINT NET`)")
    if not args.output:
        raise CnncError("`cnnc weights NET` needs `-o FILE` (a .safetensors or .npz file)")
    doc = api.load(args.net)
    tensors = list(api.initial_weights(doc, args.seed))
    checkpoint.write(args.output, tensors, {"cnnc.network": doc.name, "cnnc.seed": str(args.seed)})
    size = sum(v.size for _, v in tensors)
    print(f"wrote {args.output} ({len(tensors)} tensors, {size:,} values, seed {args.seed})")
    return 0


def _print_mapping(entries: list, args: argparse.Namespace) -> int:
    if args.json:
        rows = [{"checkpoint": e.source, "cnnc": e.target, "shape": list(e.shape), "layout": e.layout,
                 "how": e.how} for e in entries]
        json.dump({"checkpoint": args.more[0], "network": args.more[1], "tensors": rows}, sys.stdout, indent=1)
        print()
        return 0
    table(("checkpoint", "cnnc", "shape", "layout", "how"),
          [(e.source, e.target, "x".join(map(str, e.shape)), e.layout or "-", e.how) for e in entries])
    hows = {how: sum(e.how == how for e in entries) for how in ("name", "structure", "order", "map")}
    print(f"{len(entries)} tensors mapped: " + ", ".join(f"{n} by {how}" for how, n in hows.items() if n)
          + ("; `order`: one of several alike, taken by its place (review these)" if hows["order"] else ""))
    return 0


WEIGHTS = Command("weights", "write the named initial weights: the template for --weights", run_weights,
                  arguments=weights_arguments, network=True)
