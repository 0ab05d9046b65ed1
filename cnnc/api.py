"""The Python API; the CLI is a thin layer over it.

    net = cnnc.load("resnet50")            # a shipped name or a path -> validated Document
    graph = cnnc.build(net)                # shapes, parameters, MACs
    model = cnnc.compile(net, seed=0)      # onnx.ModelProto
    cnnc.save(model, "resnet50.onnx")      # atomic write
    cnnc.api.compile_to(net, "resnet50.onnx")  # both at once, streamed: never the whole model in memory

Models whose file would pass protobuf's 2 GiB are written with ONNX external data: `NAME.onnx` plus
`NAME.onnx.data` beside it (the model names it by that relative path).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence, Union

from . import __version__
from .architectures import find as shipped_find, names as shipped_names
from .compiler import build as _build, build_full as _build_full, view as _view
from .compiler.ir import Graph
from .dsl.document import Document, load as _load_file
from .dsl.family import Selection, current as current_selection
from .errors import CnncError, did_you_mean
from .dsl.errors import SourceError
from .record import Record, record

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from .compiler.lower import DType, Lowered
    from .compiler.protowriter import TensorSpec


def locate(net: str | os.PathLike) -> tuple[Path, str]:
    """The file a NET argument means (a path, or a shipped name) and how to show it in messages."""
    file, display, _variant = _locate(net)
    return file, display


def _locate(net: str | os.PathLike) -> tuple[Path, str, str | None]:
    """The file, its name in messages, and the variant a shipped variant's name picks."""
    text = os.fspath(net)
    candidate = Path(text)
    if candidate.exists() or text.endswith((".yaml", ".yml")) or os.sep in text:
        return candidate, text, None
    shipped = shipped_find(text)
    if shipped is not None:
        file, variant = shipped
        return file, f"{file.stem}.yaml", variant
    raise CnncError(f"`{text}` is neither a file nor a shipped architecture"
                      f"{did_you_mean(text, shipped_names())}; `cnnc list` shows the shipped ones")


def load(net: str | os.PathLike | Document, variant: str | None = None,
         parameters: Mapping[str, Any] | None = None) -> Document:
    """A validated network from a path or the name of a shipped architecture or variant. For a family
    file, `variant` picks a variant and `parameters` override parameters (values, or expression texts);
    both default to those of `cnnc.parameters(...)` in force (dsl/family.py)."""
    if isinstance(net, Document):
        return net
    file, display, named = _locate(net)
    chosen = current_selection()
    asked = variant or chosen.variant
    if named is not None and asked is not None and asked != named:
        raise SourceError(f"`{os.fspath(net)}` is itself a variant of {display}; it cannot also be `{asked}`")
    selection = Selection(named or asked, {**chosen.overrides, **(parameters or {})})
    return _load_file(file, display, selection)


def build(net: str | os.PathLike | Document, aux: bool = False) -> Graph:
    """The network's graph: every layer with its output shape, parameters and MACs. `aux` keeps the
    train-only heads (GoogLeNet's auxiliary classifiers) as extra outputs."""
    return _build(load(net), aux)


EXTERNAL_DATA_ABOVE = (1 << 31) - 1  # the most protobuf reads as one message: bigger models go external
DTYPES = ("float32", "float16")


Weights = Union[str, os.PathLike, Mapping[str, "np.ndarray"]]
WeightsMap = Union[str, os.PathLike, Mapping[str, Union[str, None]]]


@record
class Written(Record):
    """What `compile_to` or `save` wrote: the model file, and its external data file when it has one."""

    path: Path
    data_path: Path | None
    size: int  # bytes, both files together
    outputs: tuple[str, ...]


def compile(net: str | os.PathLike | Document, seed: int = 0, aux: bool = False,  # noqa: A001
            weights: Weights | None = None, dtype: DType = "float32", fold_bn: bool = False,
            weights_map: WeightsMap | None = None) -> onnx.ModelProto:
    """The network as an ONNX model, with seeded initial weights or with `weights`: a file in cnnc's
    names (`.safetensors`, `.npz`), or another framework's checkpoint (torchvision, timm or Hugging Face
    `.safetensors`, a PyTorch `.pth`, Keras `.weights.h5` / `.keras`) mapped from structure, with the
    renames of `weights_map` (a YAML file or a mapping, see `weights_mapping`), or a mapping of cnnc names to
    arrays. `dtype="float16"` stores the weights and computes in float16 (input and output stay float32);
    `fold_bn` folds batch normalisations into the convolutions before them."""
    lowered, values = _lowered(net, seed, aux, weights, dtype, fold_bn, weights_map)
    return lowered.complete(values)


