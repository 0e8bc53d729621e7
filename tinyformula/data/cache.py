"""The prepared image cache: a dataset decoded once into memory-mappable uint8 arrays.

A cache is a folder::

    manifest.json        what it holds (written last: a folder without it is not a cache)
    sources.tsv          every source file: split, row, label, bytes, mtime_ns, path
    train_images.npy     uint8 (N, C, S, S), opened memory-mapped
    train_labels.npy     int64 (N,); -1 marks an image left out (unreadable, skipped)
    val_images.npy, val_labels.npy
    verified.json        when the arrays were last checked against their digests

The manifest records the format version, the source (its name, file count and bytes), the
dataset (classes, channels, stored size, resolution base, augmentation, flip, per-channel
mean and std), each split's count and digests, and ``checksum``: the SHA-256 of the
dataset's description and the digests of its arrays - its content, not where it came from,
so two machines that prepared the same photos with the same Pillow agree on it.

Opening a cache (:func:`open_cache`) checks the manifest (format, version, its own checksum),
the array files' shapes and sizes, and - once per copy of the files - their digests (BLAKE2b
over blocks of :data:`BLOCK_ROWS` images, in parallel): ``verified.json`` records the files'
sizes, modification times and inodes when they last passed, so later opens skip the reading
while the files stay the same. A search's workers are handed the driver's ``checksum`` and
refuse a cache that holds anything else (a stale copy on another machine).
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..core.errors import TinyFormulaError
from ..core.files import checksum as json_checksum
from ..core.files import write_atomically

FORMAT = "tinyformula-prepared-data"
VERSION = 1
MANIFEST = "manifest.json"
SOURCES = "sources.tsv"
STAMP = "verified.json"
SPLITS = ("train", "val")
BLOCK_ROWS = 256
ENVIRONMENT = "TINYFORMULA_DATA_CACHE"


def cache_root() -> Path:
    """Where prepared caches live by default: ``$TINYFORMULA_DATA_CACHE``, else
    ``$XDG_CACHE_HOME/tinyformula/prepared`` (``~/.cache`` when unset)."""
    explicit = os.environ.get(ENVIRONMENT)
    if explicit:
        return Path(explicit).expanduser()
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "tinyformula" / "prepared"


def images_file(split: str) -> str:
    return f"{split}_images.npy"


def labels_file(split: str) -> str:
    return f"{split}_labels.npy"


def how_to_prepare(manifest: dict | None, folder: Path) -> str:
    """The command that (re)writes the cache at ``folder``."""
    source = (manifest or {}).get("source", {}).get("name") or "SOURCE"
    return f"tinyformula data prepare {source} --out {folder}"


# -- reading and checking the manifest ------------------------------------------------------------

def read_manifest(folder: Path) -> dict:
    """The manifest of the cache at ``folder``, checked: written by this format version and
    unchanged since (its own checksum); anything else raises TinyFormulaError."""
    path = folder / MANIFEST
    try:
        text = path.read_text()
    except FileNotFoundError:
        partial = folder.with_name(folder.name + ".partial")
        hint = (f"; a preparation was interrupted ({partial}): run the same "
                "'tinyformula data prepare' again to finish it" if partial.exists() else "")
        raise TinyFormulaError(f"{folder} is not a prepared dataset (no {MANIFEST}){hint}") \
            from None
    except (OSError, UnicodeDecodeError) as error:
        raise TinyFormulaError(f"cannot read {path}: {error}") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError:
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise TinyFormulaError(f"{path} is not a tinyformula prepared-data manifest; prepare "
                               f"the dataset again: {how_to_prepare(None, folder)}")
    if manifest.get("version") != VERSION:
        raise TinyFormulaError(
            f"{folder} was prepared by another version of tinyformula (cache format "
            f"{manifest.get('version')!r}, written by {manifest.get('tinyformula', '?')}; this "
            f"one reads format {VERSION}); prepare it again: "
            f"{how_to_prepare(manifest, folder)}")
    body = {k: v for k, v in manifest.items() if k != "manifest_checksum"}
    if manifest.get("manifest_checksum") != json_checksum(body):
        raise TinyFormulaError(f"{path} was changed after it was written (its checksum fails); "
                               f"prepare the dataset again: {how_to_prepare(manifest, folder)}")
    return manifest


def finish_manifest(manifest: dict) -> dict:
    """``manifest`` with its content checksum and its own checksum filled in."""
    manifest = dict(manifest)
    manifest.pop("manifest_checksum", None)
    manifest["checksum"] = content_checksum(manifest)
    manifest["manifest_checksum"] = json_checksum(manifest)
    return manifest


def content_checksum(manifest: dict) -> str:
    """What the data is: the dataset's description and its arrays' digests (not the source's
    paths or times, nor when it was prepared)."""
    splits = {split: {k: manifest["splits"][split][k] for k in ("count", "images", "labels")}
              for split in SPLITS}
    return json_checksum({"dataset": manifest["dataset"], "splits": splits})


# -- digests --------------------------------------------------------------------------------------

def array_digest(path: Path, offset: int, rows: int, row_bytes: int,
                 threads: int | None = None) -> str:
    """BLAKE2b of the digests of each block of :data:`BLOCK_ROWS` rows of the array stored at
    ``offset`` in ``path``: blocks are read and hashed in parallel threads (hashlib and
    ``os.pread`` release the GIL)."""
    blocks = range(0, rows, BLOCK_ROWS)
    fd = os.open(path, os.O_RDONLY)
    try:
        def block_digest(start: int) -> bytes:
            size = min(BLOCK_ROWS, rows - start) * row_bytes
            data = os.pread(fd, size, offset + start * row_bytes)
            if len(data) != size:
                raise TinyFormulaError(f"{path} is shorter than its manifest says (truncated)")
            return hashlib.blake2b(data, digest_size=32).digest()

        workers = threads or len(os.sched_getaffinity(0)) or 1
        with ThreadPoolExecutor(max(1, workers)) as pool:
            digests = list(pool.map(block_digest, blocks))
    finally:
        os.close(fd)
    return hashlib.blake2b(b"".join(digests), digest_size=32).hexdigest()


def labels_digest(labels: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(labels, dtype="<i8").tobytes(),
                           digest_size=32).hexdigest()


def data_offset(path: Path) -> tuple[int, tuple[int, ...], np.dtype]:
    """Where an ``.npy`` file's data starts, its shape and dtype (from its header)."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(handle)
        if fortran:
            raise ValueError(f"{path} is stored in Fortran order")
        return handle.tell(), tuple(shape), dtype


