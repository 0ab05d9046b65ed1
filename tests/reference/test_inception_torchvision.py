"""Numerics of architectures/googlenet.yaml and architectures/inception_v3_torchvision.yaml against
torchvision's `googlenet` and `inception_v3`, with weights from torch_reference.prepare (calibrated BN
statistics, wide affine terms), the state dict mapped onto cnnc's names by data flow (map_by_order), the
same input run through both. The default build (no train-only heads) is compared with
`aux_logits=False`; the build with the heads (`aux=True`) has exactly the parameters of `aux_logits=True`.
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
    assert values.keys() == {p.name for p in graph.params}
    ratio = compare(graph, model, values, rng, batch=2, tolerance=1e-4)
    print(f"{name} max |diff| / max |logit|: {ratio:.3g} ({time.perf_counter() - start:.1f} s)")


@pytest.mark.parametrize("name", list(NETWORKS))
def test_aux_heads_count_as_torchvision_s(name):
    _skip_unless_shipped(name)
    graph = cnnc.build(name, aux=True)
    assert graph.counts() == _counts(_model(name, aux=True))
    assert graph.counts()["total"] > cnnc.build(name).counts()["total"]
