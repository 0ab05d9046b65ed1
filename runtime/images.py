"""Image files -> the input batch a network's reference expects, and a classifier's output -> its top-k.

`preprocess` is torchvision's evaluation transform on PIL images, step for step: `Resize(resize)` scales
the shorter side to `resize` (the longer to `int(resize * long / short)`, torchvision's
`_compute_resized_output_size`) with Pillow's own `Image.resize` (torchvision hands PIL images to Pillow,
whose bilinear and bicubic filters always antialias), `CenterCrop(crop)` at torchvision's offsets
(`int(round((h - crop) / 2))`, zero padding where the crop is the larger), `ToTensor` (/255) and
`Normalize(mean, std)`, all in float32. Images are first converted as torchvision's users convert them:
to RGB (RGBA drops its alpha; greyscale and palette images are expanded), or to greyscale ("L") for a
network with one input channel. The EXIF orientation is not applied, as torchvision does not.

A model compiled by cnnc records its family's preprocessing in its metadata (`cnnc.preprocessing`, see
`Preprocessing.recorded`); the ImageNet-1k class names (torchvision's list, index order) ship as
`imagenet_classes.txt` beside this module.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping, Sequence, Union

import numpy as np

from .errors import ImageError

if TYPE_CHECKING:
    import onnx
    from PIL import Image

Interpolation = Literal["bilinear", "bicubic", "nearest"]
INTERPOLATIONS: tuple[Interpolation, ...] = ("bilinear", "bicubic", "nearest")
METADATA_KEY = "cnnc.preprocessing"
ImageSource = Union[str, os.PathLike, "Image.Image"]


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes one input sample (the fields of a family file's `preprocessing:`)."""

    resize: int
    """the shorter side after resizing, in pixels"""
    crop: tuple[int, int]
    """height and width of the centre crop: the network's input size"""
    mean: tuple[float, ...]
    """per channel, subtracted after scaling to [0, 1]; one value means a greyscale input"""
    std: tuple[float, ...]
    interpolation: Interpolation = "bilinear"

    def __post_init__(self) -> None:
        if self.resize < 1 or min(self.crop) < 1:
            raise ImageError(f"resize and crop must be positive, got resize {self.resize}, crop {list(self.crop)}")
        if self.interpolation not in INTERPOLATIONS:
            raise ImageError(f"interpolation `{self.interpolation}`: expected one of {', '.join(INTERPOLATIONS)}")
        if len(self.mean) != len(self.std) or len(self.mean) not in (1, 3):
            raise ImageError(f"mean {list(self.mean)} and std {list(self.std)} need one value per channel, "
                             f"both 1 (greyscale) or both 3 (RGB)")
        if any(s == 0 for s in self.std):
            raise ImageError(f"std {list(self.std)} has a zero: it divides")

    @property
    def channels(self) -> int:
        return len(self.mean)

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Preprocessing:
        """From a mapping like the metadata's JSON: resize, crop (an int or [h, w]), mean, std, interpolation."""
        try:
            crop = values["crop"]
            h, w = (crop, crop) if isinstance(crop, (int, float)) else crop
            return cls(int(values["resize"]), (int(h), int(w)), tuple(float(m) for m in values["mean"]),
                       tuple(float(s) for s in values["std"]), values.get("interpolation", "bilinear"))
        except (KeyError, TypeError, ValueError) as e:
            raise ImageError(f"preprocessing {dict(values)} is incomplete or malformed ({e})") from None

    @classmethod
    def recorded(cls, metadata: Mapping[str, str]) -> Preprocessing | None:
        """The preprocessing a cnnc model records in its metadata, or None when it records none."""
        text = metadata.get(METADATA_KEY)
        if text is None:
            return None
        try:
            values = json.loads(text)
        except ValueError:
            raise ImageError(f"the model's `{METADATA_KEY}` metadata is not JSON: {text[:80]!r}") from None
        if not isinstance(values, dict):
            raise ImageError(f"the model's `{METADATA_KEY}` metadata is not an object: {text[:80]!r}")
        return cls.of(values)

    def replace(self, **changes: object) -> Preprocessing:
        """A copy with the given fields changed (None leaves a field as it is)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

    def describe(self) -> str:
        crop = f"{self.crop[0]}" if self.crop[0] == self.crop[1] else f"{self.crop[0]}x{self.crop[1]}"
        return (f"resize {self.resize} ({self.interpolation}), centre crop {crop}, "
                f"mean {list(self.mean)}, std {list(self.std)}")


def open_image(source: ImageSource, channels: int = 3) -> Image.Image:
    """The image decoded and converted to RGB (or greyscale "L" for `channels` 1); a located error for a
    file that is missing or not an image Pillow can read."""
    try:
        from PIL import Image
    except ImportError:
        raise ImageError("reading images needs Pillow: `pip install pillow`") from None
    mode = "L" if channels == 1 else "RGB"
    if isinstance(source, Image.Image):
        return source if source.mode == mode else source.convert(mode)
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise ImageError(f"cannot read `{path}`: {'a directory' if os.path.isdir(path) else 'no such file'}")
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, not later
            return image.convert(mode)
    except Image.DecompressionBombError as e:
        raise ImageError(f"`{path}`: {e}") from None
    except (OSError, ValueError, SyntaxError) as e:  # UnidentifiedImageError is an OSError
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImageError(f"cannot read `{path}` as an image: {why}") from None


def resized_size(height: int, width: int, resize: int) -> tuple[int, int]:
    """torchvision's `_compute_resized_output_size` for one size: (height, width) with the shorter side
    `resize` and the longer `int(resize * long / short)`."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = resize, int(resize * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def centre_crop(pixels: np.ndarray, crop: tuple[int, int]) -> np.ndarray:
    """torchvision's `center_crop` of an [H, W, ...] array: zero padding first where the crop is larger
    (left/top get the floor of half the difference), then the crop at `int(round((h - ch) / 2))`."""
    ch, cw = crop
    h, w = pixels.shape[:2]
    if ch > h or cw > w:
        top, left = max(ch - h, 0) // 2, max(cw - w, 0) // 2
        pad = [(top, max(ch - h, 0) - top), (left, max(cw - w, 0) - left)] + [(0, 0)] * (pixels.ndim - 2)
        pixels = np.pad(pixels, pad)
        h, w = pixels.shape[:2]
    top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
    return pixels[top:top + ch, left:left + cw]


