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

from ..core.errors import TinyFormulaError
from ..core.files import replace_atomically
from .create import build_configured

FORMAT = "tinyformula-model"
VERSION = 1
MODEL_FILE = "model.pt"          # the weights inside a training output folder
TORCHSCRIPT_CONFIG = "tinyformula.json"


def model_state(model) -> dict:
    """What a model file holds: format, version, configuration and weights."""
    config = getattr(model, "tinyformula", None)
    if not isinstance(config, dict):
        raise TinyFormulaError("this model has no tinyformula configuration; make it with "
                               "create_model or load_model")
    return {"format": FORMAT, "version": VERSION, "config": config,
            "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}}


def save_atomically(obj, path: Path) -> Path:
    """``torch.save(obj)`` to ``path``, atomically (see ``files.replace_atomically``)."""
    import torch

    return replace_atomically(path, lambda tmp: torch.save(obj, tmp))


def save_model(model, path) -> Path:
    """Write ``model``'s configuration and weights to ``path`` (one file, atomically)."""
    return save_atomically(model_state(model), Path(path))


def read_model_file(path, what: str = "model") -> dict:
    """The checked contents of a model file; a missing, corrupt or foreign file raises
    TinyFormulaError naming ``what`` it was meant to be."""
    import pickle

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
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile,
            ValueError) as error:
        first = (str(error).splitlines() or [type(error).__name__])[0][:120]
        raise TinyFormulaError(f"{what} {path} is not a readable tinyformula model file "
                               f"(truncated or corrupt: {first})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TinyFormulaError(f"{what} {path} is not a tinyformula model file")
    if data.get("version") != VERSION:
        raise TinyFormulaError(f"{what} {path} has format version {data.get('version')!r}; "
                               f"this tinyformula reads version {VERSION}")
    if not isinstance(data.get("config"), dict) or not isinstance(data.get("state_dict"), dict):
        raise TinyFormulaError(f"{what} {path} is damaged (no configuration or weights)")
    return data


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
        model.tinyformula = json.loads(extra[TORCHSCRIPT_CONFIG] or "{}")
        return model.eval()
    data = read_model_file(path, what)
    try:
        model = build_configured(data["config"])
        model.load_state_dict(data["state_dict"])
    except (KeyError, TypeError, RuntimeError) as error:
        first = (str(error).splitlines() or [type(error).__name__])[0][:120]
        raise TinyFormulaError(f"{what} {path} does not match its configuration ({first})"
                               ) from None
    return model.eval()
