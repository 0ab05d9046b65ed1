"""Numerics against PyTorch reference implementations: timm `inception_v4`, torchvision `resnet50` and
`resnext50_32x4d` (both of cnnc's forms: grouped, and the 32 towers that cnnc stacks into it), with weights
from torch_reference.prepare (calibrated BN statistics, wide affine terms), their state dicts mapped onto
cnnc's parameter names both by data flow (map_by_order) and by the hand-written name functions below, which
must agree, the same input run through both in inference mode. Also the mapper's and `prepare`'s own tests.
Needs torch, and torchvision and timm (timm imports torchvision) for the networks: without them those tests
are skipped; run them by hand after touching lowering or padding.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import cnnc  # noqa: E402
from cnnc.dsl.document import load_text  # noqa: E402
from torch_reference import (  map_both_ways, # noqa: E402
    activation_report, assert_nonlinearities_act, compare, import_torchvision, logits_graph, map_by_order, prepare)

torchvision = import_torchvision()


def mapped(graph, model, torch_name) -> dict[str, np.ndarray]:
    """The model's values under cnnc's names by data flow, asserted identical to those by `torch_name`."""
    values = map_both_ways(graph, model, torch_name)
    return values


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
                                       {"conv1/conv": "conv1", "conv1/batchnorm": "bn1", "predictions/dense": "fc"})


def test_resnet50_torchvision_matches_torchvision():
    if torchvision is None:
        pytest.skip("torchvision is not installed")
    from torchvision.models import resnet50

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    graph = logits_graph("resnet50_torchvision")
    model = prepare(resnet50(weights=None), rng, (4, *graph.input_shape))
    values = mapped(graph, model, torchvision_resnet_name)
    print("resnet50_torchvision max |diff| / max |logit|:", compare(graph, model, values, rng))


def timm_inception_v4_name(ours: str) -> str:
    """inception_c_2/branch2/split/branch1/conv -> features.20.branch2_3a.conv. timm's `features` holds
    the three stem convs, mixed_3a..5a, then the 4 + 1 + 7 + 1 + 3 blocks of the body."""
    if ours == "predictions/dense":  # `predictions: [dense(1000), softmax]` less its softmax
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
    graph = logits_graph("inception_v4")
    model = prepare(timm.create_model("inception_v4", pretrained=False), rng, (4, *graph.input_shape))
    values = mapped(graph, model, timm_inception_v4_name)
    print("inception_v4 max |diff| / max |logit|:", compare(graph, model, values, rng))


def torchvision_resnext_name(ours: str) -> str:
    """resnext50_grouped's names, e.g. layer2/identity_block_1/add/residual/cbr_2/batchnorm -> layer2.1.bn2."""
    return torchvision_bottleneck_name(ours, {f"layer{i}": f"layer{i}" for i in range(1, 5)}, "projection_block",
                                       {"conv1/conv": "conv1", "conv1/batchnorm": "bn1", "fc/dense": "fc"})


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
    grouped = logits_graph("resnext50_grouped")
    model = prepare(resnext50_32x4d(weights=None), rng, (4, *grouped.input_shape))
    values = mapped(grouped, model, torchvision_resnext_name)
    graph = logits_graph(form)
    if form == "resnext50":
        values = split_into_towers(graph, values)
    print(f"{form} max |diff| / max |logit|:", compare(graph, model, values, rng))


TOY = """network: toy
input: [3, 8, 8]
layers:
  - body: [conv(4, 3x3, padding=1), batchnorm(eps=1e-5), prelu]
  - globalavgpool
  - head: dense(5)
"""


class Toy(torch.nn.Module):
    """The toy network in PyTorch, its PReLU slope a loose parameter registered before the modules it
    follows (as ConvNeXt's layer_scale) and shaped [C, 1, 1] where cnnc's is [C]; `extra` is a module the
    forward pass never reaches."""

    def __init__(self, filters: int = 4, extra: bool = False):
        super().__init__()
        self.slope = torch.nn.Parameter(torch.full((filters, 1, 1), 0.25))
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, filters, 3, padding=1), torch.nn.BatchNorm2d(filters))
        self.head = torch.nn.Linear(filters, 5)
        self.extra = torch.nn.Linear(5, 5) if extra else None

    def forward(self, x):
        x = torch.nn.functional.prelu(self.body(x), self.slope.flatten())
        return self.head(x.mean((2, 3)))


