"""The final recipe, GhostNetV3's way: re-parameterised training folded into the plain model,
resumable; teachers checked before a run, and the base network trained as one."""

import json
import os

import pytest
import torch

from tinyformula import TinyFormulaError, create_model, export_model, load_model
from tinyformula.data import load_dataset
from tinyformula.models.files import save_model
from tinyformula.nets.reparam import RepConv
from tinyformula.training.batches import TrainBatches
from tinyformula.training.config import RecipeConfig
from tinyformula.training.evaluate import evaluate
from tinyformula.training.recipe import base_teacher, train_final
from tinyformula.training.teacher import chance_bound, check_teacher

TINY = dict(r=0.5, d=0.25, w=0.25)   # 16 px at a 32 px base: a step takes milliseconds


def tiny_recipe(**overrides) -> RecipeConfig:
    settings = dict(epochs=2, train_size=256, batch_size=64, bn_recalibrate=128, val_size=200,
                    threads=1, ema=0.9)
    return RecipeConfig.of(**{**settings, **overrides})


def tiny_model(num_classes=10, seed=0):
    return create_model(num_classes=num_classes, resolution_base=32, seed=seed, **TINY)


def strip_times(history):
    return [{k: v for k, v in e.items() if k not in ("seconds", "train_seconds")}
            for e in history]


