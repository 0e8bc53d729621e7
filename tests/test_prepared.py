"""The prepared image cache: preparing, resuming, refusing bad input, opening it memory-mapped,
workers checking their copy, and Fashion-MNIST trials unchanged by it."""

import errno
import json
import os
import shutil

import numpy as np
import pytest
import torch

from tinyformula import (
    DataSource,
    Scale,
    TinyFormulaError,
    TrainConfig,
    TrialJob,
    load_dataset,
    open_prepared,
    prepare_dataset,
    run_trial,
    verify_dataset,
)
from tinyformula import train as train_trial
from tinyformula.data import cache as cache_format
from tinyformula.data import decode, fashion_mnist, loading
from tinyformula.data import prepare as prepare_module
from tinyformula.data.holdout import carve_validation, fixed_split
from tinyformula.data.images import ImageData, ImageRows, gather
from tinyformula.data.loading import cached_dataset
from tinyformula.training.batches import TrainBatches


def write_jpeg(path, seed, size=(48, 36)):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)


def photo_folder(root, classes=("a", "b", "c"), train=4, val=2):
    for split, n in (("train", train), ("val", val)):
        for c, name in enumerate(classes):
            for i in range(n):
                write_jpeg(root / split / name / f"{i}.jpg", seed=hash((split, c, i)) % 2**32,
                           size=(48 + 8 * i, 36))
    return root


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test prepares into a cache root of its own."""
    monkeypatch.setenv("TINYFORMULA_DATA_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def photos(tmp_path):
    return photo_folder(tmp_path / "photos")


def prepared(name, **options):
    options.setdefault("size", 16)
    options.setdefault("workers", 1)
    return prepare_dataset(name, **options)


# -- a photo folder, prepared and opened ---------------------------------------------------------

def test_prepare_a_photo_folder_and_open_it_mapped(photos):
    result = prepared(f"imagefolder:{photos}")
    assert (result.status, result.train, result.val, result.size) == ("prepared", 12, 6, 16)
    folder = result.folder
    manifest = json.loads(open(os.path.join(folder, "manifest.json")).read())
    assert manifest["version"] == cache_format.VERSION and manifest["checksum"] == result.checksum
    assert manifest["source"]["files"] == 18 and manifest["dataset"]["classes"] == ["a", "b", "c"]
    data = load_dataset(f"imagefolder:{photos}")
    assert data.checksum == result.checksum and data.cache == folder
    assert data.augmentation == "resized-crop" and data.resolution_base == 224
    assert data.train_images.shape == (12, 3, 16, 16)
    assert data.val_source == "val/ folder" and data.val_labels.tolist() == [0, 0, 1, 1, 2, 2]
    # The stored pixels are the decoder's, row by row, in sorted file order.
    first = decode.read_image(str(photos / "train" / "a" / "0.jpg"), 16)
    assert torch.equal(data.train_images[0], torch.from_numpy(first.copy()))
    # Mapped, not copied: the file is mapped into this process.
    assert os.path.join(folder, "train_images.npy") in open("/proc/self/maps").read()
    assert prepared(f"imagefolder:{photos}").status == "up to date"
    assert prepared(str(photos)).status == "up to date"  # a folder is an imagefolder


def test_a_photo_folder_without_val_holds_out_a_fixed_fifth(tmp_path):
    root = tmp_path / "flat"
    for c in ("x", "y"):
        for i in range(5):
            write_jpeg(root / c / f"{i}.jpg", seed=i + 10 * len(c))
    data = load_dataset(f"imagefolder:{root}")
    labels = torch.tensor([0] * 5 + [1] * 5)
    train, val = fixed_split(labels, 0.2, seed=0)
    assert data.train_labels.tolist() == labels[train].tolist()
    assert data.val_labels.tolist() == labels[val].tolist()


def test_a_search_command_prepares_an_unprepared_folder_first(photos, cli, one_thread):
    code, out, err = cli("train", "--data", f"imagefolder:{photos}", "--r", "0.07", "--d", "0.25",
                         "--w", "0.25", "--train-size", "8", "--batch-size", "4", "--quiet")
    assert code == 0, err
    from tinyformula.data.sources import image_folder_key

    assert (cache_format.cache_root() / image_folder_key(photos) / "manifest.json").exists()


def test_interrupted_preparation_resumes(photos, monkeypatch):
    calls = []
    real = decode.decode_chunk

    def interrupted(chunk):
        calls.append(len(chunk))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(chunk)

    monkeypatch.setattr(prepare_module, "CHUNK", 4)
    monkeypatch.setattr(decode, "decode_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepared(f"imagefolder:{photos}")
    partial = [p for p in cache_format.cache_root().iterdir() if p.name.endswith(".partial")]
    assert len(partial) == 1 and not (partial[0] / "manifest.json").exists()
    status = np.load(partial[0] / "progress.npy")
    assert int((status == 1).sum()) == 4
    with pytest.raises(TinyFormulaError, match="interrupted"):
        open_prepared(str(partial[0])[:-len(".partial")])
    monkeypatch.setattr(decode, "decode_chunk", real)
    resumed = prepared(f"imagefolder:{photos}")
    assert resumed.status == "resumed" and resumed.decoded == 14
    fresh = prepared(f"imagefolder:{photos}", out=photos.parent / "fresh")
    assert fresh.checksum == resumed.checksum  # the same bytes as one uninterrupted run


def test_parallel_preparation_equals_one_process(photos):
    one = prepared(f"imagefolder:{photos}", out=photos.parent / "one")
    two = prepared(f"imagefolder:{photos}", out=photos.parent / "two", workers=2)
    assert one.checksum == two.checksum


# -- bad input ------------------------------------------------------------------------------------

def test_unreadable_images_are_refused_or_skipped(photos):
    good = (photos / "train" / "b" / "0.jpg").read_bytes()
    (photos / "train" / "b" / "0.jpg").write_bytes(good[:len(good) // 3])  # truncated
    (photos / "train" / "c" / "zz.png").write_bytes(b"not a png")
    with pytest.raises(TinyFormulaError, match=r"2 of 19 images .* cannot be read: train/b/0.jpg "
                                               r"\(OSError.*train/c/zz.png .*--bad-images skip"):
        prepared(f"imagefolder:{photos}")
    result = prepared(f"imagefolder:{photos}", bad_images="skip")
    assert (result.status, result.skipped, result.train) == ("resumed", 2, 11)
    assert result.decoded == 2  # only the two bad ones were tried again
    data = load_dataset(f"imagefolder:{photos}")
    assert isinstance(data.train_images, ImageRows) and len(data.train_images) == 11
    assert data.train_labels.tolist() == [0] * 4 + [1] * 3 + [2] * 4


@pytest.mark.parametrize("layout, message", [
    ("missing-val-class", "lacks folders for 1 class"),
    ("empty-class", "class folder .*b has no images"),
    ("extra-val-class", "class folders missing from train: z"),
])
def test_bad_folder_layouts(photos, layout, message):
    if layout == "missing-val-class":
        shutil.rmtree(photos / "val" / "c")
    elif layout == "empty-class":
        for f in (photos / "train" / "b").iterdir():
            f.unlink()
    else:
        write_jpeg(photos / "val" / "z" / "0.jpg", 1)
    with pytest.raises(TinyFormulaError, match=message):
        prepared(f"imagefolder:{photos}")


def test_a_changed_source_is_refused_until_prepared_again(photos):
    prepared(f"imagefolder:{photos}")
    write_jpeg(photos / "train" / "a" / "new.jpg", 99)
    with open(photos / "train" / "b" / "1.jpg", "ab") as handle:
        handle.write(b"\0" * 10)
    with pytest.raises(TinyFormulaError, match=r"changed since it was prepared \(1 added "
                                               r"\(train/a/new.jpg\); 1 changed"):
        load_dataset(f"imagefolder:{photos}")
    with pytest.raises(TinyFormulaError, match="changed since it was prepared"):
        verify_dataset(f"imagefolder:{photos}")
    again = prepared(f"imagefolder:{photos}")
    assert again.status == "replaced" and again.train == 13 and "1 added" in again.changes
    assert len(load_dataset(f"imagefolder:{photos}").train_images) == 13


def test_a_cache_of_another_version_or_edited_is_refused(photos):
    folder = cache_format.Path(prepared(f"imagefolder:{photos}").folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps(dict(manifest, created="yesterday")))
    with pytest.raises(TinyFormulaError, match="changed after it was written"):
        open_prepared(folder)
    edited = dict(manifest, version=cache_format.VERSION + 1)
    (folder / "manifest.json").write_text(json.dumps(cache_format.finish_manifest(edited)))
    with pytest.raises(TinyFormulaError, match="prepared by another version of tinyformula .*"
                                               "tinyformula data prepare imagefolder:"):
        load_dataset(f"imagefolder:{photos}")
    assert prepared(f"imagefolder:{photos}").status == "replaced"


def test_a_damaged_cache_fails_its_checksum(photos):
    folder = cache_format.Path(prepared(f"imagefolder:{photos}").folder)
    open_prepared(folder)
    with open(folder / "train_images.npy", "r+b") as handle:
        handle.seek(-5, os.SEEK_END)
        byte = handle.read(1)
        handle.seek(-5, os.SEEK_END)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(TinyFormulaError, match="train images .* fail their checksum"):
        open_prepared(folder)
    with open(folder / "val_images.npy", "r+b") as handle:
        handle.truncate(200)
    with pytest.raises(TinyFormulaError, match="does not match its manifest"):
        open_prepared(folder)


def test_a_full_disk_leaves_nothing_behind(photos, monkeypatch):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(TinyFormulaError, match="not enough disk space .* needs 0.00 GiB"):
        prepared(f"imagefolder:{photos}")
    assert [p.name for p in cache_format.cache_root().iterdir()
            if not p.name.endswith(".lock")] == []
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 0))
    with pytest.raises(TinyFormulaError, match="not enough disk space"):
        prepared(f"imagefolder:{photos}")


def test_the_data_command(photos, cli):
    code, out, err = cli("data", "prepare", str(photos), "--size", "16", "--workers", "1",
                         "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "prepared" and result["train"] == 12
    code, out, err = cli("data", "verify", f"prepared:{result['folder']}", "--checksum",
                         result["checksum"], "--json")
    assert code == 0 and json.loads(out)["source_checked"] is True, err
    code, out, err = cli("data", "verify", str(photos))
    assert code == 0 and "every array read back: ok" in out, err
    code, out, err = cli("data", "verify", str(photos), "--checksum", "0" * 64)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "not 0000" in err
    for args, wanted in ((["--size", "0"], "--size"), (["--workers", "x"], "--workers"),
                         (["--bad-images", "maybe"], "--bad-images")):
        code, out, err = cli("data", "prepare", str(photos), *args)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
        assert wanted in err
    code, out, err = cli("data", "prepare", str(photos / "nope"))
    assert code == 2 and "unknown dataset" in err
    code, out, err = cli("data", "prepare", "digits", "--size", "32")
    assert code == 2 and "--size applies to image folders" in err
    code, out, err = cli("data")
    assert code == 2 and "prepare" in err and "verify" in err


# -- workers and clusters -------------------------------------------------------------------------

def photo_job(name, checksum, data_dir=None):
    return TrialJob(id=1, base="efficientnet_b0", scale=Scale(0.07, 0.25, 0.25),
                    resolution_base=224, data=DataSource(name, data_dir, None, checksum),
                    train=TrainConfig(train_size=8, batch_size=4, epochs=1, val_size=6,
                                      bn_recalibrate=0, threads=1))


def test_a_worker_checks_its_copy_by_checksum(photos, tmp_path):
    result = prepared(f"imagefolder:{photos}")
    # A copy on "another machine" (rsync'd: its own inodes, so its digests are read once).
    copy = tmp_path / "copy"
    shutil.copytree(result.folder, copy)
    ok = run_trial(photo_job(f"prepared:{copy}", result.checksum))
    assert ok.state == "ok", ok.message
    stale = tmp_path / "stale"
    shutil.copytree(result.folder, stale)
    manifest = json.loads((stale / "manifest.json").read_text())
    manifest["dataset"]["val_source"] = "another preparation"
    (stale / "manifest.json").write_text(json.dumps(cache_format.finish_manifest(manifest)))
    refused = run_trial(photo_job(f"prepared:{stale}", result.checksum))
    assert refused.state == "failed" and "holds other data than expected" in refused.message


def test_a_worker_finds_a_shared_cache_without_the_source(photos, tmp_path):
    checksum = prepared(f"imagefolder:{photos}").checksum
    moved = tmp_path / "elsewhere"
    os.rename(photos, moved)  # the photos are not on this "worker"; the shared cache is
    cached_dataset.cache_clear()
    try:
        result = run_trial(photo_job(f"imagefolder:{photos}", checksum))
    finally:
        cached_dataset.cache_clear()
    assert result.state == "ok", result.message
    with pytest.raises(TinyFormulaError, match="does not exist"):
        load_dataset(f"imagefolder:{photos}")  # without the checksum: the source is listed


# -- Fashion-MNIST: the cache changes where images live, not what they are ------------------------

def test_fashion_mnist_trials_are_bit_identical_through_the_cache(one_thread):
    raw = fashion_mnist.load()               # in memory, as every release before the cache
    cached = load_dataset("fashion-mnist")   # memory-mapped from the prepared cache
    assert cached.cache and cached.checksum
    assert torch.equal(raw.train_images, cached.train_images)
    assert torch.equal(raw.val_labels, cached.val_labels)
    assert (raw.mean, raw.std) == (cached.mean, cached.std)
    # The search's held-out split, carved the old way (copies) and the new way (views).
    train, val = fixed_split(raw.train_labels, 300 / len(raw.train_labels), 0)
    old = ImageData(name=raw.name, train_images=raw.train_images[train],
                    train_labels=raw.train_labels[train], val_images=raw.train_images[val],
                    val_labels=raw.train_labels[val], num_classes=10, flip=True,
                    mean=raw.mean, std=raw.std)
    new = cached_dataset("fashion-mnist", None, 300, cached.checksum)
    assert isinstance(new.train_images, ImageRows)
    settings = dict(train_size=192, batch_size=64, epochs=2, seed=7, resolution=14)
    a, b = TrainBatches(old, **settings), TrainBatches(new, **settings)
    for name in ("subset", "index", "crops", "flips", "labels", "images"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert all(torch.equal(x, y) for (x, _), (y, _) in zip(a, b))
    config = TrainConfig(train_size=192, batch_size=64, epochs=1, seed=3, val_size=300,
                         bn_recalibrate=128, threads=1)
    before = train_trial(old, "efficientnet_b0", Scale(0.45, 0.25, 0.25), config)
    after = run_trial(TrialJob(id=0, base="efficientnet_b0", scale=Scale(0.45, 0.25, 0.25),
                               resolution_base=32,
                               data=DataSource("fashion-mnist", None, 300, cached.checksum),
                               train=config))
    assert before.status == "ok" and after.state == "ok", after.message
    assert (after.top1, after.loss) == (before.top1, before.loss)


def test_builtin_datasets_fall_back_to_memory_when_the_cache_cannot_be_written(monkeypatch):
    from tinyformula.data import loading

    def refuse(*args, **kwargs):
        raise TinyFormulaError("cannot write in /read-only; choose another --out")

    monkeypatch.setattr(prepare_module, "prepare", refuse)
    monkeypatch.setattr(prepare_module, "cache_root", lambda: cache_format.Path("/nonexistent"))
    data = loading.load_dataset("digits")
    assert data.cache == "" and len(data.train_images) == 1347


# -- views and gathers ----------------------------------------------------------------------------

def test_image_rows_read_only_the_rows_asked_for():
    array = torch.arange(10 * 1 * 2 * 2, dtype=torch.uint8).reshape(10, 1, 2, 2)
    rows = ImageRows(array, torch.tensor([7, 2, 5, 0]))
    assert len(rows) == 4 and rows.shape == (4, 1, 2, 2) and rows.dim() == 4
    assert torch.equal(rows[1:3], array[[2, 5]])
    assert torch.equal(rows[torch.tensor([3, 0])], array[[0, 7]])
    assert torch.equal(rows[torch.tensor([True, False, False, True])], array[[7, 0]])
    assert torch.equal(rows[2], array[5]) and torch.equal(rows[:, 0], array[[7, 2, 5, 0], 0])
    assert torch.equal(rows.select(torch.tensor([2, 1]))[:], array[[5, 2]])
    assert torch.equal(gather(array, torch.tensor([9, 1, 4])), array[[9, 1, 4]])
    out = torch.empty(3, 1, 2, 2, dtype=torch.uint8)
    assert gather(array, torch.tensor([3, 1, 2]), out=out) is out
    assert torch.equal(out, array[[3, 1, 2]])


def test_carved_validation_is_a_view_of_the_same_images():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (60, 1, 4, 4), dtype=torch.uint8, generator=generator)
    data = ImageData("x", images, torch.arange(60) % 3, images[:5], torch.arange(5) % 3, 3)
    carved = carve_validation(data, 12)
    assert isinstance(carved.train_images, ImageRows) and carved.train_images.array is images
    train, val = fixed_split(data.train_labels, 12 / 60, 0)
    assert torch.equal(carved.val_images[:], images[val])
    assert torch.equal(carved.train_images[:], images[train])


def test_released_pages_read_back_the_same(photos):
    from tinyformula.data.mapped import release

    data = open_prepared(prepared(f"imagefolder:{photos}").folder)
    before = data.train_images[3:7].clone()
    release(data.train_images)
    assert torch.equal(data.train_images[3:7], before)
    memory = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    release(memory)  # not mapped: nothing to do
    release(ImageRows(data.train_images, torch.tensor([1, 0])))
    assert torch.equal(data.train_images[3:7], before)


def test_out_never_replaces_a_foreign_folder(photos, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    with pytest.raises(TinyFormulaError, match="exists and is not a prepared dataset"):
        prepared(f"imagefolder:{photos}", out=tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"
    digits = prepare_dataset("digits", out=tmp_path / "digits")
    with pytest.raises(TinyFormulaError, match="holds the prepared dataset digits"):
        prepared(f"imagefolder:{photos}", out=digits.folder)
    (tmp_path / "empty").mkdir()
    assert prepared(f"imagefolder:{photos}", out=tmp_path / "empty").status == "prepared"


def test_a_dataset_is_opened_once_however_the_call_is_spelled(photos, monkeypatch):
    cached_dataset.cache_clear()
    opened = []
    real = loading.load_dataset
    monkeypatch.setattr(loading, "load_dataset",
                        lambda *args, **kwargs: opened.append(args) or real(*args, **kwargs))
    try:
        name = f"imagefolder:{photos}"
        first = cached_dataset(name)
        assert cached_dataset(name, None) is first
        assert cached_dataset(name, None, None, None) is first
        assert len(cached_dataset(name, None, 4).val_labels) > 0  # carved from the same
    finally:
        cached_dataset.cache_clear()
    assert len(opened) == 1  # listing a million-photo folder once, not once per spelling
