"""``imagefolder:PATH``: one sub-folder per class, images read with PIL.

With ``PATH/train`` and ``PATH/val`` those are the splits; otherwise a fixed-seed, stratified
20% of each class is held out. Every image is converted to RGB, its shorter side resized to
``image_size`` (default 224, the resolution base of photo datasets) and centre-cropped square,
so the whole set fits one uint8 tensor. That is 150 kB an image at 224 px: meant for folders of
thousands of images, not ImageNet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.errors import TinyFormulaError
from .holdout import fixed_split
from .images import ImageData

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff"}
HELD_OUT = 0.2


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())


def _read(path: Path, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            w, h = image.size
            scale = size / min(w, h)
            w2, h2 = max(size, round(w * scale)), max(size, round(h * scale))
            image = image.resize((w2, h2), Image.Resampling.BILINEAR, reducing_gap=None)
            left, top = (w2 - size) // 2, (h2 - size) // 2
            image = image.crop((left, top, left + size, top + size))
            return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise TinyFormulaError(f"cannot read image {path}: {error}") from None


def _load_split(root: Path, classes: list[str], size: int):
    images, labels = [], []
    for index, cls in enumerate(classes):
        folder = root / cls
        files = _image_files(folder) if folder.is_dir() else []
        images += [_read(f, size) for f in files]
        labels += [index] * len(files)
    if not images:
        raise TinyFormulaError(f"no images ({', '.join(sorted(EXTENSIONS))}) in the class "
                               f"folders of {root}")
    return torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.int64)


def load(path: str | Path, image_size: int = 224) -> ImageData:
    root = Path(path).expanduser()
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
    images, labels = _load_split(train_root, classes, image_size)
    if has_splits:
        extra = sorted({p.name for p in _class_folders(root / "val")} - set(classes))
        if extra:
            raise TinyFormulaError(f"{root / 'val'} has class folders missing from train: "
                                   f"{', '.join(extra)}")
        val_images, val_labels = _load_split(root / "val", classes, image_size)
        source = "val/ folder"
    else:
        train, val = fixed_split(labels, HELD_OUT, seed=0)
        if len(val) == 0:
            raise TinyFormulaError(f"{root} has too few images to hold any out; add more, or "
                                   "give train/ and val/ folders")
        images, labels, val_images, val_labels = (images[train], labels[train], images[val],
                                                  labels[val])
        source = f"fixed-seed stratified {HELD_OUT:.0%} of each class"
    return ImageData(
        name=f"imagefolder:{root}", train_images=images, train_labels=labels,
        val_images=val_images, val_labels=val_labels, num_classes=len(classes),
        classes=tuple(classes), flip=True, resolution_base=224, val_source=source,
    )
