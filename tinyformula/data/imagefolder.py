"""``imagefolder:PATH``: one sub-folder per class, photos read with PIL into a prepared cache.

With ``PATH/train`` and ``PATH/val`` those are the splits (every class of ``train/`` needs a
folder with images in ``val/``, and ``val/`` no class of its own); otherwise a fixed-seed,
stratified 20% of each class is held out. :func:`scan` lists the folder into a plan - every
image's split, row and label, with its size and modification time - and refuses what would
make a bad dataset (no classes, one class, an empty class, classes missing from ``val/``).
The images themselves are decoded once, in parallel, by :mod:`.prepare` (see
:mod:`.decode` for how each is resized and cropped), and read memory-mapped from then on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import TinyFormulaError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff"}
HELD_OUT = 0.2
RESOLUTION_BASE = 224   # photos: the candidate's input is int(224 r) pixels
DEFAULT_SIZE = 224      # stored image side when preparing


@dataclass(frozen=True)
class Entry:
    """One image of the folder: where it goes (split, row) and what it was when listed."""

    split: str
    row: int
    label: int
    bytes: int
    mtime_ns: int
    path: str           # relative to the folder's root, '/'-separated


@dataclass
class FolderPlan:
    """What an image folder holds and where each image goes in the prepared cache."""

    root: Path
    classes: list[str]
    entries: list[Entry] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    val_source: str = ""


def _class_folders(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as error:
        raise TinyFormulaError(f"cannot list {root}: {error.strerror}") from None


def list_images(folder: Path, root: Path) -> list[tuple[str, int, int]]:
    """``(path relative to root, bytes, mtime_ns)`` of every image under ``folder``, sorted by
    path (as ``sorted(Path.rglob(...))`` orders them). One ``stat`` per file and no other
    per-file path work: a million-image folder is listed in seconds."""
    found = []
    pending = [(str(folder), os.path.relpath(folder, root).replace(os.sep, "/"))]
    while pending:
        where, prefix = pending.pop()
        try:
            entries = list(os.scandir(where))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            relative = f"{prefix}/{name}" if prefix != "." else name
            try:
                if entry.is_dir():
                    pending.append((entry.path, relative))
                    continue
                if "." + name.rpartition(".")[2].lower() not in EXTENSIONS:
                    continue
                stat = entry.stat()
            except OSError:
                continue  # a dangling link: not an image
            found.append((relative.split("/"), relative, stat.st_size, stat.st_mtime_ns))
    found.sort()
    return [(relative, size, mtime) for _, relative, size, mtime in found]


def scan(path: str | Path) -> FolderPlan:
    """List an image folder into a :class:`FolderPlan`; bad layouts raise TinyFormulaError."""
    root = Path(path).expanduser().absolute()
    if not root.is_dir():
        raise TinyFormulaError(f"image folder {root} does not exist")
    has_splits = (root / "train").is_dir() and (root / "val").is_dir()
    train_root = root / "train" if has_splits else root
    classes = [p.name for p in _class_folders(train_root)]
    if not classes:
        raise TinyFormulaError(f"{train_root} has no class folders; expected one sub-folder per "
                               "class holding its images")
    if len(classes) < 2:
        raise TinyFormulaError(f"{train_root} has one class folder ({classes[0]}); a classifier "
                               "needs at least two")
    plan = FolderPlan(root=root, classes=classes)
    train = _list_split(root, train_root, classes, "train")
    if has_splits:
        val_classes = {p.name for p in _class_folders(root / "val")}
        extra = sorted(val_classes - set(classes))
        if extra:
            raise TinyFormulaError(f"{root / 'val'} has class folders missing from train: "
                                   f"{', '.join(extra)}")
        missing = [c for c in classes if c not in val_classes]
        if missing:
            raise TinyFormulaError(
                f"{root / 'val'} lacks folders for {len(missing)} class(es): "
                f"{', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}; every class "
                "needs held-out images (or remove val/ to hold out 20% of train/)")
        val = _list_split(root, root / "val", classes, "val")
        plan.entries = ([Entry("train", i, *item) for i, item in enumerate(train)]
                        + [Entry("val", i, *item) for i, item in enumerate(val)])
        plan.val_source = "val/ folder"
    else:
        import torch

        from .holdout import fixed_split

        labels = torch.tensor([label for label, *_ in train], dtype=torch.long)
        train_index, val_index = fixed_split(labels, HELD_OUT, seed=0)
        if len(val_index) == 0:
            raise TinyFormulaError(f"{root} has too few images to hold any out; add more, or "
                                   "give train/ and val/ folders")
        plan.entries = [Entry("train", row, *train[i])
                        for row, i in enumerate(train_index.tolist())]
        plan.entries += [Entry("val", row, *train[i]) for row, i in enumerate(val_index.tolist())]
        plan.val_source = f"fixed-seed stratified {HELD_OUT:.0%} of each class"
    plan.counts = {"train": sum(e.split == "train" for e in plan.entries),
                   "val": sum(e.split == "val" for e in plan.entries)}
    return plan


def _list_split(root: Path, split_root: Path, classes: list[str], split: str):
    items = []
    for label, cls in enumerate(classes):
        files = list_images(split_root / cls, root)
        if not files:
            raise TinyFormulaError(
                f"class folder {split_root / cls} has no images "
                f"({', '.join(sorted(EXTENSIONS))}); add some or remove the folder")
        items += [(label, size, mtime, path) for path, size, mtime in files]
    return items