def _stats(folder: Path) -> dict:
    stats = {}
    for name in [MANIFEST] + [f(split) for split in SPLITS for f in (images_file, labels_file)]:
        st = os.stat(folder / name)
        stats[name] = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev]
    return stats


def write_stamp(folder: Path, manifest: dict) -> None:
    """Record that the arrays at ``folder`` match their digests now (skipped when the folder
    is read-only: the next open checks again)."""
    try:
        write_atomically(folder / STAMP, json.dumps({"checksum": manifest["checksum"],
                                                     "files": _stats(folder)}))
    except (TinyFormulaError, OSError):
        pass


def stamped(folder: Path, manifest: dict) -> bool:
    try:
        stamp = json.loads((folder / STAMP).read_text())
        return stamp == {"checksum": manifest["checksum"], "files": _stats(folder)}
    except (OSError, ValueError):
        return False


def check_arrays(folder: Path, manifest: dict) -> dict[str, dict]:
    """Each split's array files against the manifest: shape, dtype and length (cheap).
    Returns per split ``offset`` and ``shape``."""
    found = {}
    shape = manifest["dataset"]["channels"], manifest["dataset"]["size"]
    for split in SPLITS:
        count = manifest["splits"][split]["count"]
        path = folder / images_file(split)
        try:
            offset, stored, dtype = data_offset(path)
            size = os.path.getsize(path)
            labels_offset, labels_shape, labels_dtype = data_offset(folder / labels_file(split))
        except (OSError, ValueError) as error:
            raise TinyFormulaError(f"cannot read the {split} arrays of {folder} ({error}); "
                                   f"prepare it again: {how_to_prepare(manifest, folder)}") \
                from None
        expected = (count, shape[0], shape[1], shape[1])
        row_bytes = shape[0] * shape[1] * shape[1]
        if (stored != expected or dtype != np.uint8 or size != offset + count * row_bytes
                or labels_shape != (count,) or labels_dtype != np.dtype("<i8")):
            raise TinyFormulaError(
                f"{path} does not match its manifest (holds {stored} {dtype}, {size:,} bytes; "
                f"expected {expected} uint8); the cache is damaged: prepare it again: "
                f"{how_to_prepare(manifest, folder)}")
        found[split] = {"offset": offset, "row_bytes": row_bytes, "count": count}
    return found


