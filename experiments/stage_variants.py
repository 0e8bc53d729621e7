"""Experimental second stages: drawn by the surrogate's chance of being best, or trained longer.

    python experiments/stage_variants.py RUN --out NEW_RUN [--sampler band|chance]
        [--images-factor F]

``RUN`` is a finished two-stage search (``fit ... --second-stage N``). This copies its store to
``NEW_RUN`` without the second stage's trainings, then retrains a stage of the same size
planned differently, and refits. Everything else is the package's: the same ``fit`` command,
seeds and fit; only the planning is replaced, in this process. Experiments, not defaults.

``--sampler chance`` (the default). The package's stage (``sweep/stages.py``, ``--sampler
band``) samples inside the first stage's band (80% of refits on resampled trials, widened by
1.1), so it cannot reach resolutions the first stage's top rung left empty
(``second_stage_mobilenetv2_seeds.md``). This one asks the surrogate of every first-stage
trial instead: at each budget of its grid (the top rung's range of c) and each (r, d) it has
searched, the chance that the point beats the budget's best expected top-1, from the
surrogate's mean and standard deviation (the chance the formula's path already uses to find
ties). The stage draws among the points that tie the best (a chance of at least
``TIE_CHANCE``, as the path counts ties), with probability in proportion to that chance,
jitters them within their grid cell, and solves w for the budget. Where few full-budget
trials lie, the surrogate is unsure, and a point there keeps a real chance of being best, so
it gets trained.

``--images-factor F`` trains the stage's candidates on F times the top rung's images (default
1). The surrogate reads every trial with its training images, and the formula's path is read
at the largest: with F = 2 the formula is read at twice the search's schedule, which is
where ``validate`` scores it. F x the stage's compute. ``--read-at top-rung`` reads the path
at the top rung's schedule instead, the longer trainings serving as extra evidence.
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import refusing  # noqa: E402


def sample_by_chance(config, yardstick, candidates, trials):
    """``config.second_stage`` new networks drawn by their chance of beating each budget's
    best under the surrogate of ``trials`` (see the module docstring)."""
    import numpy as np
    from scipy.special import ndtr

    from tinyformula.core.errors import TinyFormulaError
    from tinyformula.execution.jobs import TrialState
    from tinyformula.formula.quality import noise_sigma
    from tinyformula.formula.surrogate import TIE_CHANCE, Surrogate, c_grid
    from tinyformula.sweep.fitting import trial_points
    from tinyformula.sweep.noise import seed_noise
    from tinyformula.sweep.space import MULTIPLIER_RANGE, network_key
    from tinyformula.sweep.stages import is_second_stage, new_network

    first = [t for t in trials if not is_second_stage(t.candidate)]
    noise = seed_noise(first, rung=config.top_rung).get("mean_abs_diff")
    surrogate = Surrogate(noise_sigma(noise) if noise else None).fit(trial_points(first))
    top = [t.config.c for t in first
           if t.rung == config.top_rung and t.state is TrialState.OK and t.top1 is not None]
    budgets = c_grid(min(top), max(top))
    r, d, mask = surrogate.grid(budgets, MULTIPLIER_RANGE)
    cells = []                                   # (budget index, grid index, chance)
    for j, c in enumerate(budgets):
        where = np.flatnonzero(mask[j])
        if not len(where):
            continue
        mean, std = surrogate.predict(r[where], d[where], np.full(len(where), c),
                                      return_std=True)
        best = int(np.argmax(mean))
        chance = ndtr((mean - mean[best]) / np.sqrt(std ** 2 + std[best] ** 2 + 1e-12))
        cells += [(j, int(k), float(p)) for k, p in zip(where, chance) if p >= TIE_CHANCE]
    if not cells:
        raise TinyFormulaError("the surrogate has searched no point to sample around")
    step_c = math.log(budgets[1] / budgets[0])
    step_r = math.log(max(r) / min(r)) / (int(round(len(r) ** 0.5)) - 1)
    step_d = math.log(max(d) / min(d)) / (int(round(len(d) ** 0.5)) - 1)
    rng = random.Random(f"second stage {config.seed}")
    seen = {network_key(yardstick, c) for c in candidates}
    found = []
    for _ in range(200 * config.second_stage):
        if len(found) == config.second_stage:
            break
        j, k, _chance = rng.choices(cells, weights=[cell[2] for cell in cells])[0]
        c = budgets[j] * math.exp(rng.uniform(-step_c / 2, step_c / 2))
        rr = round(float(r[k]) * math.exp(rng.uniform(-step_r / 2, step_r / 2)), 4)
        dd = round(float(d[k]) * math.exp(rng.uniform(-step_d / 2, step_d / 2)), 4)
        network = new_network(yardstick, c, rr, dd, seen, config.c_range)
        if network is not None:
            found.append(network)
    if len(found) < config.second_stage:
        raise TinyFormulaError(f"found only {len(found)} of {config.second_stage} networks")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sampler", choices=("band", "chance"), default="chance")
    parser.add_argument("--images-factor", type=int, default=1)
    parser.add_argument("--read-at", choices=("longest", "top-rung"), default="longest",
                        help="the schedule the formula's path is read at (with "
                             "--images-factor): the longest trained, or the top rung's")
    args = parser.parse_args()
    from tinyformula.sweep import driver, stages
    from tinyformula.sweep.results import read_search

    with refusing(parser):
        config, _, _ = read_search(args.run)
    if not config.second_stage:
        parser.error(f"{args.run} has no second stage")
    if args.out.exists():
        parser.error(f"{args.out} exists")
    args.out.mkdir(parents=True)
    shutil.copy(args.run / "trials.sqlite", args.out / "trials.sqlite")
    with sqlite3.connect(args.out / "trials.sqlite") as store:
        store.execute("delete from trials where candidate >= ?", (stages.STAGE_OFFSET,))
    if args.sampler == "chance":
        stages.sample_around_band = sample_by_chance     # the planning function, replaced
    if args.images_factor != 1:
        planner, factor = driver.plan_second_stage, args.images_factor

        def plan_longer(*given, **named):
            return [p._replace(images=p.images * factor) for p in planner(*given, **named)]

        driver.plan_second_stage = plan_longer
        if args.read_at == "top-rung":
            from tinyformula.formula.surrogate import Surrogate

            fit, top = Surrogate.fit, config.train_size * config.epochs

            def fit_read_at_top(self, points):
                fitted = fit(self, points)
                fitted.full_images_ = min(fitted.full_images_, top)
                return fitted

            Surrogate.fit = fit_read_at_top
    from tinyformula.cli import main as cli

    code = cli(["fit", "--base", config.base, "--data", config.data, "--preset", config.preset,
                "--trials", str(config.trials), "--second-stage", str(config.second_stage),
                "--seed", str(config.seed), "--workers", "2", "--out", str(args.out)])
    sys.exit(code)


if __name__ == "__main__":
    main()
