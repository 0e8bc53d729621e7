"""Preparing a dataset: decode it once, in parallel, into a prepared cache (:mod:`.cache`).

A preparation writes into ``FOLDER.partial`` beside its destination and renames it into place
only when everything is written, checked and described by its manifest: a reader never sees
half a cache. Photos (``imagefolder:PATH``) are decoded by a pool of processes, one per usable
core (:mod:`.decode`), each writing its images straight into the preallocated arrays; the
progress is saved every few seconds, so an interrupted preparation (Ctrl-C, a kill, a full
disk) resumes where it stopped when run again with the same source and size. The arrays are
preallocated up front (``posix_fallocate``): a disk too small fails at once, with the space
needed, not halfway through. A built-in dataset (Fashion-MNIST, CIFAR, digits) is read whole
by its loader and written as is.

An unreadable or truncated image is, as ``bad_images`` says, refused (the default: the
preparation stops after decoding everything else, naming the first few, and keeps its work,
so running it again with ``bad_images="skip"`` finishes at once) or skipped (left out of the
dataset, counted and named in the manifest). One preparation per cache at a time: a second
waits for the first (a lock beside the folder), then finds the cache ready.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import TinyFormulaError
from ..core.files import checksum as json_checksum
from ..core.files import write_atomically
from ..core.locks import locked_file
from ..core.spawn import unguarded_main
from ..core.version import VERSION as TOOLKIT_VERSION
from .cache import (
    FORMAT,
    MANIFEST,
    SOURCES,
    SPLITS,
    VERSION,
    array_digest,
    cache_bytes,
    cache_root,
    describe_changes,
    finish_manifest,
    images_file,
    labels_digest,
    labels_file,
    read_manifest,
    read_sources,
    sources_text,
    verify,
    write_stamp,
)
from .settings import BAD_IMAGES, PrepareSettings
from .sources import Source

__all__ = ["BAD_IMAGES", "PrepareSettings", "Prepared", "prepare"]
CHUNK = 32                # images per task handed to a decoding process
SAVE_EVERY_S = 5.0        # how often the progress of a preparation is saved
SPACE_MARGIN = 64 << 20   # free space kept beyond what the arrays need
PLAN, PROGRESS, BAD = "plan.json", "progress.npy", "bad.json"
SHOWN = 3                 # bad images named in a message


@dataclass
class Prepared:
    """What a preparation did (or found already done)."""

    folder: str
    source: str
    status: str                  # "prepared", "resumed", "replaced" or "up to date"
    checksum: str
    train: int
    val: int
    size: int
    channels: int
    bytes: int
    decoded: int = 0             # images decoded by this run
    seconds: float = 0.0
    skipped: int = 0
    skipped_files: list[str] = field(default_factory=list)
    changes: str = ""            # what changed in the source since an older cache

    @property
    def images_per_s(self) -> float:
        return self.decoded / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "images_per_s": round(self.images_per_s, 1)}


def default_folder(source: Source) -> Path:
    return cache_root() / source.key


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def up_to_date(folder: Path, source: Source, size: int | None, draft: bool) -> str:
    """Why the cache at ``folder`` cannot serve ``source`` as it is now (empty: it can)."""
    try:
        manifest = read_manifest(folder)
    except TinyFormulaError as error:
        return str(error)
    if manifest["source"]["name"] != source.name:
        return f"{folder} holds {manifest['source']['name']}, not {source.name}"
    if source.kind == "images":
        settings = manifest["prepare"]
        if size is not None and settings["size"] != size:
            return f"it was prepared at {settings['size']} px, not {size}"
        if settings["draft"] != draft:
            return "it was prepared with{} JPEG draft mode".format("" if draft else "out")
    try:
        changes = describe_changes(read_sources(folder), _strings(source.listing))
    except OSError as error:
        return f"cannot read its {SOURCES}: {error}"
    return f"the source changed since it was prepared: {changes}" if changes else ""


def _strings(rows) -> list[tuple[str, ...]]:
    return [tuple(str(v) for v in row) for row in rows]


def prepare(source: Source, settings: PrepareSettings | None = None, *, out=None,
            force: bool = False, progress: bool = False, log=None) -> Prepared:
    """Prepare ``source`` (:func:`~.sources.resolve`) into ``out`` (default: its folder under
    :func:`~.cache.cache_root`): decoded once, checked, described by a manifest. A cache
    already there for the same source and settings is left as it is (``force``: prepared
    again); one for a changed source, another size or an older format is replaced."""
    settings = settings or PrepareSettings()
    size, draft = settings.size, settings.draft
    if source.kind != "images" and size is not None:
        raise TinyFormulaError(f"--size applies to image folders; {source.name} is stored at "
                               "its own size")
    if source.kind == "images":
        from .imagefolder import DEFAULT_SIZE

        size = size or DEFAULT_SIZE
    folder = Path(out).expanduser() if out else default_folder(source)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TinyFormulaError(f"cannot create {folder.parent}: {error.strerror}; choose "
                               "another --out or set TINYFORMULA_DATA_CACHE") from None
    if not os.access(folder.parent, os.W_OK | os.X_OK):
        raise TinyFormulaError(f"cannot write in {folder.parent}; choose another --out or set "
                               "TINYFORMULA_DATA_CACHE to a writable folder")
    log = log or (lambda message: None)
    with locked_file(folder):
        _check_replaceable(folder, source)
        why = "" if force else up_to_date(folder, source, size, draft)
        if not force and not why:
            manifest = read_manifest(folder)
            verify(folder, manifest)
            return _report(folder, manifest, "up to date")
        exists = (folder / MANIFEST).exists()
        changes = why if exists else ""
        if exists:
            log(f"preparing {source.name} again: {why or 'asked to'}")
        partial = folder.with_name(folder.name + ".partial")
        start = time.perf_counter()
        if source.kind == "images":
            decoded, resumed = _prepare_images(source, folder, partial, size,
                                               settings.workers, settings.bad_images, draft,
                                               progress, log)
        else:
            decoded, resumed = _prepare_arrays(source, folder, partial), False
        seconds = time.perf_counter() - start
        _install(partial, folder)
        manifest = read_manifest(folder)
        status = "replaced" if exists else "resumed" if resumed else "prepared"
        return _report(folder, manifest, status, decoded=decoded, seconds=seconds,
                       changes=changes)


def _check_replaceable(folder: Path, source: Source) -> None:
    """Refuse to write over anything but an empty folder or a cache of the same source: the
    destination is replaced whole when the new cache is ready."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise TinyFormulaError(f"{folder} is a file; give a folder for the prepared dataset")
    if not (folder / MANIFEST).exists():
        if any(folder.iterdir()):
            raise TinyFormulaError(f"{folder} exists and is not a prepared dataset; choose a "
                                   "new or empty folder (it would be replaced)")
        return
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise TinyFormulaError(f"{folder} holds a {MANIFEST} that is not a tinyformula "
                               "prepared dataset's; choose another folder")
    held = (manifest.get("source") or {}).get("name")
    if held != source.name:
        raise TinyFormulaError(f"{folder} holds the prepared dataset {held}, not "
                               f"{source.name}; choose another folder (or delete it)")


