"""Pareto-aware successive halving: rungs, promotion, bad schedules, the store, a real search."""

import json
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from tinyformula import TinyFormulaError, Yardstick, load_run, search
from tinyformula.cost.yardstick import Configuration
from tinyformula.execution.jobs import TrialResult, TrialState
from tinyformula.sweep.config import SearchConfig
from tinyformula.sweep.driver import plan_trials
from tinyformula.sweep.halving import plan_rung, promote, rung_train_sizes
from tinyformula.sweep.pareto import pareto_fronts as pareto_ranks
from tinyformula.sweep.store import TrialStore
from tinyformula.sweep.trials import Trial

SMALL = Yardstick("efficientnet_b0", num_classes=10, resolution_base=32)
FASHION = Path("/usr/share/datasets/fashion-mnist")


def result(candidate: int, c: float, top1: float, rung: int = 0) -> Trial:
    config = Configuration(r=1, d=1, w=1, c=c, resolution=32, flops=int(1e6 * c), params=1)
    return Trial(candidate, candidate, 0, config, TrialState.OK, top1, rung=rung, images=100)


# -- promotion ---------------------------------------------------------------------------------

def test_promotion_keeps_small_networks_and_covers_c():
    # Top-1 grows with c, as it does: every point is on the frontier. Plain top-1 would keep
    # the three largest; the rule keeps the cheapest, the largest and one between.
    results = [result(i, c, 0.5 + 0.1 * i) for i, c in enumerate(
        [0.03, 0.05, 0.08, 0.12, 0.2, 0.3, 0.5, 0.7, 1.0])]
    promoted = promote(results, 3)
    cs = [t.config.c for t in promoted]
    assert 0.03 in cs and 1.0 in cs
    assert 0.12 <= cs[1] <= 0.3                      # the middle of log c, not a neighbour


def test_promotion_takes_whole_pareto_fronts_first():
    front = [result(0, 0.05, 0.60), result(1, 0.2, 0.70), result(2, 0.8, 0.80)]
    dominated = [result(3, 0.1, 0.55), result(4, 0.5, 0.65), result(5, 0.9, 0.75)]
    worst = [result(6, 0.6, 0.50)]
    ranks = pareto_ranks(front + dominated + worst)
    assert [{t.candidate for t in f} for f in ranks] == [{0, 1, 2}, {3, 4, 5}, {6}]
    promoted = promote(front + dominated + worst, 4)
    assert {0, 1, 2} <= {t.candidate for t in promoted}
    assert 6 not in {t.candidate for t in promoted}


def test_promotion_is_deterministic():
    rng = random.Random(1)
    results = [result(i, rng.uniform(0.03, 1), rng.uniform(0.3, 0.8)) for i in range(30)]
    chosen = [t.candidate for t in promote(results, 10)]
    for _ in range(5):
        rng.shuffle(results)
        assert [t.candidate for t in promote(results, 10)] == chosen
    assert chosen == sorted(chosen) and len(chosen) == 10


def test_plan_rung_promotes_from_the_rung_below_and_keeps_what_was_trained():
    config = SearchConfig(preset="smoke", trials=18, schedule="halving", min_rung=1).resolved()
    candidates = [p.config for p in plan_trials(config, SMALL) if p.seed == 0]
    rng = random.Random(0)
    rung0 = [Trial(i, i, 0, cand, TrialState.OK, rng.uniform(0.2, 0.8), images=228)
             for i, cand in enumerate(candidates)]
    plan = plan_rung(config.rungs(), 1, candidates, rung0)
    members = [p.candidate for p in plan if p.seed == 0]
    assert len(members) == 6 and {p.rung for p in plan} == {1}
    assert {p.images for p in plan} == {683}
    assert members == [t.candidate for t in promote(rung0, 6)]
    # A candidate already trained at rung 1 stays planned there (a search that grew).
    extra = next(i for i in range(18) if i not in members)
    kept = rung0 + [Trial(99, extra, 0, candidates[extra], TrialState.OK, 0.1, rung=1)]
    assert extra in [p.candidate for p in plan_rung(config.rungs(), 1, candidates, kept)]


# -- rungs and bad schedules -------------------------------------------------------------------

