"""tinyformula validate's maths and settings on small inputs (no training): paired differences,
pooled seed noise, verdicts, falls, the ranking across schedules, fidelity, the formula file's
evidence; the fixed formulas; schedules, seeds and budgets resolved against a run."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyformula import TinyFormulaError, Yardstick
from tinyformula.formula.baselines import (
    fast_compound_recommendation,
    published_recommendation,
)
from tinyformula.formula.validation import (
    describe,
    fidelity,
    formula_entry,
    movement,
    paired,
    paired_se,
    pooled_sd,
    schedule_report,
    search_difference_sd,
    verdict,
)
from tinyformula.sweep.validation.config import (
    FIRST_SEED,
    Schedule,
    ValidationConfig,
    free_seeds,
    schedule_for,
)

SEEDS = (100, 101, 102)


def test_pooled_sd_pools_each_group_around_its_own_mean():
    sd, dof = pooled_sd([[1.0, 3.0], [10.0, 12.0, 14.0], [7.0]])
    assert dof == 3 and sd == pytest.approx(math.sqrt((2 + 8) / 3))
    assert pooled_sd([[1.0], []]) == (None, 0)


def test_paired_differences_use_the_seeds_both_have():
    assert paired({1: 0.5, 2: 0.6, 3: 0.7}, {2: 0.4, 3: 0.9, 4: 0.0}) == pytest.approx([0.2, -0.2])


def test_verdict_needs_two_standard_errors_either_way():
    assert verdict(0.05, 0.02) == "wins"
    assert verdict(0.03, 0.02) == "ties"
    assert verdict(-0.05, 0.02) == "loses"
    assert verdict(0.5, None) == "ties"  # noise unknown: a sign decides nothing


def test_paired_se_is_the_larger_of_the_pooled_and_the_pairs_own():
    quiet, noisy = [0.01, 0.01, 0.01, 0.01], [0.05, -0.03, 0.04, -0.02]
    assert paired_se(quiet, 0.02) == pytest.approx(0.02 / 2)   # own sd 0: the pooled one
    own = math.sqrt(sum((d - 0.01) ** 2 for d in noisy) / 3)
    assert paired_se(noisy, 0.01) == pytest.approx(own / 2)     # own above the pooled one
    assert paired_se([0.03], 0.02) == pytest.approx(0.02)       # one seed: the pooled one
    assert paired_se([0.03], None) is None and paired_se([], 0.02) is None
    assert paired_se(noisy, None) == pytest.approx(own / 2)


@settings(max_examples=200, deadline=None)
@given(diffs=st.lists(st.floats(-0.2, 0.2), min_size=2, max_size=10),
       pooled=st.floats(1e-4, 0.1))
def test_no_verdict_is_decided_inside_either_noise(diffs, pooled):
    """Whatever the scores: a pair wins or loses only by more than Z standard errors of both
    the pooled noise and its own."""
    se = paired_se(diffs, pooled)
    d = sum(diffs) / len(diffs)
    own = math.sqrt(sum((x - d) ** 2 for x in diffs) / (len(diffs) - 1))
    if verdict(d, se) != "ties":
        root = math.sqrt(len(diffs))
        assert abs(d) > 2 * pooled / root and abs(d) > 2 * own / root


def test_a_pair_noisier_than_the_pool_does_not_win_on_the_pools_noise():
    """Eight seeds: the fitted formula's network is steady, the baseline's swings by 10 points
    between seeds; the other pairs are quiet, so the pooled noise is smaller. A 3-point lead
    clears twice the pooled standard error but not twice its own: a tie."""
    seeds = range(100, 108)
    steady = {s: 0.75 + 0.002 * (s % 2) for s in seeds}
    swinging = {s: 0.72 + (0.05 if s % 2 else -0.05) for s in seeds}
    scores = {(0.1, "fitted"): steady, (0.1, "fast"): swinging,
              (0.1, "giant"): {s: v - 0.03 for s, v in steady.items()},
              (0.1, "other"): {s: v - 0.005 + 0.001 * (s % 3) for s, v in steady.items()}}
    networks = {cell: cell[1] for cell in scores}
    report = schedule_report([0.1], ["fitted", "other"], ["giant", "fast"], scores, networks)
    by = {(x["formula"], x["baseline"]): x for x in report["budgets"][0]["comparisons"]}
    fast = by[("fitted", "fast")]
    assert fast["difference"] == pytest.approx(0.031)
    pooled_se = report["noise"]["difference_sd"] / math.sqrt(8)
    assert fast["difference"] > 2 * pooled_se and fast["verdict"] == "ties"
    assert fast["se"] > pooled_se
    assert by[("fitted", "giant")]["verdict"] == "wins"   # steady pair: the pooled noise decides
    assert by[("fitted", "giant")]["se"] == pytest.approx(pooled_se)


def test_a_fall_is_judged_on_its_own_paired_noise():
    """A formula whose larger budget's network swings between seeds: its mean falls by a point
    below the smaller budget's, clear of the pooled noise but not of its own."""
    seeds = range(100, 106)
    scores = {(0.1, "fitted"): {s: 0.75 for s in seeds},
              (0.2, "fitted"): {s: 0.74 + (0.04 if s % 2 else -0.04) for s in seeds},
              (0.1, "giant"): {s: 0.70 for s in seeds},
              (0.2, "giant"): {s: 0.72 + 0.001 * (s % 2) for s in seeds}}
    networks = {cell: f"{cell[0]}-{cell[1]}" for cell in scores}
    report = schedule_report([0.1, 0.2], ["fitted"], ["giant"], scores, networks)
    fall = next(f for f in report["falls"] if f["formula"] == "fitted")
    assert fall["drop"] == pytest.approx(0.01)
    assert fall["se"] == pytest.approx(math.sqrt(6 * 0.04 ** 2 / 5) / math.sqrt(6))
    assert not fall["significant"]


