"""`cnnc.api.preprocess(image, NETWORK)` equals what torchvision's published weights prescribe for the same
network (`get_model_weights(builder)`'s first entry, `.transforms()`: Resize, CenterCrop, ToTensor,
Normalize on a PIL image), on images of odd sizes and both orientations, for bilinear and bicubic
families, and with the crop larger than the resized image (torchvision pads). Needs torchvision
(skipped without it); no weights are downloaded."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="PyTorch is not installed")

from PIL import Image  # noqa: E402

import cnnc  # noqa: E402
from cnnc.runtime.images import imagenet_classes, preprocess  # noqa: E402
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


def test_run_image_gives_torchvisions_top5_for_the_same_weights(tmp_path, cli):
    """End to end: torchvision's squeezenet1_1 with random weights (torch_reference.prepare), its state dict
    in cnnc's names, `cnnc compile --weights`, then `cnnc run --image` against torchvision's model on its
    own transform of the same files: the same five classes in the same order, the same probabilities."""
    if torchvision is None:
        pytest.skip("torchvision is not installed")
    import torch
    from torchvision.models import get_model_weights, squeezenet1_1

    from cnnc.compiler import checkpoint
    from torch_reference import map_by_order, prepare
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    graph = cnnc.build("squeezenet1_1")
    model = prepare(squeezenet1_1(weights=None), rng, (2, *graph.input_shape))
    checkpoint.write(tmp_path / "w.safetensors", sorted(map_by_order(graph, model).items()))
    cnnc.api.compile_to("squeezenet1_1", tmp_path / "s.onnx", weights=tmp_path / "w.safetensors")
    paths = images(tmp_path)[:4]
    r = cli.run("run", tmp_path / "s.onnx", "--image", *paths, "--json", "--provider", "cpu")
    assert r.code == 0, r.err
    shown = json.loads(r.out)["images"]
    transform = next(iter(get_model_weights("squeezenet1_1"))).transforms()
    names = imagenet_classes()
    with torch.no_grad():
        batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths])
        probs = torch.softmax(model(batch).double(), dim=1).numpy()
    for image, p in zip(shown, probs):
        want = np.argsort(-p)[:5]
        assert [t["class"] for t in image["top"]] == list(want)
        assert [t["name"] for t in image["top"]] == [names[i] for i in want]
        np.testing.assert_allclose([t["probability"] for t in image["top"]], p[want], atol=1e-4)
