"""How a dataset is prepared (:mod:`.prepare`), declared apart so that the command line can
build its parser without importing numpy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..core.constraints import Boolean, Integer, Options, OrNone, check_fields

BAD_IMAGES = ("refuse", "skip")


@dataclass(frozen=True)
class PrepareSettings:
    """How a photo folder is prepared: the stored side ``size`` in pixels (None: 224, the
    resolution base of photos), decoding ``workers`` (None: one per usable core), what to do
    with an unreadable image (``bad_images``: "refuse" or "skip") and whether JPEGs decode
    in draft mode (``draft``; off: every pixel decoded at full size first, slower)."""

    size: int | None = None
    workers: int | None = None
    bad_images: str = "refuse"
    draft: bool = True

    constraints: ClassVar = {
        "size": OrNone(Integer(8, 4096, why="the side of a stored image in pixels"), "224"),
        "workers": OrNone(Integer(1, 4096), "one per usable core"),
        "bad_images": Options(BAD_IMAGES),
        "draft": Boolean(),
    }

    def __post_init__(self):
        check_fields(self)