def _report(folder: Path, manifest: dict, status: str, **extra) -> Prepared:
    dataset, splits = manifest["dataset"], manifest["splits"]
    skipped = manifest.get("prepare", {}).get("skipped", [])
    return Prepared(folder=str(folder), source=manifest["source"]["name"], status=status,
                    checksum=manifest["checksum"], train=splits["train"]["kept"],
                    val=splits["val"]["kept"], size=dataset["size"],
                    channels=dataset["channels"], bytes=cache_bytes(folder),
                    skipped=len(skipped), skipped_files=skipped[:SHOWN], **extra)


def _install(partial: Path, folder: Path) -> None:
    """Move the finished ``partial`` folder to ``folder``, replacing an older cache there."""
    old = folder.with_name(f"{folder.name}.old-{os.getpid()}")
    if folder.exists():
        os.rename(folder, old)
    os.rename(partial, folder)
    shutil.rmtree(old, ignore_errors=True)


def _no_space(folder: Path, needed: int, error: OSError | None = None) -> TinyFormulaError:
    try:
        free = shutil.disk_usage(_existing(folder)).free
    except OSError:
        free = 0
    return TinyFormulaError(
        f"not enough disk space for the prepared dataset in {folder.parent}: it needs "
        f"{needed / 2**30:.2f} GiB, {free / 2**30:.2f} GiB are free"
        f"{'' if error is None else f' ({error.strerror})'}; free some space, or prepare it "
        "elsewhere with --out (or TINYFORMULA_DATA_CACHE)")


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_space(folder: Path, needed: int) -> None:
    try:
        free = shutil.disk_usage(_existing(folder)).free
    except OSError:
        return
    if needed + SPACE_MARGIN > free:
        raise _no_space(folder, needed)