def test_rung_budgets():
    assert rung_train_sizes(2048, 1, 3, 227) == (228, 683, 2048)
    assert rung_train_sizes(2048, 1, 2, 512) == (512, 1024, 2048)
    assert rung_train_sizes(1000, 2, 3, 666) == (333, 1000)         # images x epochs
    config = SearchConfig(preset="default", schedule="halving").resolved()
    assert config.rung_train_sizes == (1820, 5461, 16384) and config.top_rung == 2
    # The default preset halves (validated equal to the full schedule at equal compute, and
    # better agreed across search seeds); smoke's 228-image rung would score at chance.
    assert SearchConfig(preset="default").resolved().rung_train_sizes == (1820, 5461, 16384)
    assert SearchConfig(preset="default").resolved().trials == 150
    assert SearchConfig(preset="default").resolved().second_stage == 10
    assert SearchConfig(preset="default", schedule="full").resolved().trials == 50
    assert SearchConfig(preset="smoke").resolved().rung_train_sizes == (2048,)


def test_fit_help_says_what_each_preset_trains():
    from tinyformula.sweep.config import describe_preset

    assert describe_preset("smoke") == ("24 candidates + 2 re-trained with another seed = "
                                        "26 trials x 2,048 images")
    # 156 x 1,820 + 52 x 5,461 + (23 + 10) x 16,384 images: within 3% of 66 x 16,384
    assert describe_preset("default") == (
        "halving at equal compute: 150 + 50 + 17 candidates (+ 6 + 2 + 6 re-trained with "
        "another seed) on 1,820, 5,461, 16,384 images, then 10 candidates around the "
        "formula's band on 16,384 images, 1.11 M training images in all, about as many as "
        "66 full trials x 16,384 images")


def test_fit_help_counts_a_full_preset_s_second_stage(monkeypatch):
    from dataclasses import replace

    import tinyformula.sweep.config as config_module
    from tinyformula.sweep.config import describe_preset
    from tinyformula.sweep.presets import PRESETS

    monkeypatch.setitem(config_module.PRESETS, "smoke", replace(PRESETS["smoke"], second_stage=5))
    assert describe_preset("smoke") == ("24 candidates + 2 re-trained with another seed + 5 "
                                        "around the formula's band = 31 trials x 2,048 images")


