"""Figures without a display: a matplotlib ``Figure`` on the Agg canvas, written atomically.

Never pyplot: no global backend is switched (a notebook's inline backend stays as it is) and
nothing needs a display. A PNG is written to a temporary name and renamed, so a reader never
sees half of one.
"""

from __future__ import annotations

from pathlib import Path

from .files import PNG, write_atomically

DPI = 130


def new_figure(width: float, height: float, dpi: int = DPI):
    """A ``matplotlib.figure.Figure`` of ``width`` x ``height`` inches on the Agg canvas, with
    constrained layout (titles and labels are never clipped)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure, path) -> Path:
    """Write a PNG atomically: a reader never sees half of one, and an existing file that
    is not a PNG is left alone."""
    return write_atomically(path, lambda handle: figure.savefig(handle, format="png"), PNG)
