"""Export a model to ONNX or TorchScript, then check the file against the model it came from.

``export_model`` writes the file atomically and checks it on a batch of real images:

* the exported file's logits against torch eager's (the largest absolute difference is
  reported; above ``TOLERANCE`` the check fails), and its top-1 on those images, which must
  equal torch's;
* its multiply-adds against the analytic cost model's count. For ONNX the graph itself is
  counted (shapes from ONNX shape inference at batch 1) with the cost model's conventions
  (``tinyformula.nets.count``): Conv and Gemm/MatMul one per multiply-add, BatchNormalization 2 per
  element, GlobalAveragePool 1 per input element, everything else 0. BatchNorm stays a node in
  the file (onnxruntime folds it into the convolutions when it loads the graph), so the count
  is the model's, unaltered. For TorchScript, the re-loaded file is converted to ONNX in memory
  and that graph is counted the same way (fvcore cannot hook a ScriptModule).

Both files carry the model's configuration with how to feed it (``preprocessing``: resize,
0..255 scale, mean and std, channels; see :mod:`tinyformula.data.preprocessing`): ONNX in the
metadata entries ``tinyformula`` and ``preprocessing`` (and the steps in words as the graph's
``doc_string``), TorchScript in the extra file ``tinyformula.json`` (``load_model`` reads it
back).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.constraints import Integer
from ..core.errors import TinyFormulaError
from ..core.files import FileKind, check_replaceable, write_atomically
from ..core.schema import validate
from .files import MODEL_CONFIG, TORCHSCRIPT_CONFIG, load_model

FORMATS = ("onnx", "torchscript")
EXPORT_IMAGES = Integer(1, 10_000, why="each image runs through torch and the export")
TOLERANCE = 1e-3        # largest absolute logit difference accepted (float32 kernels differ)
OPSET = 17
ONNX_METADATA_KEY = "tinyformula"
PREPROCESSING_KEY = "preprocessing"


@dataclass
class ExportReport:
    """What ``export_model`` wrote and measured; ``ok`` when every check passed."""

    format: str
    path: str
    images: int
    data: str
    max_abs_diff: float
    top1_torch: float
    top1_exported: float
    same_predictions: float      # fraction of images whose arg-max agrees
    macs_exported: int
    macs_cost_model: int
    ok: bool
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _require_onnx():
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise TinyFormulaError("ONNX export needs onnx and onnxruntime: pip install "
                               "'tinyformula[export]'") from None
    return onnx, onnxruntime


def check_images(model, data, n: int = 256):
    """The first ``n`` held-out images of ``data`` as the model's input, with their labels.

    Normalised with the statistics the model was trained with (``model.tinyformula["data"]``)
    when it was trained, else with ``data``'s own."""
    from ..data.augment import to_input

    config = model.tinyformula
    trained = config.get("data") or {}
    mean, std = trained.get("mean") or data.mean, trained.get("std") or data.std
    images = data.val_images[:n]
    x = to_input(images, config["resolution"], mean, std, channels_last=False)
    return x, data.val_labels[:n]


