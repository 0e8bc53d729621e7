"""The property battery (issue #25): invalid and extreme values of every declared input, and
foreign or malformed versions of every file kind the toolkit reads, against every command and
public function.

Every case must end in exit status 2 (or, through the Python API, the one exception type
``TinyFormulaError``) with one line and no traceback, leave every file that was there byte for
byte as it was, and leave no temporary file behind. The cases are generated: values from each
flag's declared constraint (hypothesis, few examples, as scikit-learn's
``generate_invalid_param_val``), malformed files from each file kind's declared schema
(``core.schema.mutations``: every field left out and given each value its constraint refuses,
checksums recomputed so that only the schema can catch them). Inputs are tiny (scikit-learn's
digits, 16-pixel models): the whole battery runs in a minute or two.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyformula import TinyFormulaError
from tinyformula.cli import COMMANDS, build_parser
from tinyformula.core.constraints import INVALID, Integer, OrNone, Real
from tinyformula.core.files import checksum
from tinyformula.core.schema import mutations

FEW = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck),
               derandomize=True)
COUNTS: dict[str, int] = {}   # cases run, by kind (printed at the end: the report's counts)


def count(kind: str, n: int = 1) -> None:
    COUNTS[kind] = COUNTS.get(kind, 0) + n


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` and its bytes (what must stay byte-identical)."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1 and "Traceback" not in text


def refused(cli, folder: Path, *argv) -> str:
    """Run the command; assert exit 2, one line, nothing on stdout, the folder unchanged and
    no temporary file; return stderr."""
    before = snapshot(folder)
    code, out, err = cli(*argv)
    assert code == 2 and out == "" and one_line(err), (argv, code, out, err)
    assert snapshot(folder) == before, argv
    assert not temporaries(folder), argv
    return err


def refused_api(call, folder: Path | None = None) -> str:
    before = snapshot(folder) if folder else None
    with pytest.raises(TinyFormulaError) as error:
        call()
    message = str(error.value)
    assert one_line(message), message
    if folder is not None:
        assert snapshot(folder) == before and not temporaries(folder)
    return message


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
    (["fit", "--eta", "4"], "--eta applies only with --schedule halving"),
    (["fit", "--min-rung", "3"], "--min-rung applies only with --schedule halving"),
    (["fit", "--min-images", "100"], "--min-images applies only with --schedule halving"),
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


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    """What the calls below need: a tiny model, digits, a finished run folder."""
    from test_plots import write_run

    from tinyformula import create_model
    from tinyformula.data import load_dataset

    folder = tmp_path_factory.mktemp("world")
    return {"model": create_model(num_classes=10, resolution_base=32, r=0.5, d=0.25, w=0.25,
                                  seed=0),
            "data": load_dataset("digits"), "run": write_run(folder / "run"), "folder": folder}


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
            message = refused_api(_call(target, name, value, tiny_world), tiny_world["folder"])
            shown = name.replace("_", " ")
            assert any(word in message for word in (name, shown, name.replace("_", "-"))), \
                (label, name, value, message)
            count("public function values")
    assert not (tiny_world["folder"] / "never").exists()


# -- 3. every file kind read: foreign and malformed versions ---------------------------------

def _sealed(body: dict) -> dict:
    body = {k: v for k, v in body.items() if k != "checksum"}
    return {**body, "checksum": checksum(body)}


def _formula_body() -> dict:
    """A formula with every optional key present (a search's, with its quality report)."""
    from test_plots import YARDSTICK

    from tinyformula import TinyFormula
    from tinyformula.formula.quality import assess

    c = [0.03, 0.06, 0.12, 0.25, 0.5, 1.0]
    formula = TinyFormula.for_yardstick(YARDSTICK, source="battery").fit(
        {"c": c, "r": [0.5, 0.6, 0.7, 0.8, 0.9, 1.0], "d": [0.4, 0.5, 0.6, 0.7, 0.8, 1.0],
         "w": [0.5] * 6, "top1": [0.5, 0.6, 0.65, 0.7, 0.75, 0.8]})
    formula.quality_ = assess(formula, 10, 1000, 0.02, 30)
    return formula.to_dict()


@pytest.fixture(scope="module")
def formula_body():
    return _formula_body()


def formula_mutations(body: dict) -> list:
    from tinyformula.formula.file_format import FORMULA_FILE

    # Checksums recomputed (only the schema can catch these), except where the checksum itself
    # is what was damaged.
    cases = [(path, _sealed(bad) if isinstance(bad, dict) and not path.startswith("checksum")
              else bad) for path, bad in mutations(FORMULA_FILE, body)]
    # Files that are no formula at all.
    cases += [("not JSON", b"\x00\x01 not json"), ("a JSON list", [1, 2, 3]),
              ("another format", _sealed({**body, "format": "someone-else"})),
              ("a deep JSON", b"[" * 100_000), ("empty", b"")]
    return cases


def _write_case(path: Path, content) -> None:
    """Bytes as they are (files that are not JSON), anything else as JSON."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(json.dumps(content))


def test_every_malformed_formula_is_refused_by_every_reader(formula_body, cli, tmp_path,
                                                            monkeypatch):
    from tinyformula import create_model
    from tinyformula.formula.loading import load_formula

    monkeypatch.chdir(tmp_path)
    cases = formula_mutations(formula_body)
    assert len(cases) > 100
    path = tmp_path / "formula.json"
    for i, (where, content) in enumerate(cases):
        _write_case(path, content)
        try:
            err = refused(cli, tmp_path, "predict", "--flops", "0.25", "--formula", path)
        except AssertionError as failure:
            raise AssertionError(f"{where}: {failure}") from None
        assert "formula.json" in err, (where, err)
        refused_api(lambda: load_formula(path), tmp_path)
        count("malformed formula files", 2)
        if i % 7 == 0:  # every reader, on a sample: they share the loader
            refused(cli, tmp_path, "compare", "--flops", "0.25", "--formula", path)
            refused(cli, tmp_path, "build", "--flops", "0.25", "--formula", path, "--out",
                    "m.pt")
            refused_api(lambda: create_model(flops=0.25, formula=path), tmp_path)
            count("malformed formula files", 3)
    assert not (tmp_path / "m.pt").exists()


def test_a_formula_for_another_cost_or_machine_is_refused_where_it_is_used(formula_body, cli,
                                                                          tmp_path):
    path = tmp_path / "formula.json"
    path.write_text(json.dumps(_sealed({**formula_body, "cost": "latency", "device": "cpu",
                                        "threads": 1, "runtime": "torch",
                                        "machine": "a machine far away"})))
    for command in ("predict", "compare"):
        err = refused(cli, tmp_path, command, "--flops", "0.25", "--formula", path)
        assert "a machine far away" in err
    err = refused(cli, tmp_path, "build", "--flops", "0.25", "--formula", path, "--out",
                  tmp_path / "m.pt")
    assert "a machine far away" in err
    params = tmp_path / "params.json"
    params.write_text(json.dumps(_sealed({**formula_body, "cost": "params"})))
    err = refused(cli, tmp_path, "predict", "--flops", "0.25", "--formula", params,
                  "--cost", "flops")
    assert "not flops" in err
    count("formula uses", 4)


def test_every_output_names_the_cost_it_counted(formula_body, cli, tmp_path):
    from tinyformula import create_model

    path = tmp_path / "params.json"
    path.write_text(json.dumps(_sealed({**formula_body, "cost": "params"})))
    code, out, err = cli("build", "--flops", "0.25", "--formula", path, "--out",
                         tmp_path / "m.pt")
    assert code == 0, err
    assert any(line.startswith("c ") and " params " in line for line in out.splitlines()), out
    code, out, _ = cli("predict", "--flops", "0.25", "--formula", path)
    assert code == 0 and "(parameters)" in out.splitlines()[0]
    code, out, _ = cli("predict", "--flops", "0.25", "--formula", path, "--json")
    assert json.loads(out)["cost"] == "params"
    assert create_model(flops=0.25, formula=path).tinyformula["cost"] == "params"
    assert create_model(flops=0.25).tinyformula["cost"] == "flops"


def _table_body(key: dict) -> dict:
    units = {"unit-a": {"median_ms": 0.5, "p10_ms": 0.4, "iqr_ms": 0.05, "reps": 30,
                        "load": 1.0, "shape": [3, 32, 32], "unit": "Conv", "flops": 1000}}
    calibrations = {"classes10-px32": {"offset_ms": 0.1, "factor": 1.2,
                                       "points": [[1.0, 1.3], [2.0, 2.5]]}}
    return {"key": key, "units": units, "calibrations": calibrations}


def test_every_malformed_latency_table_is_refused(cli, tmp_path, monkeypatch):
    from tinyformula.cost.latency.measure import Setting
    from tinyformula.cost.latency.model import LatencyModel
    from tinyformula.cost.latency.table import TABLE_BODY, table_key, table_path

    monkeypatch.setenv("TINYFORMULA_CACHE", str(tmp_path))
    key = table_key("efficientnet_b0", Setting())
    path = table_path(key)
    path.parent.mkdir(parents=True)
    body = _table_body(key)
    cases = [(where, bad) for where, bad in mutations(TABLE_BODY, body)]
    cases += [("nan factor", {**body, "calibrations": {"classes10-px32": {
        **body["calibrations"]["classes10-px32"], "factor": float("nan")}}}),
              ("-1e300 factor", {**body, "calibrations": {"classes10-px32": {
                  **body["calibrations"]["classes10-px32"], "factor": -1e300}}}),
              ("numbers as entries", {**body, "calibrations": {"classes10-px32": 5}})]
    assert len(cases) > 30
    for where, bad in cases:
        text = json.dumps({"body": bad, "checksum": checksum(bad) if isinstance(bad, dict)
                           else "x"})
        path.write_text(text)
        message = refused_api(lambda: LatencyModel.load_or_build(
            "efficientnet_b0", num_classes=10, resolution_base=32, lazy=False), tmp_path)
        assert str(path) in message, (where, message)
        err = refused(cli, tmp_path, "latency", "--no-measure", "--num-classes", "10",
                      "--resolution-base", "32")
        assert "latency table" in err, (where, err)
        count("malformed latency tables", 2)
    for junk in (b"", b"\xff\xfe", b"[1, 2]", b'{"body": 1}'):
        path.write_bytes(junk)
        refused(cli, tmp_path, "latency", "--no-measure")
        count("malformed latency tables")


def _store_with(path: Path, tables: dict[str, str], rows: dict[str, list] | None = None,
                application_id: int = 0) -> None:
    db = sqlite3.connect(path)
    for name, columns in tables.items():
        db.execute(f"CREATE TABLE {name} ({columns})")
    for name, values in (rows or {}).items():
        for row in values:
            db.execute(f"INSERT INTO {name} VALUES ({', '.join('?' * len(row))})", row)
    if application_id:
        db.execute(f"PRAGMA application_id={application_id}")
    db.commit()
    db.close()


def foreign_stores(run: Path):
    """(name, how to make trials.sqlite in an empty folder) for every foreign store."""
    from tinyformula.sweep.store import APPLICATION_ID

    yield "another program's tables", lambda p: _store_with(
        p, {"notes": "id INTEGER, text TEXT"}, {"notes": [(1, "hello")]})
    yield "another application id", lambda p: _store_with(
        p, {"trials": "x"}, application_id=0x12345678)
    yield "a trials table of another shape", lambda p: _store_with(
        p, {"trials": "a INTEGER, b TEXT"}, {"trials": [(1, "x")]})
    yield "a meta table of another shape", lambda p: _store_with(
        p, {"meta": "a, b", "trials": "id, candidate, seed, r, d, w, c, resolution, flops, "
                                       "params, status, top1, loss, seconds, images_per_s, "
                                       "message, finished_at"})
    yield "not SQLite", lambda p: p.write_bytes(b"SQLite format 2\x00" + b"\x07" * 500)
    yield "text", lambda p: p.write_text("trials\n" * 50)
    source = run / "trials.sqlite"

    def edited(sql, *params):
        def make(p):
            p.write_bytes(source.read_bytes())
            db = sqlite3.connect(p)
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            db.execute(sql, params)
            db.commit()
            db.close()
        return make

    yield "meta that is not JSON", edited("UPDATE meta SET value='{not json' WHERE "
                                          "key='settings'")
    yield "settings that are a list", edited("UPDATE meta SET value='[1, 2]' WHERE "
                                             "key='settings'")
    yield "a yardstick of classes 0", edited(
        "UPDATE meta SET value=json_set(value, '$.yardstick.num_classes', 0) WHERE "
        "key='settings'")
    yield "a seed of -1 in settings", edited(
        "UPDATE meta SET value=json_set(value, '$.seed', -1) WHERE key='settings'")
    for column, value in (("top1", 7.5), ("c", -1.0), ("r", 1e308), ("status", "lost"),
                          ("resolution", 0), ("flops", -5), ("top1", "high"),
                          ("finished_at", float("inf"))):
        yield f"a trial whose {column} is {value!r}", edited(
            f"UPDATE trials SET {column}=? WHERE id=0", value)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from test_plots import write_run

    return write_run(tmp_path_factory.mktemp("finished") / "run")


def test_every_foreign_or_malformed_store_is_refused_and_left_alone(finished_run, cli,
                                                                     tmp_path, monkeypatch):
    from tinyformula import load_run, plot_run

    monkeypatch.chdir(tmp_path)
    cases = list(foreign_stores(finished_run))
    for i, (name, make) in enumerate(cases):
        folder = tmp_path / f"case{i}"
        folder.mkdir()
        make(folder / "trials.sqlite")
        err = refused(cli, folder, "plot", folder)
        assert "trials.sqlite" in err, (name, err)
        refused_api(lambda: load_run(folder), folder)
        refused_api(lambda: plot_run(folder), folder)
        # fit touches nothing there: no lock, no tables, no marker
        refused(cli, folder, "fit", "--data", "digits", "--preset", "smoke", "--out", folder)
        assert sorted(p.name for p in folder.iterdir()) == ["trials.sqlite"], name
        count("foreign or malformed stores", 4)


def test_output_folders_of_another_kind_are_refused(finished_run, cli, tmp_path):
    import shutil

    search = tmp_path / "search"
    shutil.copytree(finished_run, search)
    err = refused(cli, tmp_path, "train", "--recipe", "final", "--data", "digits", "--out",
                  search, "--r", "0.5", "--d", "0.25", "--w", "0.25", "--epochs", "1")
    assert "holds" in err or "not empty" in err
    other = tmp_path / "theirs"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    refused(cli, tmp_path, "fit", "--data", "digits", "--out", other)
    refused(cli, tmp_path, "train", "--recipe", "final", "--data", "digits", "--out", other)
    marked = tmp_path / "marked"
    marked.mkdir()
    (marked / ".tinyformula").write_text(json.dumps({"format": "tinyformula-folder",
                                                     "version": 1, "kind": "final training",
                                                     "made_by": "tinyformula train"}))
    err = refused(cli, tmp_path, "fit", "--data", "digits", "--out", marked)
    assert "final training" in err
    (marked / ".tinyformula").write_text("{broken")
    refused(cli, tmp_path, "fit", "--data", "digits", "--out", marked)
    count("foreign folders", 5)


def _model_state(model) -> dict:
    from tinyformula.models.files import model_state

    return model_state(model)


def model_file_cases(state: dict):
    from tinyformula.models.files import MODEL_FILE_SCHEMA

    for where, bad in mutations(MODEL_FILE_SCHEMA, {**state, "state_dict": {}}):
        if isinstance(bad, dict) and "state_dict" in bad and bad["state_dict"] == {}:
            bad = {**bad, "state_dict": state["state_dict"]}
        yield where, bad
    import torch

    weights = dict(state["state_dict"])
    name = next(k for k, v in weights.items() if v.is_floating_point())
    yield "nan weights", {**state, "state_dict": {**weights, name: weights[name] * float("nan")}}
    yield "a weight of another shape", {**state, "state_dict": {**weights,
                                                                name: torch.zeros(3)}}
    yield "another resolution", {**state, "config": {**state["config"], "resolution": 99}}
    yield "an unknown base", {**state, "config": {**state["config"], "base": "nope"}}


def test_every_malformed_model_file_is_refused(tiny_world, cli, tmp_path):
    import torch

    from tinyformula import load_model

    state = _model_state(tiny_world["model"])
    cases = list(model_file_cases(state))
    cases += [("not a torch file", b"PK\x03\x04 broken zip"), ("empty", b""),
              ("a pickle with code", None)]
    assert len(cases) > 40
    path = tmp_path / "model.pt"
    for where, bad in cases:
        if isinstance(bad, bytes):
            path.write_bytes(bad)
        elif bad is None:
            import pickle

            path.write_bytes(pickle.dumps(print))
        else:
            torch.save(bad, path)
        refused_api(lambda: load_model(path), tmp_path)
        err = refused(cli, tmp_path, "export", path, "--format", "onnx", "--out",
                      tmp_path / "m.onnx")
        assert "model.pt" in err, (where, err)
        count("malformed model files", 2)


def test_every_malformed_checkpoint_is_refused(tiny_world, cli, tmp_path):
    import torch

    from tinyformula.training.checkpoint import CHECKPOINT, read_checkpoint

    model = tiny_world["model"]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    valid = {"format": "tinyformula-checkpoint", "version": 1,
             "key": {"model": {}, "recipe": {}, "data": "digits", "teacher": None},
             "epoch": 1, "step": 10, "model": model.state_dict(),
             "optimizer": optimizer.state_dict(), "ema": None, "ema_updates": 0,
             "history": [{"epoch": 1, "loss": 1.0, "top1": 0.5, "top1_ema": None,
                          "lr": 0.1, "seconds": 1.0}], "seconds": 1.0}
    folder = tmp_path / "out"
    folder.mkdir()
    path = folder / "checkpoint.pt"
    torch.save(valid, path)
    read_checkpoint(path)  # the valid one reads
    cases = list(mutations(CHECKPOINT, valid)) + [("truncated", b"PK\x03\x04"),
                                                  ("epochs disagree", {**valid, "epoch": 3})]
    assert len(cases) > 40
    for i, (where, bad) in enumerate(cases):
        if isinstance(bad, bytes):
            path.write_bytes(bad)
        else:
            torch.save(bad, path)
        refused_api(lambda: read_checkpoint(path), folder)
        if i % 5 == 0:  # an unmarked folder with a checkpoint: read before anything else
            refused(cli, folder, "train", "--recipe", "final", "--data", "digits", "--out",
                    folder, "--r", "0.5", "--d", "0.25", "--w", "0.25", "--epochs", "1")
            count("malformed checkpoints")
        count("malformed checkpoints")


def test_a_torchscript_export_with_a_malformed_configuration_is_refused(tiny_world, tmp_path):
    import warnings

    import torch

    from tinyformula import load_model

    x = torch.zeros(1, 3, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(tiny_world["model"].eval(), x)
    for extra in ("", "{", "[]", json.dumps({**tiny_world["model"].tinyformula, "r": -1})):
        path = tmp_path / "m.ts"
        torch.jit.save(traced, str(path), _extra_files={"tinyformula.json": extra})
        refused_api(lambda: load_model(path), tmp_path)
        count("malformed TorchScript configurations")


def test_existing_foreign_files_are_never_replaced(tiny_world, cli, tmp_path):
    from tinyformula import TinyFormula, save_model

    foreign = tmp_path / "notes.txt"
    foreign.write_text("someone's notes")
    refused(cli, tmp_path, "build", "--out", foreign)
    refused(cli, tmp_path, "export", "nothing.pt", "--format", "onnx", "--out", foreign)
    refused_api(lambda: save_model(tiny_world["model"], foreign), tmp_path)
    refused_api(lambda: TinyFormula.builtin().save(foreign), tmp_path)
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "top1_vs_flops.png").write_text("not a picture")
    from tinyformula import plot_run

    refused_api(lambda: plot_run(tiny_world["run"], out=tmp_path / "plots"), tmp_path)
    count("foreign files at an output path", 5)


# -- 4. an unfinished run draws what it has ----------------------------------------------------

def test_a_killed_unfinished_run_draws_what_exists(cli, tmp_path):
    from test_plots import write_run

    run = write_run(tmp_path / "run", pending=28, formula=False)  # a few small trials done
    code, out, err = cli("plot", run)
    assert code == 0, err
    names = [Path(line).name for line in out.splitlines()]
    assert names[0] == "top1_vs_flops.png" and "formula_vs_c.png" not in names
    assert "is not drawn" in err and "Traceback" not in err


def test_counts(capsys):
    """Print the battery's counts (the numbers the report gives)."""
    with capsys.disabled():
        print("\nbattery cases:", json.dumps(COUNTS, sort_keys=True))


os.environ.setdefault("TINYFORMULA_BATTERY", "1")
