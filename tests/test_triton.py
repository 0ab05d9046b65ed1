"""`cnnc export-triton`: a model repository entry whose config.pbtxt is Triton's ModelConfig, true to the model.

The oracle for the format is protobuf's own text-format parser, given the part of Triton's
`model_config.proto` (triton-inference-server/common, protobuf/model_config.proto) that the file uses,
with Triton's field names, numbers, types and enum values: an unknown field, a misspelt enum value or a
syntax error fails the parse, as it would fail Triton's.
"""
from __future__ import annotations

import ast

import onnx
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

import cnnc
from cnnc import triton
from cnnc.dsl.document import load_text
from cnnc.errors import CnncError

F = descriptor_pb2.FieldDescriptorProto
DATA_TYPES = ["TYPE_INVALID", "TYPE_BOOL", "TYPE_UINT8", "TYPE_UINT16", "TYPE_UINT32", "TYPE_UINT64", "TYPE_INT8",
              "TYPE_INT16", "TYPE_INT32", "TYPE_INT64", "TYPE_FP16", "TYPE_FP32", "TYPE_FP64", "TYPE_STRING",
              "TYPE_BF16"]  # enum DataType, numbered 0.. in this order
KINDS = ["KIND_AUTO", "KIND_GPU", "KIND_CPU", "KIND_MODEL"]  # enum ModelInstanceGroup.Kind


def _model_config_class():
    fd = descriptor_pb2.FileDescriptorProto(name="model_config_subset.proto", package="inference", syntax="proto3")
    enum = fd.enum_type.add(name="DataType")
    for number, name in enumerate(DATA_TYPES):
        enum.value.add(name=name, number=number)

    def message(name, *fields):
        m = fd.message_type.add(name=name)
        for field_name, number, kind, *rest in fields:
            f = m.field.add(name=field_name, number=number, type=kind,
                            label=F.LABEL_REPEATED if "repeated" in rest else F.LABEL_OPTIONAL)
            type_name = next((r for r in rest if r.startswith(".")), None)
            if type_name:
                f.type_name = type_name
        return m

    group = message("ModelInstanceGroup", ("name", 1, F.TYPE_STRING), ("count", 2, F.TYPE_INT32),
                    ("gpus", 3, F.TYPE_INT32, "repeated"),
                    ("kind", 4, F.TYPE_ENUM, ".inference.ModelInstanceGroup.Kind"))
    kind = group.enum_type.add(name="Kind")
    for number, name in enumerate(KINDS):
        kind.value.add(name=name, number=number)
    message("ModelInput", ("name", 1, F.TYPE_STRING), ("data_type", 2, F.TYPE_ENUM, ".inference.DataType"),
            ("dims", 4, F.TYPE_INT64, "repeated"))
    message("ModelOutput", ("name", 1, F.TYPE_STRING), ("data_type", 2, F.TYPE_ENUM, ".inference.DataType"),
            ("dims", 3, F.TYPE_INT64, "repeated"), ("label_filename", 4, F.TYPE_STRING))
    message("ModelDynamicBatching", ("preferred_batch_size", 1, F.TYPE_INT32, "repeated"),
            ("max_queue_delay_microseconds", 2, F.TYPE_UINT64))
    message("ModelConfig", ("name", 1, F.TYPE_STRING), ("platform", 2, F.TYPE_STRING),
            ("max_batch_size", 4, F.TYPE_INT32), ("input", 5, F.TYPE_MESSAGE, "repeated", ".inference.ModelInput"),
            ("output", 6, F.TYPE_MESSAGE, "repeated", ".inference.ModelOutput"),
            ("instance_group", 7, F.TYPE_MESSAGE, "repeated", ".inference.ModelInstanceGroup"),
            ("dynamic_batching", 11, F.TYPE_MESSAGE, ".inference.ModelDynamicBatching"),
            ("backend", 17, F.TYPE_STRING))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.ModelConfig"))


ModelConfig = _model_config_class()


def parse(text: str):
    return text_format.Parse(text, ModelConfig())


def _dims(value) -> list[int]:
    return [d.dim_value for d in value.type.tensor_type.shape.dim]


def test_the_parser_is_strict_about_fields_and_enum_values():
    parse('name: "m" backend: "onnxruntime" instance_group [ { count: 1 kind: KIND_CPU } ]')
    with pytest.raises(text_format.ParseError):
        parse('name: "m" instance_group [ { count: 1 kind: KIND_TPU } ]')
    with pytest.raises(text_format.ParseError):
        parse('name: "m" max_batch: 8')


@pytest.mark.parametrize("gpu,kind", [(False, "KIND_CPU"), (True, "KIND_GPU")])
def test_export_writes_the_model_and_a_config_that_matches_it(tmp_path, gpu, kind, cli):
    r = cli.run("export-triton", "lenet5", str(tmp_path / "repo"), "--max-batch", "16", "--seed", "3",
                *(["--gpu"] if gpu else []))
    assert r.code == 0, r.err
    entry = tmp_path / "repo" / "lenet5"
    assert sorted(p.relative_to(entry).as_posix() for p in entry.rglob("*")) == ["1", "1/model.onnx", "config.pbtxt"]
    model = onnx.load(entry / "1" / "model.onnx")
    onnx.checker.check_model(model)
    assert model.SerializeToString() == cnnc.compile("lenet5", seed=3).SerializeToString()

    config = parse((entry / "config.pbtxt").read_text())
    assert config.name == "lenet5" == entry.name  # Triton: the name must match the folder
    assert config.backend == "onnxruntime" and config.platform == ""
    assert config.max_batch_size == 16
    assert [(i.name, DATA_TYPES[i.data_type], list(i.dims)) for i in config.input] == [
        ("input", "TYPE_FP32", [1, 32, 32])]
    assert [(o.name, DATA_TYPES[o.data_type], list(o.dims)) for o in config.output] == [
        ("output", "TYPE_FP32", [10])]
    # against the model itself: the same names, and dims are its shapes less the batch axis
    assert [i.name for i in config.input] == [i.name for i in model.graph.input]
    assert [list(i.dims) for i in config.input] == [_dims(i)[1:] for i in model.graph.input]
    assert [list(o.dims) for o in config.output] == [_dims(o)[1:] for o in model.graph.output]
    assert config.HasField("dynamic_batching") and config.dynamic_batching.max_queue_delay_microseconds == 100
    assert [(g.count, KINDS[g.kind]) for g in config.instance_group] == [(1, kind)]


