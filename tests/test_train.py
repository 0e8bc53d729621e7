"""The short-schedule trainer and the ``train`` command, on tiny budgets."""

import json
import math
from pathlib import Path

import pytest
import torch

from tinyformula import Scale, TinyFormulaError, get_base
from tinyformula.cli import main
from tinyformula.data import load_dataset
from tinyformula.training import batches as loader
from tinyformula.training import evaluate as evaluation
from tinyformula.training import trainer
from tinyformula.training.config import TrainConfig
from tinyformula.training.evaluate import eval_batch_size
from tinyformula.training.optim import lr_factor, param_groups
from tinyformula.training.trainer import train

TINY = Scale(r=0.5, d=0.25, w=0.25)  # 16 px, a few blocks: a step takes milliseconds
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def tiny_config(**overrides):
    settings = dict(train_size=256, batch_size=64, bn_recalibrate=128, val_size=200, threads=1)
    return TrainConfig(**{**settings, **overrides})


# -- pieces ----------------------------------------------------------------------------------------

def test_no_weight_decay_on_batchnorm_and_biases():
    model = get_base("efficientnet_b0").build(TINY, num_classes=10, resolution_base=32)
    decay, no_decay = param_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    decay_ids = {id(p) for p in decay["params"]}
    no_decay_ids = {id(p) for p in no_decay["params"]}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert {id(module.weight), id(module.bias)} <= no_decay_ids, name
        elif isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            assert id(module.weight) in decay_ids, name
            if module.bias is not None:
                assert id(module.bias) in no_decay_ids, name
    assert len(decay_ids) + len(no_decay_ids) == len(list(model.parameters()))


def test_schedule_warms_up_then_decays_to_zero():
    factors = [lr_factor(step, 100, 0.1) for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(factors[:10], factors[1:10]))
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert factors[-1] < 0.001
    assert lr_factor(0, 10, 0.0) == 1.0


def test_scoring_batch_size_by_device_and_resolution():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")  # a device name needs no GPU
    assert eval_batch_size(TrainConfig(), cpu, 32) == 500
    assert eval_batch_size(TrainConfig(), cuda, 32) == 4096
    assert eval_batch_size(TrainConfig(), cuda, 64) == 1024
    assert eval_batch_size(TrainConfig(batch_size=256), cuda, 224) == 256  # never below training's
    assert eval_batch_size(TrainConfig(eval_batch_size=77), cuda, 32) == 77


@pytest.mark.parametrize("field, value", [
    ("batch_size", 0), ("train_size", 0), ("epochs", 0), ("optimizer", "adam"), ("lr", -1.0),
    ("lr", float("nan")), ("warmup", 1.0), ("ema", 1.0), ("device", "tpu"), ("bn_recalibrate", -1),
    ("seed", -1), ("seed", 2**64), ("eval_batch_size", 0), ("cuda_graph", "yes"),
])
def test_bad_config_is_a_user_error(field, value):
    with pytest.raises(TinyFormulaError):
        TrainConfig(**{field: value})


def test_train_size_larger_than_dataset(digits):
    with pytest.raises(TinyFormulaError, match="larger than digits's 1,347 training images"):
        train(digits, "efficientnet_b0", TINY, TrainConfig(train_size=5000))


# -- behaviour of a run ----------------------------------------------------------------------------

def test_same_seed_same_result_and_cost_fields(digits):
    a = train(digits, "efficientnet_b0", TINY, tiny_config(seed=3))
    b = train(digits, "efficientnet_b0", TINY, tiny_config(seed=3))
    assert a.status == b.status == "ok"
    assert a.top1 == b.top1 and a.loss == b.loss
    cost = get_base("efficientnet_b0").cost(TINY, 10, 32)
    assert (a.flops, a.params, a.resolution) == (cost.flops, cost.params, 16)
    assert a.images == 256 and a.steps == 4 and a.images_per_s > 0 and a.seconds > 0
    assert a.batch_size == 64 and not a.graphed and a.message == ""
    c = train(digits, "efficientnet_b0", TINY, tiny_config(seed=4))
    assert c.loss != a.loss


def test_a_given_model_is_trained_in_place(digits):
    """train(model=) continues that module (a warm start): a fresh build would not be it."""
    base = get_base("efficientnet_b0")
    torch.manual_seed(123)  # other initial weights than train()'s own for seed 0
    model = base.build(TINY, digits.num_classes, digits.resolution_base)
    before = [p.detach().clone() for p in model.parameters()]
    result = train(digits, base, TINY, tiny_config(), model=model)
    assert result.status == "ok"
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    fresh = train(digits, base, TINY, tiny_config())
    assert result.top1 != fresh.top1 or result.loss != fresh.loss


def test_candidates_see_the_same_batches(digits, monkeypatch):
    """Common random numbers: data order and augmentation depend on the seed, not the model."""
    seen = []
    real = evaluation.to_input

    def spy(images, resolution, *args, **kwargs):
        seen.append(images.clone())
        return real(images, resolution, *args, **kwargs)

    monkeypatch.setattr(loader, "to_input", spy)  # training batches
    monkeypatch.setattr(evaluation, "to_input", spy)  # scoring batches
    config = tiny_config(bn_recalibrate=0, val_size=1)
    train(digits, "efficientnet_b0", TINY, config)
    first, seen[:] = list(seen), []
    train(digits, "efficientnet_b0", Scale(r=0.75, d=0.5, w=0.5), config)
    assert len(first) == len(seen) == 5  # 4 training batches, 1 scoring batch
    assert all(torch.equal(a, b) for a, b in zip(first, seen))
    seen[:] = []
    train(digits, "efficientnet_b0", TINY, tiny_config(bn_recalibrate=0, val_size=1, seed=1))
    assert not torch.equal(first[0], seen[0])


