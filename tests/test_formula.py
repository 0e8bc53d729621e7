"""TinyFormula: GP fit, file-only prediction equal to scikit-learn's, persistence, built-in."""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tinyformula import TinyFormulaError
from tinyformula.formula.builtin import fit_builtin, published_frontier
from tinyformula.formula.estimator import TinyFormula
from tinyformula.formula.published import TINYNETS


def noisy_frontier(n=12, seed=0):
    """A plausible measured frontier: r and d rise with c, plus short-schedule noise."""
    rng = np.random.default_rng(seed)
    c = np.geomspace(0.03, 1.0, n)
    return pd.DataFrame({"c": c,
                         "r": 0.9 + 0.12 * np.log(c) + rng.normal(0, 0.03, n),
                         "d": 1.0 + 0.15 * np.log(c) + rng.normal(0, 0.05, n),
                         "top1": np.linspace(50, 80, n)})


@pytest.fixture(scope="module")
def fitted():
    return TinyFormula(resolution_base=32, num_classes=10, source="test",
                       monotone=False).fit(noisy_frontier())


def test_file_only_prediction_equals_sklearn(fitted, tmp_path):
    loaded = TinyFormula.load(fitted.save(tmp_path / "formula.json"))
    c = np.geomspace(0.005, 3.0, 60)
    r, d, r_std, d_std = loaded.predict(c, return_std=True)
    for gp, mean, std in ((fitted.gp_r_, r, r_std), (fitted.gp_d_, d, d_std)):
        expected_mean, expected_std = gp.predict(np.log(c)[:, None], return_std=True)
        np.testing.assert_allclose(mean, expected_mean, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(std, expected_std, rtol=1e-7, atol=1e-10)


def test_builtin_gives_back_the_published_tinynets():
    formula = TinyFormula.builtin("efficientnet_b0")
    frontier = published_frontier()
    for tinynet, c in zip(TINYNETS, frontier["c"]):
        rec = formula.recommend(c)
        assert abs(rec.r - tinynet.r) <= 0.02, tinynet.name
        assert abs(rec.d - tinynet.d) <= 0.02, tinynet.name
        assert abs(rec.w - tinynet.w) <= 0.05, tinynet.name
        assert rec.c <= c and not rec.extrapolated


def test_shipped_builtin_file_matches_a_fresh_fit():
    shipped, fresh = TinyFormula.builtin(), fit_builtin()
    c = np.geomspace(0.02, 1.0, 25)
    r, d, r_std, d_std = shipped.predict(c, return_std=True)
    r2, d2, r_std2, d_std2 = fresh.predict(c, return_std=True)
    np.testing.assert_allclose(r, r2, rtol=1e-6)
    np.testing.assert_allclose(d, d2, rtol=1e-6)
    # The posterior std near the tiny noise floor moves by ~1e-7 between BLAS and
    # scikit-learn builds (measured 1.5e-7 with scikit-learn 1.9.1): equal to 1e-5 absolute.
    np.testing.assert_allclose(r_std, r_std2, atol=1e-5)
    np.testing.assert_allclose(d_std, d_std2, atol=1e-5)


def test_save_load_round_trip_is_atomic_and_versioned(fitted, tmp_path):
    path = fitted.save(tmp_path / "formula.json")
    data = json.loads(path.read_text())
    assert data["format"] == "tinyformula-formula" and data["version"] == 1
    assert data["base"] == "efficientnet_b0" and data["resolution_base"] == 32
    assert [p.name for p in tmp_path.iterdir()] == ["formula.json"]  # no temporary left behind
    loaded = TinyFormula.load(path)
    assert loaded.recommend(0.2) == fitted.recommend(0.2)
    assert 0.97 * 0.2 < loaded.recommend(0.2).c <= 0.2
    assert loaded.c_range_ == pytest.approx((0.03, 1.0))


def test_extrapolation_is_flagged(fitted):
    assert not fitted.recommend(0.1).extrapolated
    assert fitted.recommend(0.025).extrapolated
    with pytest.raises(TinyFormulaError, match="below the smallest"):
        fitted.recommend(0.01)  # at 32 px and 10 classes the narrowest network costs c = 0.015


def test_fit_accepts_frames_mappings_and_records():
    frame = noisy_frontier(6)
    as_dict = {k: frame[k].tolist() for k in ("c", "r", "d")}
    records = frame[["c", "r", "d"]].to_dict("records")
    predictions = [TinyFormula().fit(f).predict([0.1, 0.5]) for f in (frame, as_dict, records)]
    for other in predictions[1:]:
        np.testing.assert_allclose(predictions[0], other)


@pytest.mark.parametrize("frontier, message", [
    ({"c": [0.1, 0.2], "r": [0.5, 0.6], "d": [0.5, 0.6]}, "at least 3 frontier points"),
    ({"c": [0.1, 0.2, 0.3], "r": [0.5, 0.6, 0.7]}, "'d' is missing"),
    ({"c": [0.1, -0.2, 0.3], "r": [0.5, 0.6, 0.7], "d": [1, 1, 1]}, "finite numbers above 0"),
    ({"c": [0.1, math.nan, 0.3], "r": [0.5, 0.6, 0.7], "d": [1, 1, 1]}, "finite numbers"),
])
def test_fit_refuses_bad_frontiers(frontier, message):
    with pytest.raises(TinyFormulaError, match=message):
        TinyFormula().fit(frontier)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_refuses_damaged_files(fitted, tmp_path):
    good = fitted.save(tmp_path / "good.json")
    text = good.read_text()
    edited = json.loads(text)
    edited["gp"]["r"]["alpha"][0] += 0.5
    wrong_version = dict(json.loads(text), version=99)
    cases = {
        tmp_path / "missing.json": "no formula file",
        tmp_path: "is a directory",
        _write(tmp_path, "truncated.json", text[: len(text) // 2]): "not valid JSON",
        _write(tmp_path, "edited.json", json.dumps(edited)): "changed after it was written",
        _write(tmp_path, "version.json", json.dumps(wrong_version)): "format version 99",
        _write(tmp_path, "other.json", '{"hello": 1}'): "not a tinyformula formula",
    }
    for path, message in cases.items():
        with pytest.raises(TinyFormulaError, match=message):
            TinyFormula.load(path)


def test_budget_checks():
    formula = TinyFormula.builtin()
    for bad in (0, -1, math.nan, math.inf):
        with pytest.raises(TinyFormulaError, match="finite number above 0"):
            formula.recommend(bad)
    with pytest.raises(TinyFormulaError, match="shrinks networks"):
        formula.recommend(7)
    with pytest.raises(TinyFormulaError, match="only efficientnet_b0 has a built-in"):
        TinyFormula.builtin("resnet50")


@pytest.mark.parametrize("base", ["mobilenetv2_100", "resnet50", "ghostnet_100", "fd_mobilenet"])
def test_a_formula_on_every_base_lands_within_two_percent(base, tmp_path):
    c = np.geomspace(0.03, 1.0, 8)
    formula = TinyFormula(base).fit({"c": c, "r": 0.9 + 0.1 * np.log(c),
                                     "d": 1.0 + 0.15 * np.log(c)})
    loaded = TinyFormula.load(formula.save(tmp_path / "formula.json"))
    assert loaded.base == base
    for budget in (0.05, 0.13, 0.25, 0.5):
        assert 0.98 * budget <= loaded.recommend(budget).c <= budget


def test_predict_imports_neither_torch_sklearn_nor_numpy():
    code = ("import sys; from tinyformula.formula import TinyFormula; "
            "TinyFormula.builtin().recommend(0.25); "
            "bad = [m for m in ('torch', 'sklearn', 'numpy', 'pandas') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
