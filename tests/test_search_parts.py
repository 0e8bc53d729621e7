"""The search's parts on small inputs: samplers, the durable store, the Pareto frontier."""

import sqlite3
import subprocess
import sys

import pytest

from tinyformula import TinyFormulaError, Yardstick, get_base
from tinyformula.cost.yardstick import Configuration
from tinyformula.execution.jobs import TrialResult, TrialState
from tinyformula.sweep.config import SearchConfig
from tinyformula.sweep.driver import plan_trials
from tinyformula.sweep.pareto import pareto_frontier
from tinyformula.sweep.space import plan_candidates
from tinyformula.sweep.store import TrialStore
from tinyformula.sweep.trials import Trial

B0 = get_base("efficientnet_b0")
SMALL = Yardstick("efficientnet_b0", num_classes=10, resolution_base=32)


@pytest.mark.parametrize("sampler", ["random", "budgeted"])
def test_samplers_are_deterministic_prefix_stable_and_in_range(sampler):
    kwargs = dict(sampler=sampler, c_range=(0.05, 0.5))
    plan = plan_candidates(SMALL, 12, seed=3, **kwargs)
    assert plan == plan_candidates(SMALL, 12, seed=3, **kwargs)
    assert plan[:5] == plan_candidates(SMALL, 5, seed=3, **kwargs)   # a search can grow
    assert plan != plan_candidates(SMALL, 12, seed=4, **kwargs)
    for candidate in plan:
        assert 0.05 <= candidate.c <= 0.5
        assert 0.25 <= candidate.r <= 4 and 0.25 <= candidate.d <= 4 and 0.25 <= candidate.w <= 4
        assert B0.cost(candidate.scale, 10, 32).flops == candidate.flops


def test_budgeted_sampler_spreads_over_the_range():
    plan = plan_candidates(SMALL, 40, sampler="budgeted", c_range=(0.03, 1.0), seed=0)
    low = sum(c.c < 0.17 for c in plan)  # log-midpoint of 0.03..1.0
    assert 10 <= low <= 30


@pytest.mark.parametrize("c_range, message", [((0.5, 0.1), "LO < HI"), ((0, 1), "LO < HI"),
                                               ((0.1, 0.1), "LO < HI")])
def test_bad_c_ranges(c_range, message):
    with pytest.raises(TinyFormulaError, match=message):
        plan_candidates(Yardstick(), 3, c_range=c_range)


def test_plan_puts_replicates_after_the_candidates():
    config = SearchConfig(preset="smoke", trials=5).resolved()
    trials = plan_trials(config, SMALL)
    assert [t.seed for t in trials] == [0] * 5 + [1] * config.replicates
    assert [t.candidate for t in trials[5:]] == list(range(config.replicates))
    assert {t.rung for t in trials} == {0} and {t.images for t in trials} == {config.train_size}


def test_the_time_estimate_grows_with_work_and_divides_among_workers():
    from tinyformula.sweep.estimate import training_seconds, wall_seconds

    small, deep, wide = (Configuration(r=0.5, d=d, w=1.0, c=0.1, resolution=16, flops=flops,
                                       params=1000) for d, flops in ((0.5, 10**6), (2.0, 10**6),
                                                                      (0.5, 10**8)))
    assert 0 < training_seconds(small, 1000, 500) < training_seconds(small, 4000, 500)
    assert training_seconds(small, 1000, 500) < training_seconds(deep, 1000, 500)
    assert training_seconds(small, 1000, 500) < training_seconds(wide, 1000, 500)
    assert wall_seconds([4.0, 4.0, 4.0, 4.0], 2) == 8.0
    assert wall_seconds([4.0], 8) == 4.0          # never more workers than trainings
    assert wall_seconds([], 2) == 0.0


def new_store(path, config):
    """A store holding ``config``'s plan, as the search writes it."""
    store = TrialStore.open(path)
    trials = store.merge_plan(config, plan_trials(config, SMALL))
    store.write_plan(config, SMALL, trials)
    return store, trials


def test_store_keeps_finished_trials_across_reopen(tmp_path):
    config = SearchConfig(preset="smoke", trials=4).resolved()
    store, planned = new_store(tmp_path / "trials.sqlite", config)
    store.record(TrialResult(planned[0].id, TrialState.OK, top1=0.5, seconds=1.0))
    store.record(TrialResult(planned[1].id, TrialState.DIVERGED, message="loss became nan"))
    store.close()

    again = TrialStore.open(tmp_path / "trials.sqlite")
    replanned = again.merge_plan(config, plan_trials(config, SMALL))
    assert [t.id for t in replanned] == [t.id for t in planned]
    assert [t.state for t in replanned[:2]] == ["ok", "diverged"]
    again.write_plan(config, SMALL, replanned)
    trials = again.trials()
    assert trials[0].top1 == 0.5 and trials[1].message == "loss became nan"
    assert sum(t.state is TrialState.PENDING for t in trials) == len(planned) - 2
    assert again.config() == config and again.yardstick() == SMALL
    again.close()


