"""CIFAR-10 and CIFAR-100 from their python-pickle batches (32x32 RGB).

Give the folder the archive unpacks to (``cifar-10-batches-py`` / ``cifar-100-python``) or the
folder holding it; without one, the user cache (``~/.cache/tinyformula``) is searched. The
held-out split is the official test batch. The pickles are read with an unpickler that only
rebuilds numpy arrays, so a hostile or corrupt file cannot run code; it is reported instead.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch

from ..core.errors import TinyFormulaError
from .fashion_mnist import cache_dir
from .images import ImageData

URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
LAYOUTS = {
    # name: (folder, training batches, test batch, label key, meta file, class-names key)
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch",
                b"labels", "batches.meta", b"label_names"),
    "cifar100": ("cifar-100-python", ["train"], "test", b"fine_labels", "meta",
                 b"fine_label_names"),
}
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}


class _NumpyOnly(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_batch(path: Path) -> dict:
    """One pickled batch (a dict with bytes keys); corrupt files raise a TinyFormulaError."""
    try:
        obj = _NumpyOnly(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except OSError as error:
        raise TinyFormulaError(f"cannot read {path}: {error}") from None
    except Exception as error:  # unpickling a corrupt file can raise almost anything
        raise TinyFormulaError(f"{path} is not a valid CIFAR batch ({type(error).__name__}: "
                               f"{error}); fetch it again from {URL}") from None
    if not isinstance(obj, dict):
        raise TinyFormulaError(f"{path} is not a valid CIFAR batch (no dict inside)")
    return obj


def folder(name: str, data_dir) -> Path:
    """The folder holding ``name``'s batches (given, or found in the user cache)."""
    sub = LAYOUTS[name][0]
    if data_dir is None:
        candidates = [cache_dir().parent / sub]
        hint = f"pass --data-dir with the '{sub}' folder from {URL}"
    else:
        root = Path(data_dir).expanduser()
        if not root.is_dir():
            raise TinyFormulaError(f"data folder {root} does not exist")
        candidates = [root, root / sub]
        hint = f"unpack the python version from {URL} there"
    for candidate in candidates:
        if (candidate / LAYOUTS[name][2]).is_file():
            return candidate
    raise TinyFormulaError(f"no {name} batches ({', '.join(LAYOUTS[name][1])}, "
                           f"{LAYOUTS[name][2]}) in {' or '.join(map(str, candidates))}; {hint}")


def _images_labels(path: Path, label_key: bytes):
    batch = read_batch(path)
    data, labels = batch.get(b"data"), batch.get(label_key)
    if not isinstance(data, np.ndarray) or labels is None:
        raise TinyFormulaError(f"{path} is not a valid CIFAR batch (no data or "
                               f"{label_key.decode()})")
    labels = np.asarray(labels, dtype=np.int64)
    if (data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072
            or len(data) != len(labels)):
        raise TinyFormulaError(f"{path} is not a valid CIFAR batch (data {data.dtype} "
                               f"{data.shape}, {len(labels)} labels)")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(labels)


def file_names(name: str, where: Path) -> list[str]:
    """The files of ``name`` read from ``where`` (the meta file when present); a missing
    training batch raises TinyFormulaError."""
    _, train_files, test_file, _, meta_file, _ = LAYOUTS[name]
    missing = [f for f in train_files if not (where / f).is_file()]
    if missing:
        raise TinyFormulaError(f"{where} lacks {', '.join(missing)}; unpack the whole archive "
                               f"from {URL}")
    return train_files + [test_file] + ([meta_file] if (where / meta_file).is_file() else [])


def load(name: str, data_dir=None) -> ImageData:
    where = folder(name, data_dir)
    _, train_files, test_file, label_key, meta_file, names_key = LAYOUTS[name]
    file_names(name, where)
    parts = [_images_labels(where / f, label_key) for f in train_files]
    val_images, val_labels = _images_labels(where / test_file, label_key)
    num_classes = 10 if name == "cifar10" else 100
    classes: tuple[str, ...] = ()
    if (where / meta_file).is_file():
        names = read_batch(where / meta_file).get(names_key) or []
        classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    return ImageData(
        name=name,
        train_images=torch.cat([p[0] for p in parts]),
        train_labels=torch.cat([p[1] for p in parts]),
        val_images=val_images, val_labels=val_labels,
        num_classes=num_classes, classes=classes if len(classes) == num_classes else (),
        flip=True, resolution_base=32, val_source="official test batch",
    )
