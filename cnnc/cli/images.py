"""`cnnc run MODEL --image FILE ...`: the images preprocessed as the model's family prescribes (recorded in
its metadata, or given by flags), run, and each one's top-k printed with probabilities and, for a
1000-class model, ImageNet-1k names. A thin run over cnnc.runtime.images."""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from ..errors import CnncError

if TYPE_CHECKING:
    from ..runtime import Session
    from ..runtime.images import Preprocessing


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, e.g. 0.485,0.456,0.406; "
                                         f"got {text!r}") from None


def _size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of pixels, got {text!r}")
    return value


def image_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("--image", nargs="+", metavar="FILE",
                   help="classify image files (any format Pillow reads), preprocessed as the model records, "
                        "and print each one's top classes")
    c.add_argument("--resize", type=_size, help="with --image: the shorter side after resizing (default: recorded)")
    c.add_argument("--crop", type=_size, help="with --image: the centre crop (default: recorded, else the input size)")
    c.add_argument("--mean", type=_floats, help="with --image: per-channel mean, e.g. 0.485,0.456,0.406")
    c.add_argument("--std", type=_floats, help="with --image: per-channel std, e.g. 0.229,0.224,0.225")
    c.add_argument("--interpolation", choices=["bilinear", "bicubic", "nearest"],
                   help="with --image: the resize filter (default: recorded, else bilinear)")
    c.add_argument("--top", type=_size, default=5, help="with --image: how many classes to print (default 5)")


OVERRIDES = ("resize", "crop", "interpolation", "mean", "std")


def check_image_flags(args: argparse.Namespace) -> None:
    """Image flags need --image; --image and --input exclude each other."""
    if args.image and args.input:
        raise CnncError("give either --input (a .npy batch) or --image (image files), not both")
    given = [f"--{k}" for k in OVERRIDES if getattr(args, k) is not None]
    if not args.image and given:
        raise CnncError(f"{', '.join(given)} {'apply' if len(given) > 1 else 'applies'} to --image; give the image "
                        f"files with --image FILE ...")


def run_images(args: argparse.Namespace, session: Session, model: bytes | str) -> int:
    import onnx

    from ..runtime.images import Preprocessing, classify, resolve
    recorded = Preprocessing.recorded(session.metadata)
    overrides = {k: getattr(args, k) for k in OVERRIDES}
    p = resolve(recorded, session.input_shape, lambda field: f"--{field}", **overrides)
    graph = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(model, load_external_data=False)
    results = classify(session, graph, args.image, p, args.top)
    source = "flags" if recorded is None else \
        "recorded in the model" + (", with flags" if any(v is not None for v in overrides.values()) else "")
    random = "cnnc.seed" in session.metadata
    if args.json:
        print(json.dumps({"provider": session.provider, "preprocessing": _as_dict(p), "preprocessing_from": source,
                          "random_weights": random,
                          "images": [{"file": f, "top": [{"class": i, "name": n, "probability": round(q, 6)}
                                                         for i, n, q in top]} for f, top in zip(args.image, results)]},
                         indent=2))
        return 0
    print(f"provider: {session.provider}")
    if random:
        print(f"model: {session.metadata.get('cnnc.network', '?')}, random untrained weights, seed "
              f"{session.metadata['cnnc.seed']} (the classes below are not predictions)")
    print(f"preprocessing ({source}): {p.describe()}")
    for file, top in zip(args.image, results):
        print(f"{file}:")
        for rank, (i, name, q) in enumerate(top, 1):
            print(f"  {rank}. {q:8.4f}  {name if name == str(i) else f'{name} ({i})'}")
    return 0


def _as_dict(p: Preprocessing) -> dict[str, object]:
    return {"resize": p.resize, "crop": list(p.crop), "interpolation": p.interpolation, "mean": list(p.mean),
            "std": list(p.std)}