def compile_to(net: str | os.PathLike | Document, path: str | os.PathLike, seed: int = 0, aux: bool = False,
               weights: Weights | None = None, dtype: DType = "float32", fold_bn: bool = False,
               external_data_above: int = EXTERNAL_DATA_ABOVE,
               progress: Callable[[int, int], None] | None = None, weights_map: WeightsMap | None = None) -> Written:
    """`save(compile(net, ...), path)` without ever holding the model: the weights are made, written and
    dropped a chunk at a time (compiler/values.py). The file has the same bytes. `progress(done, total)`
    is called with the bytes written so far as the weights go out."""
    lowered, values = _lowered(net, seed, aux, weights, dtype, fold_bn, weights_map)
    return _write(lowered.model.encode(), lowered.model.output_names, lowered.tensors, values, path,
                  external_data_above, progress)


def weights_mapping(checkpoint: str | os.PathLike, net: str | os.PathLike | Document, aux: bool = True,
                    weights_map: WeightsMap | None = None) -> list:
    """How `checkpoint` maps onto the network's parameters: `compiler.mapping.Entry` rows (checkpoint
    name, cnnc name, shape, layout change, how it was decided), for review before compiling with it."""
    full = _build_full(load(net))
    graph = _view(full, aux)
    values, entries = _assign(full, graph, checkpoint, weights_map)
    if not entries:  # the file uses the network's own names
        from .compiler.mapping import Entry
        entries = [Entry(p.name, p.name, p.shape, "", "name") for p, _ in values]
    return entries


def _assign(full: Graph, graph: Graph, weights: Any, weights_map: Any) -> tuple[list, list]:
    """compiler.checkpoint.assign, its error told of the shipped flavour that a foreign checkpoint more
    likely fits (cnnc's plain `resnet50` is Keras's; torchvision's is `resnet50_torchvision`)."""
    from .compiler import checkpoint
    from .compiler.errors import WeightsError

    try:
        return checkpoint.assign(full, graph, weights, weights_map)
    except WeightsError as e:
        other = f"{full.name}_torchvision"
        if not e.help and other in shipped_names() and isinstance(weights, (str, os.PathLike)) \
                and Path(weights).suffix in (*checkpoint.TORCH_SUFFIXES, ".safetensors"):
            e.help = (f"`{full.name}` is cnnc's own flavour; a torchvision checkpoint fits `{other}`: "
                      f"`cnnc weights map {Path(weights).name} {other}`")
        raise


def _lowered(net: str | os.PathLike | Document, seed: int, aux: bool, weights: Weights | None, dtype: DType,
             fold_bn: bool, weights_map: WeightsMap | None = None) -> tuple[Lowered, Iterator[Iterator[np.ndarray]]]:
    from .compiler import lower_onnx
    from .compiler.weights import check_seed

    seed = check_seed(seed)  # before any work, and also when `weights` make the seed moot
    if dtype not in DTYPES:
        raise CnncError(f"dtype `{dtype}`: expected one of {', '.join(DTYPES)}")
    doc = load(net)
    full = _build_full(doc)
    graph = _view(full, aux)
    source_hash = hashlib.sha256(doc.source.text.encode()).hexdigest()
    metadata = {"cnnc.version": __version__, "cnnc.network": doc.name, "cnnc.source_sha256": source_hash}
    if doc.parameters:  # a family's member: the values it was built with (variant and --set applied)
        import json
        metadata["cnnc.parameters"] = json.dumps(doc.parameters, sort_keys=True)
    if doc.preprocessing is not None:  # how the reference prepares an image for it
        import json
        metadata["cnnc.preprocessing"] = json.dumps(doc.preprocessing, sort_keys=True)
    values = None
    if weights is None:
        metadata["cnnc.seed"] = str(seed)
    else:
        values, _ = _assign(full, graph, weights, weights_map)
        metadata["cnnc.weights"] = Path(weights).name if isinstance(weights, (str, os.PathLike)) else "given"
    if dtype != "float32":
        metadata["cnnc.dtype"] = dtype
    if fold_bn:
        metadata["cnnc.fold_bn"] = "true"
    return lower_onnx(graph, seed, values, producer_version=__version__, metadata=metadata, dtype=dtype,
                      fold_bn=fold_bn)