def verify(folder: Path, manifest: dict, force: bool = False) -> bool:
    """Check the arrays against the manifest's digests (skipped when ``verified.json`` says
    these very files already passed, unless ``force``). A mismatch raises TinyFormulaError;
    returns whether the arrays were read."""
    layout = check_arrays(folder, manifest)
    if not force and stamped(folder, manifest):
        return False
    for split in SPLITS:
        info, part = manifest["splits"][split], layout[split]
        digest = array_digest(folder / images_file(split), part["offset"], part["count"],
                              part["row_bytes"])
        labels = np.load(folder / labels_file(split))
        if digest != info["images"] or labels_digest(labels) != info["labels"]:
            what = "images" if digest != info["images"] else "labels"
            raise TinyFormulaError(
                f"the {split} {what} of the prepared dataset {folder} fail their checksum "
                f"(damaged or changed since they were written); prepare it again: "
                f"{how_to_prepare(manifest, folder)}")
    if content_checksum(manifest) != manifest.get("checksum"):
        raise TinyFormulaError(f"{folder / MANIFEST}: its checksum does not match its content; "
                               f"prepare it again: {how_to_prepare(manifest, folder)}")
    write_stamp(folder, manifest)
    return True


# -- the source, then and now ---------------------------------------------------------------------

def read_sources(folder: Path) -> list[tuple[str, ...]]:
    """The rows of ``sources.tsv`` (header left out)."""
    lines = (folder / SOURCES).read_text().splitlines()
    return [tuple(line.split("\t")) for line in lines[1:] if line]


SOURCES_HEADER = "split\trow\tlabel\tbytes\tmtime_ns\tpath"


def sources_text(rows) -> str:
    """``sources.tsv``: one line per source file (``split, row, label, bytes, mtime_ns,
    path``; ``-`` where a file is not one image)."""
    return "\n".join([SOURCES_HEADER] + ["\t".join(str(v) for v in row) for row in rows]) + "\n"


def describe_changes(before: list[tuple[str, ...]], now: list[tuple[str, ...]]) -> str:
    """What changed between two source listings (``(…, bytes, mtime_ns, path)`` rows), in a
    few words; empty when nothing did."""
    old = {row[-1]: row[-3:-1] for row in before}
    new = {row[-1]: row[-3:-1] for row in now}
    if old == new:
        return ""
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(p for p in set(old) & set(new) if old[p] != new[p])
    parts = []
    for what, paths in (("added", added), ("removed", removed), ("changed", changed)):
        if paths:
            parts.append(f"{len(paths):,} {what} ({', '.join(paths[:2])}"
                         f"{', ...' if len(paths) > 2 else ''})")
    return "; ".join(parts)


def cache_files(folder: Path) -> list[Path]:
    return [folder / name for name in (MANIFEST, SOURCES, STAMP)] + [
        folder / f(split) for split in SPLITS for f in (images_file, labels_file)]


def cache_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in cache_files(folder) if p.exists())
