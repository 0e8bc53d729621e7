"""Deploying: how to feed a trained model travels with it (model.tinyformula, card.json, the
exported files), and the onnxruntime example of docs/deploying.md reproduces the top-1 the
toolkit reports, with numpy, Pillow and onnxruntime alone."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tinyformula import RecipeConfig, create_model, load_dataset, load_model, train_final
from tinyformula.models.export import export_model

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained one short epoch on Fashion-MNIST at 25 px: its 28 px images
    shrink, so the antialiased resize matters."""
    data = load_dataset("fashion-mnist")
    out = tmp_path_factory.mktemp("final")
    model = create_model(r=0.8, d=0.25, w=0.25, num_classes=10, resolution_base=32, seed=0)
    recipe = RecipeConfig.of(epochs=1, train_size=512, val_size=256, threads=1)
    train_final(data, model, out, recipe)
    return data, out


def test_preprocessing_is_in_the_model_the_card_and_the_exported_file(trained, tmp_path):
    data, out = trained
    model = load_model(out)
    prep = model.tinyformula["preprocessing"]
    assert prep["resolution"] == 25 == model.tinyformula["resolution"]
    assert prep["mean"] == pytest.approx(list(data.mean)) and prep["scale"] == "0..255"
    assert prep["channels_in"] == 1 and "repeated to 3 channels" in prep["grayscale"]
    assert "antialias" in prep["resize"]
    card = json.loads((out / "card.json").read_text())
    assert card["preprocessing"] == prep
    assert card["recipe"]["lr"] == 0.05  # the rate used, not null
    import onnxruntime

    path = tmp_path / "model.onnx"
    export_model(model, "onnx", path, data, n_images=16)
    meta = onnxruntime.InferenceSession(str(path)).get_modelmeta().custom_metadata_map
    assert json.loads(meta["preprocessing"]) == prep
    assert json.loads(meta["tinyformula"])["preprocessing"] == prep


def _python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page, re.S)


def test_the_documented_onnxruntime_example_reproduces_the_top1(trained, tmp_path,
                                                                monkeypatch):
    data, out = trained
    report = export_model(load_model(out), "onnx", tmp_path / "model.onnx", data,
                          n_images=256)
    assert report.ok, report.message
    example, scoring = _python_blocks((ROOT / "docs" / "deploying.md").read_text())
    assert "import torch" not in example and "tinyformula" not in example
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(example, "docs/deploying.md", "exec"), namespace)
    images = [image.permute(1, 2, 0).numpy() for image in data.val_images[:256]]
    labels = data.val_labels[:256].numpy()
    predicted = namespace["predict"](images)
    assert (predicted == labels).mean() == pytest.approx(report.top1_torch, abs=1 / 256)
    # ... and the page's scoring block runs as written.
    exec(compile(scoring, "docs/deploying.md", "exec"), namespace)
