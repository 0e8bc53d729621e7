"""Packages whose public names load on first use (PEP 562), so that importing one stays cheap.

``tinyformula predict`` must answer without importing torch, yet the command line imports every
command's module to build its parser, and importing ``tinyformula.training.config`` runs
``tinyformula/training/__init__.py`` first. So a package's ``__init__`` names its exports here
instead of importing them::

    __getattr__, __dir__ = lazy_exports(__name__, {"TrainConfig": ".config", ...})

(with the same imports under ``typing.TYPE_CHECKING`` for type checkers).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module


def lazy_exports(package: str, names: dict[str, str]) -> tuple[Callable, Callable]:
    """``__getattr__`` and ``__dir__`` for ``package``: each of ``names`` is read from its
    module (relative to the package) the first time it is asked for; ``"module:attribute"``
    exports an attribute under another name."""
    namespace = import_module(package).__dict__

    def __getattr__(name: str):
        if name in names:
            module, _, attribute = names[name].partition(":")
            value = getattr(import_module(module, package), attribute or name)
            namespace[name] = value  # later lookups find it without this function
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