def _to_onnx(model, example, buffer) -> None:
    """torch.onnx.export (TorchScript-based) into an in-memory ``buffer``, with BatchNorm kept
    as nodes, batch size free."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is called "legacy"
        torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=OPSET,
                          input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
                          training=torch.onnx.TrainingMode.PRESERVE)


def exported_config(model) -> dict:
    """The configuration an exported file carries: ``model.tinyformula`` with its
    ``preprocessing`` (how to feed it: resize, 0..255 scale, mean and std, channels; filled
    in from its training data for models trained before it was recorded)."""
    from ..data.preprocessing import preprocessing

    config = dict(model.tinyformula)
    if not config.get("preprocessing"):
        data = config.get("data") or {}
        config["preprocessing"] = preprocessing(config["resolution"], data.get("mean"),
                                                data.get("std"), data.get("channels"))
    return config


def _write_onnx(model, example, path: Path) -> None:
    """The ONNX file, made in memory and written atomically (a full disk is one line)."""
    import io

    onnx, _ = _require_onnx()
    buffer = io.BytesIO()
    _to_onnx(model, example, buffer)
    graph = onnx.load_from_string(buffer.getvalue())
    config = exported_config(model)
    # The whole configuration under "tinyformula"; how to feed the model also on its own
    # (read with onnxruntime: session.get_modelmeta().custom_metadata_map).
    for key, value in ((ONNX_METADATA_KEY, config),
                       (PREPROCESSING_KEY, config["preprocessing"])):
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    graph.doc_string = "; ".join(config["preprocessing"]["steps"])
    write_atomically(path, graph.SerializeToString(), ONNX_KIND)


def _write_torchscript(model, example, path: Path) -> None:
    """The TorchScript file, made in memory (torch's own file writer aborts the interpreter
    on a full disk) and written atomically."""
    import torch

    def writer(handle):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export
            traced = torch.jit.trace(model, example)
            torch.jit.save(traced, handle,
                           _extra_files={TORCHSCRIPT_CONFIG: json.dumps(exported_config(model))})

    write_atomically(path, writer, TORCHSCRIPT_KIND)


def _is_our_onnx(path: Path) -> bool:
    return isinstance(onnx_config(path), dict)


def _is_our_torchscript(path: Path) -> bool:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return any(name.endswith(f"extra/{TORCHSCRIPT_CONFIG}") for name in archive.namelist())


ONNX_KIND = FileKind("ONNX file exported by tinyformula", _is_our_onnx)
TORCHSCRIPT_KIND = FileKind("TorchScript file exported by tinyformula", _is_our_torchscript)
EXPORT_KINDS = {"onnx": ONNX_KIND, "torchscript": TORCHSCRIPT_KIND}


def onnx_config(path) -> dict:
    """The model configuration stored in an exported ONNX file, checked against its schema
    (``models.files.MODEL_CONFIG``, as a TorchScript export's)."""
    onnx, _ = _require_onnx()
    try:
        graph = onnx.load(str(path), load_external_data=False)
    except OSError as error:
        raise TinyFormulaError(f"cannot read {path}: {error.strerror or error}") from None
    except Exception:  # protobuf's DecodeError and its kin: not an ONNX file
        raise TinyFormulaError(f"{path} is not an ONNX file (truncated or another "
                               f"format)") from None
    for entry in graph.metadata_props:
        if entry.key == ONNX_METADATA_KEY:
            try:
                config = json.loads(entry.value)
            except (ValueError, RecursionError):
                raise TinyFormulaError(f"{path}'s tinyformula metadata is not JSON; export "
                                       f"the model again") from None
            return validate(config, MODEL_CONFIG, f"{path}'s tinyformula metadata",
                            "export the model again")
    raise TinyFormulaError(f"{path} has no tinyformula metadata")


def onnx_macs(path) -> int:
    """Multiply-adds of an ONNX graph (a file, or bytes) at batch 1, by the cost model's
    conventions."""
    import numpy as np

    onnx, _ = _require_onnx()
    graph = onnx.load_from_string(path) if isinstance(path, bytes) else onnx.load(str(path))
    for value in list(graph.graph.input) + list(graph.graph.output):
        dim = value.type.tensor_type.shape.dim
        if dim and not dim[0].HasField("dim_value"):
            dim[0].ClearField("dim_param")
            dim[0].dim_value = 1
    inferred = onnx.shape_inference.infer_shapes(graph, strict_mode=True).graph
    shapes = {}
    for value in list(inferred.input) + list(inferred.value_info) + list(inferred.output):
        shapes[value.name] = [d.dim_value for d in value.type.tensor_type.shape.dim]
    for tensor in inferred.initializer:
        shapes[tensor.name] = list(tensor.dims)

    def shape(name):
        try:
            return shapes[name]
        except KeyError:
            raise TinyFormulaError(f"{path}: no shape for tensor {name!r}") from None

    total = 0
    for node in inferred.node:
        if node.op_type == "Conv":
            weight = shape(node.input[1])                      # (out, in / groups, kh, kw)
            total += int(np.prod(shape(node.output[0]))) * int(np.prod(weight[1:]))
        elif node.op_type in ("Gemm", "MatMul"):
            a, out = shape(node.input[0]), shape(node.output[0])
            trans_a = any(a_.name == "transA" and a_.i for a_ in node.attribute)
            inner = a[-2] if trans_a else a[-1]
            total += int(np.prod(out)) * inner
        elif node.op_type == "BatchNormalization":
            total += 2 * int(np.prod(shape(node.output[0])))
        elif node.op_type == "GlobalAveragePool":
            total += int(np.prod(shape(node.input[0])))
    return total


DEFAULT_IMAGES = 256


def check_image_count(n_images: int | None, data, resolution: int) -> int:
    """How many held-out images to check on: ``n_images`` (None: 256, or all the data has
    when it has fewer), refused in one line beyond what ``data`` holds or memory takes."""
    from ..core.constraints import OrNone, check
    from ..core.memory import check_fits, largest

    have = len(data.val_images)
    n_images = check("n_images", n_images, OrNone(EXPORT_IMAGES, "256"))
    if n_images is None:
        n_images = min(DEFAULT_IMAGES, have)
    elif n_images > have:
        raise TinyFormulaError(f"--images {n_images:,} asks for more held-out images than "
                               f"{data.name} has ({have:,}); give at most --images {have:,}")
    # The images as float32 inputs, and torch's and the export's logits beside them: at least
    # twice the inputs.
    per_image = 2 * 4 * 3 * resolution * resolution
    check_fits(n_images * per_image, f"checking on --images {n_images:,} at {resolution} px",
               "cpu", lambda free: f"at most --images {largest(per_image, free):,} here")
    return n_images


def export_model(model, fmt: str, out, data, n_images: int | None = None) -> ExportReport:
    """Write ``model`` (with ``model.tinyformula``) as ``fmt`` to ``out`` and check the file on
    ``n_images`` held-out images of ``data`` (an :class:`ImageData`; None: 256, or every
    held-out image when there are fewer)."""
    import torch

    if fmt not in FORMATS:
        raise TinyFormulaError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    config = getattr(model, "tinyformula", None)
    if not isinstance(config, dict) or "resolution" not in config:
        raise TinyFormulaError("the model has no tinyformula configuration; make it with "
                               "create_model or load_model")
    _require_onnx()  # both formats' multiply-adds are counted on an ONNX graph
    out = check_replaceable(out, EXPORT_KINDS[fmt])  # before any work
    n_images = check_image_count(n_images, data, config["resolution"])
    model = model.eval().cpu()
    x, labels = check_images(model, data, n_images)
    with torch.no_grad():
        reference = model(x)
    if fmt == "onnx":
        _write_onnx(model, x[:2], out)
        _, ort = _require_onnx()
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        exported = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
        macs = onnx_macs(out)
    else:
        import io


        _write_torchscript(model, x[:2], out)
        loaded = load_model(out)
        with torch.no_grad():
            exported = loaded(x)
        buffer = io.BytesIO()
        _to_onnx(loaded, x[:2], buffer)
        macs = onnx_macs(buffer.getvalue())
    diff = float((exported - reference).abs().max())
    top1_torch = float((reference.argmax(1) == labels).float().mean())
    top1_exported = float((exported.argmax(1) == labels).float().mean())
    same = float((exported.argmax(1) == reference.argmax(1)).float().mean())
    problems = []
    if not math.isfinite(diff) or diff > TOLERANCE:
        problems.append(f"logits differ by {diff:.3g} (> {TOLERANCE:g})")
    if top1_exported != top1_torch:
        problems.append(f"top-1 {top1_exported:.4f} against torch's {top1_torch:.4f}")
    if macs != config["flops"]:
        problems.append(f"{macs:,} multiply-adds against the cost model's {config['flops']:,}")
    return ExportReport(format=fmt, path=str(out), images=len(labels), data=data.name,
                        max_abs_diff=diff, top1_torch=top1_torch, top1_exported=top1_exported,
                        same_predictions=same, macs_exported=macs,
                        macs_cost_model=config["flops"], ok=not problems,
                        message="; ".join(problems))
