"""Numerics of architectures/googlenet.yaml and architectures/inception_v3_torchvision.yaml against
torchvision's `googlenet` and `inception_v3`, with weights from torch_reference.prepare (calibrated BN
statistics, wide affine terms), the state dict mapped onto cnnc's names both by data flow (map_by_order)
and by the name functions below, which must agree, the same input run through both. The default build
(no train-only heads) is compared with `aux_logits=False`; the build with the heads (`aux=True`) has
exactly the parameters of `aux_logits=True`.
Needs torch and torchvision (skipped without them).
"""
from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import cnnc  # noqa: E402
from torch_reference import compare, import_torchvision, map_by_order, prepare  # noqa: E402

torchvision = import_torchvision()

# cnnc name -> torchvision builder
NETWORKS = {"googlenet": "googlenet", "inception_v3_torchvision": "inception_v3"}


KIND = {"conv": "conv", "batchnorm": "bn"}


def googlenet_name(ours: str) -> str:
    """conv1/conv -> conv1.conv; inception4a/branch1/batchnorm -> inception4a.branch1.bn;
    inception4a/branch2/cbr_2/conv -> inception4a.branch2.1.conv; .../branch4/cbr/conv -> ...branch4.1.conv
    (torchvision's branch4 is maxpool, BasicConv2d)."""
    if ours == "fc":
        return ours
    *path, kind = ours.split("/")
    if len(path) == 1:  # a stem conv
        return f"{path[0]}.{KIND[kind]}"
    module, branch, *inner = path
    if not inner:
        return f"{module}.{branch}.{KIND[kind]}"
    (cbr,) = inner
    index = 1 if cbr == "cbr" else int(cbr.rsplit("_", 1)[1]) - 1
    return f"{module}.{branch}.{index}.{KIND[kind]}"


# the split 1x3 / 3x1 convs of InceptionE: (branch, split branch) -> torchvision's suffix
SPLIT = {("branch3x3", "branch1"): "_2a", ("branch3x3", "branch2"): "_2b",
         ("branch3x3dbl", "branch1"): "_3a", ("branch3x3dbl", "branch2"): "_3b"}


def inception_v3_name(ours: str) -> str:
    """Mixed_5b/branch1x1/conv -> Mixed_5b.branch1x1.conv; Mixed_5b/branch5x5/cbr_2/batchnorm ->
    Mixed_5b.branch5x5_2.bn; Mixed_5b/branch_pool/cbr/conv -> Mixed_5b.branch_pool.conv (the pool is
    functional in torchvision); Mixed_7b/branch3x3/cbr/conv -> Mixed_7b.branch3x3_1.conv;
    Mixed_7b/branch3x3dbl/split/branch2/conv -> Mixed_7b.branch3x3dbl_3b.conv."""
    if ours == "fc":
        return ours
    *path, kind = ours.split("/")
    if len(path) == 1:  # a stem conv
        return f"{path[0]}.{KIND[kind]}"
    module, branch, *inner = path
    if not inner:
        return f"{module}.{branch}.{KIND[kind]}"
    if inner == ["cbr"]:
        name = branch if branch == "branch_pool" else f"{branch}_1"
    elif len(inner) == 1:
        name = f"{branch}_{int(inner[0].rsplit('_', 1)[1])}"
    else:
        split, half = inner
        assert split == "split", ours
        name = branch + SPLIT[branch, half]
    return f"{module}.{name}.{KIND[kind]}"


RENAME = {"googlenet": googlenet_name, "inception_v3_torchvision": inception_v3_name}


def _counts(model) -> dict[str, int]:
    trainable = sum(p.numel() for p in model.parameters())
    frozen = sum(b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked"))
    return {"total": trainable + frozen, "trainable": trainable, "non_trainable": frozen}


def _model(name: str, aux: bool):
    from torchvision import models

    builder = getattr(models, NETWORKS[name])
    return builder(weights=None, aux_logits=aux, init_weights=False)


def _skip_unless_shipped(name: str) -> None:
    if torchvision is None:
        pytest.skip("torchvision is not installed")
    if name not in cnnc.architectures.names():
        pytest.skip(f"{name} is not shipped")


@pytest.mark.parametrize("name", list(NETWORKS))
def test_matches_torchvision(name):
    _skip_unless_shipped(name)
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    graph = cnnc.build(name)
    assert graph.layers[-1].op == "dense"  # logits, as torchvision gives them
    model = prepare(_model(name, aux=False), rng, (2, *graph.input_shape))
    assert graph.counts() == _counts(model)

    values = map_by_order(graph, model)
    named = map_by_order(graph, model, rename=RENAME[name])
    assert values.keys() == named.keys() == {p.name for p in graph.params}
    differ = [key for key in values if not np.array_equal(values[key], named[key])]
    assert not differ, f"map_by_order and the name function disagree on {len(differ)} tensors: {differ[:5]}"
    ratio = compare(graph, model, values, rng, batch=2, tolerance=1e-4)
    print(f"{name} max |diff| / max |logit|: {ratio:.3g} ({time.perf_counter() - start:.1f} s)")


@pytest.mark.parametrize("name", list(NETWORKS))
def test_aux_heads_count_as_torchvision_s(name):
    _skip_unless_shipped(name)
    graph = cnnc.build(name, aux=True)
    assert graph.counts() == _counts(_model(name, aux=True))
    assert graph.counts()["total"] > cnnc.build(name).counts()["total"]