def test_ragged_train_size_keeps_one_batch_shape(digits):
    """200 images at batch 64, two epochs: one stream of 400 images, 6 full batches; the last
    16 are dropped. A batch larger than the subset shrinks to it."""
    result = train(digits, "efficientnet_b0", TINY, tiny_config(train_size=200, epochs=2))
    assert (result.steps, result.batch_size, result.images) == (6, 64, 384)
    small = train(digits, "efficientnet_b0", TINY, tiny_config(train_size=40, val_size=10))
    assert (small.steps, small.batch_size, small.images) == (1, 40, 40)
    with pytest.raises(TinyFormulaError, match="at least 2 images"):
        train(digits, "efficientnet_b0", TINY, tiny_config(train_size=1))


def test_huge_learning_rate_is_reported_as_diverged(digits):
    result = train(digits, "efficientnet_b0", TINY, tiny_config(optimizer="sgd", lr=1e12))
    assert result.status == "diverged"
    assert result.top1 is None and result.loss is None
    assert "nan" in result.message or "inf" in result.message


def test_cuda_out_of_memory_is_reported_not_raised(digits, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")

    monkeypatch.setattr(trainer, "_run", out_of_memory)
    result = train(digits, "efficientnet_b0", TINY, tiny_config())
    assert result.status == "oom" and result.top1 is None and "out of memory" in result.message


def test_ema_and_adamw_runs_score(digits):
    plain = train(digits, "efficientnet_b0", TINY, tiny_config())
    ema = train(digits, "efficientnet_b0", TINY, tiny_config(ema=0.9))
    adamw = train(digits, "efficientnet_b0", TINY, tiny_config(optimizer="adamw"))
    assert TrainConfig().optimizer == "sgd"
    assert ema.status == adamw.status == "ok"
    assert ema.loss != plain.loss and adamw.loss != plain.loss


def test_threads_setting_is_restored(digits):
    before = torch.get_num_threads()
    train(digits, "efficientnet_b0", TINY, tiny_config(threads=1, train_size=128, val_size=10))
    assert torch.get_num_threads() == before


@pytest.mark.slow
@pytest.mark.skipif(not FASHION_DIR.is_dir(),
                    reason="Fashion-MNIST absent: apt-get install dataset-fashion-mnist")
def test_learns_real_fashion_mnist():
    """A small net (16 px, c ~ 0.1) on 4,096 real images scores far above chance (10%) on
    held-out images: 55% measured with one thread; with BatchNorm statistics left stale it
    scores about 10%."""
    data = load_dataset("fashion-mnist", FASHION_DIR)
    result = train(data, "efficientnet_b0", Scale(r=0.5, d=0.5, w=0.5),
                   TrainConfig(train_size=4096, val_size=2000, bn_recalibrate=1024, threads=1))
    assert result.status == "ok"
    assert result.top1 > 0.40, result


# -- the command -----------------------------------------------------------------------------------

def test_cli_train_json(capsys):
    code = main(["train", "--data", "digits", "--r", "0.5", "--d", "0.25", "--w", "0.25",
                 "--train-size", "128", "--batch-size", "64", "--val-size", "50", "--json"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert list(record) == ["top1", "loss", "images_per_s", "seconds", "flops", "params",
                            "resolution", "status"]
    assert record["status"] == "ok" and record["resolution"] == 16 and 0 <= record["top1"] <= 1
    assert math.isfinite(record["loss"])


def test_cli_no_cuda_graph_changes_nothing_on_cpu(capsys):
    args = ["train", "--data", "digits", "--r", "0.5", "--d", "0.25", "--w", "0.25",
            "--train-size", "128", "--batch-size", "64", "--val-size", "50", "--json",
            "--device", "cpu"]
    records = []
    for extra in ([], ["--no-cuda-graph"]):
        assert main(args + extra) == 0
        records.append(json.loads(capsys.readouterr().out))
    assert records[0]["top1"] == records[1]["top1"] and records[0]["loss"] == records[1]["loss"]


def test_cli_train_table(capsys):
    code = main(["train", "--data", "digits", "--r", "0.5", "--d", "0.25", "--w", "0.25",
                 "--train-size", "128", "--val-size", "50", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    for label in ("top-1", "loss", "images/s", "seconds", "FLOPs", "params"):
        assert label in out


@pytest.mark.parametrize("args, message", [
    (["--data", "mnist"], "unknown dataset 'mnist'; known: fashion-mnist"),
    (["--data", "digits", "--batch-size", "0"], "--batch-size: must be a whole number from 1 to"),
    (["--data", "digits", "--train-size", "99999"], "larger than digits's"),
    (["--data", "fashion-mnist", "--data-dir", "/nonexistent/x"], "does not exist"),
    (["--data", "cifar10", "--data-dir", "/nonexistent/x"], "does not exist"),
    (["--data", "imagefolder:/nonexistent/x"], "does not exist"),
    (["--data", "digits", "--base", "resnet"], "unknown base 'resnet'"),
    (["--data", "digits", "--r", "0"], "--r: must be a finite number in (0, 16]"),
])
def test_cli_train_bad_input_is_one_line_exit_2(args, message, capsys):
    try:
        code = main(["train", "--quiet"] + args)
    except SystemExit as exit_:  # argparse's own errors exit from inside the parser
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_empty_image_folder(tmp_path, capsys):
    assert main(["train", "--quiet", "--data", f"imagefolder:{tmp_path}"]) == 2
    assert "no class folders" in capsys.readouterr().err