# -- arrays: the built-in datasets ----------------------------------------------------------------

def _prepare_arrays(source: Source, folder: Path, partial: Path) -> int:
    data = source.loader()
    shutil.rmtree(partial, ignore_errors=True)
    arrays = {split: (getattr(data, f"{split}_images").numpy(),
                      getattr(data, f"{split}_labels").numpy().astype("<i8"))
              for split in SPLITS}
    needed = sum(images.nbytes + labels.nbytes for images, labels in arrays.values())
    _check_space(folder, needed)
    try:
        partial.mkdir()
        write_atomically(partial / SOURCES, sources_text(source.listing))
        splits = {}
        for split, (images, labels) in arrays.items():
            _save(partial / images_file(split), images)
            _save(partial / labels_file(split), labels)
            splits[split] = _split_record(partial, split, labels)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        if error.errno == errno.ENOSPC:
            raise _no_space(folder, needed, error) from None
        raise TinyFormulaError(f"cannot write {partial}: {error.strerror or error}") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    manifest = _manifest(source, data, splits, {"size": data.size, "skipped": []})
    _finish(partial, manifest)
    return len(data.train_images) + len(data.val_images)


def _save(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())


def _write_array(path: Path, array: np.ndarray) -> None:
    def write(handle) -> None:
        np.save(handle, array, allow_pickle=False)

    write_atomically(path, write)


def _split_record(folder: Path, split: str, labels: np.ndarray) -> dict:
    from .cache import data_offset

    offset, shape, _ = data_offset(folder / images_file(split))
    row_bytes = int(np.prod(shape[1:]))
    return {"count": int(shape[0]), "kept": int((labels >= 0).sum()),
            "images": array_digest(folder / images_file(split), offset, shape[0], row_bytes),
            "labels": labels_digest(labels)}


def _manifest(source: Source, data, splits: dict, settings: dict) -> dict:
    import PIL

    return {
        "format": FORMAT, "version": VERSION, "tinyformula": TOOLKIT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": {"name": source.name, "kind": source.kind, "files": len(source.listing),
                   "bytes": sum(int(row[3]) for row in source.listing),
                   "root": source.root},
        "dataset": {"classes": list(data.classes), "num_classes": data.num_classes,
                    "channels": data.channels, "size": data.size, "flip": data.flip,
                    "resolution_base": data.resolution_base,
                    "augmentation": data.augmentation, "val_source": data.val_source,
                    "mean": list(data.mean), "std": list(data.std)},
        "prepare": {"pillow": PIL.__version__, "draft": False, **settings},
        "splits": splits,
    }


def _finish(partial: Path, manifest: dict) -> None:
    manifest = finish_manifest(manifest)
    write_atomically(partial / MANIFEST, json.dumps(manifest, indent=1))
    write_stamp(partial, manifest)


# -- images: photo folders ------------------------------------------------------------------------

def _allocate(path: Path, shape: tuple[int, ...]) -> int:
    """Create ``path`` as an ``.npy`` file of uint8 ``shape`` with its blocks reserved;
    returns where its data starts."""
    header = {"descr": "|u1", "fortran_order": False, "shape": shape}
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        offset = handle.tell()
        handle.flush()
        nbytes = int(np.prod(shape))
        if nbytes and hasattr(os, "posix_fallocate"):
            os.posix_fallocate(handle.fileno(), offset, nbytes)
        else:  # no reservation here (macOS): a full disk shows up while writing instead
            handle.truncate(offset + nbytes)
    return offset


def _plan_id(source: Source, size: int, draft: bool) -> str:
    return json_checksum({"sources": sources_text(source.listing), "size": size,
                          "draft": draft, "version": VERSION})