def initial_weights(net: str | os.PathLike | Document, seed: int = 0, aux: bool = True):
    """Every named tensor of the network with its seeded initial value: the template for `--weights`."""
    from .compiler.weights import initial_weights as _initial
    return ((p.name, v) for p, v in _initial(_build(load(net), aux), seed))


def summary(net: str | os.PathLike | Document | Graph) -> dict[str, Any]:
    """Counts and per-layer shapes, as `cnnc summary --json` prints them; a `Graph` is summed as it is."""
    return _summary(net, None) if isinstance(net, Graph) else summary_of(_build_full(load(net)))


def summary_of(full: Graph, aux: bool = False) -> dict[str, Any]:
    """`summary` of the network whose whole graph (train-only heads included, `compiler.build_full`) is
    `full`: of its heads' layers too with `aux`, else of the inference graph with the heads' totals."""
    return _summary(_view(full, aux), None if aux else full)


def _summary(graph: Graph, full: Graph | None) -> dict[str, Any]:
    extra = {}
    if full is not None and full.aux_heads:
        extra = {"aux_heads": list(full.aux_heads), "params_with_aux": full.counts(), "macs_with_aux": full.macs}
    return {
        "name": graph.name,
        "input_shape": list(graph.input_shape),
        "output_shape": list(graph.output_shape),
        "params": graph.counts(),
        "macs": graph.macs,
        "layers": [{"name": layer.name, "op": layer.op, "output_shape": list(layer.shape),
                    "params": layer.param_count, "macs": layer.macs} for layer in graph.layers],
        **extra,
    }


def save(model: onnx.ModelProto, path: str | os.PathLike, external_data_above: int = EXTERNAL_DATA_ABOVE) -> Written:
    """Write `model` atomically: temporary files beside `path`, then renames. A model whose file would
    be larger than `external_data_above` bytes gets its weights in `PATH.data` (ONNX external data)."""
    skeleton, tensors, values = _streamable(model)
    outputs = tuple(o.name for o in model.graph.output)
    return _write(skeleton.SerializeToString(), outputs, tensors, values, path, external_data_above)


def _streamable(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[TensorSpec], Iterator[np.ndarray]]:
    """`model` less its raw-data initialisers (copied field by field: the weights are not copied), and
    those initialisers as specs and values."""
    import numpy as np
    from google.protobuf.message import Message

    from .compiler.protowriter import TensorSpec, numpy_dtype

    def copy(dst: Message, fields: Iterable[tuple[Any, Any]], skip: str = "") -> None:
        for field, value in fields:
            if field.name == skip:
                continue
            if isinstance(value, Message):
                getattr(dst, field.name).CopyFrom(value)
            elif isinstance(value, (bool, int, float, str, bytes)):
                setattr(dst, field.name, value)
            else:
                getattr(dst, field.name).extend(value)

    skeleton = type(model)()
    copy(skeleton, model.ListFields(), skip="graph")
    copy(skeleton.graph, model.graph.ListFields(), skip="initializer")
    streamed = []
    for t in model.graph.initializer:
        dtype = numpy_dtype(t.data_type)
        if dtype is not None and t.HasField("raw_data") and t.data_location == t.DEFAULT:
            streamed.append((TensorSpec(t.name, tuple(t.dims), dtype), t))
        else:
            skeleton.graph.initializer.add().CopyFrom(t)
    values = (np.frombuffer(t.raw_data, spec.dtype).reshape(spec.shape) for spec, t in streamed)
    return skeleton, [spec for spec, _ in streamed], values