def test_every_output_of_the_model_is_listed_with_its_dims():
    doc = load_text("network: heads\ninput: [3, 16, 16]\nblocks:\n  head(n): [globalavgpool, dense(n), softmax]\n"
                    "layers:\n  - conv(8, 3x3, stride=2)\n  - aux1: {aux: head(5)}\n  - conv(4, 3x3)\n"
                    "  - flatten\n", "heads.yaml")
    model = cnnc.compile(doc, aux=True)
    config = parse(triton.config(model, "heads", max_batch_size=4))
    assert [(o.name, list(o.dims)) for o in config.output] == [("output", [4 * 5 * 5]), ("aux1", [5])]
    assert [o.name for o in config.output] == [o.name for o in model.graph.output]


def test_data_types_follow_tritons_table():
    # Triton's datatype table, by its NumPy column, against ONNX's own element-type -> NumPy mapping
    numpy_names = {"TYPE_BOOL": "bool", "TYPE_UINT8": "uint8", "TYPE_UINT16": "uint16", "TYPE_UINT32": "uint32",
                   "TYPE_UINT64": "uint64", "TYPE_INT8": "int8", "TYPE_INT16": "int16", "TYPE_INT32": "int32",
                   "TYPE_INT64": "int64", "TYPE_FP16": "float16", "TYPE_FP32": "float32", "TYPE_FP64": "float64"}
    for elem, name in triton.DATA_TYPES.items():
        assert name in DATA_TYPES
        if name in numpy_names:
            assert onnx.helper.tensor_dtype_to_np_dtype(elem).name == numpy_names[name]


def test_a_model_without_a_batch_axis_is_refused(tmp_path):
    model = cnnc.compile("lenet5")
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    with pytest.raises(CnncError, match="batch axis"):
        triton.export(model, "lenet5", tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_export_into_a_file_is_a_user_error(tmp_path, cli):
    (tmp_path / "taken").write_text("")
    r = cli.run("export-triton", "lenet5", str(tmp_path / "taken"))
    assert r.code == 2 and "is a file" in r.err and "Traceback" not in r.err
    r = cli.run("export-triton", "lenet5", str(tmp_path), "--max-batch", "0")
    assert r.code == 2 and "positive integer" in r.err


def test_the_python_backend_entry_adds_a_model_py_and_otherwise_matches_the_default(tmp_path, cli):
    r = cli.run("export-triton", "lenet5", str(tmp_path / "py"), "--backend", "python", "--max-batch", "16")
    assert r.code == 0, r.err
    assert cli.run("export-triton", "lenet5", str(tmp_path / "ort"), "--max-batch", "16").code == 0
    entry, default = tmp_path / "py" / "lenet5", tmp_path / "ort" / "lenet5"
    assert sorted(p.relative_to(entry).as_posix() for p in entry.rglob("*")) == [
        "1", "1/model.onnx", "1/model.py", "config.pbtxt"]
    assert (entry / "1" / "model.onnx").read_bytes() == (default / "1" / "model.onnx").read_bytes()
    config, other = parse((entry / "config.pbtxt").read_text()), parse((default / "config.pbtxt").read_text())
    assert config.backend == "python" and other.backend == "onnxruntime"
    other.backend = "python"
    assert config == other  # only the backend differs
    assert (entry / "1" / "model.py").read_text() == triton.python_model()


def test_the_python_model_is_a_triton_python_model_that_batches_requests():
    source = triton.python_model()
    tree = ast.parse(source)  # parsed, never run: it imports Triton's own module
    classes = {c.name: c for c in tree.body if isinstance(c, ast.ClassDef)}
    methods = {f.name for f in classes["TritonPythonModel"].body if isinstance(f, ast.FunctionDef)}
    assert methods == {"initialize", "execute", "finalize"}
    assert "np.concatenate" in source and "CUDAExecutionProvider" in source and "CPUExecutionProvider" in source
    assert source.index("CPUExecutionProvider") < source.index("providers.insert(0")  # CUDA goes first


def test_the_python_model_is_written_byte_for_byte_the_same_each_time(tmp_path):
    model = cnnc.compile("lenet5")
    paths = [triton.export(model, "lenet5", tmp_path / f"r{i}", backend="python") / "1" / "model.py" for i in (1, 2)]
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_an_unknown_backend_is_refused_before_anything_is_written(tmp_path, cli):
    with pytest.raises(CnncError, match="unknown Triton backend `tensorrt`"):
        triton.export(cnnc.compile("lenet5"), "lenet5", tmp_path / "repo", backend="tensorrt")  # type: ignore[arg-type]
    assert not (tmp_path / "repo").exists()
    r = cli.run("export-triton", "lenet5", str(tmp_path / "repo"), "--backend", "tensorrt")
    assert r.code == 2 and "invalid choice" in r.err and "Traceback" not in r.err