def test_map_by_order_pairs_a_loose_parameter_registered_first():
    rng = np.random.default_rng(3)
    graph = cnnc.build(load_text(TOY, "toy.yaml"))
    model = prepare(Toy(), rng, (4, *graph.input_shape))
    values = map_by_order(graph, model)
    assert list(values) == [p.name for p in graph.params]
    np.testing.assert_array_equal(values["body/prelu.weight"], model.slope.detach().numpy().ravel())
    np.testing.assert_array_equal(values["body/batchnorm.running_var"], model.body[1].running_var.numpy())
    assert compare(graph, model, values, rng) < 1e-5


TIE = """network: tie
input: [3, 8, 8]
layers:
  - block:
      add:
        residual: [conv(4, 1x1), batchnorm(eps=1e-5), relu, conv(4, 3x3, padding=1), batchnorm(eps=1e-5)]
        shortcut: [conv(4, 1x1), batchnorm(eps=1e-5)]
  - globalavgpool
  - dense(5)
"""


class Tie(torch.nn.Module):
    """TIE in PyTorch, as RegNet writes it: the projection is registered and run before the residual
    branch, whose first conv has its shapes and its input. cnnc lists the residual branch first."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
        self.f = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                     torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.BatchNorm2d(4))
        self.head = torch.nn.Linear(4, 5)

    def forward(self, x):
        return self.head((self.proj(x) + self.f(x)).mean((2, 3)))


def test_map_by_order_undoes_a_wrong_tie():
    rng = np.random.default_rng(5)
    graph = cnnc.build(load_text(TIE, "tie.yaml"))
    model = prepare(Tie(), rng, (4, *graph.input_shape))
    values = map_by_order(graph, model)
    np.testing.assert_array_equal(values["block/shortcut/conv.weight"], model.proj[0].weight.detach().numpy())
    np.testing.assert_array_equal(values["block/residual/conv_1.weight"], model.f[0].weight.detach().numpy())
    assert compare(graph, model, values, rng) < 1e-5


def test_map_by_order_fails_loudly():
    graph = cnnc.build(load_text(TOY, "toy.yaml"))
    with pytest.raises(AssertionError, match=r"body/conv \(conv: weight \(4, 3, 3, 3\).*body\.0 \(Conv2d: weight "
                                             r"\(6, 3, 3, 3\)"):
        map_by_order(graph, Toy(filters=6))
    with pytest.raises(AssertionError, match=r"never reached by the forward pass: \['extra \(Linear"):
        map_by_order(graph, Toy(extra=True))
    with pytest.raises(AssertionError, match="body/conv.weight -> conv.weight: no such reference tensor"):
        map_by_order(graph, Toy(), rename=lambda name: name.split("/")[-1])


def test_prepare_makes_clipping_act():
    """Under PyTorch's own initialisation no ReLU6 input of MobileNet-v2 reaches 6, so the check fails;
    under `prepare` every clip point of MobileNet-v2 and -v3 is crossed."""
    if torchvision is None:
        pytest.skip("torchvision is not installed")
    from torchvision.models import mobilenet_v2, mobilenet_v3_small

    rng = np.random.default_rng(4)
    torch.manual_seed(4)
    x = rng.standard_normal((2, 3, 128, 128)).astype(np.float32)  # any size will do: 128 is faster than 224
    with pytest.raises(AssertionError, match="no ReLU6 input exceeds"):
        assert_nonlinearities_act(mobilenet_v2().eval(), x)
    for build in (mobilenet_v2, mobilenet_v3_small):
        report = assert_nonlinearities_act(prepare(build(), rng, (4, 3, 128, 128)), x)
        print(build.__name__, report)
        assert set(report) == ({"ReLU6"} if build is mobilenet_v2 else {"Hardswish", "Hardsigmoid"})
    assert activation_report(torch.nn.Sequential(torch.nn.ReLU()), x) == {}


def test_alexnet_torchvision_matches_torchvision():
    if torchvision is None:
        pytest.skip("torchvision is not installed")
    from torchvision.models import alexnet

    rng = np.random.default_rng(3)
    torch.manual_seed(3)
    graph = cnnc.build("alexnet_torchvision")
    assert graph.layers[-1].op == "dense"  # logits, as torchvision gives them
    model = prepare(alexnet(weights=None), rng, (2, *graph.input_shape))
    print("alexnet_torchvision max |diff| / max |logit|:",
          compare(graph, model, map_by_order(graph, model), rng, tolerance=1e-4))
