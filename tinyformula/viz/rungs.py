"""For a successive-halving search: each promoted candidate's top-1 at rung k against rung
k+1, one panel per pair of rungs, with Spearman's rank correlation."""

from __future__ import annotations

from ..core.figures import new_figure
from ..sweep.fidelity import rung_pairs
from ..sweep.trials import Trial
from .style import COLOURS, describe_run


def figure_rungs(run):
    """Top-1 of each promoted candidate at rung k (x) against rung k+1 (y), search seed."""

    trials = [Trial.from_row(row) for row in run.trials.to_dict("records")]
    transitions = {t["from"]: t for t in run.fidelity["transitions"]}
    panels = max(1, run.config.top_rung)
    figure = new_figure(4.2 * panels, 4.0)
    axes = figure.subplots(1, panels, squeeze=False)[0]
    sizes = run.config.rung_train_sizes
    for k, axis in enumerate(axes):
        pairs = rung_pairs(trials, run.config.seed, k)
        x = [100 * a.top1 for a, _ in pairs]
        y = [100 * b.top1 for _, b in pairs]
        axis.scatter(x, y, s=22, color=COLOURS["frontier"])
        if x:
            lo, hi = min(x + y), max(x + y)
            axis.plot([lo, hi], [lo, hi], color=COLOURS["trial"], lw=0.8, ls="--")
        rho = transitions.get(k, {}).get("spearman")
        axis.set_title(f"rung {k} -> {k + 1}: {len(pairs)} promoted, Spearman "
                       f"{'-' if rho is None else f'{rho:+.2f}'}", fontsize=9)
        axis.set_xlabel(f"top-1 (%), rung {k} ({sizes[k] * run.config.epochs:,} images)")
        axis.set_ylabel(f"top-1 (%), rung {k + 1} ({sizes[k + 1] * run.config.epochs:,} images)")
    figure.suptitle(f"Successive halving, eta {run.config.eta:g}: {describe_run(run)}", fontsize=9)
    return figure
