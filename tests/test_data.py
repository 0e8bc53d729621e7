"""Dataset loaders and batch augmentation, on small files made in tmp_path."""

import gzip
import pickle
import struct
import urllib.error

import numpy as np
import pytest
import torch

from tinyformula import TinyFormulaError
from tinyformula.data import ImageData, augment, cifar, fashion_mnist, load_dataset
from tinyformula.data.holdout import fixed_split
from tinyformula.data.idx import parse_idx, read_idx


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fashion(folder, n_train=20, n_test=10, gz=True):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(n_test) % 10,
    }
    for stem, array in arrays.items():
        raw = idx_bytes(array)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / stem).write_bytes(raw)
    return arrays


# -- IDX -------------------------------------------------------------------------------------------

def test_idx_round_trip_plain_and_gzipped(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(array))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(array)))
    assert np.array_equal(read_idx(tmp_path / "a"), array)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), array)


@pytest.mark.parametrize("raw, why", [
    (b"", "bad magic"),
    (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "bad magic"),
    (b"\x00\x00\x42\x01" + struct.pack(">I", 1) + b"\x00", "element type"),
    (b"\x00\x00\x08\x03\x00\x00", "header cut short"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x00\x01", "bytes where shape"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\x00\x01", "bytes where shape"),
])
def test_corrupt_idx_is_a_user_error(raw, why):
    with pytest.raises(TinyFormulaError, match=why):
        parse_idx(raw, "x")


def test_truncated_gzip_is_a_user_error(tmp_path):
    raw = gzip.compress(idx_bytes(np.zeros((10, 28, 28))))
    (tmp_path / "t.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(TinyFormulaError, match="t.gz"):
        read_idx(tmp_path / "t.gz")


# -- Fashion-MNIST ---------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_from_data_dir(tmp_path, gz):
    arrays = write_fashion(tmp_path, gz=gz)
    data = load_dataset("fashion-mnist", tmp_path)
    assert data.train_images.shape == (20, 1, 28, 28) and data.train_images.dtype == torch.uint8
    assert data.val_images.shape == (10, 1, 28, 28)
    assert torch.equal(data.train_images[:, 0], torch.from_numpy(
        arrays["train-images-idx3-ubyte"].astype(np.uint8)))
    assert data.train_labels.tolist() == list(np.arange(20) % 10)
    assert (data.num_classes, data.channels, data.size, data.resolution_base) == (10, 1, 28, 32)
    assert data.flip and data.val_source == "official test set"


def test_fashion_mnist_missing_files_and_folder(tmp_path):
    with pytest.raises(TinyFormulaError, match="does not exist"):
        load_dataset("fashion-mnist", tmp_path / "nope")
    with pytest.raises(TinyFormulaError, match="lacks the Fashion-MNIST IDX files.*--data-dir"):
        load_dataset("fashion-mnist", tmp_path)


def test_fashion_mnist_corrupt_file(tmp_path):
    write_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    with pytest.raises(TinyFormulaError, match="not a valid IDX file"):
        load_dataset("fashion-mnist", tmp_path)


def test_fashion_mnist_mismatched_counts(tmp_path):
    write_fashion(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros(7))))
    with pytest.raises(TinyFormulaError, match="do not match"):
        load_dataset("fashion-mnist", tmp_path)


def test_fashion_mnist_offline_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(fashion_mnist.urllib.request, "urlopen", offline)
    with pytest.raises(TinyFormulaError) as error:
        load_dataset("fashion-mnist")
    message = str(error.value)
    assert "\n" not in message
    assert "apt-get install dataset-fashion-mnist" in message and "--data-dir" in message
    assert not list((tmp_path / "cache").rglob("*.part"))  # no half-written file left


def test_fashion_mnist_found_in_user_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_fashion(tmp_path / "cache" / "tinyformula" / "fashion-mnist")
    assert len(load_dataset("fashion-mnist").train_images) == 20


# -- digits ----------------------------------------------------------------------------------------

def test_digits_fixed_stratified_split():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert torch.equal(a.val_labels, b.val_labels) and torch.equal(a.val_images, b.val_images)
    assert len(a.train_images) + len(a.val_images) == 1797
    assert a.train_images.shape[1:] == (1, 8, 8) and a.train_images.max() == 255
    assert not a.flip  # a mirrored digit is another symbol
    assert torch.bincount(a.val_labels).min() >= 40  # every class held out


def test_fixed_split_is_disjoint_and_stratified():
    labels = torch.tensor([0] * 10 + [1] * 5 + [2])
    train, val = fixed_split(labels, 0.2)
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(16))
    assert torch.bincount(labels[val], minlength=3).tolist() == [2, 1, 0]


# -- CIFAR -----------------------------------------------------------------------------------------

def write_cifar10(folder, per_batch=4):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072)).astype(np.uint8),
                 b"labels": list(rng.integers(0, 10, per_batch))}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [f"c{i}".encode() for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))


def test_cifar10_from_parent_or_batch_folder(tmp_path):
    write_cifar10(tmp_path / "cifar-10-batches-py")
    for where in (tmp_path, tmp_path / "cifar-10-batches-py"):
        data = load_dataset("cifar10", where)
        assert data.train_images.shape == (20, 3, 32, 32)
        assert data.val_images.shape == (4, 3, 32, 32)
        assert data.classes[3] == "c3" and data.num_classes == 10
    raw = pickle.loads((tmp_path / "cifar-10-batches-py" / "data_batch_1").read_bytes())
    assert torch.equal(data.train_images[0], torch.from_numpy(raw[b"data"][0].reshape(3, 32, 32)))


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name in ("train", "test"):
        batch = {b"data": np.zeros((3, 3072), np.uint8), b"fine_labels": [0, 99, 5],
                 b"coarse_labels": [0, 1, 2]}
        (folder / name).write_bytes(pickle.dumps(batch))
    data = load_dataset("cifar100", tmp_path)
    assert data.num_classes == 100 and data.train_labels.tolist() == [0, 99, 5]


