"""Photo batches: random-resized crops drawn in relative coordinates (common random numbers at
every resolution), and batches streamed from a mapped array equal to batches held whole."""

import math

import pytest
import torch

from tinyformula import Scale, TrainConfig, get_base
from tinyformula.data.augment import (
    CROP_RATIO,
    CROP_SCALE,
    draw_resized_crops,
    resized_crop,
    supersampling,
)
from tinyformula.data.images import ImageData, ImageRows
from tinyformula.training import batches as batches_module
from tinyformula.training.batches import TrainBatches
from tinyformula.training.steps import make_step


def photo_data(n=40, size=24, rows=None, augmentation="resized-crop"):
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=generator)
    labels = torch.arange(n) % 4
    train = images if rows is None else ImageRows(images, rows)
    train_labels = labels if rows is None else labels[rows]
    return ImageData("photos", train, train_labels, images[:8], labels[:8], num_classes=4,
                     resolution_base=224, augmentation=augmentation)


def test_crop_boxes_follow_the_imagenet_ranges():
    boxes = draw_resized_crops(4000, torch.Generator().manual_seed(0))
    top, left, height, width = boxes.unbind(1)
    assert bool(((top >= 0) & (left >= 0) & (top + height <= 1 + 1e-6)
                 & (left + width <= 1 + 1e-6)).all())
    area, aspect = height * width, width / height
    whole = (height == 1) & (width == 1)
    assert bool(((area >= CROP_SCALE[0] - 1e-5) & (area <= CROP_SCALE[1] + 1e-5)).all())
    tried = ~whole
    assert bool(((aspect[tried] >= CROP_RATIO[0] - 1e-4)
                 & (aspect[tried] <= CROP_RATIO[1] + 1e-4)).all())
    assert 0.3 < float(area.mean()) < 0.7  # uniform in [0.08, 1], some tries not fitting
    again = draw_resized_crops(4000, torch.Generator().manual_seed(0))
    assert torch.equal(boxes, again)


def test_resized_crop_cuts_the_box_and_mirrors():
    image = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    image[:, 0, :, :8] = 200   # left half red
    image[:, 2, :, 8:] = 100   # right half blue
    whole = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    same = resized_crop(image, whole, 16)
    torch.testing.assert_close(same, image.float(), atol=1e-3, rtol=0)
    mirrored = resized_crop(image, whole, 16, flips=torch.tensor([True]))
    torch.testing.assert_close(mirrored, image.flip(3).float(), atol=1e-3, rtol=0)
    left = resized_crop(image, torch.tensor([[0.25, 0.0, 0.5, 0.5]]), 6)
    assert left.shape == (1, 3, 6, 6)
    torch.testing.assert_close(left[0, 0], torch.full((6, 6), 200.0), atol=1e-3, rtol=0)
    assert float(left[0, 2].abs().max()) < 1e-3
    # Shrinking a large box averages several samples per pixel (no aliasing).
    assert supersampling(1.0, 224, 56) == 4 and supersampling(0.3, 224, 112) == 1
    assert supersampling(1.0, 224, 20) == 4  # at most 4 x 4


def test_every_resolution_sees_the_same_crops():
    data = photo_data()
    a = TrainBatches(data, train_size=32, batch_size=8, epochs=2, seed=3, resolution=12)
    b = TrainBatches(data, train_size=32, batch_size=8, epochs=2, seed=3, resolution=20)
    assert a.crops.shape == (8, 8, 4) and a.crops.dtype == torch.float32
    for name in ("subset", "index", "crops", "flips"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    (xa, la), (xb, lb) = a.batch(0), b.batch(0)
    assert xa.shape == (8, 3, 12, 12) and xb.shape == (8, 3, 20, 20) and torch.equal(la, lb)
    # The same boxes: the small batch is (about) the large one shrunk.
    shrunk = torch.nn.functional.interpolate(xb, size=(12, 12), mode="area")
    assert float((shrunk - xa).abs().mean()) < float(xa.abs().mean()) * 0.5
    teacher = TrainBatches(data, train_size=32, batch_size=8, epochs=2, seed=3, resolution=12,
                           extra_resolutions=(20,))
    x, labels, extra = teacher.batch(0)
    assert torch.equal(x, xa) and torch.equal(extra, xb)
    native, _ = a.augmented(0)
    assert native.dtype == torch.uint8 and native.shape == (8, 3, 24, 24)


@pytest.mark.parametrize("augmentation", ["pad-crop", "resized-crop"])
@pytest.mark.parametrize("view", [False, True])
def test_streamed_batches_equal_resident_ones(monkeypatch, augmentation, view):
    rows = torch.arange(39, -1, -1) if view else None  # a view of a mapped array, reversed
    data = photo_data(rows=rows, augmentation=augmentation)
    settings = dict(train_size=30, batch_size=8, epochs=2, seed=5, resolution=16)
    resident = TrainBatches(data, **settings)
    monkeypatch.setitem(batches_module.RESIDENT_BYTES, "cpu", 0)
    streamed = TrainBatches(data, **settings)
    assert resident.resident and not streamed.resident and streamed.images is None
    for step in range(len(resident)):
        for a, b in zip(resident.batch(step), streamed.batch(step)):
            assert torch.equal(a, b), step
    assert streamed._stream._pool is None  # the thread stops after the last batch
    for a, b in zip(resident.first_images(20, 8), streamed.first_images(20, 8)):
        assert torch.equal(a, b)
    # Out of order (a resumed run reads its remaining batches by number): still the same.
    again = TrainBatches(data, **settings)
    assert all(torch.equal(a, b) for a, b in zip(again.batch(3), resident.batch(3)))
    assert all(torch.equal(a, b) for a, b in zip(again.batch(1), resident.batch(1)))
    again.close()


def test_a_photo_batch_trains(one_thread):
    data = photo_data()
    batches = TrainBatches(data, train_size=16, batch_size=8, epochs=1, seed=0,
                           resolution=int(224 * 0.07))
    model = get_base("efficientnet_b0").build(Scale(0.07, 0.25, 0.25), 4, 224)
    step = make_step(model, TrainConfig(), len(batches), torch.device("cpu"))
    for x, labels in batches:
        loss = step(x, labels)
        assert math.isfinite(loss.item())


def test_scoring_batches_shrink_for_photos_on_the_cpu():
    from tinyformula.training.evaluate import eval_batch_size

    cpu = torch.device("cpu")
    assert eval_batch_size(TrainConfig(), cpu, 128) == 500  # every small-image candidate
    assert eval_batch_size(TrainConfig(), cpu, 224) == 500 * 128 * 128 // 224 ** 2
    assert eval_batch_size(TrainConfig(), cpu, 448) == 128  # never below the training batch
