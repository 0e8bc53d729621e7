"""Budgets in every unit the yardstick knows, and configurations you can retype.

A budget is a relative c or an amount in the formula's own cost with its unit (FLOPs = MACs,
parameters, activations, ms); every command that takes one says what c = 1 is; bad units are
one line and exit status 2. Every configuration printed, stored or exported rebuilds the very
same network when typed again (a property test over random formulas and budgets)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyformula import TinyFormula, TinyFormulaError, Yardstick
from tinyformula.cost.budgets import parse_budget, relative_budget
from tinyformula.formula.solve import canonical, solve_budget
from tinyformula.nets.scale import Scale

SMALL = Yardstick("efficientnet_b0", num_classes=10, resolution_base=32)
IMAGENET = Yardstick("efficientnet_b0")


def small_formula(rise: float = 1.0, r0: float = 0.4, d0: float = 0.3) -> TinyFormula:
    """A formula fitted at 32 px and 10 classes, as a search on small images fits one."""
    c = [0.03, 0.08, 0.2, 0.5, 0.9]
    frontier = {"c": c, "r": [r0 + 0.5 * rise * x for x in c],
                "d": [d0 + 0.4 * rise * x for x in c], "top1": [0.5, 0.6, 0.65, 0.7, 0.72]}
    return TinyFormula(num_classes=10, resolution_base=32).fit(frontier)


@pytest.fixture(scope="module")
def fitted():
    return small_formula()


@pytest.fixture(scope="module")
def small_file(tmp_path_factory, fitted):
    return fitted.save(tmp_path_factory.mktemp("formula") / "formula.json")


class PowerCurve:
    """A GP posterior's stand-in: ``scale * c ** power`` (the formula evaluates it at log c),
    so random formulas need no GP fit."""

    def __init__(self, scale: float, power: float):
        self.scale, self.power = scale, power

    def predict(self, x: float) -> tuple[float, float]:
        import math

        return self.scale * math.exp(self.power * x), 0.01


# -- reading budgets -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, value, cost", [
    ("0.25", 0.25, None),
    ("100M", 1e8, "flops"),
    ("100MFLOPs", 1e8, "flops"),
    ("100 MFLOPs", 1e8, "flops"),
    ("100M MACs", 1e8, "flops"),     # fvcore: one multiply-add is one FLOP, so FLOPs = MACs
    ("1.2G", 1.2e9, "flops"),
    ("500k", 5e5, "flops"),
    ("1.5Mparams", 1.5e6, "params"),
    ("2M parameters", 2e6, "params"),
    ("3ms", 3.0, "latency"),
    ("0.003 s", 3.0, "latency"),
    ("2Mact", 2e6, "activations"),
])
def test_budgets_read_in_every_unit(text, value, cost):
    budget = parse_budget(text)
    assert budget.value == pytest.approx(value) and budget.cost == cost


def test_a_bare_prefix_is_the_formulas_own_count():
    from tinyformula.cost.meters import get_meter

    assert parse_budget("2M").cost == "flops"
    assert parse_budget("2M", get_meter("params")).cost == "params"


def test_every_meter_reads_back_what_it_prints():
    from tinyformula.cost.meters import METERS

    for meter in METERS.values():
        for amount in (0.37, 12.5, 8_751_000.0, 3.99e8):
            printed = meter.format(amount)
            budget = parse_budget(printed, meter)
            assert budget.cost == meter.name
            assert budget.value == pytest.approx(amount, rel=1e-3), printed


@pytest.mark.parametrize("text, message", [
    ("10X", "unknown unit 'X'"),
    ("-5M", "finite number above 0"),
    ("1e999", "finite number above 0"),
    ("1e999M", "finite number above 0"),
    ("nan", "finite number above 0"),
    ("0", "finite number above 0"),
    ("M", "not a number"),
])
def test_bad_budgets_are_refused(text, message):
    with pytest.raises(TinyFormulaError, match=message):
        parse_budget(text)


def test_an_amount_of_another_cost_is_refused_with_what_to_do():
    with pytest.raises(TinyFormulaError, match="fit --cost latency"):
        relative_budget("3ms", IMAGENET)
    with pytest.raises(TinyFormulaError, match="fit --cost params"):
        relative_budget("1.5Mparams", IMAGENET)


def test_an_absolute_budget_says_where_it_is_counted_and_how_to_count_at_224():
    with pytest.raises(TinyFormulaError) as refused:
        relative_budget("100M", SMALL)
    message = str(refused.value)
    assert "8.751M FLOPs" in message and "32 px, 10 classes" in message
    assert "--resolution-base 224" in message and "resolution_base=224" in message
    at_224 = SMALL.replace(resolution_base=224)
    assert relative_budget("100M", at_224) == pytest.approx(1e8 / at_224.reference)


# -- the command line ------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["predict", "compare", "build"])
@pytest.mark.parametrize("budget, message", [
    ("10X", "unknown unit"),
    ("-5M", "finite number above 0"),
    ("1e999", "finite number above 0"),
    ("3ms", "fit --cost latency"),
])
def test_bad_units_are_one_line_and_exit_2(cli, tmp_path, command, budget, message):
    out = ["--out", tmp_path / "model.pt"] if command == "build" else []
    code, stdout, err = cli(command, "--budget", budget, *out)
    assert code == 2 and stdout == "", err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "model.pt").exists()


def test_predict_answers_in_the_units_asked_with_the_reference(cli, small_file):
    code, out, err = cli("predict", "--formula", small_file, "--budget", "100M",
                         "--resolution-base", "224")
    assert code == 0, err
    assert "at 100M FLOPs (c = " in out
    reference = SMALL.replace(resolution_base=224).reference
    assert f"c = 1 is {reference / 1e6:.4g}M FLOPs (efficientnet_b0 at r = d = w = 1, 224 px, " \
           f"10 classes)" in out
    code, out, err = cli("predict", "--formula", small_file, "--budget", "100M",
                         "--resolution-base", "224", "--json")
    record = json.loads(out)
    assert record["budget"] == pytest.approx(1e8 / reference)
    assert record["reference"] == reference and record["unit"] == "FLOPs"
    assert record["budget_as_typed"] == "100M" and record["flops"] <= 1e8
    assert record["resolution_base"] == 224 and record["num_classes"] == 10


def test_compare_answers_each_budget_on_its_own(cli):
    code, out, err = cli("compare", "--budget", "0.0001", "0.25", "--json")
    assert code == 0, err
    unreachable, answered = json.loads(out)
    assert all("error" in side for side in unreachable)
    assert all("error" not in side and side["c"] <= 0.25 for side in answered)
    code, out, err = cli("compare", "--budget", "0.0001", "0.25")
    assert code == 0 and "tiny: unreachable:" in out and "giant: unreachable:" in out


def test_predict_answers_each_budget_on_its_own(cli):
    code, out, err = cli("predict", "--budget", "0.0001", "0.25", "--json")
    assert code == 0, err
    unreachable, answered = json.loads(out)
    assert "error" in unreachable and answered["c"] <= 0.25


def test_build_takes_a_budget_in_flops_at_224_px(cli, tmp_path, small_file):
    out = tmp_path / "model.pt"
    code, stdout, err = cli("build", "--formula", small_file, "--budget", "100M",
                            "--resolution-base", "224", "--out", out, "--json")
    assert code == 0, err
    config = json.loads(stdout)
    assert 0.98e8 * 0.98 <= config["flops"] <= 1e8
    assert config["resolution_base"] == 224 and config["num_classes"] == 10
    assert config["budget_as_typed"] == "100M" and config["unit"] == "FLOPs"
    assert config["c"] * config["reference"] == pytest.approx(config["flops"])


def test_create_model_takes_every_unit():
    from tinyformula import create_model

    model = create_model(flops="100M", resolution_base=224)
    assert 0.98 * 0.98e8 <= model.tinyformula["flops"] <= 1e8
    with pytest.raises(TinyFormulaError, match="fit --cost latency"):
        create_model(flops="3ms")
    with pytest.raises(TinyFormulaError, match="unknown unit"):
        create_model(flops="10X")


# -- numbers you can retype ------------------------------------------------------------------------

def _printed(out: str, label: str) -> float:
    return float(re.search(rf"^{label}\s+(\S+)", out, re.M).group(1))


def test_the_giant_formulas_half_depth_rebuilds_the_same_network(cli, fitted):
    """The issue's case: at 32 px and c = 0.25 the giant formula's d is 0.49999997; printed
    as 0.5 it built 3 x 0.5 -> 2 blocks where the network has 1, 26% over the budget."""
    rec = fitted.giant(0.25)
    assert rec.d != 0.5
    retyped = SMALL.measure(Scale(float(repr(rec.r)), float(repr(rec.d)), float(repr(rec.w))))
    assert retyped.flops == rec.flops
    code, out, _ = cli("flops", "--r", repr(rec.r), "--d", repr(rec.d), "--w", repr(rec.w),
                       "--num-classes", "10", "--resolution-base", "32", "--json")
    assert json.loads(out)["flops"] == rec.flops


def test_canonical_keeps_the_network_and_shortens_the_numbers():
    raw = solve_budget(SMALL, 0.25, 0.59372, 0.49999997)
    assert len(repr(raw.d)) <= 6 and len(repr(raw.r)) <= 6
    again = canonical(SMALL, raw)
    assert again == raw  # already canonical
    assert SMALL.measure(raw.scale).flops == raw.flops


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(r=st.tuples(st.floats(0.2, 1.6), st.floats(0.0, 0.6)),
       d=st.tuples(st.floats(0.2, 1.6), st.floats(0.0, 0.6)),
       c=st.floats(0.03, 0.95), resolution_base=st.sampled_from([32, 224]),
       num_classes=st.sampled_from([10, 1000]))
def test_every_configuration_printed_rebuilds_the_same_network(fitted, r, d, c,
                                                               resolution_base, num_classes):
    """Random formulas (r(c), d(c) as random power curves) and budgets: the r, d, w a
    recommendation prints (Python's shortest repr, as predict, compare and build print
    them) build the very network recommended."""
    from copy import copy

    from tinyformula.cli.output import multiplier

    formula = copy(fitted)
    formula.posterior_r_, formula.posterior_d_ = PowerCurve(*r), PowerCurve(*d)
    formula.posterior_top1_ = None
    yardstick = formula.yardstick_for(num_classes, resolution_base)
    for answer in (formula.recommend, formula.giant):
        try:
            rec = answer(c, num_classes, resolution_base)
        except TinyFormulaError:
            continue  # unreachable at this budget: nothing printed to retype
        typed = Scale(*(float(multiplier(v)) for v in (rec.r, rec.d, rec.w)))
        assert typed == rec.config.scale
        again = yardstick.measure(typed)
        assert (again.flops, again.params, again.resolution) == \
            (rec.flops, rec.params, rec.resolution)
        assert all(len(multiplier(v)) <= 8 for v in (rec.r, rec.d, rec.w))


def test_predict_output_retypes_into_flops(cli, small_file):
    code, out, _ = cli("predict", "--formula", small_file, "--budget", "0.25")
    assert code == 0
    r, d, w = (_printed(out, key) for key in ("r", "d", "w"))
    flops = int(re.search(r"^FLOPs\s+([\d,]+)", out, re.M).group(1).replace(",", ""))
    code, out, _ = cli("flops", "--r", r, "--d", d, "--w", w, "--num-classes", "10",
                       "--resolution-base", "32", "--json")
    assert json.loads(out)["flops"] == flops


# -- --model for flops and latency -----------------------------------------------------------------

def test_flops_and_latency_read_a_model_file(cli, tmp_path, small_file, monkeypatch):
    monkeypatch.setenv("TINYFORMULA_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "model.pt"
    code, stdout, _ = cli("build", "--formula", small_file, "--budget", "0.25", "--out", out,
                          "--json")
    built = json.loads(stdout)
    code, stdout, err = cli("flops", "--model", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["flops"] == built["flops"]
    code, _, err = cli("flops", "--model", out, "--r", "1")
    assert code == 2 and "--model gives the network" in err
    code, stdout, err = cli("latency", "--model", out, "--no-predict", "--quick", "--json")
    assert code == 0, err
    record = json.loads(stdout)
    assert (record["num_classes"], record["resolution_base"], record["resolution"]) == \
        (10, 32, built["resolution"])
    code, stdout, err = cli("latency", "--formula", small_file, "--budget", "0.25",
                            "--no-predict", "--quick", "--json")
    assert code == 0, err
    assert json.loads(stdout)["resolution"] == built["resolution"]


# -- unreachable budgets and estimates -----------------------------------------------------------

def test_an_unreachable_budget_says_its_amount_in_the_costs_unit():
    with pytest.raises(TinyFormulaError, match=r"c=1e-05 \(\S+ FLOPs\) is below the smallest"):
        solve_budget(SMALL, 1e-5, 0.5, 0.5)


def test_a_budget_is_not_called_unreachable_on_an_estimate(monkeypatch):
    """A predicted cost (latency) bisects on estimates; one that puts even the narrowest
    network over the budget is checked exactly before the budget is called unreachable (the
    fit summary called c = 0.25 unreachable where predict answered). Here a FLOPs meter that
    claims to predict, and whose estimates are five times too high."""
    from dataclasses import replace as replaced

    from tinyformula.cost import yardstick as yardsticks
    from tinyformula.cost.meters import CountMeter, get_meter

    class Overestimating(CountMeter):
        def amount(self, yardstick, scale, exact=True):
            return super().amount(yardstick, scale, exact) * (1 if exact else 5)

    flops = get_meter("flops")
    fake = Overestimating(**{f: getattr(flops, f) for f in flops.__dataclass_fields__})
    fake = replaced(fake, exact=False)
    monkeypatch.setattr(yardsticks, "get_meter", lambda name: fake)
    yardstick = Yardstick("efficientnet_b0", num_classes=10, resolution_base=32)
    r, d = 0.5, 0.5
    narrowest = yardstick.c(Scale(r, d, 1 / 64))
    c = 2 * narrowest                       # the estimate puts it at 2.5x the budget
    assert yardstick.amount(Scale(r, d, 1 / 64), exact=False) > yardstick.budget(c)
    answer = solve_budget(yardstick, c, r, d)
    assert narrowest <= answer.c <= c
    assert yardstick.amount(answer.scale) <= yardstick.budget(c)
