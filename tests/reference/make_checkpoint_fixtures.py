"""Writes tests/data/checkpoints/*.json: the tensor names and shapes of real checkpoints, with the cnnc
parameter each one belongs to, for the default suite's mapping tests (which need no torch or Keras).

- torchvision `resnet18`, `mobilenet_v3_small`: the state dict's names and shapes in registration order;
  the cnnc name of each from `map_by_order`, which follows the data flow of both networks (no names).
- Keras `Xception`: the `.weights.h5` datasets (`layers/NAME/vars/I`), shapes in Keras's layout; the cnnc
  name of each from the legacy `.h5` (the layers' own names), whose mapping gives Keras's outputs within
  2e-6 (tests/reference/test_checkpoints.py).

Run: `/tmp/refvenv/bin/python tests/reference/make_checkpoint_fixtures.py` (torch, torchvision, keras, h5py).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402

import cnnc  # noqa: E402
from cnnc.compiler import build_full, checkpoint, view  # noqa: E402

OUT = Path(__file__).parent.parent / "data" / "checkpoints"


def torchvision_fixture(name: str) -> None:
    import torchvision
    from torch_mapping import map_by_order

    import torch

    model = getattr(torchvision.models, name)(weights=None).eval()
    with torch.no_grad():  # every tensor distinct, so that a value names its tensor
        for i, t in enumerate(model.state_dict().values()):
            if t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=torch.Generator().manual_seed(i)))
    graph = cnnc.build(name)
    ours = map_by_order(graph, model)
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    by_value = {v.tobytes(): k for k, v in state.items() if v.dtype.kind == "f"}
    rows = [by_value[np.ascontiguousarray(value).tobytes()] for value in ours.values()]
    truth = dict(zip(rows, ours))
    tensors = [{"name": k, "shape": list(v.shape), "cnnc": truth.get(k)} for k, v in state.items()]
    _write(OUT / f"{name}_torchvision.json", name, "tensors", tensors)


def keras_fixture() -> None:
    import h5py
    import keras

    model = keras.applications.Xception(weights=None)
    with tempfile.TemporaryDirectory() as d:
        model.save(f"{d}/x.h5")
        model.save_weights(f"{d}/x.weights.h5")
        full = build_full(cnnc.load("xception"))
        _, legacy = checkpoint.assign(full, view(full, False), f"{d}/x.h5")
        _, positional = checkpoint.assign(full, view(full, False), f"{d}/x.weights.h5")
        assert {e.target: e.source for e in legacy}.keys() == {e.target: e.source for e in positional}.keys()
        legacy_values = checkpoint.load(f"{d}/x.h5").tensors
        positional_values = checkpoint.load(f"{d}/x.weights.h5").tensors
        by_target = {e.target: e.source for e in legacy}
        for e in positional:  # the positional file's mapping equals the named file's, value for value
            assert np.array_equal(positional_values[e.source], legacy_values[by_target[e.target]]), e
        cnnc_of = {e.source: e.target for e in positional}
        rows = []
        with h5py.File(f"{d}/x.weights.h5") as f:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset) and "/vars/" in name:
                    layer, index = name[len("layers/"):].split("/vars/")
                    rows.append({"layer": layer, "var": int(index), "shape": list(obj.shape)})
            f.visititems(visit)
    roles = {}
    for e in positional:
        roles.setdefault(e.source.rsplit(".", 1)[0], []).append(e.target)
    for row in rows:
        row["cnnc"] = roles[row["layer"]][row["var"]] if row["layer"] in roles else None
    assert len(cnnc_of) == sum(r["cnnc"] is not None for r in rows)
    _write(OUT / "xception_keras.json", "xception", "datasets", rows)


def _write(path: Path, network: str, key: str, rows: list[dict]) -> None:
    body = ",\n".join(json.dumps(row) for row in rows)  # one row a line: reviewable diffs
    path.write_text(f'{{"network": "{network}", "{key}": [\n{body}\n]}}\n')


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    torchvision_fixture("resnet18")
    torchvision_fixture("mobilenet_v3_small")
    keras_fixture()
    print("wrote", ", ".join(sorted(p.name for p in OUT.glob("*.json"))))
