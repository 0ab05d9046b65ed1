"""Numerics of regnet.yaml against torchvision's `regnet_y_400mf`, under the same weights
(torch_reference.prepare: He weights, calibrated BN statistics, wide affine terms), mapped onto cnnc's
names both by data flow (map_by_order) and by the name function below, which must agree. Also: the
stages that the file's generator (w_0, w_a, w_m, depth, group width) makes for each variant are those of
torchvision's `BlockParams.from_init_params`, and the counts equal torchvision's builder's.

Run: `/tmp/refvenv/bin/pytest tests/reference/test_regnet_torchvision.py -rA -s` (needs torch and
torchvision; skipped without them).
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import cnnc  # noqa: E402
from torch_reference import torchvision_counts, map_both_ways, compare, import_torchvision, prepare  # noqa: E402

torchvision = import_torchvision()
if torchvision is None:
    pytest.skip("torchvision is not installed", allow_module_level=True)

from torchvision import models  # noqa: E402

VARIANTS = ["regnet_y_400mf", "regnet_x_400mf"]  # compared numerically (the smallest Y and X)
# every variant's stages and counts against torchvision's builder, but regnet_y_128gf (645 M parameters,
# built on the CPU because BlockParams calls .tolist(); compared in test_the_largest_matches_torchvision)
STRUCTURES = ["regnet_y_400mf", "regnet_y_800mf", "regnet_y_1_6gf", "regnet_y_3_2gf", "regnet_y_8gf",
              "regnet_y_16gf", "regnet_y_32gf", "regnet_x_400mf", "regnet_x_800mf", "regnet_x_1_6gf",
              "regnet_x_3_2gf", "regnet_x_8gf", "regnet_x_16gf", "regnet_x_32gf"]
PARTS = {"cbr_1": "f.a", "cbr_2": "f.b", "conv_1": "f.se.fc1", "conv_2": "f.se.fc2"}


def torchvision_name(graph):
    """A function cnnc layer name -> torchvision module name for this RegNet graph, e.g.
    stage_2/block_3/add/residual/cbr_2/batchnorm -> trunk_output.block2.block2-2.f.b.1 and
    stage_1/block/add/residual/se/gate/conv_1 -> trunk_output.block1.block1-0.f.se.fc1. A block's index
    is its place in its stage; `shortcut` is torchvision's `proj`, the residual's last conv + BN `f.c`."""
    blocks: dict[str, dict[str, int]] = {}  # stage -> {block name: index}
    for layer in graph.layers:
        stage, *rest = layer.name.split("/")
        if stage.startswith("stage") and rest:
            order = blocks.setdefault(stage, {})
            order.setdefault(rest[0], len(order))

    def name(ours: str) -> str:
        path = ours.split("/")
        leaf = {"conv": 0, "batchnorm": 1}.get(path[-1])
        if path[0] == "stem":
            return f"stem.{leaf}"
        if path[0] == "head":
            return "fc"
        stage, block, _add, branch, *inner = path
        s = stage[len("stage_"):]
        prefix = f"trunk_output.block{s}.block{s}-{blocks[stage][block]}"
        if branch == "shortcut":
            return f"{prefix}.proj.{leaf}"
        if inner[0] == "se":
            return f"{prefix}.{PARTS[inner[-1]]}"
        return f"{prefix}.{PARTS.get(inner[0], 'f.c')}.{leaf}"

    return name


def mapped(graph, model) -> dict[str, np.ndarray]:
    """The model's values under cnnc's names by data flow, asserted identical to those by name."""
    values = map_both_ways(graph, model, torchvision_name(graph))
    return values


@pytest.mark.parametrize("network", VARIANTS)
def test_matches_torchvision(network):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    graph = cnnc.build(network)
    assert graph.layers[-1].op == "dense"  # logits, as torchvision returns them
    model = prepare(getattr(models, network)(weights=None), rng, (4, *graph.input_shape))
    relative = compare(graph, model, mapped(graph, model), rng, tolerance=1e-4)
    print(f"{network} max |diff| / max |logit|: {relative:.3g}")



def test_the_largest_matches_torchvision(tmp_path):
    """regnet_y_128gf (645 M parameters, its model 2.6 GB: external data), at 224x224 to spare the CPU:
    the weights do not depend on the resolution, nor does torchvision's model."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    with cnnc.parameters(resolution=224):
        graph = cnnc.build("regnet_y_128gf")
    model = models.regnet_y_128gf(weights=None)
    assert graph.counts() == torchvision_counts(model)
    model = prepare(model, rng, (2, *graph.input_shape), batches=2)
    relative = compare(graph, model, mapped(graph, model), rng, tolerance=1e-4, path=tmp_path / "regnet.onnx")
    print(f"regnet_y_128gf max |diff| / max |logit|: {relative:.3g}")


@pytest.mark.parametrize("network", STRUCTURES)
def test_stages_and_counts_equal_torchvision(network):
    """Stage by stage, the blocks, widths, 3x3 groups and squeeze widths are those that torchvision's
    builder computes (`BlockParams.from_init_params`); the counts are its counts."""
    model = getattr(models, network)(weights=None)  # not on the meta device: BlockParams calls .tolist()
    graph = cnnc.build(network)
    ours = {}  # stage -> [(block output width, 3x3 groups, squeeze width or 0)]
    for layer in graph.layers:
        path = layer.name.split("/")
        if path[0].startswith("stage") and path[-2:] == ["cbr_2", "conv"]:
            ours.setdefault(path[0], []).append([layer.shape[0], layer.attrs["groups"], 0])
        if path[0].startswith("stage") and path[-1] == "conv_1":  # the SE's squeeze
            ours[path[0]][-1][2] = layer.shape[0]
        if path[0].startswith("stage") and path[-2:] == ["residual", "conv"]:
            ours[path[0]][-1][0] = layer.shape[0]
    theirs = {f"stage_{i + 1}": [[block.f.c[0].out_channels, block.f.b[0].groups,
                                 block.f.se.fc1.out_channels if hasattr(block.f, "se") else 0] for block in stage]
              for i, stage in enumerate(model.trunk_output)}
    assert ours == theirs
    assert graph.counts() == torchvision_counts(model)