def _load_progress(partial: Path, plan_id: str, entries: int):
    """``(status per entry, bad messages)`` of a resumable partial folder, else None."""
    try:
        plan = json.loads((partial / PLAN).read_text())
        status = np.load(partial / PROGRESS)
        bad = {int(k): v for k, v in json.loads((partial / BAD).read_text()).items()}
    except (OSError, ValueError):
        return None
    if plan.get("id") != plan_id or status.shape != (entries,) or status.dtype != np.uint8:
        return None
    return status, bad


def _save_progress(partial: Path, status: np.ndarray, bad: dict) -> None:
    def write(handle):
        np.save(handle, status, allow_pickle=False)

    write_atomically(partial / PROGRESS, write)
    write_atomically(partial / BAD, json.dumps({str(k): v for k, v in bad.items()}))


def _prepare_images(source: Source, folder: Path, partial: Path, size: int,
                    workers: int | None, bad_images: str, draft: bool, progress: bool,
                    log) -> tuple[int, bool]:
    plan = source.plan
    entries = plan.entries  # type: ignore[attr-defined]
    counts = plan.counts  # type: ignore[attr-defined]
    row_bytes = 3 * size * size
    plan_id = _plan_id(source, size, draft)
    loaded = _load_progress(partial, plan_id, len(entries)) if partial.exists() else None
    needed = sum(128 + counts[split] * row_bytes for split in SPLITS)
    if loaded is None:
        shutil.rmtree(partial, ignore_errors=True)
        _check_space(folder, needed)
        status = np.zeros(len(entries), dtype=np.uint8)
        bad: dict[int, str] = {}
        try:
            partial.mkdir()
            write_atomically(partial / SOURCES, sources_text(source.listing))
            for split in SPLITS:
                _allocate(partial / images_file(split), (counts[split], 3, size, size))
            _save_progress(partial, status, bad)
            write_atomically(partial / PLAN, json.dumps({"id": plan_id, "size": size,
                                                         "draft": draft}))
        except (OSError, TinyFormulaError) as error:
            shutil.rmtree(partial, ignore_errors=True)
            if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _no_space(folder, needed, error) from None
            if isinstance(error, TinyFormulaError):
                raise
            raise TinyFormulaError(f"cannot write {partial}: {error.strerror or error}") \
                from None
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        resumed = False
    else:
        status, bad = loaded
        resumed = True
        log(f"resuming the preparation of {source.name}: {int((status == 1).sum()):,} of "
            f"{len(entries):,} images already decoded")
    targets = {}
    from .cache import data_offset

    for split in SPLITS:
        offset, _, _ = data_offset(partial / images_file(split))
        targets[split] = (str(partial / images_file(split)), offset)
    todo = [i for i in range(len(entries)) if status[i] != 1]
    decoded = _decode(source, partial, entries, todo, targets, size, draft, status, bad,
                      workers, progress, log)
    _finish_images(source, partial, entries, status, bad, size, draft, bad_images)
    return decoded, resumed


def _decode(source: Source, partial: Path, entries, todo: list[int], targets: dict, size: int,
            draft: bool, status: np.ndarray, bad: dict, workers: int | None,
            progress: bool, log) -> int:
    """Decode ``todo`` (entry numbers) into the arrays, saving the progress as it goes;
    returns how many images were decoded (well or not)."""
    from .decode import decode_chunk, init_decoder, set_up

    root = source.plan.root  # type: ignore[attr-defined]
    chunks = [[(i, entries[i].split, entries[i].row, str(root / entries[i].path))
               for i in todo[start:start + CHUNK]] for start in range(0, len(todo), CHUNK)]
    workers = max(1, min(workers or usable_cores(), len(chunks)))
    if workers > 1 and unguarded_main():
        # Spawned decoders would run the caller's script again: decode here instead.
        log(f"decoding in this process alone: the call at {unguarded_main()} is not under "
            "'if __name__ == \"__main__\":', which processes spawned to decode would need")
        workers = 1
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(entries), initial=len(entries) - len(todo), unit="img",
                   desc=f"prepare {size}px", dynamic_ncols=True, file=sys.stderr)
    pool = None
    done = 0
    saved = time.monotonic()
    try:
        if workers > 1:
            import multiprocessing

            pool = multiprocessing.get_context("spawn").Pool(
                workers, initializer=init_decoder, initargs=(targets, size, draft))
            results: Iterable[list[tuple[int, str]]] = pool.imap_unordered(decode_chunk,
                                                                           chunks)
        else:
            set_up(targets, size, draft)
            results = (decode_chunk(chunk) for chunk in chunks)
        for result in results:
            for entry, error in result:
                status[entry] = 2 if error else 1
                if error:
                    bad[entry] = error
                else:
                    bad.pop(entry, None)
            done += len(result)
            if bar is not None:
                bar.update(len(result))
            if time.monotonic() - saved > SAVE_EVERY_S:
                _save_progress(partial, status, bad)
                saved = time.monotonic()
    except OSError as error:
        _save_progress(partial, status, bad)
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise TinyFormulaError(f"the disk filled while preparing {partial}; free some "
                                   "space and run the same command again to resume") from None
        raise
    except BaseException:
        _save_progress(partial, status, bad)
        raise
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        if bar is not None:
            bar.close()
        if workers == 1:
            from .decode import close_files

            close_files()
    _save_progress(partial, status, bad)
    return done


