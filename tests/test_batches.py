"""The up-front batch draws (TrainBatches) and the eager step, on CPU."""

import pytest
import torch

from tinyformula import Scale, TinyFormulaError, get_base
from tinyformula.data.augment import (
    crop_padding,
    draw_crops,
    draw_flips,
    flip,
    random_crop,
    to_input,
)
from tinyformula.data.images import ImageData
from tinyformula.training.batches import TrainBatches
from tinyformula.training.config import TrainConfig
from tinyformula.training.optim import lr_factor
from tinyformula.training.steps import EagerStep, GraphedStep, make_step


def fake_data(n: int = 96, size: int = 12, flip_ok: bool = True) -> ImageData:
    generator = torch.Generator().manual_seed(123)
    images = torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=generator)
    labels = torch.arange(n) % 10
    return ImageData(name="fake", train_images=images, train_labels=labels,
                     val_images=images[:10], val_labels=labels[:10], num_classes=10, flip=flip_ok)


def per_epoch_batches(data, train_size, batch_size, epochs, seed, resolution, augment=True):
    """The trainer's loop before the draws moved up front (train_size a multiple of the batch):
    a permutation per epoch, then per batch its crops and flips, interleaved."""
    generator = torch.Generator().manual_seed(seed)
    subset = torch.randperm(len(data.train_images), generator=generator)[:train_size]
    pad = crop_padding(data.size)
    out = []
    for _ in range(epochs):
        order = subset[torch.randperm(len(subset), generator=generator)]
        for start in range(0, train_size, batch_size):
            index = order[start:start + batch_size]
            images, labels = data.train_images[index], data.train_labels[index]
            if augment:
                crops = draw_crops(len(index), pad, generator)
                flips = draw_flips(len(index), generator)
                images = random_crop(images, crops, pad)
                if data.flip:
                    images = flip(images, flips)
            out.append((to_input(images, resolution, data.mean, data.std), labels))
    return out


def make(data, **overrides):
    settings = dict(train_size=64, batch_size=16, epochs=2, seed=0, resolution=16)
    return TrainBatches(data, **{**settings, **overrides})


@pytest.mark.parametrize("flip_ok, augment", [(True, True), (False, True), (True, False)])
def test_same_batches_as_the_per_epoch_loop(flip_ok, augment):
    data = fake_data(flip_ok=flip_ok)
    expected = per_epoch_batches(data, 64, 16, 3, seed=5, resolution=16, augment=augment)
    got = list(make(data, epochs=3, seed=5, augment=augment))
    assert len(got) == len(expected) == 12
    for (x, y), (x_ref, y_ref) in zip(got, expected):
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref)


def test_draws_are_fixed_by_the_seed_alone():
    data = fake_data()
    a, b = make(data, seed=3), make(data, seed=3, resolution=24)  # another candidate's size
    assert torch.equal(a.subset, b.subset) and torch.equal(a.index, b.index)
    assert torch.equal(a.crops, b.crops) and torch.equal(a.flips, b.flips)
    assert all(torch.equal(x, y) and torch.equal(la, lb)
               for (x, la), (y, lb) in zip(make(data, seed=3), a))
    c = make(data, seed=4)
    assert not torch.equal(a.index, c.index)


def test_one_static_shape_and_the_stream_rule():
    """70 images, batch 16, 3 epochs: 210 images in one stream, 13 full batches (208 images),
    a batch crossing an epoch's end filled from the next epoch's order."""
    data = fake_data()
    batches = make(data, train_size=70, epochs=3)
    assert len(batches) == 13 and batches.batch_size == 16 and batches.total_images == 208
    for x, labels in batches:
        assert x.shape == (16, 3, 16, 16) and labels.shape == (16,)
        assert x.is_contiguous(memory_format=torch.channels_last)
    stream = batches.index.flatten()
    for epoch in range(2):
        assert sorted(stream[70 * epoch:70 * (epoch + 1)].tolist()) == list(range(70))
    assert len(set(stream[140:].tolist())) == 68
    first = batches.index[0]
    assert torch.equal(batches.labels[first], data.train_labels[batches.subset[first]])


def test_small_subsets():
    data = fake_data()
    batches = make(data, train_size=10, batch_size=16, epochs=2)
    assert (len(batches), batches.batch_size) == (2, 10)
    with pytest.raises(TinyFormulaError, match="at least 2 images"):
        make(data, train_size=1)
    with pytest.raises(TinyFormulaError, match="at least 2 images"):
        make(data, batch_size=1)


def test_recalibration_images_are_the_first_of_the_subset_unaugmented():
    data = fake_data()
    batches = make(data)
    chunks = list(batches.first_images(33, 16))  # 16 + 16 + a lone image, left out
    assert [len(x) for x in chunks] == [16, 16]
    expected = to_input(data.train_images[batches.subset[:32]], 16, data.mean, data.std)
    assert torch.equal(torch.cat(chunks), expected)


# -- the step on CPU -------------------------------------------------------------------------------

def test_cpu_step_is_eager_and_follows_the_schedule():
    model = get_base("efficientnet_b0").build(Scale(0.5, 0.25, 0.25), 10, 32)
    config = TrainConfig(lr=0.1, warmup=0.25)
    step = make_step(model, config, total_steps=4, device=torch.device("cpu"))
    assert isinstance(step, EagerStep) and not step.graphed and step.scored is model
    batches = make(fake_data(), train_size=64, epochs=1)
    seen = []
    for x, labels in batches:
        step(x, labels)
        seen.append(step.optimizer.param_groups[0]["lr"])
    assert seen == [0.1 * lr_factor(k, 4, 0.25) for k in range(4)]
    with pytest.raises(ValueError, match="CUDA"):
        GraphedStep(model, config, 4, torch.device("cpu"))


def test_device_tensor_schedule_and_ema_match_the_float_ones():
    """What the CUDA graph reads from device tensors - SGD's learning rate (fused SGD) and
    the EMA weight - gives the same weights as the float path; checked on CPU tensors."""
    import copy

    from tinyformula.training.optim import WeightEma, make_optimizer

    torch.manual_seed(0)
    config = TrainConfig(optimizer="sgd")
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    twin = copy.deepcopy(model)
    lr = torch.tensor(0.0)
    plain, fused = make_optimizer(model, config), make_optimizer(twin, config, lr=lr)
    assert all(group["lr"] is lr for group in fused.param_groups)
    ema, twin_ema = WeightEma(model, 0.9), WeightEma(twin, 0.9)
    for k in range(5):
        x = torch.randn(8, 4)
        for group in plain.param_groups:
            group["lr"] = 0.05 * lr_factor(k, 5, 0.2)
        lr.fill_(0.05 * lr_factor(k, 5, 0.2))
        for net, optimizer in ((model, plain), (twin, fused)):
            optimizer.zero_grad()
            net(x).pow(2).mean().backward()
            optimizer.step()
        ema.update(model)
        twin_ema.update_with(twin, torch.tensor(twin_ema.weight(k + 1)))
    for a, b in zip(list(model.state_dict().values()) + list(ema.model.state_dict().values()),
                    list(twin.state_dict().values()) + list(twin_ema.model.state_dict().values())):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
