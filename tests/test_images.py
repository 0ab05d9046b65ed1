"""Images in, top-5 out: `cnnc.runtime.images.preprocess` against a numpy computation of torchvision's
eval transform written here from its definition (sharing only Pillow's resize), image modes and bad
files, the preprocessing a compiled model records, and `cnnc run --image` end to end. No torch needed
(tests/reference/test_images_torchvision.py compares with torchvision itself)."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from PIL import Image

import cnnc
from cnnc.runtime.images import (ImageError, Preprocessing, imagenet_classes, open_image, preprocess,
                                 resized_size, resolve)

from conftest import doc

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FILTERS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
           "nearest": Image.Resampling.NEAREST}


def oracle(image: Image.Image, resize: int, crop: int, interpolation: str, mean, std) -> np.ndarray:
    """torchvision's Resize(resize) + CenterCrop(crop) + ToTensor + Normalize, spelled out in float64."""
    w, h = image.size
    if w <= h:
        size = (resize, int(resize * h / w))
    else:
        size = (int(resize * w / h), resize)
    if size != (w, h):
        image = image.resize(size, FILTERS[interpolation])
    a = np.asarray(image, dtype=np.float64).reshape(image.size[1], image.size[0], -1)
    H, W = a.shape[:2]
    if crop > H or crop > W:  # torchvision pads with zeros, the odd pixel at the bottom/right
        ph, pw = max(crop - H, 0), max(crop - W, 0)
        a = np.pad(a, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
        H, W = a.shape[:2]
    top, left = int(round((H - crop) / 2.0)), int(round((W - crop) / 2.0))
    a = a[top:top + crop, left:left + crop] / 255.0
    return ((a - np.array(mean)) / np.array(std)).transpose(2, 0, 1)


def noise(h: int, w: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    return Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels, mode)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest"])
@pytest.mark.parametrize("h, w, resize, crop", [(300, 451, 256, 224), (451, 300, 232, 224), (257, 256, 256, 224),
                                                (97, 131, 36, 32), (224, 224, 256, 224), (40, 50, 24, 32)])
def test_preprocess_equals_the_steps_of_torchvisions_eval_transform(tmp_path, interpolation, h, w, resize, crop):
    path = tmp_path / "image.png"
    noise(h, w).save(path)
    got = preprocess(path, resize, crop, interpolation, MEAN, STD)
    assert got.shape == (1, 3, crop, crop) and got.dtype == np.float32
    want = oracle(Image.open(path).convert("RGB"), resize, crop, interpolation, MEAN, STD)
    np.testing.assert_allclose(got[0], want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("h, w, resize, want", [(375, 500, 256, (256, 341)), (500, 375, 256, (341, 256)),
                                                (480, 640, 232, (232, 309)), (100, 100, 256, (256, 256)),
                                                (1, 3, 2, (2, 6)), (299, 300, 299, (299, 300))])
def test_resize_scales_the_shorter_side_and_truncates_the_longer(h, w, resize, want):
    assert resized_size(h, w, resize) == want


def test_a_crop_larger_than_the_image_is_zero_padded_before_normalising(tmp_path):
    image = Image.new("RGB", (10, 10), (255, 255, 255))  # resize 10 keeps it; crop 14 pads 2 on each side
    x = preprocess(image, 10, 14, "bilinear", (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))[0]
    assert np.all(x[:, 2:12, 2:12] == 2.0)  # (1 - 0.5) / 0.25
    assert np.all(x[:, :2] == -2.0) and np.all(x[:, :, 12:] == -2.0)  # (0 - 0.5) / 0.25


def test_greyscale_palette_and_rgba_images_are_read_as_rgb(tmp_path):
    rgba = noise(40, 30, "RGBA")
    rgba.save(tmp_path / "a.png")
    rgb = Image.fromarray(np.asarray(rgba)[:, :, :3])
    grey = noise(40, 30, "L")
    grey.save(tmp_path / "g.png")
    rgb.quantize(16).save(tmp_path / "p.png")  # a palette image
    args = (32, 24, "bilinear", MEAN, STD)
    np.testing.assert_array_equal(preprocess(tmp_path / "a.png", *args), preprocess(rgb, *args))  # alpha dropped
    g = preprocess(tmp_path / "g.png", 32, 24, "bilinear", (0.5,) * 3, (0.5,) * 3)[0]
    assert np.array_equal(g[0], g[1]) and np.array_equal(g[1], g[2])  # grey expanded to three equal channels
    p = preprocess(tmp_path / "p.png", *args)
    np.testing.assert_array_equal(p, preprocess(Image.open(tmp_path / "p.png").convert("RGB"), *args))


def test_a_one_channel_network_reads_images_as_greyscale(tmp_path):
    colour = noise(33, 45)
    colour.save(tmp_path / "c.jpg", quality=95)
    x = preprocess(tmp_path / "c.jpg", 32, 32, "bilinear", (0.1307,), (0.3081,))
    assert x.shape == (1, 1, 32, 32)
    want = oracle(Image.open(tmp_path / "c.jpg").convert("L"), 32, 32, "bilinear", (0.1307,), (0.3081,))
    np.testing.assert_allclose(x[0], want, rtol=0, atol=1e-6)


def test_unreadable_images_are_located_errors(tmp_path):
    (tmp_path / "text.jpg").write_text("not an image")
    noise(20, 20).save(tmp_path / "whole.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "whole.png").read_bytes()[:200])  # truncated
    with pytest.raises(ImageError, match=r"cannot read `.*missing\.png`: no such file"):
        open_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match=r"cannot read `.*text\.jpg` as an image"):
        open_image(tmp_path / "text.jpg")
    with pytest.raises(ImageError, match=r"cannot read `.*cut\.png` as an image"):
        open_image(tmp_path / "cut.png")


def test_preprocessing_values_are_checked():
    with pytest.raises(ImageError, match="one value per channel"):
        Preprocessing(256, (224, 224), (0.5, 0.5), (0.5, 0.5))
    with pytest.raises(ImageError, match="has a zero"):
        Preprocessing(256, (224, 224), (0.5,), (0.0,))
    with pytest.raises(ImageError, match="interpolation `lanczos`"):
        Preprocessing(256, (224, 224), MEAN, STD, "lanczos")  # type: ignore[arg-type]


def test_resolve_names_the_missing_values_and_checks_the_input():
    with pytest.raises(ImageError, match="records no preprocessing.*give --mean and --std"):
        resolve(None, ["N", 3, 32, 32], lambda f: f"--{f}", resize=36)
    p = resolve(None, ["N", 3, 32, 32], resize=36, mean=[0.5] * 3, std=[0.5] * 3)
    assert p.crop == (32, 32) and p.interpolation == "bilinear"  # the crop defaults to the input's size
    recorded = Preprocessing(256, (224, 224), MEAN, STD)
    assert resolve(recorded, ["N", 3, 224, 224], interpolation="bicubic").interpolation == "bicubic"
    with pytest.raises(ImageError, match="--crop 200x200 does not fit the model's input 224x224"):
        resolve(recorded, ["N", 3, 224, 224], lambda f: f"--{f}", crop=200)
    with pytest.raises(ImageError, match="1 value.*takes 3 channel"):
        resolve(recorded, ["N", 3, 224, 224], mean=[0.5], std=[0.5])


def test_the_imagenet_class_names_ship_with_the_package():
    names = imagenet_classes()
    assert len(names) == 1000 == len(set(names))
    assert (names[0], names[281], names[999]) == ("tench", "tabby", "toilet tissue")


# ---- a compiled model: its recorded preprocessing, and `cnnc run --image` ----------------------------
TINY = """\
network: tiny
input: [3, 16, 16]
preprocessing:
  resize: 18
  crop: 16
  interpolation: bicubic
  mean: [0.5, 0.4, 0.3]
  std: [0.2, 0.25, 0.3]
layers:
  - conv(4, 3x3, padding=same)
  - relu
  - globalavgpool
  - dense(1000)
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "tiny.yaml").write_text(TINY)
    for i, (h, w) in enumerate([(20, 30), (31, 17), (16, 16)]):
        noise(h, w, seed=i).save(folder / f"img{i}.png")
    cnnc.api.compile_to(folder / "tiny.yaml", folder / "tiny.onnx", seed=1)
    return folder


def test_a_compiled_model_records_its_preprocessing(tiny):
    model = onnx.load(tiny / "tiny.onnx")
    p = Preprocessing.recorded({m.key: m.value for m in model.metadata_props})
    assert p == Preprocessing(18, (16, 16), (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), "bicubic")
    x = cnnc.api.preprocess(tiny / "img0.png", tiny / "tiny.onnx")
    np.testing.assert_allclose(x[0], oracle(noise(20, 30), 18, 16, "bicubic", p.mean, p.std), atol=1e-6)
    np.testing.assert_array_equal(x, cnnc.api.preprocess(tiny / "img0.png", tiny / "tiny.yaml"))


def _softmax(y: np.ndarray) -> np.ndarray:
    e = np.exp(y - y.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_run_image_prints_each_images_top5_with_imagenet_names(cli, tiny):
    files = [tiny / f"img{i}.png" for i in range(3)]
    r = cli.run("run", tiny / "tiny.onnx", "--image", *files, "--json")
    assert r.code == 0, r.err
    got = json.loads(r.out)
    assert got["preprocessing_from"] == "recorded in the model" and got["random_weights"]
    logits = cnnc.Session(str(tiny / "tiny.onnx"), "cpu").run(cnnc.api.preprocess(files, tiny / "tiny.onnx"))
    probs = _softmax(logits.astype(np.float64))  # the model ends in logits: run applies the softmax
    names = imagenet_classes()
    for image, p in zip(got["images"], probs):
        want = np.argsort(-p)[:5]
        assert [t["class"] for t in image["top"]] == list(want)
        assert [t["name"] for t in image["top"]] == [names[i] for i in want]
        np.testing.assert_allclose([t["probability"] for t in image["top"]], p[want], atol=1e-6)
    text = cli.run("run", tiny / "tiny.onnx", "--image", files[0])
    assert text.code == 0 and "random untrained weights" in text.out and "bicubic" in text.out
    first = got["images"][0]["top"][0]
    assert f"1. {first['probability']:8.4f}  {first['name']} ({first['class']})" in text.out


def test_run_image_flags_override_the_recorded_preprocessing(cli, tiny):
    r = cli.run("run", tiny / "tiny.onnx", "--image", tiny / "img1.png", "--resize", "40", "--mean", "0.5,0.5,0.5",
                "--interpolation", "nearest", "--json")
    assert r.code == 0, r.err
    got = json.loads(r.out)
    assert got["preprocessing"] == {"resize": 40, "crop": [16, 16], "interpolation": "nearest",
                                    "mean": [0.5, 0.5, 0.5], "std": [0.2, 0.25, 0.3]}


def test_run_image_on_a_network_ending_in_softmax_prints_its_probabilities(cli, tmp_path):
    noise(12, 12).save(tmp_path / "x.png")
    model = cnnc.compile(doc("  - globalavgpool\n  - dense(10)\n  - softmax\n", "[1, 8, 8]"), seed=2)
    cnnc.save(model, tmp_path / "m.onnx")
    r = cli.run("run", tmp_path / "m.onnx", "--image", tmp_path / "x.png", "--resize", "8", "--mean", "0.5",
                "--std", "0.5", "--top", "10", "--json")
    assert r.code == 0, r.err
    top = json.loads(r.out)["images"][0]["top"]
    x = preprocess(tmp_path / "x.png", 8, 8, "bilinear", (0.5,), (0.5,))
    y = cnnc.Session(str(tmp_path / "m.onnx"), "cpu").run(x)[0]
    assert [t["name"] for t in top] == [str(i) for i in np.argsort(-y)]  # 10 classes: no names but the index
    np.testing.assert_allclose([t["probability"] for t in top], np.sort(y)[::-1], atol=1e-6)  # not re-softmaxed


@pytest.mark.parametrize("argv, message", [
    (["--image", "{d}/missing.png"], "cannot read `{d}/missing.png`: no such file"),
    (["--image", "{d}/text.png"], "cannot read `{d}/text.png` as an image"),
    (["--resize", "20"], "--resize applies to --image"),
    (["--image", "{d}/img0.png", "--input", "x.npy"], "either --input"),
    (["--image", "{d}/img0.png", "--crop", "12"], "--crop 12x12 does not fit the model's input 16x16"),
])
def test_run_image_errors_are_clear_and_exit_2(cli, tiny, argv, message):
    (tiny / "text.png").write_text("plain text")
    r = cli.run("run", tiny / "tiny.onnx", *[a.format(d=tiny) for a in argv])
    assert r.code == 2 and message.format(d=tiny) in r.err and "Traceback" not in r.err, r.err
    assert r.out == ""


def test_run_image_on_a_network_compiles_it_in_memory_and_classify_gives_the_same(cli, tiny):
    r = cli.run("run", tiny / "tiny.yaml", "--image", tiny / "img2.png", tiny / "img1.png", "--json")
    assert r.code == 0, r.err
    shown = [[(t["class"], t["name"], t["probability"]) for t in image["top"]] for image in json.loads(r.out)["images"]]
    got = cnnc.api.classify(tiny / "tiny.onnx", [tiny / "img2.png", tiny / "img1.png"])  # seed 1 there, 0 here
    assert [len(top) for top in got] == [5, 5] and all(n == imagenet_classes()[i] for top in got for i, n, _ in top)
    r1 = cli.run("run", tiny / "tiny.onnx", "--image", tiny / "img2.png", tiny / "img1.png", "--json")
    assert [[(i, n, round(q, 6)) for i, n, q in top] for top in got] == \
        [[(t["class"], t["name"], t["probability"]) for t in image["top"]] for image in json.loads(r1.out)["images"]]
    assert shown != [[(i, n, round(q, 6)) for i, n, q in top] for top in got]  # other weights, other classes


def test_run_image_on_a_model_without_preprocessing_says_which_flags_to_give(cli, tmp_path):
    noise(12, 12).save(tmp_path / "x.png")
    cnnc.save(cnnc.compile(doc("  - globalavgpool\n  - dense(3)\n", "[3, 8, 8]")), tmp_path / "m.onnx")
    r = cli.run("run", tmp_path / "m.onnx", "--image", tmp_path / "x.png", "--mean", "0.5,0.5,0.5")
    assert r.code == 2 and "records no preprocessing" in r.err and "give --resize and --std" in r.err, r.err
