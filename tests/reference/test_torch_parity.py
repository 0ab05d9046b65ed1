"""Numerics against PyTorch reference implementations: timm `inception_v4`, torchvision `resnet50` and
`resnext50_32x4d` (both of cnnc's forms: grouped, and the 32 towers that cnnc stacks into it),
built with random weights (BN running statistics included), their state dicts mapped onto cnnc's parameter
names, the same input run through both in inference mode. Needs torch, torchvision and timm (timm imports
torchvision): without them these tests are skipped; run them by hand after touching lowering or padding.
"""
from __future__ import annotations

import importlib.util
import re
import sys
import types
from typing import Callable

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import cnnc  # noqa: E402
from cnnc.architectures import path as shipped  # noqa: E402
from cnnc.dsl.document import load_text  # noqa: E402


def import_torchvision() -> types.ModuleType | None:
    """torchvision, or None when it is not installed.

    torchvision's Linux wheels on PyPI are CUDA builds: against a CPU-only torch (`2.13.0+cpu`) their `_C`
    extension cannot load (it links libtorch_cuda), and `import torchvision` then dies in
    `_meta_registrations` with "operator torchvision::nms does not exist". The model definitions are pure
    Python and need none of those compiled ops, so in that case the package is registered without running
    its `__init__` and its submodules (`torchvision.models`, `torchvision.ops.misc`, which timm imports)
    load as usual. Only the detection ops (nms, roi_align, ...) are unusable, and nothing here calls them.
    """
    try:
        import torchvision
        return torchvision
    except ModuleNotFoundError:
        return None
    except RuntimeError as error:
        if "torchvision::" not in str(error):
            raise
    for name in [name for name in sys.modules if name == "torchvision" or name.startswith("torchvision.")]:
        del sys.modules[name]  # the half-imported package from the failed attempt
    spec = importlib.util.find_spec("torchvision")
    package = importlib.util.module_from_spec(spec)  # a module object; its __init__ is never executed
    sys.modules["torchvision"] = package
    return package


torchvision = import_torchvision()


def logits_graph(name: str):
    """The shipped network without its final softmax: logits are compared, not saturated probabilities."""
    text = shipped(name).read_text()
    assert text.count("[dense(1000), softmax]") == 1
    return cnnc.build(load_text(text.replace("[dense(1000), softmax]", "dense(1000)"), f"{name}.yaml"))


@torch.no_grad()
def randomise(model, rng) -> None:
    """He-normal conv and dense weights and random BN affine terms and statistics (PyTorch initialises
    the statistics to 0 and 1, which would leave them untested)."""
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            fan_in = module.weight[0].numel()
            module.weight.copy_(torch.from_numpy(rng.normal(0, np.sqrt(2 / fan_in), module.weight.shape)))
            if module.bias is not None:
                module.bias.copy_(torch.from_numpy(rng.normal(0, 0.1, module.bias.shape)))
        elif isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.weight.copy_(torch.from_numpy(rng.uniform(0.8, 1.2, n)))
            module.bias.copy_(torch.from_numpy(rng.normal(0, 0.1, n)))
            module.running_mean.copy_(torch.from_numpy(rng.normal(0, 0.1, n)))
            module.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, n)))
    model.eval()


def mapped(graph, model, torch_name: Callable[[str], str]) -> dict[str, np.ndarray]:
    """The model's state dict under cnnc's parameter names. `torch_name` maps a cnnc layer name to the
    PyTorch module holding the same parameters; cnnc's parameter kinds (weight, bias, running_mean,
    running_var) are PyTorch's, and so are its layouts."""
    state = {key: value.numpy() for key, value in model.state_dict().items()}
    values = {}
    for layer in (layer for layer in graph.layers if layer.params):
        module = torch_name(layer.name)
        for p in layer.params:
            value = state.pop(f"{module}.{p.name.rsplit('.', 1)[1]}")
            assert value.shape == p.shape, (p.name, module, value.shape)
            values[p.name] = value.astype(np.float32)
    leftover = [key for key in state if not key.endswith("num_batches_tracked")]
    assert not leftover, f"reference tensors with no cnnc parameter: {leftover[:5]}"
    return values


