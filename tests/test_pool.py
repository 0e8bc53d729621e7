"""Pooling searches that differ only in their seed (``tinyformula pool``, issue 20 item 4).

The searches are made up (``test_fits.made_up_run``: a known top-1 surface plus noise, written
through the store), so nothing trains and every test runs in seconds.
"""

import json
import shutil
import sqlite3
from collections import Counter

import pytest
from battery import refused
from test_fits import SMALL, best_d, best_r, made_up_run

from tinyformula.formula.estimator import TinyFormula
from tinyformula.sweep.fitting import fit_formula, search_frontier
from tinyformula.sweep.noise import seed_noise
from tinyformula.sweep.pareto import pareto_frontier
from tinyformula.sweep.pooling import pool_searches


@pytest.fixture(autouse=True)
def few_draws(monkeypatch):
    """Bands of 6 resamples: the tests check what pooling gives, not how precise a band is."""
    import tinyformula.sweep.fitting as fitting

    monkeypatch.setattr(fitting, "DRAWS", 6)


@pytest.fixture(scope="module")
def searches(tmp_path_factory):
    """Three made-up searches of the same settings with seeds 3, 4 and 6, and one with other
    settings (another c range)."""
    root = tmp_path_factory.mktemp("pool")
    runs = {}
    for name, seed, settings in (("s3", 3, {}), ("s4", 4, {}), ("s6", 6, {}),
                                 ("other", 5, {"c_range": (0.05, 1.0)})):
        (root / name).mkdir()
        runs[name] = (root / name, *made_up_run(root / name, trials=30, seed=seed,
                                                 search_seed=seed, **settings))
    return root, runs


def test_a_pool_holds_every_trial_of_each_search_apart(searches):
    _, runs = searches
    pool = pool_searches([runs["s3"][0], runs["s4"][0]])
    own = [runs["s3"][2], runs["s4"][2]]
    assert pool.seeds == [3, 4] and pool.config.seed == 3
    assert len(pool.trials) == sum(map(len, own))
    assert len({t.id for t in pool.trials}) == len(pool.trials)
    # a candidate stays one network of one search: no key is shared across the two
    keys = Counter((t.candidate, t.seed, t.rung) for t in pool.trials)
    assert max(keys.values()) == 1
    assert sorted((t.config.r, t.config.d, t.config.w, t.top1) for t in pool.trials) == \
        sorted((t.config.r, t.config.d, t.config.w, t.top1) for trials in own for t in trials)
    # each replicate is paired with its own search's primary training, none across searches
    pairs = [seed_noise(trials, rung=pool.config.top_rung).get("pairs", 0) for trials in own]
    assert seed_noise(pool.trials, rung=pool.config.top_rung).get("pairs", 0) == sum(pairs)
    # the pooled frontier is that of every search's primary trials (its own seed), replicates
    # left out as in one search
    top = pool.config.top_rung
    primary = [t for (_, config, trials) in (runs["s3"], runs["s4"]) for t in trials
               if t.seed == config.seed and t.rung == top]
    assert sorted((t.config.c, t.top1) for t in search_frontier(pool.config, pool.trials)) == \
        sorted((t.config.c, t.top1) for t in pareto_frontier(primary))


def test_a_pooled_formula_fits_like_a_search_and_names_its_searches(searches):
    _, runs = searches
    pool = pool_searches([runs["s3"][0], runs["s4"][0]])
    from tinyformula.sweep.pooling import fit_pool

    formula = fit_pool(pool)
    assert formula.method == "surrogate"
    assert "2 searches pooled" in formula.source and "seeds 3, 4" in formula.source
    assert f"{len(pool.trials)} trials" in formula.source
    assert formula.quality_["verdict"] in ("trustworthy", "weak")
    # the known optimum, found from both searches' trials
    for c in (0.1, 0.3):
        rec = formula.recommend(c)
        assert abs(rec.r / best_r(c) - 1) < 0.35 and abs(rec.d / best_d(c) - 1) < 0.35
    single = fit_formula(runs["s3"][1], SMALL, runs["s3"][2])
    assert "seed 3," in single.source and "pooled" not in single.source


def test_pool_writes_a_formula_predict_reads_and_replaces_only_its_own(searches, cli, tmp_path):
    _, runs = searches
    out = tmp_path / "pooled"
    code, stdout, err = cli("pool", runs["s3"][0], runs["s4"][0], "--out", out)
    assert code == 0, err
    assert "Pool of 2 searches (seeds 3, 4)" in stdout and "quality:" in stdout
    assert "Pooling 2 searches" in err
    manifest = json.loads((out / "pool.json").read_text())
    assert manifest["seeds"] == [3, 4] and [s["seed"] for s in manifest["sources"]] == [3, 4]
    assert manifest["trials"] == len(runs["s3"][2]) + len(runs["s4"][2])
    formula = TinyFormula.load(out / "formula.json")
    assert "seeds 3, 4" in formula.source
    code, stdout, _ = cli("predict", "--formula", out / "formula.json", "--flops", "0.2")
    assert code == 0 and "Tiny Formula" in stdout
    # the same command again replaces its own files; --json prints the summary and the pool
    code, stdout, _ = cli("pool", runs["s3"][0], runs["s4"][0], "--out", out, "--fit",
                          "frontier", "--json")
    summary = json.loads(stdout)
    assert code == 0 and summary["fit"] == "frontier" and summary["pool"]["seeds"] == [3, 4]
    assert TinyFormula.load(out / "formula.json").method == "frontier"
    # the searches read were left as they were
    assert not (runs["s3"][0] / "pool.json").exists()


def test_pool_refuses_bad_input_in_one_line_writing_nothing(searches, cli, tmp_path):
    root, runs = searches
    s3, s4, other = runs["s3"][0], runs["s4"][0], runs["other"][0]
    twin = tmp_path / "twin"
    shutil.copytree(s3, twin)
    unfinished = tmp_path / "unfinished"
    shutil.copytree(s4, unfinished)
    with sqlite3.connect(unfinished / "trials.sqlite") as db:   # its last trial not yet trained
        db.execute("UPDATE trials SET status = 'pending', top1 = NULL, loss = NULL, seconds = "
                   "NULL, images_per_s = NULL, finished_at = NULL WHERE id = (SELECT max(id) "
                   "FROM trials)")
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("someone's notes\n")
    out = tmp_path / "out"
    cases = {
        "one search": (s3,),
        "the same search twice": (s3, s3),
        "two searches with one seed": (s3, twin),
        "other settings": (s3, other),
        "not a run": (s3, foreign),
        "a missing folder": (s3, tmp_path / "nope"),
        "an unfinished search": (s3, unfinished),
    }
    for name, runs_ in cases.items():
        err = refused(cli, tmp_path, "pool", *runs_, "--out", out)
        assert not out.exists(), name
        assert "error:" in err, name
    assert "c_range" in refused(cli, tmp_path, "pool", s3, other, "--out", out)
    assert "1 of" in refused(cli, tmp_path, "pool", s3, unfinished, "--out", out)
    # an --out that holds a search or someone else's files is not the pool's to fill
    refused(cli, root, "pool", s3, s4, "--out", s3)
    refused(cli, tmp_path, "pool", s3, s4, "--out", foreign)
    # nor one that holds the pool of other searches: its formula would be lost
    code, _, err = cli("pool", s3, s4, "--out", out)
    assert code == 0, err
    assert "holds the pool of other searches (seeds 3, 4)" in refused(
        cli, tmp_path, "pool", s3, runs["s6"][0], "--out", out)
