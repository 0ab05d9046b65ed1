"""Every shipped architecture reproduces its row of REFERENCE.md exactly, compiles to a model that
passes the ONNX checker and strict shape inference, and runs in ONNX Runtime at batch 1 and 3."""
from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import shape_inference

import cnnc
from cnnc.architectures import files, names

from test_torchvision_counts import ROWS as TORCHVISION_ROWS

# (file, input, output, total, trainable, non-trainable, MACs) — REFERENCE.md, measured on the
# reference implementations (Keras applications, torchvision). MACs are to the last digit where we
# have them; REFERENCE gives them rounded, checked to 0.1 % below.
# None: REFERENCE gives no MAC figure. Variants (`*_torchvision`, `resnext50_grouped`) use the figures
# REFERENCE quotes for those flavors; resnet50_torchvision's total adds torchvision's BN buffers
# (53,120) to its 25,557,032 parameters, as Keras counts them.
REFERENCE = [
    ("lenet5", (1, 32, 32), (10,), 61_706, 61_706, 0, 416_520),
    ("lenet5_1998", (1, 32, 32), (10,), 60_000, 60_000, 0, None),
    ("alexnet", (3, 227, 227), (1000,), 60_965_224, 60_965_224, 0, 724.4e6),
    ("vgg16", (3, 224, 224), (1000,), 138_357_544, 138_357_544, 0, 15.470e9),
    ("inception_v1", (3, 224, 224), (1000,), 6_998_552, 6_998_552, 0, 1.583e9),
    ("inception_v3", (3, 299, 299), (1000,), 23_851_784, 23_817_352, 34_432, 5.713e9),
    ("resnet50", (3, 224, 224), (1000,), 25_636_712, 25_583_592, 53_120, 3.858e9),
    ("resnet50_torchvision", (3, 224, 224), (1000,), 25_610_152, 25_557_032, 53_120, 4.089e9),
    ("xception", (3, 299, 299), (1000,), 22_910_480, 22_855_952, 54_528, 8.357e9),
    ("inception_v4", (3, 299, 299), (1000,), 42_742_984, 42_679_816, 63_168, 12.254e9),
    ("inception_resnet_v2", (3, 299, 299), (1000,), 55_873_736, 55_813_192, 60_544, 13.156e9),
    ("resnext50", (3, 224, 224), (1000,), 25_097_128, 25_028_904, 68_224, 4.230e9),
    ("resnext50_grouped", (3, 224, 224), (1000,), 25_097_128, 25_028_904, 68_224, 4.230e9),
    ("nin_cifar10", (3, 32, 32), (10,), 966_986, 966_986, 0, 222.5e6),
    ("nin_imagenet", (3, 224, 224), (1000,), 7_595_176, 7_595_176, 0, 1.100e9),
]
BY_NAME = {row[0]: row for row in REFERENCE}


def test_every_shipped_architecture_has_a_reference_row():
    """Here, or in test_torchvision_counts.py's table of torchvision-flavour networks."""
    rows = {*BY_NAME, *(row[0] for row in TORCHVISION_ROWS)}
    assert sorted(names()) == sorted(rows)


@pytest.mark.parametrize("name,input_shape,output_shape,total,trainable,frozen,macs", REFERENCE,
                         ids=[r[0] for r in REFERENCE])
def test_counts_and_shapes_match_reference(name, input_shape, output_shape, total, trainable, frozen, macs):
    info = cnnc.summary(name)
    assert tuple(info["input_shape"]) == input_shape
    assert tuple(info["output_shape"]) == output_shape
    assert info["params"] == {"total": total, "trainable": trainable, "non_trainable": frozen}
    if macs is not None:
        assert info["macs"] == pytest.approx(macs, rel=1e-3)
    assert sum(layer["params"] for layer in info["layers"]) == total


@pytest.mark.parametrize("name", ["lenet5", "lenet5_1998", "nin_cifar10", "resnet50", "inception_v3",
                                  "xception", "mobilenet_v3_small", "efficientnet_b0", "shufflenet_v2_x0_5",
                                  "regnet_y_400mf", "convnext_tiny"])
def test_model_passes_checker_and_strict_shape_inference_and_runs(name):
    model = cnnc.compile(name)
    onnx.checker.check_model(model, full_check=True)
    inferred = shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    declared = {vi.name: [d.dim_value or d.dim_param for d in vi.type.tensor_type.shape.dim]
                for vi in model.graph.value_info}
    for vi in inferred.graph.value_info:  # onnx's own inference agrees with every shape cnnc recorded
        if vi.name in declared:
            assert [d.dim_value or d.dim_param for d in vi.type.tensor_type.shape.dim] == declared[vi.name]
    session = cnnc.Session(model.SerializeToString(), "cpu")
    graph = cnnc.build(name)
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, *graph.input_shape), dtype=np.float32)
        y = session.run(x)
        assert y.shape == (batch, *graph.output_shape) and np.isfinite(y).all()
        if model.graph.node[-1].op_type == "Softmax":
            np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-4)


def test_model_interface_is_input_output_with_symbolic_batch():
    model = cnnc.compile("lenet5")
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "input" and out.name == "output"
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]] == [1, 32, 32]
    assert model.ir_version <= 10 and model.opset_import[0].version == 21


def test_initializer_names_are_the_documented_parameter_names():
    model = cnnc.compile("inception_v3")
    names_in_model = {t.name for t in model.graph.initializer}
    graph = cnnc.build("inception_v3")
    params = {p.name for p in graph.params}
    assert params <= names_in_model
    assert "mixed5/branch7x7dbl/cbr_3/conv.weight" in params
    assert "mixed9/branch3x3/split/branch2/batchnorm.running_var" in params
    # BN without scale: gamma is a constant, not a parameter
    assert not any(p.endswith("batchnorm.weight") for p in params)
    extra = names_in_model - params
    assert extra and all(n.endswith(".unit_scale") for n in extra)


@pytest.mark.parametrize("name", files())
def test_every_file_names_its_paper_and_reference_and_checks_its_main_stages(name):
    """Every shipped file, a family file once (built with its parameters' own values)."""
    from cnnc.architectures import path
    text = path(name).read_text()
    header = text[:text.index("\nnetwork:")]
    assert header.startswith("# ") and re.search(r"\b(19|20)\d\d\b", header), header[:200]
    assert re.search(r"Follows|follows|as published|torchvision|Caffe|Keras|Reference", header)
    graph = cnnc.build(name)
    assert text.count("expect:") >= 1 and graph.layers  # and every expectation held while building
