"""Judge ways of reading a formula off a search without training: against every network already
validated on the same base.

    python experiments/offline_judge.py NAME=RUN [NAME=RUN ...] --validated REPORT.json [...]
        [--rules default tie=0.4 share=0.3 ...] [--out NAME]

Every ``tinyformula validate`` report given (``--validated``) adds its networks' long-schedule
scores: one mean top-1 per distinct network (its seeds pooled across reports). A Gaussian
process over (log r, log d, log c) of those means, the seed noise of each mean as its known
noise, is the *judge*: what a network would score at the validation's schedule. Its
leave-one-out error is printed first; differences between rules below it are not resolved.

Each rule refits every search (``NAME=RUN``, all on the judge's base) on its stored trials, as
``fit`` does but without a band, and the judge scores the recommendation at c = 0.06, 0.13,
0.25 and 0.5. A recommendation farther than ``SUPPORT`` in log r or log d from every validated
network near its budget is outside what the judge has seen: it is shown in brackets and left
out of the means. Rules:

- ``default``: the package as it is;
- ``tie=X``: the surrogate path's ``TIE_CHANCE`` set to X (0.4 since 0.8, 0.25 before; near
  0.5 the path is the arg-max of the mean);
- ``share=X``: the surrogate reads only trials trained on at least X of the most images
  (``Surrogate(min_images_share=X)``), its path read with the package's ``TIE_CHANCE``;
- ``maxr``: of the points that tie the best, the one with the largest r;
- ``floor=X``: the surrogate's white noise held at least at X times the seed noise's variance
  (``NOISE_FLOOR_SHARE``, 0.5 in the package).

Seconds per rule and run. Writes ``experiments/results/NAME.md`` (default ``offline_judge``)
and ``.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import named, read_validation, refusing, write_results  # noqa: E402

BUDGETS = (0.06, 0.13, 0.25, 0.5)
SUPPORT = 0.2          # log distance in r and in d to a validated network near the budget
NEAR_C = 0.1           # log distance in c for a validated network to count as near a budget


def validated_networks(paths: list[str], base: str) -> dict:
    """Distinct networks of ``base`` validated at one schedule: log r, d, c and the pooled
    seeds' top-1 (a seed scored twice, in two reports, counts once)."""
    scores: dict[str, dict[int, float]] = {}
    where: dict[str, tuple[float, float, float]] = {}
    schedule = set()
    for path in paths:
        report = read_validation(path)
        if report["base"] != base:
            continue
        images = report["schedules"][-1]["images"]
        schedule.add(images)
        entries = {(e["c_budget"], e["formula"]): e for e in report["entries"]}
        for score in report["scores"]:
            entry = entries.get((score["c_budget"], score["formula"]))
            if score["images"] != images or not entry or not entry.get("network"):
                continue
            scores.setdefault(entry["network"], {})[score["seed"]] = score["top1"]
            where[entry["network"]] = (math.log(entry["r"]), math.log(entry["d"]),
                                       math.log(entry["c"]))
    if len(schedule) > 1:
        from tinyformula import TinyFormulaError

        raise TinyFormulaError(f"the {base} reports trained on different schedules "
                               f"({sorted(schedule)} images); give reports of one schedule")
    keys = sorted(scores)
    return {"x": [where[k] for k in keys],
            "top1": [sum(scores[k].values()) / len(scores[k]) for k in keys],
            "n": [len(scores[k]) for k in keys], "images": schedule.pop() if schedule else None}


