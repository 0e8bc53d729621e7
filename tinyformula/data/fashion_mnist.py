"""Fashion-MNIST (Zalando): 60,000 training and 10,000 test images, 28x28 grayscale, 10 classes.

Where the four IDX files are looked for, in order: ``data_dir`` when given (and only there);
else Debian's ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``);
else the user cache (``$XDG_CACHE_HOME/tinyformula/fashion-mnist``, default ``~/.cache``), into
which the official files are downloaded when no copy is found. The held-out split used for
scoring is the official 10,000-image test set.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import torch

from ..core.errors import TinyFormulaError
from .idx import read_idx
from .images import ImageData

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "val_images": "t10k-images-idx3-ubyte",
    "val_labels": "t10k-labels-idx1-ubyte",
}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")
HOW_TO_GET = ("install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
              "or pass --data-dir with the four IDX files from "
              "https://github.com/zalandoresearch/fashion-mnist")


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "tinyformula" / "fashion-mnist"


def _find(folder: Path) -> dict[str, Path] | None:
    """The four files in ``folder`` (gzipped or not), or None if any is missing."""
    found = {}
    for key, stem in FILES.items():
        for candidate in (folder / f"{stem}.gz", folder / stem):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            return None
    return found


def _download(folder: Path) -> dict[str, Path]:
    """Fetch the official files into ``folder``; each lands under its name only when complete."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem in FILES.values():
        target = folder / f"{stem}.gz"
        if target.is_file():
            continue
        partial = target.with_suffix(".gz.part")
        try:
            with urllib.request.urlopen(URL + target.name, timeout=30) as response:
                partial.write_bytes(response.read())
        except (urllib.error.URLError, OSError) as error:
            partial.unlink(missing_ok=True)
            reason = getattr(error, "reason", error)
            raise TinyFormulaError(f"Fashion-MNIST not found and the download failed ({reason}); "
                                   f"{HOW_TO_GET}") from None
        read_idx(partial)  # a corrupt download fails here, before it takes the real name
        os.replace(partial, target)
    return _find(folder)


def locate(data_dir: str | Path | None = None, download: bool = True) -> dict[str, Path]:
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise TinyFormulaError(f"data folder {folder} does not exist; {HOW_TO_GET}")
        files = _find(folder)
        if files is None:
            raise TinyFormulaError(
                f"{folder} lacks the Fashion-MNIST IDX files "
                f"({', '.join(s + '[.gz]' for s in FILES.values())}); {HOW_TO_GET}")
        return files
    for folder in (SYSTEM_DIR, cache_dir()):
        files = _find(folder)
        if files is not None:
            return files
    if not download:
        raise TinyFormulaError(f"Fashion-MNIST not found in {SYSTEM_DIR} or {cache_dir()}; "
                               f"{HOW_TO_GET}")
    return _download(cache_dir())


def load(data_dir: str | Path | None = None, download: bool = True) -> ImageData:
    files = locate(data_dir, download)
    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "val"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        name = files[f"{split}_images"].parent
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise TinyFormulaError(
                f"Fashion-MNIST files in {name} do not match: images {images.shape}, labels "
                f"{labels.shape} (corrupt? fetch them again)")
        if images.dtype != "uint8" or labels.max(initial=0) >= len(CLASSES):
            raise TinyFormulaError(f"Fashion-MNIST files in {name} hold unexpected values "
                                   "(corrupt? fetch them again)")
    return ImageData(
        name="fashion-mnist",
        train_images=torch.from_numpy(arrays["train_images"].copy()).unsqueeze(1),
        train_labels=torch.from_numpy(arrays["train_labels"].astype("int64")),
        val_images=torch.from_numpy(arrays["val_images"].copy()).unsqueeze(1),
        val_labels=torch.from_numpy(arrays["val_labels"].astype("int64")),
        num_classes=len(CLASSES),
        classes=CLASSES,
        flip=True,  # clothes and shoes keep their class when mirrored
        resolution_base=32,
        val_source="official test set",
    )
