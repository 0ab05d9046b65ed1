"""Train tests/data/digits/digits.yaml (a LeNet-5-style CNN in cnnc's language) on scikit-learn's
handwritten digits in PyTorch, and write what the tests need without torch (tests/test_digits.py):

    digits.safetensors   the trained weights, under cnnc's parameter names (`cnnc weights digits.yaml`)
    test.npz             the fixed test split: `x` [N, 1, 32, 32] float32, `y` labels, `pytorch` its predictions
    calibration/         40 training samples (4 per class) as .npy batches, for `cnnc quantize --calibration`
    training.json        seed, split, epochs, PyTorch's train and test accuracy, versions

Data: `sklearn.datasets.load_digits()` (1,797 8x8 images, values 0..16, bundled with scikit-learn, no
download). Each image is upsampled to 32x32 by repeating each pixel as a 4x4 block and divided by 16
(`upsample`, numpy only). The split is fixed: `numpy.random.default_rng(0).permutation(1797)`, the first
360 samples (20 %) are the test split, the rest train. Training: Adam (lr 1e-3), batch 64, 30 epochs,
cross-entropy on the logits (the file's final softmax is left to inference), seed 0, one CPU thread and
deterministic algorithms, so a rerun writes the same weights.

Needs torch and scikit-learn (`pip install torch scikit-learn`); run by hand from the repository root:

    python benchmarks/train_digits.py            # writes tests/data/digits/
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "digits"
SEED, TEST_SAMPLES, EPOCHS, BATCH, LR = 0, 360, 30, 64, 1e-3


def upsample(images: np.ndarray) -> np.ndarray:
    """[N, 8, 8] digits with values 0..16 -> [N, 1, 32, 32] float32: each pixel a 4x4 block, divided by 16."""
    x = np.asarray(images, np.float32) / np.float32(16)
    return np.kron(x, np.ones((4, 4), np.float32))[:, None]


def split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed train and test indices."""
    order = np.random.default_rng(SEED).permutation(n)
    return np.sort(order[TEST_SAMPLES:]), np.sort(order[:TEST_SAMPLES])


def lenet():
    """The PyTorch twin of digits.yaml, its modules named by the cnnc layer they become."""
    from torch import nn
    return nn.ModuleDict({
        "c1/conv": nn.Conv2d(1, 6, 5), "c3/conv": nn.Conv2d(6, 16, 5),
        "f5/dense": nn.Linear(400, 120), "f6/dense": nn.Linear(120, 84), "output/dense": nn.Linear(84, 10)})


def logits(net, x):
    import torch.nn.functional as F
    x = F.max_pool2d(F.relu(net["c1/conv"](x)), 2)
    x = F.max_pool2d(F.relu(net["c3/conv"](x)), 2)
    x = F.relu(net["f5/dense"](x.flatten(1)))
    return net["output/dense"](F.relu(net["f6/dense"](x)))


def train(x: np.ndarray, y: np.ndarray):
    import torch
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    net = lenet()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    shuffle = torch.Generator().manual_seed(SEED)
    for _epoch in range(EPOCHS):
        for batch in torch.randperm(len(xt), generator=shuffle).split(BATCH):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(logits(net, xt[batch]), yt[batch])
            loss.backward()
            opt.step()
    return net.eval()


def predict(net, x: np.ndarray) -> np.ndarray:
    import torch
    with torch.no_grad():
        return logits(net, torch.from_numpy(x)).argmax(1).numpy()


def calibration(x: np.ndarray, y: np.ndarray, per_class: int = 4) -> list[np.ndarray]:
    """`per_class` batches of 10 training samples, one per class in each: the first of each class first."""
    firsts = [np.flatnonzero(y == c)[:per_class] for c in range(10)]
    return [x[[f[i] for f in firsts]] for i in range(per_class)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write (default {OUT.relative_to(ROOT)})")
    args = parser.parse_args()
    import sklearn
    import torch
    from sklearn.datasets import load_digits

    from cnnc.compiler import checkpoint

    digits = load_digits()
    x, y = upsample(digits.images), digits.target.astype(np.int64)
    train_idx, test_idx = split(len(y))
    net = train(x[train_idx], y[train_idx])
    test_pred, train_pred = predict(net, x[test_idx]), predict(net, x[train_idx])
    accuracy = float(np.mean(test_pred == y[test_idx]))
    out = args.out
    (out / "calibration").mkdir(parents=True, exist_ok=True)
    state = {name: module.state_dict() for name, module in net.items()}
    checkpoint.write(out / "digits.safetensors",
                     [(f"{name}.{kind}", t.numpy()) for name, sd in state.items() for kind, t in sd.items()],
                     {"trained_by": "benchmarks/train_digits.py", "test_accuracy": f"{accuracy:.6f}"})
    np.savez_compressed(out / "test.npz", x=x[test_idx], y=y[test_idx], pytorch=test_pred.astype(np.int64))
    for i, batch in enumerate(calibration(x[train_idx], y[train_idx])):
        np.save(out / "calibration" / f"batch{i}.npy", batch)
    record = {"seed": SEED, "train_samples": len(train_idx), "test_samples": len(test_idx), "epochs": EPOCHS,
              "batch": BATCH, "lr": LR, "train_accuracy": float(np.mean(train_pred == y[train_idx])),
              "test_accuracy": accuracy, "torch": torch.__version__, "scikit-learn": sklearn.__version__}
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