def preprocess_one(source: ImageSource, p: Preprocessing) -> np.ndarray:
    """One image as a float32 [C, crop_h, crop_w] sample."""
    from PIL import Image

    image = open_image(source, p.channels)
    h, w = resized_size(image.height, image.width, p.resize)
    if (h, w) != (image.height, image.width):  # torchvision returns the image untouched then
        resample = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
                    "nearest": Image.Resampling.NEAREST}[p.interpolation]
        image = image.resize((w, h), resample)
    pixels = centre_crop(np.asarray(image), p.crop)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    x = pixels.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    mean, std = (np.asarray(v, np.float32)[:, None, None] for v in (p.mean, p.std))
    return (x - mean) / std


def preprocess(images: ImageSource | Iterable[ImageSource], resize: int | Preprocessing,
               crop: int | tuple[int, int] | None = None, interpolation: Interpolation = "bilinear",
               mean: Sequence[float] = (0.485, 0.456, 0.406),
               std: Sequence[float] = (0.229, 0.224, 0.225)) -> np.ndarray:
    """Image files or PIL images -> one float32 [N, C, crop, crop] batch, as torchvision's eval transform
    (`Resize(resize, interpolation)`, `CenterCrop(crop)`, `ToTensor`, `Normalize(mean, std)`) makes it.
    `resize` may be a whole `Preprocessing` (then the other arguments are not used)."""
    if isinstance(resize, Preprocessing):
        p = resize
    else:
        if crop is None:
            raise ImageError("preprocess needs a crop size")
        p = Preprocessing(resize, (crop, crop) if isinstance(crop, int) else tuple(crop),  # type: ignore[arg-type]
                          tuple(mean), tuple(std), interpolation)
    many = [images] if isinstance(images, (str, os.PathLike)) or hasattr(images, "convert") else list(images)
    if not many:
        raise ImageError("no images given")
    return np.stack([preprocess_one(image, p) for image in many])  # type: ignore[arg-type]


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names in index order (torchvision's `_IMAGENET_CATEGORIES`)."""
    text = resources.files(__package__).joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    return text.splitlines()


def ends_in_softmax(model: onnx.ModelProto) -> bool:
    """Whether the first output is a Softmax's (through casts and QDQ pairs): probabilities, not logits."""
    producer = {out: node for node in model.graph.node for out in node.output}
    node = producer.get(model.graph.output[0].name)
    while node is not None and node.op_type in ("Cast", "Identity", "QuantizeLinear", "DequantizeLinear"):
        node = producer.get(node.input[0])
    return node is not None and node.op_type == "Softmax"


def probabilities(output: np.ndarray, softmaxed: bool) -> np.ndarray:
    """[N, classes] probabilities: the output itself when the model ends in Softmax, else its softmax."""
    if output.ndim != 2:
        raise ImageError(f"the model's output has shape {list(output.shape)}; classes need [N, classes]")
    y = output.astype(np.float64)
    if softmaxed:
        return y
    e = np.exp(y - y.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def top_k(probs: np.ndarray, k: int = 5, names: Sequence[str] | None = None) -> list[list[tuple[int, str, float]]]:
    """Per sample, the k most probable classes as (index, name, probability), most probable first; ties
    go to the lower index. Names are the class indices when `names` is None."""
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(int(i), names[i] if names is not None else str(int(i)), float(row[i])) for i in top]
            for row, top in zip(probs, order)]


