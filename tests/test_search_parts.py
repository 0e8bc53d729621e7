"""The search's parts on small inputs: samplers, the durable store, the Pareto frontier."""

import sqlite3
import subprocess
import sys

import pytest

from tinyformula import TinyFormulaError, get_base
from tinyformula.pareto import pareto_frontier
from tinyformula.run import SearchConfig, _merge_plan, plan_trials
from tinyformula.space import plan_candidates
from tinyformula.store import TrialStore

B0 = get_base("efficientnet_b0")


@pytest.mark.parametrize("sampler", ["random", "budgeted"])
def test_samplers_are_deterministic_prefix_stable_and_in_range(sampler):
    kwargs = dict(sampler=sampler, c_range=(0.05, 0.5), num_classes=10, resolution_base=32)
    plan = plan_candidates(B0, 12, seed=3, **kwargs)
    assert plan == plan_candidates(B0, 12, seed=3, **kwargs)
    assert plan[:5] == plan_candidates(B0, 5, seed=3, **kwargs)   # a search can grow
    assert plan != plan_candidates(B0, 12, seed=4, **kwargs)
    for candidate in plan:
        assert 0.05 <= candidate.c <= 0.5
        assert 0.25 <= candidate.r <= 4 and 0.25 <= candidate.d <= 4 and 0.25 <= candidate.w <= 4
        assert B0.cost(candidate_scale(candidate), 10, 32).flops == candidate.flops


def candidate_scale(candidate):
    from tinyformula import Scale

    return Scale(candidate.r, candidate.d, candidate.w)


def test_budgeted_sampler_spreads_over_the_range():
    plan = plan_candidates(B0, 40, sampler="budgeted", c_range=(0.03, 1.0), seed=0,
                           num_classes=10, resolution_base=32)
    low = sum(c.c < 0.17 for c in plan)  # log-midpoint of 0.03..1.0
    assert 10 <= low <= 30


@pytest.mark.parametrize("c_range, message", [((0.5, 0.1), "0 < LO < HI"), ((0, 1), "0 < LO < HI"),
                                               ((0.1, 0.1), "0 < LO < HI")])
def test_bad_c_ranges(c_range, message):
    with pytest.raises(TinyFormulaError, match=message):
        plan_candidates(B0, 3, c_range=c_range)


def test_plan_puts_replicates_after_the_candidates():
    config = SearchConfig(preset="smoke", trials=5).resolved()
    trials = plan_trials(config, num_classes=10, resolution_base=32)
    assert [t["seed"] for t in trials] == [0] * 5 + [1] * config.replicates
    assert [t["candidate"] for t in trials[5:]] == list(range(config.replicates))


def test_store_keeps_finished_trials_across_reopen(tmp_path):
    config = SearchConfig(preset="smoke", trials=4).resolved()
    store = TrialStore.open(tmp_path / "trials.sqlite")
    planned = _merge_plan(store, config, plan_trials(config, 10, 32))
    store.write_plan(config.identity(), {}, planned)
    store.record(planned[0]["id"], {"status": "ok", "top1": 0.5, "seconds": 1.0})
    store.record(planned[1]["id"], {"status": "diverged", "message": "loss became nan"})
    store.close()

    again = TrialStore.open(tmp_path / "trials.sqlite")
    replanned = _merge_plan(again, config, plan_trials(config, 10, 32))
    assert [t["id"] for t in replanned] == [t["id"] for t in planned]
    again.write_plan(config.identity(), {}, replanned)
    statuses = [t["status"] for t in again.trials()]
    assert statuses[:2] == ["ok", "diverged"] and len(again.pending()) == len(planned) - 2
    again.close()


def test_store_refuses_a_different_search(tmp_path):
    config = SearchConfig(preset="smoke", trials=3).resolved()
    store = TrialStore.open(tmp_path / "trials.sqlite")
    store.write_plan(config.identity(), {}, _merge_plan(store, config, plan_trials(config, 10, 32)))
    for other in (SearchConfig(preset="smoke", trials=3, seed=1),
                  SearchConfig(preset="smoke", trials=3, data="digits"),
                  SearchConfig(preset="smoke", trials=3, c_range=(0.1, 1.0))):
        other = other.resolved()
        with pytest.raises(TinyFormulaError, match="holds a different search"):
            _merge_plan(store, other, plan_trials(other, 10, 32))
    store.close()


def test_more_trials_extend_the_same_search(tmp_path):
    small = SearchConfig(preset="smoke", trials=3).resolved()
    store = TrialStore.open(tmp_path / "trials.sqlite")
    store.write_plan(small.identity(), {}, _merge_plan(store, small, plan_trials(small, 10, 32)))
    big = SearchConfig(preset="smoke", trials=6).resolved()
    merged = _merge_plan(store, big, plan_trials(big, 10, 32))
    ids = [t["id"] for t in merged]
    assert len(set(ids)) == len(ids) == 6 + big.replicates
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
from tinyformula.run import SearchConfig, _merge_plan, plan_trials
from tinyformula.store import TrialStore
config = SearchConfig(preset="smoke", trials=4).resolved()
store = TrialStore.open({str(path)!r})
planned = _merge_plan(store, config, plan_trials(config, 10, 32))
store.write_plan(config.identity(), {{}}, planned)
store.record(planned[0]["id"], {{"status": "ok", "top1": 0.7}})
os.kill(os.getpid(), signal.SIGKILL)
"""
    result = subprocess.run([sys.executable, "-c", code])
    assert result.returncode == -9
    store = TrialStore.open(path)
    trials = store.trials()
    assert trials[0]["status"] == "ok" and trials[0]["top1"] == 0.7
    assert all(t["status"] == "pending" for t in trials[1:])
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_pareto_frontier():
    trials = [
        {"candidate": 0, "seed": 0, "c": 0.1, "top1": 0.60, "status": "ok"},
        {"candidate": 1, "seed": 0, "c": 0.2, "top1": 0.55, "status": "ok"},   # dominated
        {"candidate": 2, "seed": 0, "c": 0.3, "top1": 0.70, "status": "ok"},
        {"candidate": 3, "seed": 0, "c": 0.3, "top1": 0.65, "status": "ok"},   # tie on c, worse
        {"candidate": 4, "seed": 0, "c": 0.05, "top1": None, "status": "diverged"},
        {"candidate": 5, "seed": 0, "c": 0.5, "top1": 0.80, "status": "ok"},
        {"candidate": 0, "seed": 1, "c": 0.1, "top1": 0.99, "status": "ok"},   # replicate
    ]
    frontier = pareto_frontier(trials, seed=0)
    assert [t["candidate"] for t in frontier] == [0, 2, 5]
    # Without a seed filter the lucky replicate (0.99 at c = 0.1) dominates everything else.
    assert [(t["candidate"], t["seed"]) for t in pareto_frontier(trials)] == [(0, 1)]
