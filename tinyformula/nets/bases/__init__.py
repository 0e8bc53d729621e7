"""Registry of scalable base networks."""

from __future__ import annotations

from ...core.errors import TinyFormulaError
from .fd_mobilenet import fd_mobilenet
from .ghostnet import ghostnet_100
from .mobile import efficientnet_b0, mobilenetv2_100
from .resnet import resnet50
from .spec import BaseNetwork

_BASES: dict[str, BaseNetwork] = {
    base.name: base
    for base in (efficientnet_b0, mobilenetv2_100, resnet50, ghostnet_100, fd_mobilenet)}


def list_bases() -> list[str]:
    """Names of the available base networks."""
    return list(_BASES)


def get_base(name: str) -> BaseNetwork:
    """The base network called ``name``; a :class:`TinyFormulaError` names the known ones."""
    try:
        return _BASES[name]
    except (KeyError, TypeError):
        raise TinyFormulaError(
            f"unknown base {name!r}; known bases: {', '.join(_BASES)}") from None


__all__ = ["BaseNetwork", "get_base", "list_bases"]