def test_cifar_corrupt_or_hostile_pickle(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder)
    (folder / "data_batch_3").write_bytes(b"\x80\x02}q\x00(garbage")
    with pytest.raises(TinyFormulaError, match="data_batch_3 is not a valid CIFAR batch"):
        load_dataset("cifar10", tmp_path)
    # A pickle that would call a function must be refused, not executed.
    (folder / "data_batch_3").write_bytes(pickle.dumps(print))
    with pytest.raises(TinyFormulaError, match="refusing"):
        load_dataset("cifar10", tmp_path)


def test_cifar_missing(tmp_path):
    with pytest.raises(TinyFormulaError, match="no cifar10 batches"):
        load_dataset("cifar10", tmp_path)
    with pytest.raises(TinyFormulaError, match="does not exist"):
        cifar.load("cifar100", tmp_path / "nope")


# -- image folders ---------------------------------------------------------------------------------

def write_png(path, color, size=(40, 30)):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def test_imagefolder_split_and_resize(tmp_path):
    for i in range(5):
        write_png(tmp_path / "cats" / f"{i}.png", (255, 0, 0))
        write_png(tmp_path / "dogs" / f"{i}.PNG", (0, 0, 255), size=(20, 50))
    data = load_dataset(f"imagefolder:{tmp_path}")
    assert data.classes == ("cats", "dogs") and data.resolution_base == 224
    assert data.train_images.shape[1:] == (3, 224, 224)
    assert len(data.train_images) == 8 and len(data.val_images) == 2
    assert data.val_labels.tolist() == [0, 1]
    red = data.train_images[data.train_labels == 0]
    assert (red[:, 0] == 255).all() and (red[:, 2] == 0).all()


def test_imagefolder_train_val_folders(tmp_path):
    for split, n in (("train", 3), ("val", 2)):
        for cls in ("a", "b"):
            for i in range(n):
                write_png(tmp_path / split / cls / f"{i}.png", (10, 20, 30))
    data = load_dataset(f"imagefolder:{tmp_path}")
    assert (len(data.train_images), len(data.val_images)) == (6, 4)
    assert data.val_source == "val/ folder"


def test_imagefolder_bad_input(tmp_path):
    with pytest.raises(TinyFormulaError, match="does not exist"):
        load_dataset(f"imagefolder:{tmp_path / 'nope'}")
    with pytest.raises(TinyFormulaError, match="no class folders"):
        load_dataset(f"imagefolder:{tmp_path}")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(TinyFormulaError, match="no images"):
        load_dataset(f"imagefolder:{tmp_path}")
    for i in range(2):
        write_png(tmp_path / "a" / f"{i}.png", (0, 0, 0))
    write_png(tmp_path / "b" / "0.png", (0, 0, 0))
    (tmp_path / "b" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(TinyFormulaError, match="1 of 4 images .* cannot be read: b/broken.png "
                                               "\\(UnidentifiedImageError"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_unknown_dataset_lists_known():
    with pytest.raises(TinyFormulaError, match="unknown dataset 'mnist'; known: fashion-mnist, "
                                               "digits, cifar10, cifar100, imagefolder:PATH"):
        load_dataset("mnist")


def test_image_data_validates_labels():
    images = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(TinyFormulaError, match="labels outside"):
        ImageData("x", images, torch.tensor([0, 1, 2, 3]), images, torch.zeros(4), num_classes=3)


# -- batch augmentation ----------------------------------------------------------------------------

def test_random_crop_shapes_and_content():
    images = torch.arange(2 * 1 * 6 * 6, dtype=torch.uint8).reshape(2, 1, 6, 6)
    pad = 2
    offsets = torch.tensor([[pad, pad], [0, 4]])  # centred: identity; corner: shifted
    out = augment.random_crop(images, offsets, pad)
    assert out.shape == images.shape and out.dtype == torch.uint8
    assert torch.equal(out[0], images[0])
    # Offset (0, 4): rows shifted down by 2 (zeros on top), columns shifted left by 2.
    assert (out[1, :, :2] == 0).all() and (out[1, :, :, 4:] == 0).all()
    assert torch.equal(out[1, 0, 2:, :4], images[1, 0, :4, 2:])


def test_random_crop_matches_per_sample_reference():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 10, 10), dtype=torch.uint8, generator=generator)
    pad = augment.crop_padding(10)
    offsets = augment.draw_crops(16, pad, generator)
    out = augment.random_crop(images, offsets, pad)
    padded = torch.nn.functional.pad(images, (pad,) * 4)
    for i, (y, x) in enumerate(offsets.tolist()):
        assert torch.equal(out[i], padded[i, :, y:y + 10, x:x + 10])


def test_flip_only_where_masked():
    images = torch.arange(2 * 1 * 2 * 3, dtype=torch.uint8).reshape(2, 1, 2, 3)
    out = augment.flip(images, torch.tensor([True, False]))
    assert torch.equal(out[0], images[0].flip(-1)) and torch.equal(out[1], images[1])


@pytest.mark.parametrize("resolution", [8, 28, 45])
def test_to_input_resizes_normalises_and_repeats_gray(resolution):
    images = torch.full((3, 1, 28, 28), 100, dtype=torch.uint8)
    x = augment.to_input(images, resolution, mean=(50.0,), std=(25.0,))
    assert x.shape == (3, 3, resolution, resolution) and x.dtype == torch.float32
    assert torch.allclose(x, torch.full_like(x, 2.0))
    assert x.is_contiguous(memory_format=torch.channels_last)
