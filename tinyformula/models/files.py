"""Model files: one ``torch.save`` archive holding a model's configuration and weights, read
back with ``weights_only=True`` (no pickled code runs), and TorchScript exports read back with
their configuration.

A model file (``tinyformula build``, ``tinyformula train --recipe final``) is
``{"format": "tinyformula-model", "version": 1, "config": {...}, "state_dict": {...}}``.
``load_model`` reads such a file, a training output folder (its ``model.pt``) or a TorchScript
file from ``tinyformula export`` (configuration in its extra file ``tinyformula.json``).
"""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

from ..core.constraints import Integer, Options, OrNone, Real
from ..core.errors import TinyFormulaError
from ..core.files import FileKind, write_atomically
from ..core.schema import Anything, Compound, ListOf, Record, SchemaError, Text, validate
from ..cost.yardstick import COST_NAMES
from ..nets.bases.spec import NUM_CLASSES, RESOLUTION_BASE
from ..nets.scale import MULTIPLIERS
from .create import build_configured

FORMAT = "tinyformula-model"
VERSION = 1
MODEL_FILE = "model.pt"          # the weights inside a training output folder
TORCHSCRIPT_CONFIG = "tinyformula.json"


class Weights(Compound):
    """A state dict: names to tensors, floating ones finite (torch is imported to check)."""

    why = ""

    def describe(self) -> str:
        return "named tensors with finite values"

    def validated(self, value, path: str = ""):
        import torch

        if not isinstance(value, dict):
            raise SchemaError(path, f"must be named tensors, got {type(value).__name__}")
        for name, tensor in value.items():
            if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
                raise SchemaError(f"{path}.{name}", "must be a tensor")
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise SchemaError(f"{path}.{name}", "holds nan or inf")
        return value

    def invalid_values(self) -> list:
        return [None, [1.0], {"w": 1.0}]


_DATA = Record({"name": Text(max_length=1000)},
               optional={"mean": ListOf(Real(-1e6, 1e6), 1, 16),
                         "std": ListOf(Real(0, 1e6, closed="neither"), 1, 16),
                         "channels": Integer(1, 16)})
MODEL_CONFIG = Record(
    {"base": Text(max_length=200, empty=False), **MULTIPLIERS,
     "resolution": Integer(1, 1 << 16), "resolution_base": RESOLUTION_BASE,
     "num_classes": NUM_CLASSES, "flops": Integer(0, 2**63 - 1),
     "params": Integer(0, 2**63 - 1), "c": Real(0, 1e6, closed="right")},
    optional={"budget": OrNone(Real(0, 1e6, closed="right"), "no budget"),
              "formula": Text(), "cost": Options(COST_NAMES),
              "data": OrNone(_DATA, "not trained"), "trained": OrNone(Anything(), "untrained")})
"""A model's configuration (``model.tinyformula``), as files hold it."""
MODEL_FILE_SCHEMA = Record({"format": Options((FORMAT,)), "version": Integer(VERSION, VERSION),
                            "config": MODEL_CONFIG, "state_dict": Weights()})


def model_state(model) -> dict:
    """What a model file holds: format, version, configuration and weights."""
    config = getattr(model, "tinyformula", None)
    if not isinstance(config, dict):
        raise TinyFormulaError("this model has no tinyformula configuration; make it with "
                               "create_model or load_model")
    return {"format": FORMAT, "version": VERSION, "config": config,
            "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}}


def save_atomically(obj, path: Path, kind: FileKind | None = None) -> Path:
    """``torch.save(obj)`` to ``path``, atomically: serialised in memory, then written by
    :func:`~tinyformula.core.files.write_atomically` (a full disk is one line, the previous
    file stays); with ``kind``, an existing file must be one of that kind."""
    import torch

    return write_atomically(path, lambda handle: torch.save(obj, handle), kind)


def save_model(model, path) -> Path:
    """Write ``model``'s configuration and weights to ``path`` (one file, atomically; an
    existing file there is replaced only if it is a model file)."""
    return save_atomically(model_state(model), Path(path), MODEL_KIND)


def read_model_file(path, what: str = "model") -> dict:
    """The checked contents of a model file; a missing, corrupt or foreign file raises
    TinyFormulaError naming ``what`` it was meant to be."""

    import torch

    path = Path(path)
    if path.is_dir():
        if (path / MODEL_FILE).is_file():
            path = path / MODEL_FILE
        else:
            raise TinyFormulaError(f"{what} {path} is a folder without {MODEL_FILE}")
    if not path.is_file():
        raise TinyFormulaError(f"no {what} file at {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001  (a foreign file breaks the unpickler any way)
        first = (str(error).splitlines() or [type(error).__name__])[0][:120]
        raise TinyFormulaError(f"{what} {path} is not a readable tinyformula model file "
                               f"(truncated or corrupt: {first})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TinyFormulaError(f"{what} {path} is not a tinyformula model file")
    if data.get("version") != VERSION:
        raise TinyFormulaError(f"{what} {path} has format version {data.get('version')!r}; "
                               f"this tinyformula reads version {VERSION}")
    return validate(data, MODEL_FILE_SCHEMA, f"{what} {path}",
                    "build or train the model again")


MODEL_KIND = FileKind("tinyformula model file", lambda path: bool(read_model_file(path)))


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("constants.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_model(path, what: str = "model"):
    """A model written by ``build``, ``train --recipe final`` (the file or its output folder)
    or ``export --format torchscript``, in eval mode, with ``model.tinyformula`` attached.

    ONNX files are for onnxruntime; their configuration is in the metadata entry
    ``tinyformula`` (``tinyformula.models.export.onnx_config``).
    """
    path = Path(path)
    if path.suffix == ".onnx":
        raise TinyFormulaError(f"{path} is an ONNX file: run it with onnxruntime; load_model "
                               f"reads model files from build/train and TorchScript exports")
    if path.is_file() and _is_torchscript(path):
        import torch

        extra = {TORCHSCRIPT_CONFIG: ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated
                model = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        except RuntimeError as error:
            raise TinyFormulaError(f"{what} {path} is a damaged TorchScript file "
                                   f"({str(error).splitlines()[0][:120]})") from None
        try:
            config = json.loads(extra[TORCHSCRIPT_CONFIG])
        except (ValueError, RecursionError):
            config = None
        model.tinyformula = validate(config, MODEL_CONFIG, f"{what} {path}'s configuration",
                                     "export the model again")
        return model.eval()
    data = read_model_file(path, what)
    try:
        model = build_configured(data["config"])
        model.load_state_dict(data["state_dict"])
    except (KeyError, TypeError, RuntimeError, TinyFormulaError) as error:
        first = (str(error).splitlines() or [type(error).__name__])[0][:120]
        raise TinyFormulaError(f"{what} {path} does not match its configuration ({first})"
                               ) from None
    if model.input_resolution != data["config"]["resolution"]:
        raise TinyFormulaError(f"{what} {path} does not match its configuration (resolution "
                               f"{data['config']['resolution']} px, but r and its base make "
                               f"{model.input_resolution} px)")
    return model.eval()