def by_seed(*values):
    return dict(zip(SEEDS, values))


SCORES = {
    (0.1, "fitted"): by_seed(0.70, 0.72, 0.71),
    (0.1, "giant"): by_seed(0.60, 0.61, 0.62),       # far below: fitted wins
    (0.1, "fast"): by_seed(0.705, 0.715, 0.72),      # within the noise: a tie
    (0.1, "searched"): by_seed(0.70, 0.72, 0.71),    # the same network as fitted
    (0.2, "fitted"): by_seed(0.68, 0.69, 0.70),      # below its own c = 0.1: a fall
    (0.2, "giant"): by_seed(0.75, 0.76, 0.77),       # fitted loses
    (0.2, "fast"): by_seed(0.69, 0.70, 0.69),
}
NETWORKS = {cell: f"net-{cell[0]}-{cell[1]}" for cell in SCORES}
NETWORKS[(0.1, "searched")] = NETWORKS[(0.1, "fitted")]


def report_of(scores=SCORES, fallback=None):
    return schedule_report([0.1, 0.2], ["fitted"], ["giant", "fast", "searched"], scores,
                           NETWORKS, fallback)


def verdicts(report) -> dict:
    return {(row["c"], x["baseline"]): x["verdict"] for row in report["budgets"]
            for x in row["comparisons"]}


def test_schedule_report_wins_ties_loses_and_the_same_network():
    report = report_of()
    assert verdicts(report) == {(0.1, "giant"): "wins", (0.1, "fast"): "ties",
                                (0.1, "searched"): "ties", (0.2, "giant"): "loses",
                                (0.2, "fast"): "ties"}
    same = next(x for x in report["budgets"][0]["comparisons"] if x["baseline"] == "searched")
    assert same["same_network"] and same["difference"] == 0
    noise = report["noise"]
    # Four distinct pairs of three seeds pooled (the same-network pair is left out).
    assert noise["source"] == "validation" and noise["difference_dof"] == 8
    row = report["budgets"][0]
    fitted = next(cell for cell in row["formulas"] if cell["formula"] == "fitted")
    assert fitted["mean"] == pytest.approx(0.71) and fitted["n"] == 3
    assert fitted["sd"] == pytest.approx(0.01) and (fitted["min"], fitted["max"]) == (0.70, 0.72)
    assert report["budgets"][1]["leader"] == "giant"


def test_a_fall_is_flagged_with_its_size_and_significance():
    falls = {f["formula"]: f for f in report_of()["falls"]}
    fall = falls["fitted"]
    assert (fall["c"], fall["below"]) == (0.2, 0.1)
    assert fall["drop"] == pytest.approx(0.02) and fall["significant"] is (fall["drop"] >
                                                                           2 * fall["se"])
    assert "giant" not in falls  # it rises with c


def test_one_seed_falls_back_on_the_searchs_noise_or_ties():
    single = {cell: {100: values[100]} for cell, values in SCORES.items()}
    fallback = search_difference_sd(0.02)
    assert fallback == pytest.approx(0.02 * math.sqrt(math.pi) / 2 * math.sqrt(2))
    report = report_of(single, fallback)
    assert report["noise"]["source"] == "search"
    assert verdicts(report)[(0.1, "giant")] == "wins"  # 0.10 > 2 x 0.025
    unknown = report_of(single, None)
    assert unknown["noise"]["source"] == "none"
    assert set(verdicts(unknown).values()) == {"ties"}


