"""How far to trust a formula (issue #15): quality report, monotone GPs, top-1 GP, the CLI's
budgets, held-out sizes, distinct plans, the main-guard check and the README's synopses."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyformula import TinyFormulaError, Yardstick
from tinyformula.formula.estimator import TinyFormula
from tinyformula.formula.gp import is_non_decreasing, isotonic
from tinyformula.formula.quality import assess, chance_margin, check_above_chance, noise_sigma

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"resolution_base": 32, "num_classes": 10}


def frontier(r, d, top1, c=None):
    c = c if c is not None else np.geomspace(0.03, 0.9, len(r))
    return {"c": list(c), "r": list(r), "d": list(d), "top1": list(top1)}


CLEAN = frontier(r=np.linspace(0.3, 1.2, 8), d=np.linspace(0.3, 0.9, 8),
                 top1=np.linspace(0.55, 0.80, 8))
# The smoke run's shape: r runs backwards at the top, the frontier barely above the noise.
BACKWARDS = frontier(r=[0.26, 0.28, 0.56, 0.59, 0.85, 0.42], d=[0.28, 0.27, 0.42, 0.67, 0.41, 0.35],
                     top1=[0.428, 0.458, 0.485, 0.489, 0.529, 0.639],
                     c=[0.030, 0.042, 0.068, 0.175, 0.235, 0.864])


def fitted(data, **params):
    return TinyFormula(**SMALL, **params).fit(data)


# -- monotone GPs --------------------------------------------------------------------------------

def test_isotonic_is_the_pool_adjacent_violators_projection():
    assert isotonic([1, 3, 2, 4]) == [1, 2.5, 2.5, 4]
    assert isotonic([3, 2, 1]) == [2, 2, 2]
    assert isotonic([0.1, 0.2]) == [0.1, 0.2]


def test_monotone_formula_never_falls_and_survives_a_round_trip(tmp_path):
    plain, monotone = fitted(BACKWARDS, monotone=False), fitted(BACKWARDS, monotone=True)
    grid = np.geomspace(0.005, 3.0, 300)
    assert not is_non_decreasing(plain.predict(grid)[0])   # the data run backwards
    loaded = TinyFormula.load(monotone.save(tmp_path / "formula.json"))
    for formula in (monotone, loaded):
        r, d = formula.predict(grid)
        assert is_non_decreasing(r) and is_non_decreasing(d)
        assert is_non_decreasing([formula.expected_top1(c)[0] for c in grid])
    np.testing.assert_allclose(loaded.predict(grid)[0], monotone.predict(grid)[0], rtol=1e-12)
    assert loaded.monotone is True


def test_monotone_changes_nothing_where_the_data_already_rise():
    plain, monotone = fitted(CLEAN, monotone=False), fitted(CLEAN, monotone=True)
    grid = np.geomspace(0.03, 0.9, 40)
    # The rearranged mean interpolates a 1% lattice: equal to the GP's within its curvature.
    np.testing.assert_allclose(monotone.predict(grid)[0], plain.predict(grid)[0], atol=1e-3)


def test_top1_gp_answers_with_a_band_and_old_files_have_none(tmp_path):
    formula = fitted(CLEAN, top1_noise=0.02)
    rec = formula.recommend(0.25)
    assert 0.55 < rec.top1 < 0.8 and rec.top1_std >= 0.02 * 0.99  # the seed noise at least
    assert rec.to_dict()["top1"] == rec.top1
    builtin = TinyFormula.builtin()   # the shipped file predates quality and top-1
    assert builtin.expected_top1(0.25) is None and builtin.quality_ is None
    assert builtin.recommend(0.25).top1 is None


def test_expected_top1_spread_is_one_trainings_seed_noise_at_least():
    # The surrogate's top-1 curve is fitted through a smooth path: its GP alone is sure to a
    # tenth of a point. A user trains one network, whose score moves with the seed as much
    # as the search measured: that spread belongs in the +- the formula prints.
    formula = fitted(CLEAN)
    curve_std = formula.expected_top1(0.25)[1]
    formula.quality_ = {"seed_noise": 0.03}
    mean, std = formula.expected_top1(0.25)
    assert std == pytest.approx(math.hypot(curve_std, noise_sigma(0.03)))
    assert std >= noise_sigma(0.03) and formula.recommend(0.25).top1_std == std


# -- the report and its verdict ------------------------------------------------------------------

def test_clean_frontier_is_trustworthy():
    report = assess(fitted(CLEAN), num_classes=10, val_size=2000, seed_noise=0.02, trials=20)
    assert report["verdict"] == "trustworthy", report["reasons"]
    assert report["loo_rmse"]["r"] < 0.1 and report["monotone"] == {"r": True, "d": True}
    assert report["rise_over_noise"] == pytest.approx(0.25 / 0.02)


@pytest.fixture(scope="module")
def backwards():
    """The smoke run's formula (monotone, the default) with its report (leave-one-out refits
    take a while: computed once)."""
    formula = fitted(BACKWARDS)
    formula.quality_ = assess(formula, num_classes=10, val_size=1000, seed_noise=0.04, trials=26)
    return formula


def test_backwards_frontier_is_weak_and_says_why(backwards):
    report = backwards.quality_
    assert report["verdict"] == "weak" and report["monotone_fit"] is True
    assert any("misses left-out frontier points" in reason for reason in report["reasons"])
    assert report["monotone"] == {"r": True, "d": True}
    assert 5 < report["rise_over_noise"] < 6   # 21.1% over 4%: the rise alone looks fine


def test_frontier_within_the_seed_noise_is_noise():
    flat = frontier(r=np.linspace(0.3, 1.2, 6), d=np.linspace(0.3, 0.9, 6),
                    top1=[0.50, 0.51, 0.51, 0.52, 0.52, 0.53])
    report = assess(fitted(flat), num_classes=10, val_size=1000, seed_noise=0.04, trials=26)
    assert report["verdict"] == "noise"
    assert "within the seed noise" in report["reasons"][0]


def test_trials_at_chance_refuse_the_fit_with_what_to_do():
    # Digits with --train-size 256: every trial 9-12%, chance 10%.
    scores = [0.09 + 0.03 * i / 25 for i in range(26)]
    with pytest.raises(TinyFormulaError, match="at chance.*Train longer"):
        check_above_chance(scores, num_classes=10, val_size=269, noise=0.02)
    check_above_chance(scores + [0.6], num_classes=10, val_size=269, noise=0.02)  # one learned
    # The best of more trials lands further above chance by luck.
    assert chance_margin(10, 1000, 0.02, 100) > chance_margin(10, 1000, 0.02, 5)


# -- scikit-learn ---------------------------------------------------------------------------------

def test_sklearn_clone_works():
    from sklearn.base import clone

    original = TinyFormula(num_classes=10, monotone=False)
    copy = clone(original)
    assert copy.get_params() == original.get_params() and copy is not original
    with pytest.raises(TinyFormulaError, match="no parameter"):
        copy.set_params(colour="blue")


# -- the command line ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def weak_file(tmp_path_factory, backwards):
    return backwards.save(tmp_path_factory.mktemp("weak") / "formula.json")


def test_predict_several_budgets_and_units(cli):
    code, out, err = cli("predict", "--flops", "0.06", "0.13", "100M", "--json")
    assert code == 0, err
    answers = json.loads(out)
    reference = Yardstick("efficientnet_b0").reference
    assert [a["budget"] for a in answers] == pytest.approx([0.06, 0.13, 1e8 / reference])
    assert all(a["c"] <= a["budget"] for a in answers)
    code, out, _ = cli("predict", "--flops", "1.2G", "--num-classes", "10", "--json")
    assert code == 2  # 1.2 GFLOPs is more than the base: refused, not silently clipped
    code, out, _ = cli("compare", "--flops", "0.13", "0.25", "--json")
    assert code == 0 and [len(pair) for pair in json.loads(out)] == [2, 2]


@pytest.mark.parametrize("budget, message", [
    ("2.5e8", "add its unit: --budget 250M"),
    ("12x", "unknown unit 'x'"),
    ("abc", "not a number"),
    ("0M", "above 0"),
])
def test_predict_budget_errors_are_one_line(cli, budget, message):
    code, out, err = cli("predict", "--flops", budget)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_predict_with_a_weak_formula_warns_and_reports(cli, weak_file):
    code, out, err = cli("predict", "--formula", weak_file, "--flops", "0.25")
    assert code == 0
    assert "warning: this formula's quality: weak" in err
    assert "quality: weak" in out and "top-1" in out and "leave-one-out" in out
    assert "search again with another --seed and pool both" in out    # what to do about it
    code, out, err = cli("predict", "--formula", weak_file, "--flops", "0.25", "--json")
    answer = json.loads(out)
    assert answer["quality"]["verdict"] == "weak" and answer["top1"] is not None


def test_a_weak_but_validated_formula_points_to_its_validation(cli):
    # the MobileNetV2 zoo entry of 0.7.1-0.7.2 is weak by its search's rules and carries its
    # validation
    entry = ROOT / "experiments/results/zoo_history/mobilenetv2_100--fashion-mnist_0.7.2.json"
    code, out, err = cli("predict", "--formula", str(entry), "--flops", "0.25")
    assert code == 0 and "quality: weak" in out, err
    assert "read its validation (below)" in out and "validation: wins/ties/loses" in out
    assert "search again" not in out
    # weak at c = 0.06 only: the warning says where, not "rough" at every budget
    assert "rough near c = 0.06 (trustworthy at c = 0.13, 0.25, 0.5)" in err, err


def test_predict_with_a_fitted_formula_stays_light(weak_file):
    code = ("import sys; from tinyformula.cli import main; "
            f"code = main(['predict', '--formula', {str(weak_file)!r}, '--flops', '0.1', '2M']); "
            "assert code == 0, code; "
            "bad = [m for m in ('torch', 'sklearn', 'numpy', 'pandas') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


# -- search settings ------------------------------------------------------------------------------

def test_the_hold_out_scales_with_the_dataset():
    from tinyformula.sweep.config import SearchConfig

    digits = SearchConfig(data="digits", preset="smoke").resolved(train_images=1347)
    assert (digits.val_size, digits.train_size) == (269, 1078)
    cifar = SearchConfig(preset="paper").resolved(train_images=50_000)
    assert (cifar.val_size, cifar.train_size) == (10_000, 40_000)
    fashion = SearchConfig(preset="smoke").resolved(train_images=60_000)
    assert fashion.val_size == 1000 and fashion.identity()["val_size"] == 1000
    assert SearchConfig(preset="smoke", val_size=300).resolved(1347).val_size == 300
    with pytest.raises(TinyFormulaError, match="ask for"):
        SearchConfig(preset="smoke", val_size=1000, train_size=1000).resolved(1347)


def test_plans_hold_distinct_networks_and_stay_prefix_stable():
    from tinyformula.sweep.space import network_key, plan_candidates

    yardstick = Yardstick("efficientnet_b0", num_classes=10, resolution_base=32)
    for sampler in ("budgeted", "random"):
        long = plan_candidates(yardstick, 40, sampler=sampler, seed=0)
        assert len({network_key(yardstick, c) for c in long}) == 40
        assert plan_candidates(yardstick, 24, sampler=sampler, seed=0) == long[:24]


@pytest.mark.parametrize("guarded", [False, True])
def test_search_at_an_unguarded_top_level_fails_at_once(tmp_path, guarded):
    call = ('tinyformula.search("efficientnet_b0", "digits", preset="smoke", trials=2, '
            f'workers=2, progress=False, out={str(tmp_path / "file")!r})')
    (tmp_path / "file").write_text("not a folder")   # a guarded call fails later, on --out
    script = "import tinyformula\n" + (f'if __name__ == "__main__":\n    {call}\n' if guarded
                                        else f"{call}\n")
    (tmp_path / "script.py").write_text(script)
    done = subprocess.run([sys.executable, str(tmp_path / "script.py")], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("tinyformula.TinyFormulaError"), done.stderr
    if guarded:
        assert "is a file" in last
    else:
        assert "top level of" in last and '__name__ == "__main__"' in last


# -- the README says what the tool does ----------------------------------------------------------

def test_every_flag_of_every_command_is_in_its_readme_synopsis():
    """The synopses live in docs/commands.md (the README links to it)."""
    import argparse

    from tinyformula.cli import build_parser

    readme = (ROOT / "docs" / "commands.md").read_text()
    commands = next(a for a in build_parser()._actions
                    if isinstance(a, argparse._SubParsersAction)).choices
    missing = {}
    for name, parser in commands.items():
        blocks = re.findall(rf"```\n(tinyformula {name}\b.*?)```", readme, re.S)
        assert blocks, f"docs/commands.md has no synopsis block starting 'tinyformula {name}'"
        synopsis = " ".join(blocks)
        flags = [option for action in parser._actions for option in action.option_strings
                 if option.startswith("--") and option != "--help"]
        absent = [flag for flag in flags if not re.search(rf"{re.escape(flag)}\b", synopsis)]
        if absent:
            missing[name] = absent
    assert not missing, f"flags missing from the synopses of docs/commands.md: {missing}"


def test_train_can_score_on_a_hold_out_and_says_what_it_scored_on(cli):
    args = ("train", "--data", "digits", "--r", "0.25", "--d", "0.25", "--w", "0.25",
            "--train-size", "64", "--quiet")
    code, out, err = cli(*args, "--score-on", "holdout", "--val-size", "50")
    assert code == 0, err
    assert "scored on 50 held-out (50 images held out from the training split" in out
    code, out, err = cli(*args)
    assert code == 0, err
    assert "use --score-on holdout" in out
