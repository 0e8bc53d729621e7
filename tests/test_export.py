"""Export to ONNX and TorchScript, checked against torch and the cost model."""

import json

import numpy as np
import onnxruntime
import pytest
import torch

from tinyformula import TinyFormulaError, create_model, list_bases, load_model
from tinyformula.data import load_dataset
from tinyformula.models.export import (
    check_images,
    export_model,
    exported_config,
    onnx_config,
    onnx_macs,
)
from tinyformula.models.files import save_model

SMALL = dict(r=0.5, d=0.5, w=0.5)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def model():
    return create_model(num_classes=10, resolution_base=32, seed=0, **SMALL)


def test_onnx_export_matches_torch_and_the_cost_model(model, digits, tmp_path, one_thread):
    path = tmp_path / "model.onnx"
    report = export_model(model, "onnx", path, digits, n_images=64)
    assert report.ok, report.message
    assert report.images == 64 and report.max_abs_diff <= 1e-3
    assert report.top1_exported == report.top1_torch and report.same_predictions == 1.0
    assert report.macs_exported == report.macs_cost_model == model.tinyformula["flops"]
    assert onnx_config(path) == exported_config(model)  # with how to feed it
    assert onnx_config(path)["preprocessing"]["resolution"] == model.tinyformula["resolution"]
    # The file runs at any batch size and gives what torch gives.
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x, _ = check_images(model, digits, 3)
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    np.testing.assert_allclose(session.run(None, {"images": x.numpy()})[0], expected, atol=1e-4)
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_torchscript_export_round_trips_through_load_model(model, digits, tmp_path, one_thread):
    path = tmp_path / "model.ts"
    report = export_model(model, "torchscript", path, digits, n_images=32)
    assert report.ok, report.message
    assert report.max_abs_diff == 0.0 and report.macs_exported == model.tinyformula["flops"]
    loaded = load_model(path)
    assert loaded.tinyformula == exported_config(model)


@pytest.mark.parametrize("base", list_bases())
def test_graph_multiply_adds_equal_the_cost_model_for_every_base(base, digits, tmp_path,
                                                                 one_thread):
    model = create_model(base, num_classes=10, resolution_base=32, **SMALL)
    report = export_model(model, "onnx", tmp_path / "m.onnx", digits, n_images=8)
    assert report.macs_exported == report.macs_cost_model, base
    assert onnx_macs(tmp_path / "m.onnx") == report.macs_exported


def test_a_wrong_graph_count_fails_the_check(model, digits, tmp_path, monkeypatch):
    import tinyformula.models.export as export

    monkeypatch.setattr(export, "onnx_macs", lambda path: 1)
    report = export_model(model, "onnx", tmp_path / "m.onnx", digits, n_images=8)
    assert not report.ok and "multiply-adds" in report.message


def test_cli_export_json_and_exit_codes(cli, model, tmp_path):
    source = save_model(model, tmp_path / "model.pt")
    code, out, _ = cli("export", source, "--format", "onnx", "--out", tmp_path / "m.onnx",
                       "--data", "digits", "--images", "16", "--json")
    assert code == 0
    record = json.loads(out)
    assert record["ok"] is True and record["macs_exported"] == model.tinyformula["flops"]
    assert set(record) >= {"format", "path", "max_abs_diff", "top1_torch", "top1_exported",
                           "macs_exported", "macs_cost_model"}
    code, out, _ = cli("export", source, "--format", "torchscript", "--out", tmp_path / "m.ts",
                       "--data", "digits", "--images", "16")
    assert code == 0 and "passed" in out


@pytest.mark.parametrize("argv, message", [
    (["{tmp}/missing.pt", "--format", "onnx", "--out", "{tmp}/m.onnx"], "no model file"),
    (["{tmp}/model.pt", "--format", "onnx", "--out", "{tmp}/nofolder/m.onnx"],
     "does not exist"),
    (["{tmp}/model.pt", "--format", "tflite", "--out", "{tmp}/m.x"], "invalid choice"),
    (["{tmp}/model.pt", "--format", "onnx", "--out", "{tmp}/m.onnx", "--data", "mnist"],
     "unknown dataset"),
])
def test_cli_export_bad_input(cli, model, tmp_path, argv, message):
    save_model(model, tmp_path / "model.pt")
    code, out, err = cli("export", *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()


def test_load_model_points_onnx_files_to_onnxruntime(tmp_path):
    with pytest.raises(TinyFormulaError, match="run it with onnxruntime"):
        load_model(tmp_path / "model.onnx")