def same_state(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def branched(digits, tmp_path_factory, one_thread):
    """A tiny model trained re-parameterised (2 branches) for 2 epochs, uninterrupted."""
    out = tmp_path_factory.mktemp("branched")
    card = train_final(digits, tiny_model(), out, tiny_recipe(reparam=2))
    return out, card


@pytest.fixture(scope="module")
def teacher(digits, tmp_path_factory, one_thread):
    """A tiny model trained long enough to know something (about 80% on digits)."""
    out = tmp_path_factory.mktemp("teacher")
    card = train_final(digits, tiny_model(seed=7), out,
                       tiny_recipe(epochs=5, train_size=1024, seed=7))
    assert card["top1"] > 0.5
    return out


# -- re-parameterised training ---------------------------------------------------------------

def test_reparam_trains_branched_and_writes_the_plain_model(digits, branched, one_thread):
    out, card = branched
    assert card["status"] == "done" and card["recipe"]["reparam"] == 2
    assert "folded into the plain network" in card["weights"]
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    assert any(".convs.1." in k for k in saved["model"])          # the checkpoint: branched
    assert any(".convs.1." in k for k in saved["ema"])
    model = load_model(out)                                        # the model: plain
    assert not any(isinstance(m, RepConv) for m in model.modules())
    plain = tiny_model()
    assert model.state_dict().keys() == plain.state_dict().keys()
    assert model.tinyformula["trained"]["reparam"] == 2
    assert model.tinyformula["flops"] == plain.tinyformula["flops"]
    # The folded model scores what the branched EMA weights scored (ties aside).
    top1, _ = evaluate(model, digits, 16, torch.device("cpu"), tiny_recipe().train)
    assert abs(top1 - card["top1"]) <= 1 / 200


def test_plain_training_is_unchanged_by_the_reparam_setting(digits, tmp_path, one_thread):
    a = train_final(digits, tiny_model(), tmp_path / "a", tiny_recipe(epochs=1))
    b = train_final(digits, tiny_model(), tmp_path / "b", tiny_recipe(epochs=1, reparam=None))
    assert strip_times(a["epochs"]) == strip_times(b["epochs"])
    r = train_final(digits, tiny_model(), tmp_path / "r", tiny_recipe(epochs=1, reparam=1))
    assert r["epochs"][0]["loss"] != a["epochs"][0]["loss"]
    # Another setting in the same folder is another run: refused, nothing changed.
    before = (tmp_path / "a" / "checkpoint.pt").read_bytes()
    with pytest.raises(TinyFormulaError, match="recipe reparam: None there, 1 now"):
        train_final(digits, tiny_model(), tmp_path / "a", tiny_recipe(epochs=1, reparam=1))
    assert (tmp_path / "a" / "checkpoint.pt").read_bytes() == before


def test_reparam_resume_after_a_kill_equals_an_uninterrupted_run(digits, branched, tmp_path,
                                                                  one_thread):
    out, card = branched
    first = train_final(digits, tiny_model(), tmp_path, tiny_recipe(reparam=2), stop_after=1)
    assert first["status"] == "running"
    resumed = train_final(digits, tiny_model(seed=99), tmp_path, tiny_recipe(reparam=2))
    assert strip_times(resumed["epochs"]) == strip_times(card["epochs"])
    a = torch.load(out / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert same_state(a["model"], b["model"]) and same_state(a["ema"], b["ema"])
    assert same_state(load_model(out).state_dict(), load_model(tmp_path).state_dict())


def test_exported_onnx_of_a_reparam_model_is_the_plain_network(digits, branched, tmp_path,
                                                               one_thread):
    out, _ = branched
    model = load_model(out)
    report = export_model(model, "onnx", tmp_path / "model.onnx", digits, n_images=128)
    assert report.ok, report.message
    assert report.macs_exported == report.macs_cost_model == tiny_model().tinyformula["flops"]
    assert report.top1_exported == report.top1_torch


# -- teachers -----------------------------------------------------------------------------------

def test_kd_defaults_and_the_card_record_the_teachers_own_top1(digits, teacher, tmp_path,
                                                               one_thread):
    card = train_final(digits, tiny_model(), tmp_path, tiny_recipe(epochs=1, reparam=1),
                       teacher=load_model(teacher, "teacher"), teacher_path=str(teacher))
    entry = card["recipe"]["teacher"]
    assert card["recipe"]["kd_temperature"] == 1.0 and card["recipe"]["kd_weight"] == 0.5
    assert entry["path"] == str(teacher)
    assert entry["top1"] == json.loads((teacher / "card.json").read_text())["top1"]
    assert entry["check"]["images"] == 256 and entry["check"]["top1"] > chance_bound(10, 256)


def test_teachers_that_cannot_teach_are_refused_before_anything_is_written(digits, tmp_path,
                                                                          one_thread):
    untrained = tiny_model(seed=3).eval()
    with pytest.raises(TinyFormulaError, match="no better than chance"):
        train_final(digits, tiny_model(), tmp_path / "a", tiny_recipe(), teacher=untrained)
    blind = tiny_model(seed=3)
    blind.tinyformula = {**blind.tinyformula, "resolution": 0}
    with pytest.raises(TinyFormulaError, match="no usable input resolution"):
        train_final(digits, tiny_model(), tmp_path / "b", tiny_recipe(), teacher=blind)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    # A teacher that fails on the images (here: it expects one input channel).
    batches = TrainBatches(digits, train_size=64, batch_size=64, epochs=1, seed=0,
                           resolution=16)
    odd = torch.nn.Sequential(torch.nn.Conv2d(1, 10, 16), torch.nn.Flatten())
    odd.tinyformula = {"resolution": 16}
    with pytest.raises(TinyFormulaError, match="cannot take 16 px images"):
        check_teacher(odd, batches, torch.device("cpu"), 10)


class Attributes(torch.nn.Module):
    """A model whose conv + BatchNorm pair is a pair of attributes paired by ``forward`` (as
    in a traced torchvision model), where re-parameterisation cannot see the pairing."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 1, bias=False)
        self.bn = torch.nn.BatchNorm2d(8)
        self.head = torch.nn.Linear(8, 10)

    def forward(self, x):
        return self.head(self.bn(self.conv(x)).mean((2, 3)))


def test_reparam_of_a_model_with_nothing_to_branch_is_refused_before_writing(digits,
                                                                            tmp_path):
    model = Attributes()
    model.tinyformula = tiny_model().tinyformula
    with pytest.raises(TinyFormulaError, match="no depthwise or 1x1"):
        train_final(digits, model, tmp_path / "run", tiny_recipe(reparam=2))
    assert not (tmp_path / "run").exists()


def test_base_teacher_is_trained_once_then_reused(digits, tmp_path, one_thread):
    student = tiny_recipe(epochs=1, train_size=128)
    model, folder = base_teacher(digits, "efficientnet_b0", 8, student, tmp_path, epochs=2)
    folder_path = tmp_path / os.path.basename(folder)
    assert folder_path.name.startswith("teacher-efficientnet_b0-")
    card = json.loads((folder_path / "card.json").read_text())
    assert card["recipe"]["epochs"] == 2 and card["recipe"]["reparam"] is None
    assert (model.tinyformula["r"], model.tinyformula["d"], model.tinyformula["w"]) == (1, 1, 1)
    written = (folder_path / "model.pt").stat().st_mtime_ns
    again, same = base_teacher(digits, "efficientnet_b0", 8, student, tmp_path, epochs=2)
    assert same == folder and (folder_path / "model.pt").stat().st_mtime_ns == written
    assert same_state(model.state_dict(), again.state_dict())
    _, other = base_teacher(digits, "efficientnet_b0", 8, student, tmp_path, epochs=1)
    assert other != folder                                   # other settings: another teacher


# -- the command line ----------------------------------------------------------------------------

BASE = ["train", "--recipe", "final", "--data", "digits", "--r", "0.5", "--d", "0.25",
        "--w", "0.25", "--train-size", "256", "--batch-size", "64", "--val-size", "100",
        "--quiet"]


def test_cli_reparam_and_teacher_json(cli, teacher, tmp_path, one_thread):
    code, out, err = cli(*BASE, "--epochs", "1", "--reparam", "2", "--teacher", teacher,
                         "--out", tmp_path / "run", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["reparam"] == 2 and record["teacher"] == str(teacher)
    assert record["teacher_top1"] == json.loads((teacher / "card.json").read_text())["top1"]
    assert 0 < record["train_seconds"] <= record["seconds"]
    assert load_model(tmp_path / "run").tinyformula["trained"]["reparam"] == 2


@pytest.mark.parametrize("extra, message", [
    (["--reparam", "0"], "--reparam"),
    (["--reparam", "9"], "--reparam"),
    (["--reparam", "two"], "--reparam"),
    (["--teacher", "{tmp}/untrained.pt"], "no better than chance"),
    (["--teacher", "{tmp}/blind.pt"], "config.resolution must be"),  # the model schema
    (["--teacher", "{tmp}/five.pt"], "teacher has 5 classes"),
    (["--teacher", "{tmp}/corrupt.pt"], "truncated or corrupt"),
    (["--teacher", "{tmp}/untrained.pt", "--teacher-epochs", "3"], "needs --teacher base"),
    (["--teacher-epochs", "0", "--teacher", "base"], "--teacher-epochs"),
])
def test_cli_bad_reparam_and_teacher_is_one_line_exit_2(cli, tmp_path, extra, message):
    save_model(tiny_model(seed=3), tmp_path / "untrained.pt")
    blind = tiny_model(seed=3)
    blind.tinyformula = {**blind.tinyformula, "resolution": 0}
    save_model(blind, tmp_path / "blind.pt")
    save_model(tiny_model(num_classes=5), tmp_path / "five.pt")
    (tmp_path / "corrupt.pt").write_bytes(b"not a model")
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = BASE + [a.replace("{tmp}", str(tmp_path)) for a in extra] + ["--out",
                                                                         tmp_path / "o"]
    code, out, err = cli(*argv)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before   # nothing written


def test_cli_teacher_base_with_an_unwritable_out_trains_nothing(cli, tmp_path):
    (tmp_path / "a_file").write_text("x")
    code, _, err = cli(*BASE, "--teacher", "base", "--out", tmp_path / "a_file" / "o")
    assert code == 2 and "a_file is a file, not a folder" in err, err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_a_checkpoint_from_before_reparam_and_the_new_kd_defaults_still_resumes():
    from tinyformula.training.checkpoint import comparable

    new = {"model": {}, "data": "digits", "teacher": None,
           "recipe": {**tiny_recipe().flat(), "kd_temperature": 1.0}}
    old = {**new, "recipe": {k: v for k, v in new["recipe"].items() if k != "reparam"}}
    old["recipe"]["kd_temperature"] = 4.0
    assert comparable(old) == comparable(new)
    taught = {**new, "teacher": {"base": "efficientnet_b0"}}
    assert comparable({**old, "teacher": taught["teacher"]}) != comparable(taught)
    assert comparable({**new, "recipe": {**new["recipe"], "reparam": 2}}) != comparable(new)


def test_a_teacher_below_its_student_is_named_in_a_warning():
    """Distilling from a teacher that scored below the student most likely cost accuracy (the
    base at twice the student's epochs on small images does): the run says so."""
    from tinyformula.training.teacher import weaker_teacher

    card = {"top1": 0.795, "recipe": {"teacher": {"path": "t", "top1": 0.7616}}}
    warning = weaker_teacher(card)
    assert "76.16%" in warning and "79.50%" in warning and "--teacher-epochs" in warning
    assert weaker_teacher({"top1": 0.70, "recipe": {"teacher": {"top1": 0.80}}}) is None
    assert weaker_teacher({"top1": 0.70, "recipe": {"teacher": {"top1": None}}}) is None
    assert weaker_teacher({"top1": 0.70, "recipe": {"teacher": None}}) is None