def compare(graph, model, torch_name: Callable[[str], str] | dict, rng, batch: int = 2) -> float:
    """Load the model's state dict into cnnc by name (or the values given), run both, return
    max |difference| / max |logit|."""
    values = torch_name if isinstance(torch_name, dict) else mapped(graph, model, torch_name)
    onnx_model = cnnc.compiler.to_onnx(graph, weights=[(p, values[p.name]) for p in graph.params])

    x = rng.standard_normal((batch, *graph.input_shape)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = cnnc.Session(onnx_model.SerializeToString(), "cpu").run(x)
    assert got.shape == expected.shape
    scale = np.abs(expected).max()
    assert scale > 1e-3
    np.testing.assert_allclose(got, expected, atol=2e-4 * scale, rtol=0)
    return float(np.abs(got - expected).max() / scale)


def torchvision_bottleneck_name(ours: str, stages: dict[str, str], first: str, fixed: dict[str, str]) -> str:
    """A cnnc bottleneck-network layer name -> torchvision's module name, e.g. for ResNet-50
    conv3/identity_block_2/add/residual/cbr_1/batchnorm -> layer2.2.bn1. `stages` maps cnnc's stage names
    to torchvision's `layerN`; `first` is the name of a stage's block 0; `fixed` holds stem and head."""
    if ours in fixed:
        return fixed[ours]
    stage, block, _add, branch, *inner = ours.split("/")
    prefix = f"{stages[stage]}.{0 if block == first else int(block.rsplit('_', 1)[1])}"
    if branch == "shortcut":
        return f"{prefix}.downsample.{0 if inner == ['conv'] else 1}"
    position = {"cbr_1": 1, "cbr_2": 2}.get(inner[0], 3)  # the last conv and BN sit outside the cbr blocks
    return f"{prefix}.{'conv' if inner[-1] == 'conv' else 'bn'}{position}"


def torchvision_resnet_name(ours: str) -> str:
    """resnet50_torchvision's names: torchvision's layer1..4 are cnnc's conv2..5."""
    return torchvision_bottleneck_name(ours, {f"conv{i + 1}": f"layer{i}" for i in range(1, 5)}, "conv_block",
                                       {"conv1/conv": "conv1", "conv1/batchnorm": "bn1", "predictions": "fc"})


def test_resnet50_torchvision_matches_torchvision():
    if torchvision is None:
        pytest.skip("torchvision is not installed")
    from torchvision.models import resnet50

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = resnet50(weights=None)
    randomise(model, rng)
    print("resnet50_torchvision max |diff| / max |logit|:",
          compare(logits_graph("resnet50_torchvision"), model, torchvision_resnet_name, rng))


def timm_inception_v4_name(ours: str) -> str:
    """inception_c_2/branch2/split/branch1/conv -> features.20.branch2_3a.conv. timm's `features` holds
    the three stem convs, mixed_3a..5a, then the 4 + 1 + 7 + 1 + 3 blocks of the body."""
    if ours == "predictions":  # `predictions: dense(1000)` once the softmax is stripped
        return "last_linear"
    *path, leaf = ours.split("/")
    kind = {"conv": "conv", "batchnorm": "bn"}[leaf]
    if path[0] == "stem" and path[1].startswith("cbr_"):
        return f"features.{int(path[1][len('cbr_'):]) - 1}.{kind}"
    block, branch, *inner = path[1:] if path[0] == "stem" else path
    repeated = re.fullmatch(r"(inception_[abc])_(\d+)", block)
    first = {"mixed_3a": 3, "mixed_4a": 4, "mixed_5a": 5, "inception_a": 6, "reduction_a": 10,
             "inception_b": 11, "reduction_b": 18, "inception_c": 19}
    index = first[repeated[1]] + int(repeated[2]) - 1 if repeated else first[block]
    if block in ("mixed_3a", "mixed_5a"):  # one conv, named `conv`, beside a max pool
        module = "conv"
    elif not inner:  # a branch that is a single conv
        module = branch
    elif block.startswith("inception_c") and branch != "branch3":  # timm's flat branch1_0, branch2_3a, ...
        if inner[0] == "split":
            module = f"{branch}_{1 if branch == 'branch1' else 3}{'ab'[int(inner[1][-1]) - 1]}"
        else:
            module = f"{branch}_{int(inner[0][len('cbr_'):]) - 1 if inner[0] != 'cbr' else 0}"
    elif inner[0] == "cbr":  # the pool projection, after the average pool
        module = f"{branch}.1"
    else:
        module = f"{branch}.{int(inner[0][len('cbr_'):]) - 1}"
    return f"features.{index}.{module}.{kind}"


def test_inception_v4_matches_timm():
    timm = pytest.importorskip("timm", reason="timm is not installed")
    rng = np.random.default_rng(1)
    torch.manual_seed(1)
    model = timm.create_model("inception_v4", pretrained=False)
    randomise(model, rng)
    print("inception_v4 max |diff| / max |logit|:",
          compare(logits_graph("inception_v4"), model, timm_inception_v4_name, rng))


def torchvision_resnext_name(ours: str) -> str:
    """resnext50_grouped's names, e.g. layer2/identity_block_1/add/residual/cbr_2/batchnorm -> layer2.1.bn2."""
    return torchvision_bottleneck_name(ours, {f"layer{i}": f"layer{i}" for i in range(1, 5)}, "projection_block",
                                       {"conv1/conv": "conv1", "conv1/batchnorm": "bn1", "fc": "fc"})


def split_into_towers(graph, grouped: dict[str, np.ndarray], towers: int = 32) -> dict[str, np.ndarray]:
    """Grouped-form values -> the tower form's names: tower i owns slice i of every grouped tensor (of the
    input channels for the last 1x1 conv, whose outputs the towers sum)."""
    out = {}
    for p in graph.params:
        m = re.fullmatch(r"(.*/residual)/add/branch(\d+)/(.*)", p.name)
        if m is None:
            out[p.name] = grouped[p.name]
            continue
        axis = 1 if m[3] == "conv.weight" else 0
        out[p.name] = np.split(grouped[f"{m[1]}/{m[3]}"], towers, axis=axis)[int(m[2]) - 1]
        assert out[p.name].shape == p.shape, p.name
    return out


@pytest.mark.parametrize("form", ["resnext50_grouped", "resnext50"])
def test_resnext50_matches_torchvision(form):
    if torchvision is None:
        pytest.skip("torchvision is not installed")
    from torchvision.models import resnext50_32x4d

    rng = np.random.default_rng(2)
    torch.manual_seed(2)
    model = resnext50_32x4d(weights=None)
    randomise(model, rng)
    values = mapped(logits_graph("resnext50_grouped"), model, torchvision_resnext_name)
    graph = logits_graph(form)
    if form == "resnext50":
        values = split_into_towers(graph, values)
    print(f"{form} max |diff| / max |logit|:", compare(graph, model, values, rng))
