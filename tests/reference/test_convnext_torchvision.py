"""Numerics of convnext.yaml against torchvision's `convnext_tiny` (the smallest) and `convnext_large` (the
largest, 198M parameters), under the same weights (torch_reference.prepare: He weights, wide LayerNorm
affine terms, layer scales U(0.5, 1.5) so that the residual branches matter), mapped onto cnnc's names
both by data flow (map_by_order) and by the name function below, which must agree. torchvision's pointwise
`nn.Linear` weights [out, in] become the 1x1 convs' [out, in, 1, 1]; its `layer_scale` [dim, 1, 1] is a
CNBlock's own parameter, registered before the block's submodules but applied after them. Also: every
variant's stochastic-depth rates are torchvision's, block by block (identity at inference).

Run: `/tmp/refvenv/bin/pytest tests/reference/test_convnext_torchvision.py -rA -s` (needs torch and
torchvision; skipped without them). convnext_large takes about a minute on two cores and a few GiB.
"""
from __future__ import annotations

import re
import resource
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import cnnc  # noqa: E402
from torch_reference import compare, import_torchvision, map_by_order, prepare, state_values  # noqa: E402

torchvision = import_torchvision()
if torchvision is None:
    pytest.skip("torchvision is not installed", allow_module_level=True)

from torchvision import models  # noqa: E402
from torchvision.ops import StochasticDepth  # noqa: E402

# a CNBlock's layers -> torchvision's: `block` is Sequential(dwconv, Permute, LayerNorm, Linear, GELU,
# Linear, Permute); layer_scale is the CNBlock's own tensor
IN_BLOCK = {"dwconv": "block.0", "norm": "block.2", "pwconv1": "block.3", "pwconv2": "block.5"}
FIXED = {"stem/conv": "features.0.0", "stem/layernorm": "features.0.1",
         "head/layernorm": "classifier.0", "head/dense": "classifier.2"}


def torchvision_key(ours: str) -> str:
    """A cnnc parameter name -> torchvision's state-dict key, e.g.
    stage3/cnblock_2/residual/pwconv1.weight -> features.5.1.block.3.weight,
    stage1/cnblock_1/residual/layerscale.weight -> features.1.0.layer_scale,
    downsample2/conv.bias -> features.4.1.bias. torchvision's `features` is the stem, then stage 1,
    downsampling 1, ..., stage 4: stage N is features.{2N - 1}, downsampling N is features.{2N}."""
    layer, kind = ours.rsplit(".", 1)
    if layer in FIXED:
        return f"{FIXED[layer]}.{kind}"
    if m := re.fullmatch(r"downsample(\d)/(layernorm|conv)", layer):
        return f"features.{2 * int(m[1])}.{0 if m[2] == 'layernorm' else 1}.{kind}"
    m = re.fullmatch(r"stage(\d)/cnblock_(\d+)/residual/(\w+)", layer)
    assert m, f"unexpected cnnc layer {layer}"
    prefix = f"features.{2 * int(m[1]) - 1}.{int(m[2]) - 1}"
    return f"{prefix}.layer_scale" if m[3] == "layerscale" else f"{prefix}.{IN_BLOCK[m[3]]}.{kind}"


def mapped(graph, model) -> dict[str, np.ndarray]:
    """The model's values under cnnc's names by data flow, asserted identical to those by name."""
    values = map_by_order(graph, model)
    state = state_values(model)
    named = {p.name: state.pop(torchvision_key(p.name)).reshape(p.shape) for p in graph.params}
    assert not state, f"torchvision tensors with no cnnc parameter: {list(state)[:5]}"
    assert values.keys() == named.keys()
    differ = [name for name in values if not np.array_equal(values[name], named[name])]
    assert not differ, f"map_by_order and the name function disagree on {len(differ)} tensors: {differ[:5]}"
    return values


@pytest.mark.parametrize("network", ["convnext_tiny", "convnext_large"])
def test_matches_torchvision(network):
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    graph = cnnc.build(network)
    assert graph.layers[-1].op == "dense"  # logits, as torchvision returns them
    model = prepare(getattr(models, network)(weights=None), rng, (1, *graph.input_shape), batches=1)
    # 1e-5, not compare's 1e-4: with tanh's GELU in place of erf's, convnext_tiny is off by 6e-5
    relative = compare(graph, model, mapped(graph, model), rng, batch=2, tolerance=1e-5)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux -> GiB
    print(f"{network} max |diff| / max |logit|: {relative:.3g} ({time.perf_counter() - start:.0f} s, "
          f"peak RSS {peak:.1f} GiB)")


@pytest.mark.parametrize("network", ["convnext_tiny", "convnext_small", "convnext_base", "convnext_large"])
def test_stochastic_depth_is_torchvisions_block_by_block(network):
    """torchvision's rate grows block by block over the whole network; so does cnnc's (`repeat_index`)."""
    graph = cnnc.build(network)
    ours = [layer.attrs["rate"] for layer in graph.layers if layer.op == "droppath"]
    with torch.device("meta"):  # the structure without allocating its weights
        model = getattr(models, network)(weights=None)
    stages = [model.features[i] for i in (1, 3, 5, 7)]
    theirs = [[m.p for m in stage.modules() if isinstance(m, StochasticDepth)] for stage in stages]
    assert len(ours) == sum(map(len, theirs))
    expected = [rate for rates in theirs for rate in rates]
    np.testing.assert_allclose(ours, expected, rtol=1e-12)
