"""The property battery (issue #25), inputs: invalid and extreme values of every declared
input of every command and public function.

Every flag of every command that has a declared constraint or a fixed set of choices gets
values hypothesis draws from what the constraint refuses (few examples each, as
scikit-learn's ``generate_invalid_param_val``); every declared input of the public functions
gets each value its constraint refuses and extremes beyond it; flags that do not apply where
they are given are refused. Every case must end in exit status 2 (or ``TinyFormulaError``)
with one line, every file that was there byte-identical and no temporary file left. The
malformed files are ``test_battery_files.py``'s.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from battery import COUNTS, FEW, count, make_tiny_world, refused, refused_api
from hypothesis import given
from hypothesis import strategies as st

from tinyformula.cli import COMMANDS, build_parser
from tinyformula.core.constraints import INVALID, Integer, OrNone, Real


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    return make_tiny_world(tmp_path_factory)

# -- 1. every flag of every command: generated invalid and extreme values ------------------------

EXTREME_TEXT = ["nan", "inf", "-inf", "1e999", "-1e999", "", " ", "abc", "0x10", "1_0", "--",
                "9" * 400, "\x00", "é"]


def invalid_texts(constraint) -> st.SearchStrategy:
    """Command-line texts the constraint refuses: beyond each bound, fractions for whole
    numbers, huge and tiny numbers, words, nan and inf."""
    inner = constraint.inner if isinstance(constraint, OrNone) else constraint
    parts = [st.sampled_from(EXTREME_TEXT)]
    if isinstance(inner, Integer):
        if inner.low is not None:
            parts.append(st.integers(max_value=inner.low - 1).map(str))
        if inner.high is not None:
            parts.append(st.integers(min_value=inner.high + 1).map(str))
        parts.append(st.floats(allow_nan=False, allow_infinity=False).filter(
            lambda v: not v.is_integer()).map(repr))
    elif isinstance(inner, Real):
        if inner.low is not None:
            parts.append(st.floats(max_value=inner.low, allow_nan=False).map(repr))
        if inner.high is not None:
            parts.append(st.floats(min_value=inner.high, allow_nan=False).map(repr))
    parts.append(st.text(max_size=8))

    def refused_by(text: str) -> bool:
        return inner.convert(inner.parse(text)) is INVALID

    return st.one_of(*parts).filter(refused_by)


def command_flags():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command in COMMANDS:
        for action in sub.choices[command]._actions:
            if not action.option_strings or action.nargs == 0 or action.dest == "help":
                continue
            yield command, action


# What each command needs besides the flag under test (values that pass every check).
REQUIRED = {"predict": ["--flops", "0.25"], "compare": ["--flops", "0.25"],
            "train": ["--data", "digits"], "build": ["--out", "m.pt"],
            "export": ["m.pt", "--format", "onnx", "--out", "m.onnx"], "plot": ["run"]}


def flag_cases():
    for command, action in command_flags():
        flag = action.option_strings[0]
        if getattr(action, "constraint", None) is not None or action.choices:
            yield pytest.param(command, flag, id=f"{command} {flag}")


@pytest.mark.parametrize("command, flag", flag_cases())
def test_every_flag_refuses_generated_invalid_values(command, flag, cli, tmp_path,
                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("a file that must not change")
    action = next(a for c, a in command_flags() if c == command and a.option_strings[0] == flag)
    constraint = getattr(action, "constraint", None)
    strategy = (invalid_texts(constraint) if constraint is not None else
                st.text(max_size=10).filter(lambda t: t not in action.choices))

    @FEW
    @given(text=strategy)
    def check(text):
        values = [text] * (action.nargs if isinstance(action.nargs, int) else 1)
        argv = [command, *REQUIRED.get(command, []), flag, *values]
        err = refused(cli, tmp_path, *argv)
        assert flag in err or "argument" in err, err
        count("flag values")

    check()


# Flags that do not apply where they are given: refused, never silently dropped.
DOES_NOT_APPLY = [
    (["fit", "--latency-threads", "2"], "--latency-threads applies only with --cost latency"),
    (["fit", "--latency-device", "cpu"], "--latency-device applies only with --cost latency"),
    (["fit", "--preset", "smoke", "--eta", "4"], "--eta applies only with --schedule halving"),
    (["fit", "--preset", "smoke", "--min-rung", "3"],
     "--min-rung applies only with --schedule halving"),
    (["fit", "--preset", "smoke", "--min-images", "100"],
     "--min-images applies only with --schedule halving"),
    (["fit", "--schedule", "full", "--eta", "3"], "--eta applies only"),
    (["fit", "--device", "cpu", "--trials-per-gpu", "2"], "--trials-per-gpu applies only"),
    (["fit", "--device", "cpu", "--no-cuda-graph"], "--no-cuda-graph applies only"),
    (["fit", "--schedule", "halving", "--eta", "1000", "--preset", "smoke"], "--eta 1000"),
    (["train", "--data", "digits", "--out", "o"], "--out needs --recipe final"),
    (["train", "--data", "digits", "--recipe", "final", "--out", "o", "--model", "m.pt",
      "--base", "resnet18"], "--base does not apply with --model"),
    (["latency", "--no-measure", "--no-predict"], "leave nothing to do"),
]


@pytest.mark.parametrize("argv, message", DOES_NOT_APPLY)
def test_a_flag_that_does_not_apply_is_refused(argv, message, cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = refused(cli, tmp_path, *argv)
    assert message in err, err
    count("flags that do not apply")


# -- 2. every public function: the same constraints, the one exception type -------------------

def public_cases():
    from tinyformula import (
        LatencySetting,
        RecipeConfig,
        Scale,
        SearchConfig,
        TrainConfig,
        Yardstick,
        create_model,
    )
    from tinyformula.models.export import EXPORT_IMAGES

    yield "create_model", create_model, create_model.constraints
    for config in (TrainConfig, RecipeConfig, SearchConfig.from_options, LatencySetting,
                   Yardstick, Scale):
        owner = getattr(config, "__self__", config)
        yield getattr(config, "__qualname__", config.__name__), config, owner.constraints
    yield "export_model", "export_model", {"n_images": OrNone(EXPORT_IMAGES)}
    yield "plot_run", "plot_run", {"budget": OrNone(Real(0, None, closed="right")),
                                   "window": Real(1, None, closed="neither")}
    yield "TinyFormula.recommend", "recommend", {
        "c": Real(0, 1, closed="right"), "num_classes": OrNone(Integer(1, 1_000_000)),
        "resolution_base": OrNone(Integer(1, 4096))}
    yield "search", "search", SearchConfig.constraints


def _invalid_values(constraint, none_is_default: bool = False) -> list:
    """The values ``constraint`` refuses, and extremes beyond them (None left out where it
    means "the default")."""
    values = list(constraint.invalid_values())
    inner = constraint.inner if isinstance(constraint, OrNone) else constraint
    values += [2**70, -(2**70), 1e308, -1e308, float("nan"), "1", [1], {"a": 1}, b"x"]
    skip_none = none_is_default or isinstance(constraint, OrNone)
    return [v for v in values if inner.convert(v) is INVALID and not (skip_none and v is None)]


def _call(target, name: str, value, world):
    from tinyformula import TinyFormula, export_model, plot_run, search

    if target == "export_model":
        return lambda: export_model(world["model"], "onnx", world["folder"] / "x.onnx",
                                    world["data"], **{name: value})
    if target == "plot_run":
        return lambda: plot_run(world["run"], out=world["folder"] / "plots", **{name: value})
    if target == "recommend":
        args = {"c": 0.25, name: value}
        return lambda: TinyFormula.builtin().recommend(**args)
    if target == "search":
        return lambda: search(**{name: value}, out=world["folder"] / "never")
    return lambda: target(**{name: value})


@pytest.mark.parametrize("label, target, constraints",
                         [pytest.param(*case, id=case[0]) for case in public_cases()])
def test_every_public_function_refuses_invalid_values_with_one_exception(
        label, target, constraints, tiny_world):
    none_is_default = label in ("search", "SearchConfig.from_options")
    for name, constraint in constraints.items():
        for value in _invalid_values(constraint, none_is_default):
            if label == "TinyFormula.recommend" and name == "c" and isinstance(value, str):
                continue  # c may be typed with its unit ("100M"), so "1" is a valid budget
            message = refused_api(_call(target, name, value, tiny_world), tiny_world["folder"])
            shown = name.replace("_", " ")
            assert any(word in message for word in (name, shown, name.replace("_", "-"))), \
                (label, name, value, message)
            count("public function values")
    assert not (tiny_world["folder"] / "never").exists()


# -- 4. an unfinished run draws what it has ----------------------------------------------------

def test_a_killed_unfinished_run_draws_what_exists(cli, tmp_path):
    from test_plots import write_run

    run = write_run(tmp_path / "run", pending=28, formula=False)  # a few small trials done
    code, out, err = cli("plot", run)
    assert code == 0, err
    names = [Path(line).name for line in out.splitlines()]
    assert names[0] == "top1_vs_flops.png" and "formula_vs_c.png" not in names
    assert "is not drawn" in err and "Traceback" not in err


# -- sizes against what the machine can hold ----------------------------------------------------

SIZES = [
    (["latency", "--batch", "4096", "--r", "8", "--no-predict"], "at most --batch"),
    (["train", "--data", "digits", "--batch-size", "65536", "--r", "8"], "at most --batch-size"),
    (["train", "--recipe", "final", "--data", "digits", "--epochs", "10000", "--out", "o",
      "--r", "0.5", "--d", "0.25", "--w", "0.25"], "fewer --epochs"),
]


@pytest.mark.parametrize("argv, message", SIZES)
def test_sizes_beyond_the_machine_are_refused_before_allocating(argv, message, cli, tmp_path,
                                                                 monkeypatch):
    from tinyformula.core import memory

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(memory, "available_memory", lambda: 64 * 2**20)  # a 64 MB machine
    err = refused(cli, tmp_path, *argv)
    assert message in err and "needs at least" in err, err
    count("sizes")


def test_export_images_beyond_the_data_are_refused_not_clamped(tiny_world, cli, tmp_path):
    from tinyformula import save_model

    save_model(tiny_world["model"], tmp_path / "m.pt")
    held_out = len(tiny_world["data"].val_images)
    err = refused(cli, tmp_path, "export", tmp_path / "m.pt", "--format", "onnx", "--data",
                  "digits", "--images", str(held_out + 1), "--out", tmp_path / "m.onnx")
    assert f"give at most --images {held_out:,}" in err, err
    count("sizes")


def test_a_schedule_that_would_not_finish_in_a_lifetime_is_refused(monkeypatch):
    from tinyformula.core import memory
    from tinyformula.training.sizes import check_training_size

    # Whatever this machine's memory, only the time is under test (10^9 images' draws need
    # 25 GB: refused first on a smaller machine).
    monkeypatch.setattr(memory, "available_memory", lambda: None)
    message = refused_api(lambda: check_training_size(
        flops=10**12, activations=1, batch_size=2, images=10**9, device="cpu"))
    assert "years" in message and "finish in ten years" in message
    check_training_size(flops=10**8, activations=1, batch_size=2, images=10**6, device="cpu")
    count("sizes")


def test_counts(capsys):
    """Print the battery's counts (the numbers the report gives)."""
    with capsys.disabled():
        print("\nbattery cases:", json.dumps(COUNTS, sort_keys=True))