def test_movement_sees_a_leader_flip_between_schedules():
    short = report_of()
    flipped = {**SCORES, (0.2, "fitted"): by_seed(0.80, 0.81, 0.82)}
    long = report_of(flipped)
    moving = movement([(1000, short), (4000, long)], ["fitted"])
    at = {b["c"]: b for b in moving["budgets"]}
    assert moving["moving"] and at[0.2]["moving"] and not at[0.1]["moving"]
    assert at[0.2]["leaders"] == ["giant", "fitted"]
    assert at[0.2]["verdicts"]["fitted"]["giant"] == ["loses", "wins"]
    assert at[0.1]["kendall_tau"] == [pytest.approx(1.0)]
    assert movement([(1000, short)], ["fitted"]) is None
    assert not movement([(1000, short), (2000, report_of())], ["fitted"])["moving"]


def test_fidelity_correlates_short_and_long_scores():
    points = [{"short": s, "long": lo} for s, lo in ((0.5, 0.7), (0.6, 0.8), (0.7, 0.9))]
    assert fidelity(points)["kendall_tau"] == pytest.approx(1.0)
    reversed_ = [{"short": p["short"], "long": -p["long"]} for p in points]
    assert fidelity(reversed_)["spearman"] == pytest.approx(-1.0)
    few = fidelity(points[:2] + [{"short": 0.9, "long": None}])
    assert few["retrained"] == 2 and few["kendall_tau"] is None


def test_the_formula_files_entry_and_predicts_line():
    report = {"by_schedule": [report_of()], "schedules": [{"images": 4000}],
              "search_images": 1000, "seeds": list(SEEDS), "scored_on": "the test split",
              "budgets": [0.1, 0.2], "fidelity": fidelity([]), "movement": None}
    entry = formula_entry(report, "fitted", "2025-01-01 00:00 UTC")
    assert entry["verdicts"]["giant"] == {"0.1": "wins", "0.2": "loses"}
    assert entry["top1"]["0.1"] == pytest.approx(0.71)
    assert [(f["c"], f["below"]) for f in entry["falls"]] == [(0.2, 0.1)]
    line = describe(entry)
    assert line.startswith("validation: wins/ties/loses against giant 1/0/1, fast 0/2/0")
    assert "4,000 images = 4x the search's, 3 seeds" in line and "c=0.2 below c=0.1" in line
    assert "not validated" in describe(None)


# -- the fixed formulas ------------------------------------------------------------------------

@pytest.mark.parametrize("base", ["efficientnet_b0", "mobilenetv2_100"])
@pytest.mark.parametrize("c", [0.06, 0.25, 0.5])
def test_fast_compound_scaling_gives_width_most_of_the_scaling(base, c):
    rec = fast_compound_recommendation(Yardstick(base, 10, 32), c)
    s = rec.phi
    assert 0 < s <= c and 0.98 * c <= rec.c <= c
    # d is printed as the shortest decimal that builds the same network (issue 24)
    assert rec.d == pytest.approx(s ** 0.1, rel=0.02)
    exact = 32 * s ** 0.05   # nearby resolutions may be tried (+-8%)
    assert abs(rec.resolution - exact) <= 0.08 * exact + 1


def test_fast_compound_scaling_is_inverted_at_the_largest_scaling_that_fits():
    # Depthwise convolutions, squeeze-excite and a fixed head do not scale as d w^2 r^2: the
    # nominal scaling s = c would land far over the budget (c = 0.70 for s = 0.5 on B0).
    yardstick = Yardstick("efficientnet_b0", 1000, 224)
    rec = fast_compound_recommendation(yardstick, 0.5)
    from tinyformula.formula.baselines import fast_scale

    assert yardstick.c(fast_scale(0.5)) > 0.6
    assert yardstick.c(fast_scale(rec.phi)) <= 0.5 < yardstick.c(fast_scale(rec.phi * 1.01))


def test_the_published_formula_exists_for_b0_only():
    rec = published_recommendation(Yardstick("efficientnet_b0", 10, 32), 0.25)
    assert rec.formula == "published" and 0.98 * 0.25 <= rec.c <= 0.25
    with pytest.raises(TinyFormulaError, match="efficientnet_b0 only"):
        published_recommendation(Yardstick("mobilenetv2_100", 10, 32), 0.25)


# -- settings resolved against a run -----------------------------------------------------------

def test_schedules_use_every_image_in_as_few_passes_as_needed():
    assert schedule_for(65536, None, 60000) == Schedule(32768, 2)
    assert schedule_for(4096, None, 60000) == Schedule(4096, 1)
    assert schedule_for(None, 3, 1000) == Schedule(1000, 3)
    assert schedule_for(1001, 2, 1000).images >= 1001
    with pytest.raises(TinyFormulaError, match="distinct training images"):
        schedule_for(5000, 2, 1000)


