"""Each shipped torchvision-flavour network's `preprocessing:` is what torchvision's first published
weights prescribe (`get_model_weights(builder)` in declaration order, `.transforms()`): resize, crop,
interpolation, mean and std. Needs torchvision (skipped without it); no weights are downloaded."""
from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="PyTorch is not installed")

import cnnc  # noqa: E402
from test_torchvision_counts import ROWS  # noqa: E402
from torch_reference import import_torchvision  # noqa: E402

torchvision = import_torchvision()
NAMES = [row[0] for row in ROWS]


@pytest.mark.parametrize("name", NAMES)
def test_preprocessing_is_torchvisions(name):
    if torchvision is None:
        pytest.skip("torchvision is not installed")
    from torchvision.models import get_model_weights
    doc = cnnc.load(name)
    if doc.preprocessing is None:
        pytest.skip(f"{name} declares no preprocessing yet")
    weights = next(iter(get_model_weights(name.removesuffix("_torchvision"))))  # the first published
    t = weights.transforms()
    assert doc.preprocessing == {"resize": t.resize_size[0], "crop": t.crop_size[0],
                                 "interpolation": t.interpolation.value, "mean": list(t.mean), "std": list(t.std)}
