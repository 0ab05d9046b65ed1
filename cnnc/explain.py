"""Every diagnostic's code, with a longer explanation and an example: `cnnc explain CODE`.

Each error class has its own code (`E0500`, a shape error), and the raise sites of the common mistakes a
finer one (`E0501`, branches that do not merge); warnings are `W0xxx`. Codes are stable: a code, once
given, keeps its meaning. tests/test_explain.py checks that every code cnnc can give is explained here.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    title: str
    explanation: str
    example: str = ""  # a file (or command) that gives it, and the fix


CODES: dict[str, Code] = {
    "E0000": Code("an error", "A mistake in what cnnc was asked to do; the message says what."),
    "E0100": Code("the file cannot be read, or is not YAML",
                  "cnnc reads network files as YAML (safely: no tags, no aliases beyond a bound). The file is "
                  "missing, unreadable, too large, or its YAML is malformed at the place shown.",
                  "layers:\n  - conv(8, 3x3\n      ^ a bracket left open: write `conv(8, 3x3)`"),
    "E0200": Code("the document does not have a network's structure",
                  "The YAML is well formed but is not shaped as a cnnc network: a value of the wrong type, or "
                  "one out of range. `cnnc schema` prints the JSON schema editors use to check this as you type.",
                  "input: [3, 0, 32]   # sizes are positive: [3, 32, 32]"),
    "E0201": Code("an unknown key", "A key that this place of the document does not have; usually a "
                  "misspelling, and the message suggests the nearest key.",
                  "layer:              # unknown key `layer` (did you mean `layers`?)\n  - conv(8, 3x3)"),
    "E0202": Code("a missing key", "A key every network file needs (`network`, `input`, `layers`) is absent.",
                  "network: t\ninput: [3, 32, 32]\n# missing key `layers`: add `layers: [...]`"),
    "E0203": Code("not a name", "Names of networks, layers, blocks and parameters are ASCII letters, digits and "
                  "`_`, not starting with a digit, so that they can be written in expressions and ONNX names.",
                  "layers:\n  - my conv: conv(8, 3x3)   # write `my_conv: conv(8, 3x3)`"),
    "E0300": Code("an expression that does not evaluate",
                  "An inline expression (an argument, a size, a repeat count) is wrong: a type that does not "
                  "fit, a division by zero, a float where an integer is needed.",
                  "conv(16 * 1.5, 3x3)   # 24.0 is a float: write conv(round(16 * 1.5), 3x3)"),
    "E0301": Code("an unknown name", "A name in an expression is neither a block parameter, a constant, a "
                  "family parameter nor a symbol (`same`, `valid`, ...). The message suggests the nearest.",
                  "blocks:\n  cbr(filters): [conv(filter, 3x3)]   # `filter`: did you mean `filters`?"),
    "E0302": Code("an expression that does not parse",
                  "The text is not a layer call, block signature or expression of the language; the caret "
                  "shows where reading stopped.", "conv(8, 3x3))   # one bracket too many"),
    "E0303": Code("a positional argument after a keyword one",
                  "Arguments are positional first, then keyword: `conv(16, 3x3, stride=2)`. A positional "
                  "argument after a keyword one cannot be told apart from the positions it would take.",
                  "conv(filters=16, 3x3)   # write conv(16, 3x3), or conv(filters=16, kernel=3x3)"),
    "E0304": Code("a required parameter after a defaulted one",
                  "In a block signature, parameters without a default come first; a call could not otherwise "
                  "give the later one by position.", "cb(a=1, b): [...]   # write cb(b, a=1)"),
    "E0400": Code("a call or argument that is wrong",
                  "A call names something that cannot be called that way: recursion, a block parameter of "
                  "the wrong kind, an argument given twice."),
    "E0401": Code("an unknown op or block", "The call names neither an op of the registry (`cnnc ops`) nor "
                  "a block of the file; the message suggests the nearest.", "- cnov(8, 3x3)   # did you mean `conv`?"),
    "E0402": Code("`defaults:` names a block", "`defaults:` sets ops' arguments for the file. A block's "
                  "parameters get their defaults in its signature.",
                  "defaults:\n  cbr: {f: 3}   # write the block as `cbr(f=3): [...]`"),
    "E0403": Code("two layers with one name", "Each layer's name (its path) must be unique. A layer without a "
                  "written name is named after its op, numbered (`conv`, `conv_1`, ...); a written name may "
                  "take one of those.", "- conv_1: conv(8, 3x3)\n- conv(8, 3x3)\n- conv(8, 3x3)   "
                  "# the third is `conv_1` too: rename the first"),
    "E0404": Code("an argument value an op refuses", "The value is not one the op (or ONNX, or ONNX Runtime) "
                  "accepts; the message says the range.", "batchnorm(eps=-1e-3)   # eps must be > 0"),
    "E0500": Code("a shape error", "Shapes do not fit together at the place shown."),
    "E0501": Code("branches that do not merge", "`add` and `mul` need branches of one shape (`mul` "
                  "broadcasts size-1 axes); `concat` needs equal heights and widths. The help line suggests a "
                  "1x1 projection where one fits.",
                  "add:\n  shortcut: identity                         # [64, 32, 32]\n"
                  "  residual: [conv(128, 3x3, padding=1)]     # [128, 32, 32]\n"
                  "# shortcut: [conv(128, 1x1), batchnorm]"),
    "E0502": Code("an `expect:` that does not hold", "`expect:` states the shape the layers above give; "
                  "either they or the expectation is wrong.", "- expect: [64, 16, 16]"),
    "E0503": Code("an op that cannot take its input", "The op cannot be applied to the shape that reaches it: "
                  "a kernel larger than the padded input, a rank it does not take, groups that do not divide "
                  "the channels.", "input: [3, 2, 2]\nlayers: [conv(8, 3x3)]   # pad it: conv(8, 3x3, padding=1)"),
    "E0600": Code("a weights file that does not fit", "A `--weights` file cannot be read or used."),
    "E0601": Code("a checkpoint that does not fit the network",
                  "Some of the checkpoint's tensors, or of the network's parameters, found no counterpart by "
                  "name or by structure. `cnnc weights map CHECKPOINT NET` shows the mapping; "
                  "`--weights-map FILE` renames the rest (`CHECKPOINT_NAME: CNNC_NAME`, `*` patterns, `null`).",
                  "cnnc compile resnet50 --weights resnet50.pth   # a torchvision file: use resnet50_torchvision"),
    "E0602": Code("a `.pth` that names code", "A PyTorch file is a pickle, which can call any function it "
                  "names. cnnc admits only what a state dict of tensors needs and refuses the rest before "
                  "anything runs; save the weights as `.safetensors`, or as a plain state dict."),
    "E0701": Code("a provider that cannot run here", "`--provider cuda` on a machine where CUDA does not "
                  "initialise; `auto` falls back to the CPU."),
    "E0702": Code("a model that cannot be benchmarked as asked", "For example a fixed batch size other than "
                  "the one requested."),
    "E0703": Code("a model or calibration set that cannot be quantized",
                  "`cnnc quantize` needs a float32 model and calibration samples of its input's shape (a folder of "
                  "`.npy` files, one `.npy` batch, or `--random N`); the message says which of them does not fit.",
                  "cnnc quantize m.onnx -o m.int8.onnx --calibration samples/"),
    "E0704": Code("an image that cannot be used", "It cannot be decoded, or the model records no "
                  "preprocessing and no flag gives it (`--resize`, `--crop`, `--mean`, `--std`)."),
    "E0801": Code("a limit passed", "cnnc bounds what a file may expand to (layers, calls, depth, parameters, "
                  "activation memory) so that no file can hang it or exhaust memory. A network that is really "
                  "this large raises the limit.", "cnnc check big.yaml --limit layers=200000"),
    "W0000": Code("a warning", "Something legal but probably unintended."),
    "W0001": Code("a block that is never used", "The block is defined but no call reaches it."),
    "W0002": Code("input cells that are never read", "A window with a stride larger than its kernel skips "
                  "cells.", "maxpool(2x2, stride=3)"),
}


def explain(code: str) -> str:
    """The text `cnnc explain CODE` prints; raises KeyError for an unknown code."""
    import textwrap

    entry = CODES[code.upper()]
    text = f"{code.upper()}: {entry.title}\n\n{textwrap.fill(entry.explanation, 100)}"
    if entry.example:
        text += "\n\nFor example:\n\n" + "\n".join(f"    {line}" for line in entry.example.splitlines())
    return text
