"""Would extrapolating the search's own schedule trend make formulas of different seeds agree?

    python experiments/fidelity_tilt.py NAME=RUN [NAME=RUN ...] [--factors 2 4] [--out NAME]

Validation trains each network on more images than the search did, and there (measured on
MobileNetV2) higher resolutions gain more than the search saw. The search's halving rungs
measure the same trend: a candidate trained on two successive rungs gains more top-1 the
larger its r (``surrogate_rungs.py``). This experiment extrapolates that trend to a longer
schedule when the formula is fitted. From each halving search's rung pairs it fits the gain on
(1, log r, log d, log c), divides the r and d slopes by the rungs' log image ratio, and
pools them over the pairs by inverse variance. Each slope is a gain per log image. The
surrogate's expected top-1 then gets ``slope_r log r + slope_d log d``, times the log of
``factor`` (the target schedule's images over the top rung's), before the best path is
found. This tilts the surface toward what the longer schedule should prefer; nothing else
changes.

Two tilts are tried at each factor: each search's own slope, and one slope shared by all the
searches given, pooled the same way, so seeds differ only in their trials. The table gives
each refitted formula's (r, d, w, px) at c = 0.06, 0.13, 0.25 and 0.5, with factor 1 (no tilt)
first. It only refits (no band, no training): a screen that says whether the formulas move
together before any validation is spent. Writes ``experiments/results/NAME.md`` (default
``fidelity_tilt``) and ``.json``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import named, recommendation_cells, refit_with_surrogate, write_results  # noqa: E402
from surrogate_rungs import read_halving, rung_gains  # noqa: E402

BUDGETS = (0.06, 0.13, 0.25, 0.5)
FLAT_R = (0.75, 0.9, 1.0, 1.1, 1.2, 1.3, 1.45)    # 24 to 46 px at 32 px
FLAT_C = (0.25, 0.5)


def tilted_surrogate(slope_r: float, slope_d: float, log_factor: float):
    """A Surrogate class whose expected top-1 gains ``log_factor * (slope_r log r + slope_d
    log d)``: the schedule trend, carried ``log_factor`` beyond the top rung. Its standard
    deviation is unchanged."""
    import numpy as np

    from tinyformula.formula.surrogate import Surrogate

    class Tilted(Surrogate):
        def predict(self, r, d, c, return_std: bool = False):
            out = super().predict(r, d, c, return_std)
            tilt = log_factor * (slope_r * np.log(np.asarray(r, dtype=float))
                                 + slope_d * np.log(np.asarray(d, dtype=float)))
            return (out[0] + tilt, out[1]) if return_std else out + tilt

    return Tilted


def per_image_slopes(rows: list[dict]) -> dict:
    """The r and d slopes of the rung gains per log image, pooled over the rung pairs by
    inverse variance, with their standard errors."""
    out = {}
    for key in "rd":
        pairs = [(row[f"slope_{key}"] / math.log(row["images"][1] / row["images"][0]),
                  row[f"se_{key}"] / math.log(row["images"][1] / row["images"][0]))
                 for row in rows if "mean_gain" in row]
        weights = [se ** -2 for _, se in pairs]
        out[key] = sum(s * w for (s, _), w in zip(pairs, weights)) / sum(weights)
        out[f"se_{key}"] = sum(weights) ** -0.5
    return out


def refit(config, yardstick, trials, slopes: dict, factor: float):
    """The formula refitted with the surrogate tilted ``factor`` times the top rung's schedule
    (factor 1: the package's fit)."""
    return refit_with_surrogate(config, yardstick, trials,
                                tilted_surrogate(slopes["r"], slopes["d"], math.log(factor)))


def flatness(trials, d: float, c: float) -> list[tuple[float, float]]:
    """The untilted surrogate's expected top-1 and its standard deviation (the seed noise left
    out) along FLAT_R at depth ``d`` and budget ``c``, as the search's schedule sees it."""
    from tinyformula.formula.surrogate import Surrogate
    from tinyformula.sweep.fitting import noise_sigma, trial_points
    from tinyformula.sweep.noise import seed_noise

    top = max(t.rung for t in trials)
    noise = seed_noise(trials, rung=top).get("mean_abs_diff")
    surrogate = Surrogate(noise_sigma(noise) if noise else None).fit(trial_points(trials))
    mean, std = surrogate.predict(list(FLAT_R), [d] * len(FLAT_R), [c] * len(FLAT_R),
                                  return_std=True)
    return [(float(m), float(s)) for m, s in zip(mean, std)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=named, help="NAME=RUN (halving searches)")
    parser.add_argument("--factors", nargs="+", type=float, default=[2.0, 4.0],
                        help="target schedules, in multiples of the top rung's images")
    parser.add_argument("--out", default="fidelity_tilt")
    args = parser.parse_args()
    if any(not factor > 1 for factor in args.factors):
        parser.error("--factors must be above 1 (1 is the untilted fit, always shown)")
    start, load = time.perf_counter(), os.getloadavg()[0]
    searches = []
    for name, folder in args.runs:
        config, yardstick, trials = read_halving(parser, folder)
        rows = rung_gains(trials)
        if not any("mean_gain" in row for row in rows):
            parser.error(f"{folder}: no two successive rungs share more than 4 candidates, so "
                         f"its rungs give no schedule trend")
        searches.append((name, folder, config, yardstick, trials, rows))
    shared = per_image_slopes([row for *_, rows in searches for row in rows])

    lines = ["Rung gains' slopes per log image (points of top-1 per unit log r or log d, per "
             "unit log images), pooled over each search's rung pairs by inverse variance:", "",
             "| search | per log r | per log d |", "|---|---|---|"]
    data = {"factors": args.factors, "shared": shared, "runs": []}
    for name, folder, *_, rows in searches:
        own = per_image_slopes(rows)
        lines.append(f"| {name} | {100 * own['r']:+.2f} ± {100 * own['se_r']:.2f} "
                     f"| {100 * own['d']:+.2f} ± {100 * own['se_d']:.2f} |")
        data["runs"].append({"name": name, "run": folder, "slopes": own, "formulas": {}})
    lines.append(f"| shared | {100 * shared['r']:+.2f} ± {100 * shared['se_r']:.2f} "
                 f"| {100 * shared['d']:+.2f} ± {100 * shared['se_d']:.2f} |")
    lines += ["", "Formulas refitted with the surrogate tilted toward a schedule `factor` times "
              "the top rung's (r / d / w, px):", "",
              "| search | tilt | " + " | ".join(f"c = {c:g}" for c in BUDGETS) + " |",
              "|" + "---|" * (len(BUDGETS) + 2)]
    variants = [(1.0, None)] + [(factor, kind) for factor in args.factors
                                for kind in ("own", "shared")]
    for factor, kind in variants:
        for (name, _, config, yardstick, trials, _), record in zip(searches, data["runs"]):
            slopes = shared if kind == "shared" else record["slopes"]
            formula = refit(config, yardstick, trials, slopes, factor)
            cells = recommendation_cells(formula, BUDGETS)
            if kind is None:
                record["flatness"] = {
                    str(c): {"d": float(formula.predict([c])[1][0]),
                             "top1": flatness(trials, float(formula.predict([c])[1][0]), c)}
                    for c in FLAT_C}
            tag = "none" if kind is None else f"{kind} slope, x{factor:g}"
            record["formulas"][tag] = cells
            lines.append(f"| {name} | {tag} | " + " | ".join(cells) + " |")
    lines += ["", "How flat the search sees it: each search's untilted surrogate, expected top-1 "
              "(%) along r at its formula's d, under the search's schedule (± the surrogate's "
              "standard deviation, the seed noise left out):", "",
              "| search | c | d | " + " | ".join(f"r {r:g}" for r in FLAT_R) + " | max - min |",
              "|" + "---|" * (len(FLAT_R) + 4)]
    for record in data["runs"]:
        for c, row in record["flatness"].items():
            means = [m for m, _ in row["top1"]]
            lines.append(f"| {record['name']} | {c} | {row['d']:.2f} | "
                         + " | ".join(f"{100 * m:.1f} ± {100 * s:.1f}" for m, s in row["top1"])
                         + f" | {100 * (max(means) - min(means)):.1f} |")
    write_results(args.out, "\n".join(lines), data, start, load,
                  "Extrapolating the schedule trend of the search's rungs into the formula")


if __name__ == "__main__":
    main()