@pytest.mark.parametrize("argv, message", [
    (["--eta", "1.5"], "--eta: must be"),
    (["--min-images", "0"], "--min-images: must be"),
    (["--min-images", "5000"], "above the full budget"),
    (["--min-images", "1000"], "leaves a single rung"),
    (["--schedule", "quarter"], "invalid choice"),
])
def test_bad_schedules_are_one_line_and_exit_2(argv, message, cli, tmp_path):
    out = tmp_path / "run"
    args = ["--schedule", "halving"] if "--schedule" not in argv else []
    code, _, err = cli("fit", "--preset", "smoke", "--out", out, *args, *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def new_store(path, config):
    store = TrialStore.open(path)
    store.write_plan(config, SMALL, store.merge_plan(config, plan_trials(config, SMALL)))
    return store


@pytest.mark.parametrize("other", [dict(schedule="halving"), dict(schedule="halving", eta=4)])
def test_a_folder_with_another_schedule_is_refused(tmp_path, other):
    first = (dict(schedule="halving", eta=3) if other.get("eta") else dict(schedule="full"))
    config = SearchConfig(preset="smoke", trials=4, **first).resolved()
    store = new_store(tmp_path / "trials.sqlite", config)
    changed = SearchConfig(preset="smoke", trials=4, **other).resolved()
    with pytest.raises(TinyFormulaError, match="holds a different search.*schedule|eta"):
        store.merge_plan(changed, plan_trials(changed, SMALL))
    store.close()


# -- the store: schema 1 folders ---------------------------------------------------------------

SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE trials (
    id INTEGER PRIMARY KEY, candidate INTEGER NOT NULL, seed INTEGER NOT NULL,
    r REAL NOT NULL, d REAL NOT NULL, w REAL NOT NULL, c REAL NOT NULL,
    resolution INTEGER NOT NULL, flops INTEGER NOT NULL, params INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    top1 REAL, loss REAL, seconds REAL, images_per_s REAL, message TEXT, finished_at REAL,
    UNIQUE (candidate, seed));
"""


def schema_1_folder(folder: Path, config: SearchConfig) -> None:
    """A run folder as tinyformula wrote it before rungs existed (no schedule anywhere)."""
    folder.mkdir()
    identity = {k: v for k, v in config.identity().items() if k != "schedule"}
    settings = {k: v for k, v in config.to_dict().items()
                if k not in ("schedule", "eta", "min_images", "min_rung")}
    settings.update(SMALL.to_dict(), replicates=config.replicates)
    with sqlite3.connect(folder / "trials.sqlite") as db:
        db.executescript(SCHEMA_1)
        for key, value in {"schema_version": 1, "identity": identity,
                           "settings": settings}.items():
            db.execute("INSERT INTO meta VALUES (?, ?)", (key, json.dumps(value)))
        for i, p in enumerate(plan_trials(config, SMALL)):
            c = p.config
            db.execute("INSERT INTO trials (id, candidate, seed, r, d, w, c, resolution, flops, "
                       "params, status, top1, seconds, finished_at) VALUES "
                       "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'ok', ?, 1.0, 1.0)",
                       (i, p.candidate, p.seed, c.r, c.d, c.w, c.c, c.resolution, c.flops,
                        c.params, 0.3 + 0.1 * c.c))


def test_a_schema_1_folder_loads_as_rung_0_and_migrates_when_continued(tmp_path):
    config = SearchConfig(preset="smoke", trials=5).resolved()
    folder = tmp_path / "old"
    schema_1_folder(folder, config)
    before = (folder / "trials.sqlite").read_bytes()
    run = load_run(folder)                                   # reading changes nothing
    assert (folder / "trials.sqlite").read_bytes() == before
    assert set(run.trials["rung"]) == {0} and set(run.trials["images"]) == {2048}
    assert run.config.top_rung == 0 and len(run.frontier) >= 1

    store = TrialStore.open(folder / "trials.sqlite")
    grown = SearchConfig(preset="smoke", trials=6).resolved()   # same search, grown
    trials = store.merge_plan(grown, plan_trials(grown, SMALL))
    store.write_plan(grown, SMALL, trials)
    assert not store.legacy and store.meta()["schema_version"] == 2
    stored = store.trials()
    assert [t.state for t in stored[:7]] == [TrialState.OK] * 7   # 5 + 2 replicates kept
    assert sum(t.state is TrialState.PENDING for t in stored) == 1
    store.record(TrialResult(stored[-1].id, TrialState.OK, top1=0.5))
    store.close()
    halving = SearchConfig(preset="smoke", trials=6, schedule="halving").resolved()
    store = TrialStore.open(folder / "trials.sqlite")
    with pytest.raises(TinyFormulaError, match="holds a different search"):
        store.merge_plan(halving, plan_trials(halving, SMALL))
    store.close()


# -- a real search -----------------------------------------------------------------------------

def halving_search(out, **extra):
    """A tiny halving search by 0.2's rules (its rungs are at chance: the rules of 0.3 would
    top its top rung up); too few top-rung points for a formula is fine here."""
    try:
        return search("efficientnet_b0", "fashion-mnist", out=out, preset="smoke", trials=8,
                      train_size=256, schedule="halving", min_rung=2, workers=2,
                      halving_rules=1, progress=False, log=lambda message: None, **extra)
    except TinyFormulaError as error:
        assert "Pareto-optimal" in str(error)
        return None


@pytest.mark.skipif(not FASHION.is_dir(), reason="needs Fashion-MNIST")
def test_halving_search_resumes_with_nothing_trained_twice(tmp_path, cli):
    out = tmp_path / "run"
    halving_search(out)
    run = load_run(out)
    trials = run.trials
    assert (trials["status"] == "ok").all()
    header = (out / "trials.csv").read_text().splitlines()[0].split(",")
    assert {"rung", "images"} <= set(header)
    per_rung = trials[trials["seed"] == 0].groupby("rung")["candidate"].apply(list)
    assert [len(v) for v in per_rung] == [8, 3, 2]
    assert set(per_rung[2]) <= set(per_rung[1]) <= set(per_rung[0])
    assert sorted(set(trials["images"])) == [28, 85, 256]
    assert set(run.frontier["rung"]) <= {2}
    fidelity = run.fidelity
    assert [r["images"] for r in fidelity["rungs"]] == [28, 85, 256]
    assert [t["promoted"] for t in fidelity["transitions"]] == [3, 2]
    assert all(r["noise"]["pairs"] >= 1 for r in fidelity["rungs"])
    assert fidelity["compute"]["images"] == int(trials["images"].sum())

    # Interrupted in rung 1: its second half pending, rung 2 never planned.
    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    (partial / "formula.json").unlink(missing_ok=True)
    with sqlite3.connect(partial / "trials.sqlite") as db:
        db.execute("DELETE FROM trials WHERE rung = 2")
        last = db.execute("SELECT max(id) FROM trials WHERE rung = 1").fetchone()[0]
        db.execute("UPDATE trials SET status='pending', top1=NULL, finished_at=NULL "
                   "WHERE id = ?", (last,))
    kept = load_run(partial).trials
    halving_search(partial)
    resumed = load_run(partial).trials
    key = ["candidate", "seed", "rung"]
    a = trials.sort_values(key)[key + ["top1"]].reset_index(drop=True)
    b = resumed.sort_values(key)[key + ["top1"]].reset_index(drop=True)
    assert a.equals(b)                                  # the same rows, the same results
    untouched = kept[kept["status"] == "ok"]
    after = resumed.set_index("id").loc[untouched["id"], "finished_at"]
    assert after.tolist() == untouched["finished_at"].tolist()   # nothing trained twice

    # The folder is refused for another schedule, and the summary reports the rungs.
    code, _, err = cli("fit", "--preset", "smoke", "--trials", "8", "--train-size", "256",
                       "--schedule", "full", "--out", out)
    assert code == 2 and "holds a different search" in err


def test_a_finished_halving_folder_plots_its_rungs_and_reports_fidelity(tmp_path):
    """Rungs written through the store with made-up scores (no training): the summary's
    fidelity report and ``rungs.png``."""
    import math

    from tinyformula.sweep.driver import search_candidates
    from tinyformula.sweep.results import finish_search, run_summary
    from tinyformula.viz.run import plot_run

    config = SearchConfig(preset="smoke", trials=30, schedule="halving").resolved()
    candidates = search_candidates(config, SMALL)
    rng = random.Random(0)
    store = TrialStore.open(tmp_path / "trials.sqlite")
    planned = []
    for rung in range(config.top_rung + 1):
        planned += plan_rung(config.rungs(), rung, candidates, store.trials())
        trials = store.merge_plan(config, planned)
        store.write_plan(config, SMALL, trials)
        for t in trials:
            if t.state is TrialState.PENDING:
                top1 = 0.5 + 0.05 * rung + 0.04 * math.log(t.config.c) + rng.gauss(0, 0.01)
                store.record(TrialResult(t.id, TrialState.OK, top1=top1, seconds=1.0))
    trials = store.trials()
    store.close()
    finish_search(tmp_path, config, SMALL, trials)
    run = load_run(tmp_path)
    summary = run_summary(run)
    fidelity = summary["fidelity"]
    assert fidelity["schedule"] == "halving" and len(fidelity["rungs"]) == 3
    assert [r["candidates"] for r in fidelity["rungs"]] == [30, 10, 6]
    assert [t["promoted"] for t in fidelity["transitions"]] == [10, 6]
    assert all(t["spearman"] > 0.5 for t in fidelity["transitions"])
    # The top rung replicates as many candidates as the full schedule does (the preset's 2).
    assert set(run.frontier["rung"]) == {2} and summary["seed_spread"]["pairs"] == 2
    images = sum(t.images for t in trials)
    assert fidelity["compute"]["images"] == images < 0.5 * 32 * 2048
    c = float(run.frontier["c"].iloc[len(run.frontier) // 2])
    paths = plot_run(tmp_path, budget=c)
    assert [p.name for p in paths][-1] == "rungs.png" and paths[-1].stat().st_size > 0


# -- the guards of 0.3 (halving_rules 2) -------------------------------------------------------

def test_equal_compute_plans_eta_times_the_candidates_and_no_more_images():
    from tinyformula.sweep.halving import equal_compute_candidates, rung_members

    for preset, trials in (("smoke", 24), ("default", 50)):
        config = SearchConfig(preset=preset, schedule="halving").resolved(train_images=60_000)
        assert config.trials == 3 * trials
        sizes = config.rung_train_sizes
        images = sum(n * s for n, s in zip(
            rung_members(config.trials, len(sizes), config.eta, config.min_rung), sizes))
        assert images <= 1.01 * trials * sizes[-1]
        assert equal_compute_candidates(trials, sizes, config.eta, config.min_rung) \
            == config.trials
    # --trials is still the number of candidates; 0.2's rules keep the preset's count.
    assert SearchConfig(preset="smoke", schedule="halving", trials=30).resolved().trials == 30
    assert SearchConfig(preset="smoke", schedule="halving",
                        halving_rules=1).resolved().trials == 24


def test_a_rung_at_chance_promotes_by_c_alone():
    from tinyformula.sweep.halving import spread_in_log_c

    config = SearchConfig(preset="smoke", trials=18, schedule="halving").resolved()
    candidates = [p.config for p in plan_trials(config, SMALL) if p.seed == 0]

    def rung0(scores):
        return [Trial(i, i, 0, cand, TrialState.OK, score, images=228)
                for i, (cand, score) in enumerate(zip(candidates, scores))]

    rng = random.Random(0)
    chance = [rung0([rng.uniform(0.08, 0.13) for _ in candidates]) for _ in range(2)]
    plans = [[p.candidate for p in plan_rung(config.rungs(10), 1, candidates, trials)
              if p.seed == 0] for trials in chance]
    assert plans[0] == plans[1]                 # the scores do not matter
    expected = sorted(t.candidate for t in spread_in_log_c(chance[0], [], 6))
    assert plans[0] == expected
    # Scores well above chance rank as before (and without the task's classes, every rung
    # ranks, as 0.2 did).
    learned = rung0([0.3 + 0.4 * rng.random() for _ in candidates])
    members = [p.candidate for p in plan_rung(config.rungs(10), 1, candidates, learned)
               if p.seed == 0]
    assert members == [t.candidate for t in promote(learned, 6)]
    old = [p.candidate for p in plan_rung(config.rungs(), 1, candidates, chance[0])
           if p.seed == 0]
    assert old == [t.candidate for t in promote(chance[0], 6)]


def test_the_top_rung_is_topped_up_until_it_holds_a_formula_s_points():
    config = SearchConfig(preset="smoke", trials=18, schedule="halving").resolved()
    candidates = [p.config for p in plan_trials(config, SMALL) if p.seed == 0]
    rungs = config.rungs(10)
    known = [Trial(i, i, 0, cand, TrialState.OK, 0.3 + 0.01 * i, images=228)
             for i, cand in enumerate(candidates)]
    members1 = [p for p in plan_rung(rungs, 1, candidates, known) if p.seed == 0]
    known += [Trial(100 + k, p.candidate, 0, p.config, TrialState.OK, 0.5, rung=1,
                    images=p.images) for k, p in enumerate(members1)]
    top = [p for p in plan_rung(rungs, 2, candidates, known) if p.seed == 0]
    assert len(top) == 6
    # The top rung finishes with every network scoring the same: one frontier point.
    finished = known + [Trial(200 + k, p.candidate, 0, p.config, TrialState.OK, 0.6, rung=2,
                              images=p.images) for k, p in enumerate(top)]
    topped = [p.candidate for p in plan_rung(rungs, 2, candidates, finished) if p.seed == 0]
    assert len(topped) == 8 and {p.candidate for p in top} < set(topped)
    # Nothing is added while a top-rung trial is still pending, nor by 0.2's rules.
    pending = known + [Trial(200 + k, p.candidate, 0, p.config, rung=2, images=p.images)
                       for k, p in enumerate(top)]
    assert len([p for p in plan_rung(rungs, 2, candidates, pending) if p.seed == 0]) == 6
    old = SearchConfig(preset="smoke", trials=18, schedule="halving",
                       halving_rules=1).resolved().rungs(10)
    assert len([p for p in plan_rung(old, 2, candidates, finished) if p.seed == 0]) == 6


def test_a_small_first_rung_is_warned_about_before_the_search_starts():
    from tinyformula.sweep.halving import small_rung_warning

    smoke = SearchConfig(preset="smoke", schedule="halving").resolved()
    default = SearchConfig(preset="default", schedule="halving").resolved()
    assert "2 optimiser step(s)" in small_rung_warning(smoke.rung_train_sizes[0], 1, 128)
    assert small_rung_warning(default.rung_train_sizes[0], 1, 128) is None


def test_a_folder_planned_with_old_defaults_continues_with_the_same_command(monkeypatch):
    """Presets' defaults may change (the schedule, the trial count, the rules): a stored
    search keeps what it was planned with when the command leaves them unset."""
    from dataclasses import replace

    import tinyformula.sweep.config as config_module
    from tinyformula.sweep.presets import PRESETS

    stored_full = SearchConfig(preset="smoke").resolved()
    stored_halving = replace(SearchConfig(preset="smoke", schedule="halving",
                                          halving_rules=1).resolved())
    new = replace(PRESETS["smoke"], schedule="halving", second_stage=5)
    monkeypatch.setitem(config_module.PRESETS, "smoke", new)
    given = SearchConfig(preset="smoke")
    now = given.resolved()
    assert now.schedule == "halving" and now.trials == 72
    for stored in (stored_full, stored_halving):
        continued = now.continuing(stored, given)
        assert continued.identity() == stored.identity()
        assert continued.trials == stored.trials and continued.second_stage == 0
    # Set explicitly, a setting is checked against the folder as before.
    explicit = SearchConfig(preset="smoke", schedule="halving")
    assert explicit.resolved().continuing(stored_full, explicit).identity() \
        != stored_full.identity()
