"""From a budget to a ``torch.nn.Module``: ``create_model``, and model files read back.

``create_model`` builds the network a formula recommends for a relative budget c (the built-in
Tiny Formula, a fitted ``formula.json``, or EfficientNet's inverted giant formula), or the one
given by explicit r, d, w. Its configuration rides along as the plain dict ``model.tinyformula``
(like timm's ``pretrained_cfg``): ``base, r, d, w, resolution, resolution_base, num_classes,
flops, params, c`` (FLOPs relative to the base at r = d = w = 1, same classes and resolution
base), ``budget`` (the c asked for, or None) and ``formula`` (where r, d and w came from).

A model file (``tinyformula build``, ``tinyformula train --recipe final``) is one
``torch.save`` archive: ``{"format": "tinyformula-model", "version": 1, "config": {...},
"state_dict": {...}}``, read with ``weights_only=True`` (no pickled code runs). ``load_model``
reads such a file, a training output folder (its ``model.pt``) or a TorchScript file from
``tinyformula export`` (configuration in its extra file ``tinyformula.json``).
"""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

from .bases import get_base
from .errors import TinyFormulaError
from .files import replace_atomically
from .yardstick import Yardstick
from .scale import Scale

FORMAT = "tinyformula-model"
VERSION = 1
MODEL_FILE = "model.pt"          # the weights inside a training output folder
TORCHSCRIPT_CONFIG = "tinyformula.json"
GIANT = "giant"                  # ``formula="giant"``: EfficientNet's compound formula inverted


def _recommend(formula, base: str, c: float, num_classes: int | None,
               resolution_base: int | None) -> tuple[Scale, Yardstick, str]:
    """(scale, yardstick, source): what the formula gives for budget ``c``, and the yardstick
    c is measured with (the formula's cost, at these classes and base resolution).

    The one place that calls the formula and solver APIs (``TinyFormula.recommend``,
    ``solve_giant``). ``formula``: None (the built-in formula of ``base``), a path to a fitted
    ``formula.json``, a :class:`TinyFormula`, or ``"giant"``.
    """
    from .formula import TinyFormula

    if isinstance(formula, str) and formula == GIANT:
        from .formula import giant_recommendation

        yardstick = Yardstick(base, num_classes or 1000, resolution_base)
        if isinstance(c, bool) or not (isinstance(c, (int, float)) and 0 < c <= 1):
            raise TinyFormulaError(f"c={c!r}: the giant formula is inverted here to shrink "
                                   f"networks; give a budget in (0, 1]")
        rec = giant_recommendation(yardstick, c)
        return rec.config.scale, yardstick, "EfficientNet's compound (giant) formula, inverted"
    if formula is None:
        formula = TinyFormula.builtin(base)
    elif not isinstance(formula, TinyFormula):
        formula = TinyFormula.load(formula)
    if formula.base != base:
        raise TinyFormulaError(f"the formula was fitted on {formula.base}, not {base}; pass "
                               f"base={formula.base!r} or a formula for {base}")
    c = formula.check_budget(c)
    rec = formula.recommend(c, num_classes=num_classes, resolution_base=resolution_base)
    yardstick = formula.yardstick.replace(num_classes=num_classes, resolution_base=resolution_base)
    return rec.config.scale, yardstick, formula.source or f"fitted formula for {formula.base}"


def model_config(yardstick: Yardstick, scale: Scale, budget: float | None = None,
                 formula: str = "explicit r, d, w") -> dict:
    """The ``model.tinyformula`` dict of ``yardstick``'s base at ``scale``: its FLOPs and
    params, and ``c`` (with ``budget``) in the yardstick's cost (a formula's own cost)."""
    config = yardstick.measure(scale)
    return {"base": yardstick.base, "r": scale.r, "d": scale.d, "w": scale.w,
            "resolution": config.resolution, "resolution_base": yardstick.resolution_base,
            "num_classes": yardstick.num_classes, "flops": config.flops,
            "params": config.params, "c": config.c, "budget": budget, "formula": formula}


def create_model(base: str = "efficientnet_b0", flops: float | None = None, formula=None,
                 num_classes: int | None = None, *, r: float | None = None,
                 d: float | None = None, w: float | None = None,
                 resolution_base: int | None = None, seed: int | None = None):
    """A freshly initialised ``torch.nn.Module`` for a budget, with ``model.tinyformula``.

    ``flops``: the relative budget c (FLOPs / the base's at r = d = w = 1); r and d come from
    ``formula`` (None: the built-in formula of ``base``; a path to a fitted ``formula.json``;
    a ``TinyFormula``; or ``"giant"``) and w is solved to land within 2% below c. Or give
    ``r``, ``d``, ``w`` explicitly (a missing one is 1); with neither, the base itself.
    ``num_classes`` / ``resolution_base`` default to the formula's (1000 and the base's own
    224 without a formula). ``seed`` fixes the initial weights (None: torch's global RNG).
    Feed the model ``model.tinyformula["resolution"]``-pixel RGB images.
    """
    explicit = any(v is not None for v in (r, d, w))
    if flops is not None and explicit:
        raise TinyFormulaError("give a budget (flops=) or explicit r, d, w, not both")
    if formula is not None and flops is None:
        raise TinyFormulaError("a formula needs a budget: pass flops=C")
    get_base(base)
    if flops is not None:
        scale, yardstick, source = _recommend(formula, base, flops, num_classes,
                                              resolution_base)
        config = model_config(yardstick, scale, budget=float(flops), formula=source)
    else:
        scale = Scale(1.0 if r is None else r, 1.0 if d is None else d, 1.0 if w is None else w)
        config = model_config(Yardstick(base, num_classes or 1000, resolution_base), scale,
                              formula="explicit r, d, w" if explicit else "the base itself")
    return _build(config, seed)


def _build(config: dict, seed: int | None = None):
    import torch

    network = get_base(config["base"])
    scale = Scale(config["r"], config["d"], config["w"])
    if seed is None:
        model = network.build(scale, config["num_classes"], config["resolution_base"])
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = network.build(scale, config["num_classes"], config["resolution_base"])
    model.tinyformula = dict(config)
    return model


# -- model files ---------------------------------------------------------------------------------

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
    ``tinyformula`` (``tinyformula.export.onnx_config``).
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
        model = _build(data["config"])
        model.load_state_dict(data["state_dict"])
    except (KeyError, TypeError, RuntimeError) as error:
        first = (str(error).splitlines() or [type(error).__name__])[0][:120]
        raise TinyFormulaError(f"{what} {path} does not match its configuration ({first})"
                               ) from None
    return model.eval()