def resolve(recorded: Preprocessing | None, input_shape: Sequence[object], spell=lambda field: f"`{field}`",
            **overrides: object) -> Preprocessing:
    """The preprocessing to use for a model whose input is `input_shape` ([N, C, H, W]): the recorded
    one with `overrides` (resize, crop, interpolation, mean, std; None keeps a field) applied, or, with
    none recorded, the overrides alone (the crop then defaults to the input's size). `spell(field)` names
    a field in messages (a flag for the CLI)."""
    dims = list(input_shape)
    crop = overrides.get("crop")
    if isinstance(crop, int):
        overrides["crop"] = (crop, crop)
    for key in ("mean", "std"):
        if overrides.get(key) is not None:
            overrides[key] = tuple(float(v) for v in overrides[key])  # type: ignore[attr-defined]
    if recorded is None:
        missing = [f for f in ("resize", "mean", "std") if overrides.get(f) is None]
        if missing:
            raise ImageError("the model records no preprocessing (it was not compiled by cnnc from a file with "
                             f"`preprocessing:`); give {_listed([spell(f) for f in missing])}")
        fixed = [d for d in dims[2:] if isinstance(d, int)]
        if overrides.get("crop") is None:
            if len(fixed) != 2:
                raise ImageError(f"the model's input is {dims}; give {spell('crop')}")
            overrides["crop"] = tuple(fixed)
        p = Preprocessing.of({k: v for k, v in overrides.items() if v is not None})
    else:
        p = recorded.replace(**overrides)
    _check_fits(p, dims, spell)
    return p


def _check_fits(p: Preprocessing, dims: list, spell) -> None:
    if len(dims) != 4:
        raise ImageError(f"the model's input has shape {dims}; images need an [N, C, H, W] input")
    if isinstance(dims[1], int) and dims[1] != p.channels:
        raise ImageError(f"{spell('mean')} and {spell('std')} have {p.channels} value(s) but the model takes "
                         f"{dims[1]} channel(s)")
    if all(isinstance(d, int) for d in dims[2:]) and tuple(dims[2:]) != p.crop:
        raise ImageError(f"{spell('crop')} {p.crop[0]}x{p.crop[1]} does not fit the model's input "
                         f"{dims[2]}x{dims[3]}")


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def classify(session, model: onnx.ModelProto, images: Sequence[ImageSource], p: Preprocessing,
             k: int = 5) -> list[list[tuple[int, str, float]]]:
    """Each image's top-k (index, name, probability) from a `Session` on `model` (its graph, for whether
    it ends in Softmax); ImageNet-1k names when it has 1000 classes, else the class indices."""
    batch = session.input_shape[0]
    step = batch if isinstance(batch, int) else 16
    outputs = []
    for start in range(0, len(images), step):
        x = preprocess(images[start:start + step], p)
        if isinstance(batch, int) and len(x) < batch:  # a fixed batch: fill it, keep the real rows
            x = np.concatenate([x, np.zeros((batch - len(x), *x.shape[1:]), np.float32)])
        outputs.append(session.run(x)[:min(step, len(images) - start)])
    probs = probabilities(np.concatenate(outputs), ends_in_softmax(model))
    return top_k(probs, k, imagenet_classes() if probs.shape[1] == 1000 else None)
