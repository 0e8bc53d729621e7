"""The property battery (issue #25), files: foreign and malformed versions of every file kind
the toolkit reads, against every reader (command and public function).

Malformed files come from each file kind's declared schema (``core.schema.mutations``: every
field left out and given each value its constraint refuses, checksums recomputed so that only
the schema can catch them), foreign ones are another program's SQLite files, text, binary,
empty files and pickles with code. Every case must end in exit status 2 (or
``TinyFormulaError``) with one line, every file that was there byte-identical and no temporary
file left. Inputs are tiny (scikit-learn's digits, 16-pixel models).
"""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from battery import COUNTS, count, make_tiny_world, refused, refused_api, refuses_every_malformed

from tinyformula.core.files import checksum
from tinyformula.core.schema import mutations


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    return make_tiny_world(tmp_path_factory)

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
    assert any(line.startswith("c ") and " parameters" in line for line in out.splitlines()), out
    code, out, _ = cli("predict", "--flops", "0.25", "--formula", path)
    assert code == 0 and "counting parameters" in out.splitlines()[0]
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


def test_an_onnx_export_with_malformed_metadata_is_refused(tiny_world, tmp_path):
    """The generic battery of one file kind (``battery.refuses_every_malformed``), as a new
    reader's test uses it: an ONNX export's metadata against ``MODEL_CONFIG``."""
    pytest.importorskip("onnx")
    import onnx
    import torch

    from tinyformula.models.export import ONNX_METADATA_KEY, _to_onnx, onnx_config
    from tinyformula.models.files import MODEL_CONFIG

    model = tiny_world["model"].eval()
    buffer = io.BytesIO()
    _to_onnx(model, torch.zeros(1, 3, 16, 16), buffer)
    exported = buffer.getvalue()

    def write(path, config):
        graph = onnx.load_from_string(exported)
        entry = graph.metadata_props.add()
        entry.key, entry.value = ONNX_METADATA_KEY, json.dumps(config)
        path.write_bytes(graph.SerializeToString())

    n = refuses_every_malformed(tmp_path / "m.onnx", model.tinyformula, MODEL_CONFIG,
                                onnx_config, write)
    assert n > 30
    count("malformed ONNX metadata", n)


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


def test_counts(capsys):
    """Print the battery's counts (the numbers the report gives)."""
    with capsys.disabled():
        print("\nbattery cases:", json.dumps(COUNTS, sort_keys=True))


