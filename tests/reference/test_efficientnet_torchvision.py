"""Numerics of architectures/efficientnet.yaml against torchvision's builders: the smallest variant
(efficientnet_b0, 224x224, BN eps 1e-5) and the largest (efficientnet_b7, 600x600, 66.7M parameters,
BN eps 1e-3), their state dicts mapped onto cnnc's names both by data flow and by the name function
below (which must agree), the same input through both in inference mode.

Weights: torch_reference.prepare's draws (He weights, BN gamma U(0.5, 2.5), beta N(0, 1)), with two
changes that a 55-block network needs (`weights` below):
  - each residual branch's last BN (MBConv's project BN, where the block has a residual) has its gamma
    and beta scaled by 0.3. Undamped, 40-55 residual blocks of such wide affine terms are chaotic: the
    relative error of float32 grows about 13% a block, and torchvision's own float32 output is 3e-2 off
    its float64 output at depth 3.1 (2e-1 for b7), so no float32 engine could pass; damped, torchvision
    float32 is 1e-6 off float64 for b7. Everything inside the branch still acts at full scale.
  - BN statistics calibrated in eval mode, layer by layer: in one pass each BN takes the mean and
    (biased) variance of the very input it gets, so its output is N(beta, gamma^2) per channel on that
    batch. prepare's train-mode calibration normalises each BN's input with batch statistics that eval
    mode does not reproduce, and over 55 blocks the drift compounds (b7's logits reached 26000).
Needs torch and torchvision (skipped without them). b7 (about 38 GMACs an image) runs at the smallest
batch `compare` accepts, 2: a few minutes on two cores, under 3 GB.
"""
from __future__ import annotations

import re
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import cnnc  # noqa: E402
from torch_reference import map_both_ways, compare, import_torchvision, prepare  # noqa: E402

torchvision = import_torchvision()
if torchvision is not None:
    from torchvision.models.efficientnet import MBConv
    from torchvision.ops.misc import SqueezeExcitation

FIXED = {"stem/conv": "features.0.0", "stem/batchnorm": "features.0.1",
         "head/conv": "features.8.0", "head/batchnorm": "features.8.1", "classifier/dense": "classifier.1"}
# MBConv.block's layers, without and with an expand conv (stage1, expand ratio 1, has none)
POSITIONS = {False: {"depthwise": 0, "se": 1, "project": 2}, True: {"expand": 0, "depthwise": 1, "se": 2, "project": 3}}


def torchvision_efficientnet_name(ours: str) -> str:
    """A cnnc layer name -> torchvision's module name: stage3/mbconv_2/block/se/gate/fc1 ->
    features.3.1.block.2.fc1, stage2/mbconv_1/project/batchnorm -> features.2.0.block.3.1. A residual
    block's layers sit under `block` (its add's other branch is the identity shortcut)."""
    if ours in FIXED:
        return FIXED[ours]
    match = re.fullmatch(r"stage(\d)/mbconv(?:_(\d+))?/(?:block/)?(\w+)/(.+)", ours)
    assert match, f"unexpected layer name {ours}"
    stage, block, layer, rest = match.groups()
    index = POSITIONS[stage != "1"][layer]
    prefix = f"features.{stage}.{int(block or 1) - 1}.block.{index}"
    if layer == "se":
        return f"{prefix}.{rest.rsplit('/', 1)[1]}"  # se/gate/fc1 -> fc1
    return f"{prefix}.{ {'conv': 0, 'batchnorm': 1}[rest] }"


def mapped(graph, model) -> dict[str, np.ndarray]:
    """The model's values under cnnc's names by data flow, asserted identical to those by name."""
    values = map_both_ways(graph, model, torchvision_efficientnet_name)
    return values


RESIDUAL_DAMPING = 0.3


@torch.no_grad()
def weights(model, rng: np.random.Generator, shape: tuple[int, ...], blocks: tuple[type, ...] = ()) -> None:
    """prepare's draws, residual branches damped, BN statistics calibrated in eval mode (module doc);
    asserts that the SE gates gate (sigmoid outputs on both sides of 0.5). `blocks`: the residual block
    classes whose last BN is damped (default MBConv; EfficientNet-V2 adds FusedMBConv)."""
    prepare(model, rng, shape, batches=0)  # draws only: the statistics come below
    for block in model.modules():
        if isinstance(block, blocks or (MBConv,)) and block.use_res_connect:
            project_bn = block.block[-1][1]
            project_bn.weight.mul_(RESIDUAL_DAMPING)
            project_bn.bias.mul_(RESIDUAL_DAMPING)

    def calibrate(norm, args):
        x = args[0].double()
        norm.running_mean.copy_(x.mean((0, 2, 3)))
        norm.running_var.copy_(x.var((0, 2, 3), unbiased=False))

    gates = []
    handles = [m.register_forward_pre_hook(calibrate) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    handles += [m.scale_activation.register_forward_hook(lambda m, a, out: gates.append(out.flatten()))
                for m in model.modules() if isinstance(m, SqueezeExcitation)]
    try:
        model.eval()(torch.from_numpy(rng.standard_normal(shape).astype(np.float32)))
    finally:
        for handle in handles:
            handle.remove()
    below = float((torch.cat(gates) < 0.5).float().mean())
    assert 0.05 < below < 0.95, f"SE gates below 0.5: {below:.1%}: the gates hardly gate"


@pytest.mark.parametrize("variant, eps", [("efficientnet_b0", 1e-5), ("efficientnet_b7", 1e-3)])
def test_efficientnet_matches_torchvision(variant, eps):
    if torchvision is None:
        pytest.skip("torchvision is not installed")
    from torchvision.models import efficientnet

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    graph = cnnc.build(variant)
    model = getattr(efficientnet, variant)(weights=None)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert {m.eps for m in norms} == {eps}
    assert {layer.attrs["eps"] for layer in graph.layers if layer.op == "batchnorm"} == {eps}
    statistics = sum(m.running_mean.numel() + m.running_var.numel() for m in norms)
    assert sum(p.numel() for p in model.parameters()) + statistics == sum(int(np.prod(p.shape)) for p in graph.params)
    weights(model, rng, (2, *graph.input_shape))
    values = mapped(graph, model)
    relative = compare(graph, model, values, rng, batch=2, tolerance=1e-4)
    print(f"{variant} max |diff| / max |logit|: {relative:.3g} ({time.perf_counter() - start:.1f} s)")


@pytest.mark.parametrize("network", [f"efficientnet_b{i}" for i in range(8)])
def test_stochastic_depth_is_torchvisions_block_by_block(network):
    """torchvision drops residual MBConv block k of all `total` with probability 0.2 * k / total; so does
    cnnc (`repeat_index` in each stage's repeat)."""
    if torchvision is None:
        pytest.skip("torchvision is not installed")
    ours = [layer.attrs["rate"] for layer in cnnc.build(network).layers if layer.op == "droppath"]
    with torch.device("meta"):  # the structure without allocating its weights
        model = getattr(torchvision.models, network)(weights=None)
    theirs = [m.stochastic_depth.p for m in model.modules() if isinstance(m, MBConv) and m.use_res_connect]
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
