"""Device names (``auto``, ``cpu``, ``cuda``, ``cuda:N``): declared once, checked once.

:data:`DEVICE` is the constraint every setting that names a training device declares;
:func:`check_visible` asks torch whether a CUDA device exists (only for CUDA names, so checking
``cpu`` or ``auto`` never imports torch); :func:`resolve_device` turns a name into the
``torch.device`` a run uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from .constraints import INVALID, Constraint
from .errors import TinyFormulaError


@dataclass(frozen=True)
class DeviceName(Constraint):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""

    why: str = ""

    def describe(self) -> str:
        return "auto, cpu, cuda or cuda:N"

    def convert(self, value):
        if isinstance(value, str) and (value in ("auto", "cpu", "cuda") or (
                value.startswith("cuda:") and value[5:].isdigit() and len(value) <= 12)):
            return value
        return INVALID

    def invalid_values(self) -> list:
        return ["gpu", "cuda:", "cuda:x", "", 0, None]


DEVICE = DeviceName()


def check_visible(device: str) -> str:
    """``device``, refused in one line when it names a CUDA GPU torch cannot see (imports
    torch only for a CUDA name)."""
    if isinstance(device, str) and device.startswith("cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device[5:]) if ":" in device else 0
        if index >= count:
            seen = f"sees {count} CUDA GPU(s)" if count else "sees no CUDA GPU"
            raise TinyFormulaError(f"--device {device} asked for, but torch {seen}; use "
                                   f"--device cpu or auto")
    return device


def resolve_device(name: str):
    """The ``torch.device`` a run on ``name`` uses: ``auto`` is CUDA where torch sees a GPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(check_visible(name))


def check_device(device) -> str:
    """A device name, and for CUDA a GPU torch can see: checked once, before any trial."""
    from .constraints import check

    return check_visible(check("--device", device, DEVICE))
