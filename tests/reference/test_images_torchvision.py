"""`cnnc.api.preprocess(image, NETWORK)` equals what torchvision's published weights prescribe for the same
network (`get_model_weights(builder)`'s first entry, `.transforms()`: Resize, CenterCrop, ToTensor,
Normalize on a PIL image), on images of odd sizes and both orientations, for bilinear and bicubic
families, and with the crop larger than the resized image (torchvision pads). Needs torchvision
(skipped without it); no weights are downloaded."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="PyTorch is not installed")

from PIL import Image  # noqa: E402

import cnnc  # noqa: E402
from cnnc.runtime.images import preprocess  # noqa: E402
from torch_reference import import_torchvision  # noqa: E402

torchvision = import_torchvision()
# bilinear 256/224, bilinear 236/224, bilinear 342/299, bicubic 256/224, bicubic 320/300, bicubic 480/480
NAMES = ["resnet50_torchvision", "convnext_tiny", "inception_v3_torchvision", "efficientnet_b0", "efficientnet_b3",
         "efficientnet_v2_l"]
SIZES = [(375, 500), (501, 333), (257, 256), (199, 640), (224, 224), (97, 131)]


def images(folder) -> list:
    """Noise and a smooth photograph-like gradient, in RGB, greyscale and RGBA files."""
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate(SIZES):
        yy, xx = np.mgrid[0:h, 0:w]
        smooth = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) % 256], axis=-1).astype(np.uint8)
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8) if i % 2 else smooth
        image = Image.fromarray(pixels)
        if i == 4:
            image = image.convert("L")
        if i == 5:
            image = image.convert("RGBA")
        paths.append(folder / f"image{i}.png")
        image.save(paths[-1])
    return paths


@pytest.mark.parametrize("name", NAMES)
def test_preprocess_equals_torchvisions_weights_transforms(tmp_path, name):
    if torchvision is None:
        pytest.skip("torchvision is not installed")
    from torchvision.models import get_model_weights
    transform = next(iter(get_model_weights(name.removesuffix("_torchvision")))).transforms()
    assert transform.interpolation.value == cnnc.load(name).preprocessing["interpolation"]
    paths = images(tmp_path)
    got = cnnc.api.preprocess(paths, name)
    for path, mine in zip(paths, got):
        want = transform(Image.open(path).convert("RGB")).numpy()
        assert mine.shape == want.shape
        assert float(np.abs(mine - want).max()) <= 1e-6, path.name


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest"])
def test_a_crop_larger_than_the_resized_image_pads_as_torchvision_does(interpolation):
    if torchvision is None:
        pytest.skip("torchvision is not installed")
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms._presets import ImageClassification
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (61, 90, 3), dtype=np.uint8))
    t = ImageClassification(crop_size=67, resize_size=50, interpolation=InterpolationMode(interpolation))
    want = t(image).numpy()
    got = preprocess(image, 50, 67, interpolation, t.mean, t.std)[0]
    assert float(np.abs(got - want).max()) <= 1e-6