class Judge:
    """A GP of validated mean top-1 over (log r, log d, log c); each mean's noise is the seed
    noise over its number of seeds."""

    def __init__(self, networks: dict, sigma: float):
        import numpy as np

        self.x = np.asarray(networks["x"])
        self.y = np.asarray(networks["top1"])
        self.alpha = sigma ** 2 / np.asarray(networks["n"]) / np.var(self.y)

    def fit(self, rows=None, kernel=None):
        import numpy as np
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        rows = np.arange(len(self.y)) if rows is None else rows
        # a kernel given is used as it is (leave-one-out refits keep the full fit's kernel)
        tuned = kernel is None
        if tuned:
            kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * RBF([1.0] * 3, [(0.05, 20.0)] * 3)
                      + WhiteKernel(0.1, (1e-4, 1.0)))
        gp = GaussianProcessRegressor(kernel, normalize_y=True, alpha=self.alpha[rows],
                                      optimizer="fmin_l_bfgs_b" if tuned else None,
                                      n_restarts_optimizer=3 if tuned else 0, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return gp.fit(self.x[rows], self.y[rows])

    def leave_one_out(self, gp) -> float:
        """Root mean square error of each network's mean predicted without it (points)."""
        import numpy as np

        errors = []
        for i in range(len(self.y)):
            rows = np.delete(np.arange(len(self.y)), i)
            errors.append(self.fit(rows, gp.kernel_).predict(self.x[i:i + 1])[0] - self.y[i])
        return 100 * float(np.sqrt(np.mean(np.square(errors))))

    def seen(self, r: float, d: float, c: float) -> bool:
        near = [x for x in self.x if abs(x[2] - math.log(c)) <= NEAR_C]
        return any(abs(x[0] - math.log(r)) <= SUPPORT and abs(x[1] - math.log(d)) <= SUPPORT
                   for x in near)


def _largest_r(log_r, log_d, weight):
    import numpy as np

    k = int(np.argmax(log_r))
    return float(np.exp(log_r[k])), float(np.exp(log_d[k]))


@contextlib.contextmanager
def rule(spec: str):
    """The package patched to read the formula by ``spec`` (restored afterwards)."""
    import tinyformula.formula.surrogate as surrogate
    import tinyformula.sweep.fitting as fitting

    saved = (fitting.Surrogate, surrogate.TIE_CHANCE, surrogate._middle, surrogate._medoid,
             surrogate.NOISE_FLOOR_SHARE)
    name, _, value = spec.partition("=")
    try:
        if name == "tie":
            surrogate.TIE_CHANCE = float(value)
        elif name == "share":
            fitting.Surrogate = functools.partial(surrogate.Surrogate,
                                                  min_images_share=float(value))
        elif name == "maxr":
            surrogate._middle = surrogate._medoid = _largest_r
        elif name == "floor":
            surrogate.NOISE_FLOOR_SHARE = float(value)
        yield
    finally:
        (fitting.Surrogate, surrogate.TIE_CHANCE, surrogate._middle, surrogate._medoid,
         surrogate.NOISE_FLOOR_SHARE) = saved


def check_rule(spec: str) -> str:
    name, _, value = spec.partition("=")
    try:
        ok = ((name in ("default", "maxr") and not value)
              or (name == "tie" and 0 < float(value) <= 0.5)
              or (name == "share" and 0 <= float(value) < 1)
              or (name == "floor" and 0 <= float(value) <= 4))
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"{spec!r}: give default, maxr, tie=X (0 < X <= 0.5), "
                                         f"share=X (0 <= X < 1) or floor=X (0 <= X <= 4)")
    return spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=named, help="NAME=RUN (searches of one base)")
    parser.add_argument("--validated", nargs="+", required=True, metavar="REPORT.json")
    parser.add_argument("--rules", nargs="+", type=check_rule, default=["default"])
    parser.add_argument("--sigma", type=float, default=0.012,
                        help="one training's top-1 seed noise (default 0.012, 1.2 points)")
    parser.add_argument("--out", default="offline_judge")
    args = parser.parse_args()
    start, load = time.perf_counter(), os.getloadavg()[0]
    import numpy as np

    from tinyformula.sweep.fitting import fit_formula
    from tinyformula.sweep.results import read_search

    searches = []
    for name, folder in args.runs:
        with refusing(parser):
            searches.append((name, *read_search(Path(folder))))
    bases = {yardstick.base for _, _, yardstick, _ in searches}
    if len(bases) != 1:
        parser.error(f"the searches are of several bases ({', '.join(sorted(bases))}); judge "
                     f"one base at a time")
    base = bases.pop()
    with refusing(parser):
        networks = validated_networks(args.validated, base)
    if len(networks["top1"]) < 8:
        parser.error(f"the reports hold {len(networks['top1'])} validated {base} networks; "
                     f"the judge needs at least 8")
    judge = Judge(networks, args.sigma)
    gp = judge.fit()
    loo = judge.leave_one_out(gp)
    from tinyformula.core.version import VERSION
    from tinyformula.formula.surrogate import TIE_CHANCE

    lines = [f"tinyformula {VERSION} (the path's TIE_CHANCE {TIE_CHANCE:g} unless a rule sets "
             "it).", "",
             f"{base}: {len(networks['top1'])} validated networks at "
             f"{networks['images']:,} images (seeds per network {min(networks['n'])}-"
             f"{max(networks['n'])}), top-1 spread {100 * np.std(networks['top1']):.2f} points; "
             f"the judge's leave-one-out error **{loo:.2f} points** (RMSE).", "",
             "Judged top-1 per search, [outside the validated networks], and over the searches "
             "the mean (of those inside) and the largest gap:", "",
             "| rule | search | " + " | ".join(f"c = {c:g}: px, top-1" for c in BUDGETS)
             + " | s |", "|---|---|" + "---|" * (len(BUDGETS) + 1)]
    data = {"base": base, "networks": networks, "loo_rmse": loo, "rules": {}}
    for spec in args.rules:
        judged = {c: [] for c in BUDGETS}
        rows = []
        for name, config, yardstick, trials in searches:
            begun = time.perf_counter()
            with rule(spec):
                formula = fit_formula(config, yardstick, trials, draws=0)
            seconds = time.perf_counter() - begun
            cells, row = [], {"search": name, "seconds": seconds, "budgets": []}
            for c in BUDGETS:
                try:
                    rec = formula.recommend(c)
                except Exception:  # noqa: BLE001 - shown as unreachable
                    cells.append("unreachable")
                    row["budgets"].append({"c": c, "unreachable": True})
                    continue
                top1 = 100 * float(gp.predict(np.array([[math.log(rec.r), math.log(rec.d),
                                                         math.log(c)]]))[0])
                inside = judge.seen(rec.r, rec.d, c)
                if inside:
                    judged[c].append(top1)
                cells.append(f"{rec.resolution}, {top1:.2f}" if inside
                             else f"[{rec.resolution}, {top1:.2f}]")
                row["budgets"].append({"c": c, "r": rec.r, "d": rec.d, "w": rec.w,
                                       "px": rec.resolution, "top1": top1, "inside": inside})
            lines.append(f"| {spec} | {name} | " + " | ".join(cells) + f" | {seconds:.0f} |")
            rows.append(row)
        summary = [f"{np.mean(v):.2f}, gap {max(v) - min(v):.2f}" + (
            f" ({len(v)} of {len(searches)})" if len(v) < len(searches) else "")
            if v else "-" for v in judged.values()]
        lines.append(f"| **{spec}** | mean, gap | " + " | ".join(summary) + " | |")
        data["rules"][spec] = rows
    write_results(args.out, "\n".join(lines), data, start, load,
                  "Ways of reading a formula, judged against every validated network")


if __name__ == "__main__":
    main()
