"""The `cnnc` command: wires the API's stages to the terminal. Exit 0 ok, 2 user error, 1 internal."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from . import __version__

USER_ERROR, INTERNAL_ERROR = 2, 1


def _interrupted(signum, frame):
    raise KeyboardInterrupt  # unwinds through `finally`, so no temporary file is left behind


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return USER_ERROR
    import warnings

    from .compiler.limits import Limits, limits
    from .compiler.resolve import CompileWarning
    from .dsl.errors import CnncError
    warnings.showwarning = _show_warning
    warnings.simplefilter("default", CompileWarning)
    try:
        try:
            chosen = Limits.parse(getattr(args, "limit", None) or [])
        except ValueError as e:
            raise CnncError(f"--limit {e}") from None
        with limits(chosen):
            return args.run(args) or 0
    except CnncError as e:
        print(str(e), file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # anything else is a bug in cnnc
        print(f"cnnc: internal error: {type(e).__name__}: {e}\nThis is a bug in cnnc {__version__}; please "
              f"report it with the command and the file that caused it.", file=sys.stderr)
        return INTERNAL_ERROR


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    from .compiler.resolve import CompileWarning
    text = str(message) if isinstance(message, CompileWarning) else f"warning: {message}"
    print(text, file=sys.stderr)


LIMIT_HELP = ("raise or lower a limit, NAME=VALUE (repeatable): repeat, layers, calls, depth, params, "
              "activation_mb; see docs/language.md, Limits")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cnnc", description="Compile convolutional network descriptions to ONNX.")
    p.add_argument("--version", action="version", version=f"cnnc {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    net_help = "a network file, or the name of a shipped architecture (see `cnnc list`)"

    c = sub.add_parser("list", help="the shipped architectures")
    c.set_defaults(run=cmd_list)

    c = sub.add_parser("check", help="every static check, without making weights")
    c.add_argument("net", help=net_help)
    c.set_defaults(run=cmd_check)

    aux_help = "keep the train-only heads (`aux:`), as extra outputs named after them"
    weights_help = "load every parameter by name from a .safetensors or .npz file (see `cnnc weights`)"

    c = sub.add_parser("summary", help="per-layer shapes, parameters and MACs")
    c.add_argument("net", help=net_help)
    c.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    c.add_argument("--aux", action="store_true", help="list the train-only heads' layers too")
    c.set_defaults(run=cmd_summary)

    c = sub.add_parser("compile", help="write an ONNX model")
    c.add_argument("net", help=net_help)
    c.add_argument("-o", "--output", help="the .onnx file to write (default: NAME.onnx)")
    c.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")
    c.add_argument("--weights", help=weights_help)
    c.add_argument("--aux", action="store_true", help=aux_help)
    c.set_defaults(run=cmd_compile)

    c = sub.add_parser("weights", help="write the named initial weights: the template for --weights")
    c.add_argument("net", help=net_help)
    c.add_argument("-o", "--output", required=True, help="a .safetensors or .npz file")
    c.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")
    c.set_defaults(run=cmd_weights)

    c = sub.add_parser("run", help="run a model in ONNX Runtime")
    c.add_argument("model", help="an .onnx file (or a network, compiled in memory)")
    c.add_argument("--batch", type=_positive, default=1, help="batch size for random input (default 1)")
    c.add_argument("--provider", choices=["auto", "cuda", "cpu"], default="auto",
                   help="auto: CUDA when it really initialises, else the CPU")
    c.add_argument("--input", help="a .npy file with the input batch, instead of random data")
    c.add_argument("--seed", type=int, default=0, help="seed of the random input (default 0)")
    c.add_argument("--weights", help=weights_help + " (when MODEL is a network)")
    c.add_argument("--aux", action="store_true", help=aux_help + " (when MODEL is a network)")
    c.set_defaults(run=cmd_run)
    for command in sub.choices.values():
        if any(a.dest in ("net", "model") for a in command._actions):
            command.add_argument("--limit", action="append", metavar="NAME=VALUE", help=LIMIT_HELP)
    return p


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def cmd_list(args) -> int:
    from . import api
    from .architectures import names
    rows = []
    for name in names():
        graph = api.build(name)
        rows.append((name, "x".join(map(str, graph.input_shape)), f"{graph.counts()['total']:,}",
                     f"{graph.macs / 1e9:.3f} G"))
    _table(("name", "input", "params", "MACs"), rows, right={2, 3})
    return 0


def cmd_check(args) -> int:
    from . import api
    graph = api.build(args.net)
    counts = graph.counts()
    print(f"{graph.name}: ok — {len(graph.layers)} layers, {_shape(graph.input_shape)} -> "
          f"{_shape(graph.output_shape)}, {counts['total']:,} parameters, {graph.macs:,} MACs")
    return 0


def cmd_summary(args) -> int:
    from . import api
    info = api.summary(api.build(args.net, aux=True) if args.aux else args.net)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    rows = [(l["name"], l["op"], _shape(l["output_shape"]), f"{l['params']:,}" if l["params"] else "",
             f"{l['macs']:,}" if l["macs"] else "") for l in info["layers"]]
    _table(("name", "op", "output shape", "params", "MACs"), rows, right={3, 4})
    p = info["params"]
    print(f"\n{info['name']}: input {_shape(info['input_shape'])} -> output {_shape(info['output_shape'])}")
    print(f"total params: {p['total']:,}   trainable: {p['trainable']:,}   "
          f"non-trainable: {p['non_trainable']:,}")
    print(f"MACs: {info['macs']:,} ({info['macs'] / 1e9:.3f} G)")
    if "params_with_aux" in info:
        a = info["params_with_aux"]
        print(f"with the train-only heads ({', '.join(info['aux_heads'])}; `--aux` keeps them): total params "
              f"{a['total']:,}   trainable: {a['trainable']:,}   non-trainable: {a['non_trainable']:,}")
    return 0


def cmd_compile(args) -> int:
    from . import api
    doc = api.load(args.net)
    model = api.compile(doc, seed=args.seed, aux=args.aux, weights=args.weights)
    out = Path(args.output or f"{doc.name}.onnx")
    api.save(model, out)
    outputs = ", ".join(o.name for o in model.graph.output)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB; outputs: {outputs})")
    return 0


def cmd_weights(args) -> int:
    from . import api
    from .compiler import checkpoint
    doc = api.load(args.net)
    tensors = list(api.initial_weights(doc, args.seed))
    checkpoint.write(args.output, tensors, {"cnnc.network": doc.name, "cnnc.seed": str(args.seed)})
    size = sum(v.size for _, v in tensors)
    print(f"wrote {args.output} ({len(tensors)} tensors, {size:,} values, seed {args.seed})")
    return 0


def cmd_run(args) -> int:
    import numpy as np

    from . import api
    from .dsl.errors import CnncError
    from .runtime import RuntimeUnavailable, Session

    path = Path(args.model)
    if path.suffix == ".onnx":
        if not path.is_file():
            raise CnncError(f"cannot read `{path}`: no such file")
        model: bytes = path.read_bytes()
    else:
        model = api.compile(args.model, aux=args.aux, weights=args.weights).SerializeToString()
    try:
        session = Session(model, args.provider)
    except RuntimeUnavailable as e:
        raise CnncError(str(e)) from None
    except Exception as e:
        raise CnncError(f"onnxruntime cannot load `{path}`: {str(e).splitlines()[0]}") from None
    x = _input(args, session, np)
    start = time.perf_counter()
    outputs = session.run_all(x)
    elapsed = time.perf_counter() - start
    y = outputs[session.output_names[0]]
    note = f" ({session.reason})" if session.provider == "cpu" and args.provider == "auto" and session.reason else ""
    print(f"provider: {session.provider}{note}")
    meta = session.metadata
    if "cnnc.seed" in meta:
        print(f"model: {meta.get('cnnc.network', '?')}, random untrained weights, seed {meta['cnnc.seed']} "
              f"(the classes below are not predictions)")
    shapes = ", ".join(f"{name} {list(v.shape)}" for name, v in outputs.items())
    print(f"input {list(x.shape)} -> {shapes} in {elapsed * 1000:.1f} ms")
    if y.ndim == 2 and y.shape[1] >= 2:
        top = np.argsort(-y[0])[:5]
        print("top-5 of sample 0: " + ", ".join(f"{int(i)} ({y[0, i]:.4f})" for i in top))
    return 0


def _input(args, session, np):
    from .dsl.errors import CnncError
    shape = [args.batch if not isinstance(d, int) else d for d in session.input_shape]
    if args.input is None:
        return np.random.default_rng(args.seed).standard_normal(shape, dtype=np.float32)
    try:
        x = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise CnncError(f"cannot read `{args.input}` as a .npy array: {e}") from None
    if list(x.shape[1:]) != shape[1:]:
        raise CnncError(f"`{args.input}` has shape {list(x.shape)}; the model takes [N, "
                        f"{', '.join(map(str, shape[1:]))}]")
    return x.astype(np.float32, copy=False)


def _shape(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _table(header, rows, right=frozenset()) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    print(fmt(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(fmt(r))


if __name__ == "__main__":
    sys.exit(main())
