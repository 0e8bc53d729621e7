"""Which of successive halving's rungs rank networks as the top rung does, and what leaving the
others out of the surrogate changes in a formula.

    python experiments/surrogate_rungs.py NAME=RUN [NAME=RUN ...]
        [--validated VALIDATION.json OLD=NEW [OLD=NEW ...]] ... [--out NAME]

For each finished halving run folder: every candidate trained on two successive rungs gives a
gain in top-1 from the lower to the higher; a least-squares fit of that gain on (1, log r,
log d, log c) says whether the gain depends on the network. Where it grows with r, the lower
rung ranks resolutions unlike the higher one: it underrates the networks that spend their cost
on resolution. Then the run's formula refitted twice on the same trials, with the surrogate
reading every trial (the default) and reading only those trained on at least ``SHARE`` of the
most images (``Surrogate(min_images_share=SHARE)``: halving's top two rungs at eta 3), at
c = 0.06, 0.13, 0.25, 0.5. Fits only, no training, no band (its bootstrap is the slow part):
about 5 s per run.

``--validated`` reads a ``tinyformula validate`` report that trained both kinds of formula
(``--formula NAME=FILE``: OLD fitted on every trial, NEW without the first rung, one pair per
search seed) and prints, per budget, each pair's paired difference NEW - OLD with its standard
error and verdict, and the mean over the pairs (``paired_formulas.py``). Writes
``experiments/results/NAME.md`` (default ``surrogate_rungs``) and ``.json``.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import named, recommendation_cells, refit_with_surrogate, refusing, write_results  # noqa: E402
from paired_formulas import validated_pairs, validated_table  # noqa: E402

BUDGETS = (0.06, 0.13, 0.25, 0.5)
SHARE = 0.3             # halving's top two rungs at eta 3 (a ninth, a third, all the images)


def rung_gains(trials) -> list[dict]:
    """Per pair of successive rungs: the candidates trained on both, their mean gain, and the
    gain's least-squares slopes on log r, log d and log c with their standard errors."""
    import numpy as np

    by_candidate: dict[tuple[int, int], dict] = {}
    for t in trials:
        if t.top1 is not None:
            by_candidate.setdefault((t.candidate, t.seed), {})[t.rung] = t
    rungs = sorted({rung for seen in by_candidate.values() for rung in seen})
    out = []
    for low, high in zip(rungs, rungs[1:]):
        pairs = [(seen[low], seen[high]) for seen in by_candidate.values()
                 if low in seen and high in seen]
        row = {"rungs": [low, high], "n": len(pairs)}
        if len(pairs) > 4:
            x = np.array([[1.0, math.log(a.config.r), math.log(a.config.d), math.log(a.config.c)]
                          for a, _ in pairs])
            y = np.array([b.top1 - a.top1 for a, b in pairs])
            coef, *_ = np.linalg.lstsq(x, y, rcond=None)
            residual = y - x @ coef
            variance = float(residual @ residual) / (len(y) - x.shape[1])
            se = np.sqrt(variance * np.diag(np.linalg.inv(x.T @ x)))
            row.update(images=[pairs[0][0].images, pairs[0][1].images], mean_gain=float(y.mean()),
                       **{f"slope_{k}": float(coef[i]) for i, k in enumerate("rdc", 1)},
                       **{f"se_{k}": float(se[i]) for i, k in enumerate("rdc", 1)})
        out.append(row)
    return out


def read_halving(parser: argparse.ArgumentParser, folder: str):
    """(config, yardstick, trials) of the halving search in ``folder``; anything else is
    refused through ``parser`` (one line, exit 2)."""
    from tinyformula.sweep.results import read_search

    with refusing(parser):
        config, yardstick, trials = read_search(Path(folder))
    if config.schedule != "halving":
        parser.error(f"{folder} was not searched with successive halving")
    return config, yardstick, trials


def recommendations(config, yardstick, trials, share: float) -> list[str]:
    """The formula's (r, d, w, px) at each budget, refitted with the surrogate reading trials
    trained on at least ``share`` of the most images (0: every trial, the default)."""
    from tinyformula.formula.surrogate import Surrogate

    formula = refit_with_surrogate(config, yardstick, trials,
                                   functools.partial(Surrogate, min_images_share=share))
    return recommendation_cells(formula, BUDGETS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=named, help="NAME=RUN (halving searches)")
    parser.add_argument("--validated", nargs="+", action="append", default=[],
                        metavar="VALIDATION.json OLD=NEW",
                        help="a validation report, then the pairs of formula names it trained")
    parser.add_argument("--out", default="surrogate_rungs")
    args = parser.parse_args()
    for spec in args.validated:
        if len(spec) < 2 or any("=" not in pair for pair in spec[1:]):
            parser.error("--validated takes a report and at least one OLD=NEW pair")
    start, load = time.perf_counter(), os.getloadavg()[0]
    with refusing(parser):    # bad reports are refused before any refit
        validations = [validated_pairs(spec[0], [tuple(p.split("=", 1)) for p in spec[1:]])
                       for spec in args.validated]

    gains, formulas, data = [], [], []
    for name, folder in args.runs:
        config, yardstick, trials = read_halving(parser, folder)
        rows = rung_gains(trials)
        old = recommendations(config, yardstick, trials, 0.0)
        new = recommendations(config, yardstick, trials, SHARE)
        gains += [(name, row) for row in rows]
        formulas += [(f"{name}, every trial", old),
                     (f"{name}, trained on >= {SHARE:g} of the most images", new)]
        data.append({"name": name, "run": folder, "rung_gains": rows,
                     "every_trial": old, "longer_trials": new})
    lines = ["Gain in top-1 (points) from one rung to the next, per candidate trained on both, "
             "fitted on (1, log r, log d, log c): the slopes say how much more a network gains "
             "per unit of each log multiplier (± one standard error).", "",
             "| run | rungs (images) | candidates | mean gain | per log r | per log d "
             "| per log c |", "|---|---|---|---|---|---|---|"]
    for name, row in gains:
        if "mean_gain" not in row:
            lines.append(f"| {name} | {row['rungs'][0]} -> {row['rungs'][1]} | {row['n']} "
                         "| - | - | - | - |")
            continue
        slopes = " | ".join(f"{100 * row[f'slope_{k}']:+.1f} ± {100 * row[f'se_{k}']:.1f}"
                            for k in "rdc")
        lines.append(f"| {name} | {row['rungs'][0]} -> {row['rungs'][1]} ({row['images'][0]:,}"
                     f" -> {row['images'][1]:,}) | {row['n']} | {100 * row['mean_gain']:+.1f} "
                     f"| {slopes} |")
    lines += ["", "The run's formula refitted on its trials, the surrogate reading every trial or "
              "only the longer-trained ones:", "",
              "| formula | " + " | ".join(f"c = {c:g}: r / d / w (px)" for c in BUDGETS) + " |",
              "|" + "---|" * (len(BUDGETS) + 1)]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in formulas]
    for result in validations:
        lines += validated_table(result, "the formula fitted on every trial -> without the "
                                 "first rung")
    data = {"runs": data, "validated": validations}
    write_results(args.out, "\n".join(lines), data, start, load,
                  "Which rungs rank networks as the top rung does")


if __name__ == "__main__":
    main()
