"""create_model / load_model, the build command, and the final recipe (resume, KD, bad input)."""

import json
import math

import numpy as np
import pytest
import torch

from tinyformula import TinyFormulaError, create_model, load_model
from tinyformula.data import load_dataset
from tinyformula.formula.estimator import TinyFormula
from tinyformula.models.files import save_model
from tinyformula.nets.build import param_count
from tinyformula.training.config import RecipeConfig
from tinyformula.training.recipe import train_final

CONFIG_KEYS = ["base", "r", "d", "w", "resolution", "resolution_base", "num_classes", "flops",
               "params", "c", "budget", "budget_as_typed", "cost", "unit", "reference",
               "formula"]
TINY = dict(r=0.5, d=0.25, w=0.25)   # 16 px at a 32 px base: a step takes milliseconds


def tiny_recipe(**overrides) -> RecipeConfig:
    settings = dict(epochs=2, train_size=256, batch_size=64, bn_recalibrate=128, val_size=200,
                    threads=1, ema=0.9)
    return RecipeConfig.of(**{**settings, **overrides})


def tiny_model(num_classes=10, seed=0):
    return create_model(num_classes=num_classes, resolution_base=32, seed=seed, **TINY)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory, one_thread):
    """A tiny model trained for 2 epochs without interruption (shared by several tests)."""
    out = tmp_path_factory.mktemp("trained")
    card = train_final(digits, tiny_model(), out, tiny_recipe())
    return out, card


def strip_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in ("seconds", "train_seconds")}
            for e in history]