def test_resolved_schedules_refuse_one_below_the_search():
    config = ValidationConfig(images=1000)
    with pytest.raises(TinyFormulaError, match="below the search's 2,048"):
        config.resolve_schedules(2048, 60000)
    several = ValidationConfig(schedules=(8, 2)).resolve_schedules(1000, 60000)
    assert [s.images for s in several] == [2000, 8000]
    assert ValidationConfig().resolve_schedules(16384, 60000) == (Schedule(32768, 2),)
    with pytest.raises(TinyFormulaError, match="leave out --images"):
        ValidationConfig(schedules=(2, 4), images=5000)


def test_seeds_the_search_used_are_refused_and_defaults_skip_them():
    assert free_seeds(3, {FIRST_SEED, FIRST_SEED + 1}) == (FIRST_SEED + 2, FIRST_SEED + 3,
                                                          FIRST_SEED + 4)
    assert ValidationConfig().resolve_seeds({0, 1}, 0) == (100, 101, 102)
    with pytest.raises(TinyFormulaError, match="seed 1 was used by the search"):
        ValidationConfig(seeds=(5, 1)).resolve_seeds({0, 1}, 0)


def test_budgets_outside_the_searchs_range_are_refused():
    assert ValidationConfig().resolve_budgets((0.03, 0.3)) == (0.06, 0.13, 0.25)
    with pytest.raises(TinyFormulaError, match="outside the search's c range"):
        ValidationConfig(budgets=(0.1, 0.5)).resolve_budgets((0.03, 0.3))
    with pytest.raises(TinyFormulaError, match="give --budgets inside it"):
        ValidationConfig().resolve_budgets((0.7, 0.9))
    assert ValidationConfig.from_options(budgets=0.2, seeds=None).budgets == (0.2,)


# -- the store ---------------------------------------------------------------------------------

def test_the_store_keeps_rows_by_what_decides_a_score_and_refuses_other_files(tmp_path):
    import sqlite3

    from tinyformula import Scale
    from tinyformula.execution.jobs import TrialResult, TrialState
    from tinyformula.sweep.validation.plan import Training, network_digest
    from tinyformula.sweep.validation.store import ValidationStore

    yardstick = Yardstick("efficientnet_b0", 10, 32)
    config = yardstick.measure(Scale(0.5, 0.5, 0.5))
    network = network_digest(yardstick, config)
    assert network == network_digest(yardstick, yardstick.measure(Scale(0.51, 0.5, 0.5)))
    identity = {"base": "efficientnet_b0", "data": "digits"}
    trainings = [Training(network, seed, Schedule(512, 2), config) for seed in (7, 8)]
    store = ValidationStore.open(tmp_path / "validation.sqlite", identity)
    store.write_plan(identity, trainings)
    store.write_plan(identity, trainings[:1])  # planned again: nothing added
    rows = store.rows()
    assert list(rows) == [t.key for t in trainings]
    store.record(rows[trainings[0].key]["id"],
                 TrialResult(0, TrialState.OK, top1=0.5, loss=1.0, seconds=2.0))
    assert store.rows()[trainings[0].key]["top1"] == 0.5
    store.close()
    with pytest.raises(TinyFormulaError, match="holds the validation of other trainings"):
        ValidationStore.open(tmp_path / "validation.sqlite", {**identity, "data": "cifar10"})

    foreign = tmp_path / "foreign.sqlite"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE x (y)")
    db.commit()
    db.close()
    before = foreign.read_bytes()
    with pytest.raises(TinyFormulaError, match="another program's"):
        ValidationStore.open(foreign, identity)
    assert foreign.read_bytes() == before


def test_a_network_that_lands_below_the_budget_is_flagged_in_its_note():
    """A formula whose r and d admit no width within the solver's 2% (wide width steps at a
    large r) trains with less compute than the others: the report must say so."""
    from tinyformula import Scale, Yardstick
    from tinyformula.sweep.validation.plan import _entry

    yardstick = Yardstick("efficientnet_b0", num_classes=10, resolution_base=32)
    config = yardstick.measure(Scale(0.5, 0.5, 0.5))
    exact = _entry(yardstick, config.c, "fitted", True, lambda: config)
    assert not exact.short and exact.note == ""
    short = _entry(yardstick, config.c * 1.1, "fitted", True, lambda: config)
    assert short.short and "(-9.1%)" in short.note and "less compute" in short.note
    assert short.to_dict()["note"] == short.note