def _write(skeleton: bytes, outputs: tuple[str, ...], tensors: Sequence[TensorSpec],
           values: Iterable[Iterable[np.ndarray]], path: str | os.PathLike, external_data_above: int,
           progress: Callable[[int, int], None] | None = None) -> Written:
    from .compiler import protowriter

    path = Path(path)
    if path.is_dir():
        raise CnncError(f"`{path}` is a directory; give a file name for the model")
    if not path.parent.exists():
        raise CnncError(f"cannot write `{path}`: the folder `{path.parent}` does not exist")
    layout = protowriter.layout(skeleton, tensors)
    data_path = None
    if layout.size > external_data_above:
        data_path = path.with_name(f"{path.name}.data")
        layout = protowriter.layout(skeleton, tensors, data_path.name)
        if layout.size > protowriter.MAX_PROTO_BYTES:
            raise CnncError(f"`{path}`: even with its weights in `{data_path.name}`, the model takes "
                            f"{layout.size:,} bytes, over protobuf's 2 GiB")
    tmp, data_tmp = (p.with_name(f".{p.name}.{os.getpid()}.tmp") for p in (path, data_path or path))
    try:
        with open(tmp, "wb") as out, open(data_tmp, "wb") if data_path else contextlib.nullcontext() as data:
            _reserve(out, layout.size)
            if data is not None:
                _reserve(data, layout.data_size)
            step = _running_total(progress, layout.size + layout.data_size) if progress else None
            protowriter.write(layout, tensors, values, out, data, step)
        with _signals_held():  # the pair is replaced together or not at all
            if data_path:
                os.replace(data_tmp, data_path)
            os.replace(tmp, path)
    except OSError as e:
        raise CnncError(f"cannot write `{path}`: {e.strerror or e}") from None
    finally:
        for leftover in (tmp, data_tmp):
            if leftover.exists():
                leftover.unlink()
    return Written(path, data_path, layout.size + layout.data_size, outputs)


def _reserve(file: Any, size: int) -> None:
    """Allocate the file's blocks at once: ext4 then takes writes several times faster than when it
    allocates page by page (0.05 s instead of 0.7 s of system time for 400 MB, measured)."""
    if size and hasattr(os, "posix_fallocate"):
        with contextlib.suppress(OSError):  # not every file system can; the writes allocate then
            os.posix_fallocate(file.fileno(), 0, size)


def _running_total(progress: Callable[[int, int], None], total: int) -> Callable[[int], None]:
    """A step that tells `progress` the bytes written so far, of `total`, after each chunk."""
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        progress(done, total)
    return step


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done, then reach their handlers."""
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    try:
        previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in held}
    except ValueError:  # not the main thread, where Python runs no signal handler anyway
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        for signum in caught:
            signal.raise_signal(signum)


def preprocess(images: Any, model: str | os.PathLike | Document | onnx.ModelProto | None = None,
               **overrides: Any) -> np.ndarray:
    """Image files (or PIL images) -> the float32 [N, C, H, W] batch the network's reference makes of them:
    torchvision's Resize, CenterCrop, ToTensor and Normalize, exactly (cnnc.runtime.images). The values
    come from `model` (an .onnx file or ModelProto: its recorded `cnnc.preprocessing`; a network: its
    `preprocessing:`), each of `resize`, `crop`, `interpolation`, `mean`, `std` given overriding them."""
    from .runtime.images import preprocess as _preprocess, resolve
    recorded, shape = _recorded_preprocessing(model)
    return _preprocess(images, resolve(recorded, shape, lambda f: f"`{f}=`", **overrides))


def classify(model: str | os.PathLike, images: Any, top: int = 5, provider: str = "cpu",
             **overrides: Any) -> list[list[tuple[int, str, float]]]:
    """Each image's `top` classes (index, name, probability) from the .onnx model, preprocessed as
    `preprocess(images, model, **overrides)`; ImageNet-1k names for a 1000-class model."""
    import onnx as _onnx

    from .runtime import Session
    from .runtime.images import Preprocessing, classify as _classify, resolve
    session = Session(os.fspath(model), provider)  # type: ignore[arg-type]
    p = resolve(Preprocessing.recorded(session.metadata), session.input_shape, lambda f: f"`{f}=`", **overrides)
    many = [images] if isinstance(images, (str, os.PathLike)) else list(images)
    return _classify(session, _onnx.load(os.fspath(model), load_external_data=False), many, p, top)


def _recorded_preprocessing(model: Any) -> tuple[Any, list]:
    """The preprocessing `model` records (None if none) and its input's dimensions [N, C, H, W]."""
    from .runtime.images import Preprocessing
    if model is None:
        return None, [None] * 4
    if isinstance(model, (str, os.PathLike)) and os.fspath(model).endswith(".onnx"):
        import onnx as _onnx
        model = _onnx.load(os.fspath(model), load_external_data=False)
    if not hasattr(model, "graph"):  # a network
        doc = load(model)
        return (Preprocessing.of(doc.preprocessing) if doc.preprocessing else None), [None, *doc.input]
    dims = [d.dim_value if d.HasField("dim_value") else None for d in model.graph.input[0].type.tensor_type.shape.dim]
    return Preprocessing.recorded({p.key: p.value for p in model.metadata_props}), dims
