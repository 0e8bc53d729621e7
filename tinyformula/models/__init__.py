"""Models: from a budget to a module (:mod:`.create`), model files (:mod:`.files`), and export to
ONNX or TorchScript checked against torch and the cost model (:mod:`.export`)."""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

if TYPE_CHECKING:
    from .create import create_model
    from .files import load_model, save_model

__getattr__, __dir__ = lazy_exports(__name__, {
    "create_model": ".create",
    "load_model": ".files",
    "save_model": ".files",
})

__all__ = ["create_model", "load_model", "save_model"]