def test_store_refuses_a_different_search(tmp_path):
    config = SearchConfig(preset="smoke", trials=3).resolved()
    store, _ = new_store(tmp_path / "trials.sqlite", config)
    # the refusal names the flags that would continue the stored search
    for other, flag in ((SearchConfig(preset="smoke", trials=3, seed=1), "--seed 0"),
                        (SearchConfig(preset="smoke", trials=3, data="digits"),
                         f"--data {config.data}"),
                        (SearchConfig(preset="smoke", trials=3, c_range=(0.1, 1.0)),
                         f"--c-range {config.c_range[0]:g} {config.c_range[1]:g}")):
        other = other.resolved()
        with pytest.raises(TinyFormulaError, match="holds a different search") as refused:
            store.merge_plan(other, plan_trials(other, SMALL))
        assert f"give its settings to continue or refit it ({flag})" in str(refused.value)
    store.close()


def test_more_trials_extend_the_same_search(tmp_path):
    small = SearchConfig(preset="smoke", trials=3).resolved()
    store, _ = new_store(tmp_path / "trials.sqlite", small)
    big = SearchConfig(preset="smoke", trials=6).resolved()
    merged = store.merge_plan(big, plan_trials(big, SMALL))
    ids = [t.id for t in merged]
    assert len(set(ids)) == len(ids) == 6 + big.replicates
    store.close()


def test_a_result_must_be_typed_and_finished(tmp_path):
    config = SearchConfig(preset="smoke", trials=2).resolved()
    store, planned = new_store(tmp_path / "trials.sqlite", config)
    with pytest.raises(TypeError):
        TrialResult(planned[0].id, TrialState.OK, top_1=0.5)  # a misspelled field fails
    with pytest.raises(ValueError):
        store.record(TrialResult(planned[0].id, TrialState.PENDING))
    with pytest.raises(ValueError):
        TrialState("okay")
    store.close()


def test_corrupt_store_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "trials.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    before = path.read_bytes()
    with pytest.raises(TinyFormulaError, match="not a readable trials database"):
        TrialStore.open(path)
    assert path.read_bytes() == before


def test_store_survives_kill_9(tmp_path):
    """A process killed mid-search leaves a store with every committed trial."""
    path = tmp_path / "trials.sqlite"
    code = f"""
import os, signal
from tinyformula import Yardstick
from tinyformula.sweep.driver import plan_trials
from tinyformula.execution.jobs import TrialResult, TrialState
from tinyformula.sweep.config import SearchConfig
from tinyformula.sweep.store import TrialStore
config = SearchConfig(preset="smoke", trials=4).resolved()
yardstick = Yardstick("efficientnet_b0", 10, 32)
store = TrialStore.open({str(path)!r})
planned = store.merge_plan(config, plan_trials(config, yardstick))
store.write_plan(config, yardstick, planned)
store.record(TrialResult(planned[0].id, TrialState.OK, top1=0.7))
os.kill(os.getpid(), signal.SIGKILL)
"""
    result = subprocess.run([sys.executable, "-c", code])
    assert result.returncode == -9
    store = TrialStore.open(path)
    trials = store.trials()
    assert trials[0].state is TrialState.OK and trials[0].top1 == 0.7
    assert all(t.state is TrialState.PENDING for t in trials[1:])
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_pareto_frontier():
    def trial(candidate, seed, c, top1, state=TrialState.OK):
        config = Configuration(r=1, d=1, w=1, c=c, resolution=32, flops=1, params=1)
        return Trial(len(rows), candidate, seed, config, state, top1)

    rows = []
    for args in [(0, 0, 0.1, 0.60), (1, 0, 0.2, 0.55),    # the second is dominated
                 (2, 0, 0.3, 0.70), (3, 0, 0.3, 0.65),    # a tie on c, worse
                 (4, 0, 0.05, None, TrialState.DIVERGED), (5, 0, 0.5, 0.80),
                 (0, 1, 0.1, 0.99)]:                      # a replicate
        rows.append(trial(*args))
    frontier = pareto_frontier(rows, seed=0)
    assert [t.candidate for t in frontier] == [0, 2, 5]
    # Without a seed filter the lucky replicate (0.99 at c = 0.1) dominates everything else.
    assert [(t.candidate, t.seed) for t in pareto_frontier(rows)] == [(0, 1)]


def test_a_folder_planned_before_plans_skipped_repeats_continues_with_its_plan(tmp_path):
    """A search written by tinyformula 0.1 (planner 1, no planner in its identity) is continued
    by the same command: the planner version and hold-out left unset take the stored ones."""
    old = SearchConfig(preset="smoke", trials=6, planner=1).resolved()
    assert "planner" not in old.identity()
    store, planned = new_store(tmp_path / "trials.sqlite", old)
    stored = store.config()
    assert stored.planner == 1
    given = SearchConfig(preset="smoke", trials=6)          # what the same command asks now
    now = given.resolved().continuing(stored, given)
    assert now.planner == 1 and now.identity() == old.identity()
    assert [t.id for t in store.merge_plan(now, plan_trials(now, SMALL))] == \
        [t.id for t in planned]
    store.close()


def test_new_plans_hold_distinct_networks_only():
    plan = plan_candidates(SMALL, 30, c_range=(0.03, 0.2), seed=0)
    from tinyformula.sweep.space import network_key

    keys = [network_key(SMALL, c) for c in plan]
    assert len(set(keys)) == len(keys)