def state_dicts_equal(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- create_model ----------------------------------------------------------------------------------

def test_create_model_from_a_budget_with_the_builtin_formula():
    model = create_model(flops=0.25)
    config = model.tinyformula
    assert list(config) == CONFIG_KEYS
    assert config["base"] == "efficientnet_b0" and config["num_classes"] == 1000
    assert 0.98 * 0.25 <= config["c"] <= 0.25 and config["budget"] == 0.25
    assert "TinyNet A-E" in config["formula"]
    rec = TinyFormula.builtin().recommend(0.25)
    assert (config["r"], config["d"], config["w"], config["flops"]) == (rec.r, rec.d, rec.w,
                                                                        rec.flops)
    assert param_count(model) == config["params"] == rec.params
    assert model.input_resolution == config["resolution"] == rec.resolution


def test_create_model_from_a_fitted_formula_takes_its_classes_and_resolution(tmp_path):
    c = np.geomspace(0.03, 1.0, 6)
    path = TinyFormula("efficientnet_b0", resolution_base=32, num_classes=10,
                       source="test frontier").fit(
        {"c": c, "r": 1.0 + 0.2 * np.log(c), "d": 1.0 + 0.1 * np.log(c)}).save(tmp_path / "f.json")
    config = create_model(flops=0.25, formula=path).tinyformula
    assert (config["num_classes"], config["resolution_base"]) == (10, 32)
    assert config["formula"] == "test frontier" and config["c"] <= 0.25
    assert create_model(flops=0.25, formula=str(path), num_classes=7).tinyformula[
        "num_classes"] == 7


def test_create_model_giant_and_explicit():
    giant = create_model(flops=0.25, formula="giant", num_classes=10, resolution_base=32)
    assert "giant" in giant.tinyformula["formula"] and giant.tinyformula["c"] <= 0.25
    explicit = create_model(r=0.5, d=0.5, num_classes=10, resolution_base=32).tinyformula
    assert (explicit["r"], explicit["d"], explicit["w"], explicit["resolution"]) == (
        0.5, 0.5, 1.0, 16)
    assert explicit["budget"] is None and explicit["formula"] == "explicit r, d, w"
    assert create_model().tinyformula["c"] == 1.0


def test_create_model_seed_fixes_the_weights():
    a, b, c = tiny_model(seed=1), tiny_model(seed=1), tiny_model(seed=2)
    assert state_dicts_equal(a.state_dict(), b.state_dict())
    assert not state_dicts_equal(a.state_dict(), c.state_dict())


@pytest.mark.parametrize("kwargs, message", [
    (dict(flops=7), "shrinks networks"),
    (dict(flops=float("nan")), "finite number above 0"),
    (dict(flops=0.25, r=0.5), "not both"),
    (dict(formula="giant"), "needs a budget"),
    (dict(flops=0.25, formula="/nonexistent/formula.json"), "no formula file"),
    (dict(base="vgg"), "unknown base"),
    (dict(r=0.0), "r must be a finite number in"),
])
def test_create_model_bad_input(kwargs, message):
    with pytest.raises(TinyFormulaError, match=message):
        create_model(**kwargs)


# -- model files -----------------------------------------------------------------------------------

def test_build_command_and_load_model_round_trip(cli, tmp_path):
    out = tmp_path / "model.pt"
    code, stdout, _ = cli("build", "--flops", "0.25", "--num-classes", "10",
                          "--resolution-base", "32", "--out", out, "--json")
    assert code == 0
    printed = json.loads(stdout)
    model = load_model(out)
    assert model.tinyformula == {k: v for k, v in printed.items() if k != "out"}
    again = create_model(flops=0.25, num_classes=10, resolution_base=32, seed=0)
    assert again.tinyformula == model.tinyformula
    assert state_dicts_equal(again.state_dict(), model.state_dict())  # --seed 0 by default
    assert not model.training


@pytest.mark.parametrize("content, message", [
    (None, "no model file"),
    (b"PK\x03\x04 truncated", "truncated or corrupt"),
    ({"weights": 1}, "not a tinyformula model file"),
])
def test_load_model_refuses_missing_and_foreign_files(tmp_path, content, message):
    path = tmp_path / "model.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(TinyFormulaError, match=message):
        load_model(path)


def test_save_model_is_atomic_on_an_unwritable_destination(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(TinyFormulaError, match="cannot write"):
        save_model(tiny_model(), tmp_path / "file" / "model.pt")


# -- the final recipe ------------------------------------------------------------------------------

def test_final_recipe_writes_weights_card_and_curve(trained):
    out, card = trained
    assert card["status"] == "done" and len(card["epochs"]) == 2
    assert [e["epoch"] for e in card["epochs"]] == [1, 2]
    assert all(0 <= e["top1"] <= 1 and 0 <= e["top1_ema"] <= 1 and math.isfinite(e["loss"])
               for e in card["epochs"])
    on_disk = json.loads((out / "card.json").read_text())
    assert on_disk["top1"] == card["top1"] == card["epochs"][-1]["top1_ema"]
    for key in ("model", "flops", "params", "data", "recipe", "epochs", "command", "weights"):
        assert key in on_disk
    assert "held-out split" in on_disk["data"]["note"]
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = load_model(out)
    assert model.tinyformula["trained"] == {"recipe": "final", "epochs": 2, "weights": "ema",
                                            "top1": card["top1"]}
    assert model.tinyformula["data"]["name"] == "digits"


def test_resume_after_a_kill_equals_an_uninterrupted_run(digits, trained, tmp_path, one_thread):
    out, card = trained
    # The first run "dies" after epoch 1; the same call on the same folder continues it.
    first = train_final(digits, tiny_model(), tmp_path, tiny_recipe(), stop_after=1)
    assert first["status"] == "running" and len(first["epochs"]) == 1
    resumed = train_final(digits, tiny_model(seed=99), tmp_path, tiny_recipe())
    assert resumed["status"] == "done"
    assert strip_times(resumed["epochs"]) == strip_times(card["epochs"])
    a = torch.load(out / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state_dicts_equal(a["model"], b["model"]) and state_dicts_equal(a["ema"], b["ema"])
    assert state_dicts_equal(load_model(out).state_dict(), load_model(tmp_path).state_dict())
    # A finished run is not trained again.
    assert train_final(digits, tiny_model(), tmp_path, tiny_recipe())["epochs"] == \
        resumed["epochs"]


def test_distillation_from_a_teacher(digits, trained, tmp_path, one_thread):
    out, _ = trained
    teacher = load_model(out, "teacher")
    plain = train_final(digits, tiny_model(), tmp_path / "plain", tiny_recipe(epochs=1))
    kd = train_final(digits, tiny_model(), tmp_path / "kd", tiny_recipe(epochs=1),
                     teacher=teacher, teacher_path=str(out))
    assert kd["status"] == "done" and kd["epochs"][0]["loss"] != plain["epochs"][0]["loss"]
    assert kd["recipe"]["teacher"]["path"] == str(out)
    assert kd["recipe"]["kd_temperature"] == 1.0 and kd["recipe"]["kd_weight"] == 0.5
    with pytest.raises(TinyFormulaError, match="teacher has 5 classes"):
        other = tiny_model(num_classes=5)
        train_final(digits, tiny_model(), tmp_path / "bad", tiny_recipe(), teacher=other)
    assert not (tmp_path / "bad").exists()


def test_cli_final_recipe_and_resume_refusals(cli, trained, tmp_path, one_thread):
    out, card = trained
    base = ["train", "--recipe", "final", "--data", "digits", "--r", "0.5", "--d", "0.25",
            "--w", "0.25", "--train-size", "256", "--batch-size", "64", "--val-size", "200",
            "--quiet"]
    run = tmp_path / "run"
    code, stdout, _ = cli(*base, "--epochs", "1", "--out", run, "--json")
    assert code == 0
    record = json.loads(stdout)
    assert record["status"] == "done" and record["epochs"] == 1
    assert json.loads((run / "card.json").read_text())["command"].startswith(
        "tinyformula train --recipe final")
    before = (run / "checkpoint.pt").read_bytes()
    code, _, err = cli(*base, "--epochs", "2", "--out", run)
    assert code == 2 and "holds a different training run (recipe epochs: 1 there, 2 now)" in err
    assert (run / "checkpoint.pt").read_bytes() == before
    (run / "checkpoint.pt").write_bytes(before[: len(before) // 2])
    damaged = (run / "checkpoint.pt").read_bytes()
    code, _, err = cli(*base, "--epochs", "1", "--out", run)
    assert code == 2 and "truncated or corrupt" in err and err.count("\n") == 1
    assert (run / "checkpoint.pt").read_bytes() == damaged  # left exactly as it was


def _bad_files(tmp_path):
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint at all")
    save_model(tiny_model(num_classes=5), tmp_path / "five.pt")
    (tmp_path / "a_file").write_text("x")
    return tmp_path


@pytest.mark.parametrize("argv, message", [
    (["train", "--recipe", "final", "--data", "digits"], "needs --out DIR"),
    (["train", "--data", "digits", "--teacher", "{tmp}/five.pt"], "--teacher needs --recipe final"),
    (["train", "--recipe", "final", "--data", "digits", "--out", "{tmp}/o", "--kd-weight", "0.5"],
     "--kd-weight needs --teacher"),
    (["train", "--recipe", "final", "--data", "digits", "--out", "{tmp}/o", "--teacher",
      "{tmp}/missing.pt"], "no teacher file"),
    (["train", "--recipe", "final", "--data", "digits", "--out", "{tmp}/o", "--teacher",
      "{tmp}/corrupt.pt"], "truncated or corrupt"),
    (["train", "--recipe", "final", "--data", "digits", "--out", "{tmp}/o", "--r", "0.5",
      "--teacher", "{tmp}/five.pt"], "teacher has 5 classes"),
    (["train", "--recipe", "final", "--data", "digits", "--out", "{tmp}/o", "--model",
      "{tmp}/five.pt"], "has 5 classes, the data has 10"),
    (["train", "--recipe", "final", "--data", "digits", "--out", "{tmp}/o", "--flops", "7"],
     "shrinks networks"),
    (["train", "--recipe", "final", "--data", "digits", "--out", "{tmp}/o", "--flops", "0.2",
      "--r", "0.5"], "not --budget and --r/--d/--w"),
    (["train", "--recipe", "final", "--data", "digits", "--out", "{tmp}/a_file/o", "--r",
      "0.5"], "a_file is a file, not a folder"),
    (["train", "--recipe", "final", "--data", "digits", "--out", "{tmp}/o", "--ema", "1.5"],
     "in [0, 1)"),
    (["build", "--flops", "0.25", "--out", "{tmp}/nofolder/m.pt"], "does not exist"),
    (["build", "--flops", "0", "--out", "{tmp}/m.pt"], "finite number above 0"),
    (["build", "--formula", "giant", "--out", "{tmp}/m.pt"], "--formula needs a budget"),
])
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path, argv, message):
    folder = _bad_files(tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    code, out, err = cli(*[a.replace("{tmp}", str(folder)) for a in argv])
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    assert not (folder / "o").exists() or not any((folder / "o").iterdir())


@pytest.mark.parametrize("extra", [[], ["--reparam", "2"]], ids=["plain", "reparam"])
def test_kill_9_then_the_same_command_resumes_with_nothing_lost(cli, tmp_path, one_thread,
                                                                 extra):
    """A real ``kill -9`` as soon as the first epoch's checkpoint lands; the same command then
    ends with the weights of an uninterrupted run (re-parameterised too: the checkpoint holds
    the branched weights, the model file the folded ones)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    argv = ["train", "--recipe", "final", "--data", "digits", "--r", "0.5", "--d", "0.25",
            "--w", "0.25", "--train-size", "512", "--batch-size", "64", "--val-size", "100",
            "--epochs", "3", "--quiet", *extra]
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "tinyformula.cli", *argv, "--out",
                                str(killed)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint.pt").exists() and process.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert len(torch.load(killed / "checkpoint.pt", weights_only=True)["history"]) < 3
    code, _, err = cli(*argv, "--out", killed)
    assert code == 0, err
    code, _, err = cli(*argv, "--out", tmp_path / "whole")
    assert code == 0, err
    a = torch.load(killed / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 3
    assert state_dicts_equal(a["model"], b["model"]) and state_dicts_equal(a["ema"], b["ema"])
    assert [e["top1"] for e in a["history"]] == [e["top1"] for e in b["history"]]
    assert state_dicts_equal(load_model(killed).state_dict(),
                             load_model(tmp_path / "whole").state_dict())


@pytest.mark.parametrize("content", [b"root:x:0:0:root:/root:/bin/bash\n", b"garbage", b""])
def test_a_text_or_empty_file_is_refused_as_a_model_in_one_line(tmp_path, content):
    """Whatever way a foreign file breaks torch's unpickler (an IndexError for a passwd-like
    text), loading it is one TinyFormulaError naming the file."""
    path = tmp_path / "teacher.pt"
    path.write_bytes(content)
    with pytest.raises(TinyFormulaError, match="not a readable tinyformula model file"):
        load_model(path, "teacher")