def _finish_images(source: Source, partial: Path, entries, status: np.ndarray, bad: dict,
                   size: int, draft: bool, bad_images: str) -> None:
    """Check what was decoded, write labels, digests and the manifest into ``partial``."""
    import torch

    from .imagefolder import RESOLUTION_BASE
    from .images import AUGMENTATIONS, ImageData, ImageRows, channel_stats

    plan = source.plan
    failed = sorted(i for i in range(len(entries)) if status[i] == 2)
    names = [f"{entries[i].path} ({bad[i]})" for i in failed[:SHOWN]]
    if failed and bad_images == "refuse":
        raise TinyFormulaError(
            f"{len(failed):,} of {len(entries):,} images in {plan.root} cannot be read: "  # type: ignore[attr-defined]
            f"{'; '.join(names)}{'; ...' if len(failed) > SHOWN else ''}; fix or remove them, "
            f"or leave them out: tinyformula data prepare {source.name} --bad-images skip "
            f"(the {int((status == 1).sum()):,} images decoded are kept: that finishes at once)")
    classes = plan.classes  # type: ignore[attr-defined]
    labels = {split: np.full(plan.counts[split], -1, dtype="<i8") for split in SPLITS}  # type: ignore[attr-defined]
    for i, entry in enumerate(entries):
        if status[i] == 1:
            labels[entry.split][entry.row] = entry.label
    for split in SPLITS:
        present = set(np.unique(labels[split][labels[split] >= 0]).tolist())
        empty = [classes[c] for c in range(len(classes)) if c not in present]
        if split == "train" and empty:
            raise TinyFormulaError(f"no readable {split} images left for class(es) "
                                   f"{', '.join(empty[:SHOWN])} after leaving out unreadable "
                                   "ones; fix the images or remove the class")
        if not present:
            raise TinyFormulaError(f"no readable {split} images left in {plan.root}")  # type: ignore[attr-defined]
    splits = {}
    for split in SPLITS:
        path = partial / images_file(split)
        with open(path, "rb+") as handle:
            os.fsync(handle.fileno())
        _write_array(partial / labels_file(split), labels[split])
        splits[split] = _split_record(partial, split, labels[split])
    mapped = {split: torch.from_numpy(np.load(partial / images_file(split), mmap_mode="c"))
              for split in SPLITS}
    kept = {split: torch.from_numpy(np.nonzero(labels[split] >= 0)[0]) for split in SPLITS}
    train_images = ImageRows(mapped["train"], kept["train"])
    mean, std = channel_stats(train_images)
    data = ImageData(
        name=source.name, train_images=train_images,
        train_labels=torch.from_numpy(labels["train"][kept["train"].numpy()]),
        val_images=ImageRows(mapped["val"], kept["val"]),
        val_labels=torch.from_numpy(labels["val"][kept["val"].numpy()]),
        num_classes=len(classes), classes=tuple(classes), flip=True,
        resolution_base=RESOLUTION_BASE, val_source=plan.val_source,  # type: ignore[attr-defined]
        mean=mean, std=std, augmentation=AUGMENTATIONS[1])
    skipped = [entries[i].path for i in failed]
    manifest = _manifest(source, data, splits, {"size": size, "draft": draft,
                                                "skipped": skipped})
    del mapped, train_images, data
    _finish(partial, manifest)
    for name in (PLAN, PROGRESS, BAD):
        (partial / name).unlink(missing_ok=True)
