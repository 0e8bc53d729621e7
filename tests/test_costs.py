"""Cost as a choice: c in FLOPs, params, activations or latency, one Yardstick for all."""

import json

import pytest

from tinyformula import Scale, TinyFormulaError, Yardstick
from tinyformula.formula.estimator import TinyFormula
from tinyformula.formula.solve import solve_budget
from tinyformula.sweep.config import SearchConfig


@pytest.mark.parametrize("cost, field", [("flops", "flops"), ("params", "params"),
                                         ("activations", "activations")])
def test_analytic_costs_are_exact_and_relative_to_the_base(cost, field):
    yardstick = Yardstick("efficientnet_b0", 10, 32, cost=cost)
    scale = Scale(0.6, 0.7, 0.8)
    analytic = yardstick.cost_of(scale)
    reference = getattr(yardstick.cost_of(Scale()), field)
    assert yardstick.c(scale) == getattr(analytic, field) / reference
    assert yardstick.measure(scale).c == yardstick.c(scale)
    config = solve_budget(yardstick, 0.3, 0.8, 0.8)
    assert config.c <= 0.3 and getattr(yardstick.cost_of(config.scale), field) <= 0.3 * reference


class FakeLatency:
    """A latency table that answers 1 ms per MFLOP plus 0.5 ms, counting its calls."""

    def __init__(self):
        self.calls = self.estimates = 0

    def predict_ms(self, scale, num_classes, resolution_base):
        self.calls += 1
        return 0.5 + Yardstick("efficientnet_b0", num_classes, resolution_base).cost_of(
            scale).flops / 1e6

    def estimate_ms(self, scale, num_classes, resolution_base):
        self.estimates += 1
        return 0.5 + Yardstick("efficientnet_b0", num_classes, resolution_base).cost_of(
            scale).flops / 1e6


@pytest.fixture
def fake_latency(monkeypatch):
    from tinyformula.cost.latency import model as latency

    table = FakeLatency()
    monkeypatch.setattr(latency.LatencyModel, "load_or_build",
                        classmethod(lambda cls, *args, **kwargs: table))
    return table


def test_a_latency_yardstick_asks_the_latency_table(fake_latency):
    yardstick = Yardstick("efficientnet_b0", 10, 32, cost="latency")
    small = Scale(0.5, 0.5, 0.5)
    expected = (0.5 + yardstick.cost_of(small).flops / 1e6) / \
        (0.5 + yardstick.cost_of(Scale()).flops / 1e6)
    assert yardstick.c(small) == pytest.approx(expected)
    calls = fake_latency.calls
    config = solve_budget(yardstick, 0.4, 0.8, 0.8)
    assert 0.98 * 0.4 <= config.c <= 0.4 + 1e-12
    # Bisections estimate; only the width each resolution tried ends on is measured exactly.
    assert fake_latency.estimates > 10 * (fake_latency.calls - calls) > 0
    assert yardstick.to_dict() == {"base": "efficientnet_b0", "num_classes": 10,
                                   "resolution_base": 32, "cost": "latency", "device": "cpu",
                                   "threads": 1, "runtime": "torch"}
    assert Yardstick.from_dict(yardstick.to_dict()) == yardstick


def test_latency_on_a_device_this_machine_lacks_is_refused():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(TinyFormulaError, match="cuda"):
        Yardstick("efficientnet_b0", cost="latency", device="cuda")


def latency_formula(path):
    frontier = {"c": [0.1, 0.3, 0.6], "r": [0.5, 0.7, 0.9], "d": [0.4, 0.6, 0.8]}
    yardstick = Yardstick("efficientnet_b0", 10, 32, cost="latency")
    TinyFormula.for_yardstick(yardstick, source="test").fit(frontier).save(path)
    return path


def test_a_formula_keeps_its_cost_and_machine(fake_latency, tmp_path):
    path = latency_formula(tmp_path / "formula.json")
    data = json.loads(path.read_text())
    assert data["cost"] == "latency" and data["device"] == "cpu" and data["machine"]
    loaded = TinyFormula.load(path)
    assert loaded.yardstick.cost == "latency" and loaded.machine_ == data["machine"]
    rec = loaded.recommend(0.3)
    assert rec.config.c <= 0.3


def test_predict_refuses_to_mix_costs_or_machines(fake_latency, tmp_path, cli, monkeypatch):
    path = latency_formula(tmp_path / "formula.json")
    code, out, err = cli("predict", "--formula", path, "--flops", "0.3", "--cost", "flops")
    assert code == 2 and out == "" and "latency" in err and len(err.splitlines()) == 1
    code, out, err = cli("predict", "--formula", path, "--flops", "0.3", "--json")
    assert code == 0, err
    from tinyformula.cost.latency import measure

    monkeypatch.setattr(measure, "machine_description", lambda device="cpu": "another machine")
    code, out, err = cli("predict", "--formula", path, "--flops", "0.3")
    assert code == 2 and "fit a latency formula on this machine" in err


def test_the_builtin_formula_is_in_flops(cli):
    code, _, err = cli("predict", "--flops", "0.25", "--cost", "params")
    assert code == 2 and "fitted with c in FLOPs, not params" in err


def test_the_cost_is_part_of_a_searchs_identity():
    flops = SearchConfig(preset="smoke").resolved()
    params = SearchConfig(preset="smoke", cost="params").resolved()
    latency = SearchConfig(preset="smoke", cost="latency", latency_threads=2).resolved()
    assert "cost" not in flops.identity()  # as stored by searches before costs were a choice
    assert params.identity()["cost"] == "params"
    assert latency.identity()["latency_threads"] == 2
    with pytest.raises(TinyFormulaError, match="--cost"):
        SearchConfig(preset="smoke", cost="watts").resolved()


def test_plot_of_a_latency_search_shows_flops_against_latency(fake_latency, tmp_path, cli):
    from test_plots import check_png, write_run

    config = SearchConfig(preset="smoke", trials=30, cost="latency").resolved()
    folder = write_run(tmp_path / "run", config=config,
                       yardstick=config.yardstick(num_classes=10, resolution_base=32))
    code, out, err = cli("plot", str(folder))
    assert code == 0, err
    names = [line.rsplit("/", 1)[-1] for line in out.splitlines()]
    assert "flops_vs_latency.png" in names
    check_png(folder / "plots" / "flops_vs_latency.png")


def test_an_estimate_that_undershoots_never_puts_the_answer_over_budget(fake_latency,
                                                                        monkeypatch):
    """Bisections run on estimates; the exact latency of the answer is still within budget."""
    exact = fake_latency.predict_ms
    monkeypatch.setattr(fake_latency, "estimate_ms",
                        lambda scale, *args: 0.6 * exact(scale, *args))
    yardstick = Yardstick("efficientnet_b0", 10, 32, cost="latency")
    config = solve_budget(yardstick, 0.4, 0.8, 0.8)
    assert config.c <= 0.4 + 1e-12
    assert yardstick.c(config.scale) == config.c


def test_a_latency_search_keeps_its_training_device_apart_from_the_latency_device(
        fake_latency, tmp_path):
    from tinyformula.sweep.store import TrialStore

    config = SearchConfig(preset="smoke", trials=2, cost="latency", device="auto",
                          latency_device="cpu").resolved()
    yardstick = config.yardstick(num_classes=10, resolution_base=32)
    store = TrialStore.open(tmp_path / "trials.sqlite")
    store.write_plan(config, yardstick, [])
    assert store.config().device == "auto" and store.yardstick() == yardstick
    store.close()
