"""The CUDA paths: graphed step, fallback, batches on the device. Skipped without a GPU."""

import pytest
import torch

from tinyformula import Scale, get_base
from tinyformula.data import load_dataset
from tinyformula.training import steps as steps_module
from tinyformula.training.batches import TrainBatches
from tinyformula.training.config import TrainConfig
from tinyformula.training.steps import WARMUP_STEPS, GraphedStep, make_step
from tinyformula.training.trainer import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TINY = Scale(r=0.5, d=0.25, w=0.25)
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def config(**overrides):
    settings = dict(train_size=512, batch_size=64, epochs=2, bn_recalibrate=256, val_size=300,
                    device="cuda")
    return TrainConfig(**{**settings, **overrides})


def test_the_same_batches_on_cpu_and_gpu(digits):
    kwargs = dict(train_size=200, batch_size=64, epochs=2, seed=3, resolution=16)
    cpu, gpu = TrainBatches(digits, **kwargs), TrainBatches(digits, **kwargs, device=CUDA)
    assert torch.equal(cpu.index, gpu.index.cpu()) and torch.equal(cpu.crops, gpu.crops.cpu())
    assert gpu.images.dtype == torch.uint8 and gpu.images.device.type == "cuda"
    for (x, y), (gx, gy) in zip(cpu, gpu):
        assert torch.equal(y, gy.cpu())
        torch.testing.assert_close(x, gx.cpu(), atol=1e-4, rtol=0)


def run_steps(step, batches, count):
    losses = []
    for k, (x, y) in enumerate(batches):
        if k == count:
            break
        losses.append(step(x, y).item())
    torch.cuda.synchronize()
    return losses


def build():
    torch.manual_seed(0)
    model = get_base("efficientnet_b0").build(TINY, 10, 32)
    model = model.to(CUDA, memory_format=torch.channels_last)
    return model.train()


@pytest.mark.parametrize("optimizer, ema", [("sgd", None), ("adamw", None), ("sgd", 0.9)])
def test_graphed_and_eager_steps_agree(digits, monkeypatch, optimizer, ema):
    """The same model, batches, optimizer and schedule: replayed graph against the fallback's
    eager steps; losses and final weights agree to rounding."""
    cfg = config(optimizer=optimizer, ema=ema)
    batches = TrainBatches(digits, train_size=512, batch_size=64, epochs=1, seed=0,
                           resolution=16, device=CUDA)
    graphed = make_step(build(), cfg, len(batches), CUDA)
    assert isinstance(graphed, GraphedStep)
    graph_losses = run_steps(graphed, batches, len(batches))
    assert graphed.graphed and graphed.note == ""

    def no_capture(self, x, y):
        raise RuntimeError("capture switched off for the test")

    monkeypatch.setattr(GraphedStep, "_capture", no_capture)
    eager = make_step(build(), cfg, len(batches), CUDA)
    eager_losses = run_steps(eager, batches, len(batches))
    assert not eager.graphed and "switched off" in eager.note
    torch.testing.assert_close(torch.tensor(graph_losses), torch.tensor(eager_losses),
                               rtol=2e-2, atol=2e-2)
    for a, b in zip(graphed.scored.state_dict().values(), eager.scored.state_dict().values()):
        if a.dtype.is_floating_point:
            torch.testing.assert_close(a, b, rtol=5e-2, atol=5e-3)
    assert graphed.lr.item() == pytest.approx(graphed.lr_table[-1].item())


def test_replays_train(digits):
    batches = TrainBatches(digits, train_size=512, batch_size=64, epochs=1, seed=0,
                           resolution=16, device=CUDA)
    step = make_step(build(), config(), len(batches), CUDA)
    run_steps(step, batches, WARMUP_STEPS + 1)
    before = [p.detach().clone() for p in step.model.parameters()]
    run_steps(step, list(batches)[WARMUP_STEPS + 1:], 2)
    assert step.graphed
    assert any(not torch.equal(a, p) for a, p in zip(before, step.model.parameters()))


def test_capture_failure_falls_back_and_says_so(digits, monkeypatch):
    def fail(self, x, y):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(GraphedStep, "_capture", fail)
    result = train(digits, "efficientnet_b0", TINY, config())
    assert result.status == "ok" and not result.graphed
    assert "CUDA graph capture failed" in result.message and "not permitted" in result.message


def test_graph_option_and_scores_within_noise(digits):
    graphed = train(digits, "efficientnet_b0", TINY, config())
    eager = train(digits, "efficientnet_b0", TINY, config(cuda_graph=False))
    assert graphed.graphed and not eager.graphed and graphed.message == ""
    assert graphed.images == eager.images == 1024
    assert abs(graphed.top1 - eager.top1) < 0.1  # short runs: seed noise is several points
    short = train(digits, "efficientnet_b0", TINY, config(train_size=128, epochs=1))
    assert short.steps == 2 and not short.graphed  # not longer than the warm-up: eager


def test_out_of_memory_is_reported(digits, monkeypatch):
    def oom(self, x, y):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")

    monkeypatch.setattr(steps_module.GraphedStep, "_capture", oom)
    result = train(digits, "efficientnet_b0", TINY, config())
    assert result.status == "oom" and "out of memory" in result.message
