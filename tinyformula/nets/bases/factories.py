"""A factory by name: where a traced base's factory is imported from (``"module:function"`` or
``"path/to/file.py:function"``), so a worker process or another machine rebuilds the base from
its record without storing code."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

from ...core.errors import TinyFormulaError
from ...core.files import checksum


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__


def factory_source(factory: Callable) -> str | None:
    """``"module:qualname"`` when the factory can be imported by that name, else None."""
    module = getattr(factory, "__module__", None)
    qualname = getattr(factory, "__qualname__", "")
    if not module or not qualname or "<" in qualname:
        return None
    return f"{module}:{qualname}"


def import_factory(source: str, relative_to: Path | None = None) -> Callable:
    """The callable ``source`` names: ``"package.module:function"`` (importable) or
    ``"path/to/file.py:function"`` (a file, relative to ``relative_to``); one line otherwise."""
    if not isinstance(source, str) or ":" not in source:
        raise TinyFormulaError(f"factory must be 'module:function' or 'file.py:function', got "
                               f"{source!r}")
    where, _, qualname = source.rpartition(":")
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_absolute() and relative_to is not None:
                path = relative_to / path
            if not path.is_file():
                raise TinyFormulaError(f"factory {source!r}: no file {path}")
            name = f"tinyformula_factory_{checksum({'path': str(path.resolve())})[:12]}"
            module = sys.modules.get(name)
            if module is None:
                spec = importlib.util.spec_from_file_location(name, path)
                if spec is None or spec.loader is None:
                    raise TinyFormulaError(f"factory {source!r}: cannot load {path}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[name]
                    raise
        else:
            module = sys.modules["__main__"] if where == "__main__" else \
                importlib.import_module(where)
        target = module
        for part in qualname.split("."):
            target = getattr(target, part)
    except TinyFormulaError:
        raise
    except Exception as error:
        raise TinyFormulaError(f"cannot import the factory {source!r} ({_describe(error)}); "
                               f"make it importable here (PYTHONPATH) or register the base "
                               f"with tinyformula.register_base") from None
    if not callable(target):
        raise TinyFormulaError(f"factory {source!r} is a {type(target).__name__}, not callable")
    return target
