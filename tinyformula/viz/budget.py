"""Figure 2 of the TinyNet paper for a run: top-1 of the trials near one budget against their
r, d and w, with Spearman's rank correlation for each."""

from __future__ import annotations

import math

from ..core.figures import new_figure
from ..core.numeric import spearman
from .data import DEFAULT_BUDGET, WINDOW, trials_near
from .style import COLOURS, accuracy_label, auto_scale, describe_run


def figure_budget(run, budget: float = DEFAULT_BUDGET, window: float = WINDOW):
    """Figure 3: top-1 of the trials near one budget against r, d and w."""
    from matplotlib.colors import LogNorm

    near = trials_near(run, budget, window)
    seed = run.config.seed
    frontier_ids = set(run.frontier["id"])
    figure = new_figure(13.5, 4.6)
    axes = figure.subplots(1, 3, sharey=True)
    main = near[near["seed"] == seed]
    other = near[near["seed"] != seed]
    names = {"r": "resolution multiplier r", "d": "depth multiplier d", "w": "width multiplier w"}
    colour_norm = LogNorm(vmin=budget / window, vmax=budget * window)
    for ax, key in zip(axes, ("r", "d", "w")):
        points = ax.scatter(main[key], 100 * main["top1"], c=main["c"], cmap="viridis",
                            norm=colour_norm, s=45, edgecolors="none", zorder=3,
                            label=f"trial, seed {seed}")
        if len(other):
            ax.scatter(other[key], 100 * other["top1"], s=60, facecolors="none",
                       edgecolors="black", linewidths=0.9, zorder=4,
                       label="same candidate, another seed")
        on = main[main["id"].isin(frontier_ids)]
        if len(on):
            ax.scatter(on[key], 100 * on["top1"], s=140, facecolors="none",
                       edgecolors=COLOURS["frontier"], linewidths=1.6, zorder=2,
                       label="on the Pareto frontier")
        wide = auto_scale(ax, near[key])
        ax.set_xlabel(f"{names[key]}" + (" (log scale)" if wide else ""))
        rho = spearman(main[key], main["top1"]) if len(main) >= 3 else float("nan")
        ax.set_title(f"Spearman ρ(top-1, {key}) = {rho:+.2f}" if math.isfinite(rho)
                     else "Spearman ρ: needs 3 trials", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel(accuracy_label(run))
    axes[0].legend(fontsize=7.5, loc="best")
    bar = figure.colorbar(points, ax=axes, pad=0.01, shrink=0.9)
    bar.set_label("c of the trial")
    ticks = [budget / window, budget, budget * window]
    bar.set_ticks(ticks, labels=[f"{t:.3g}" for t in ticks])
    bar.ax.minorticks_off()
    figure.suptitle(f"Which of r, d, w matter at c = {budget:g}: {len(near)} "
                    f"trial{'s' if len(near) != 1 else ''} with c in "
                    f"[{budget / window:.3g}, {budget * window:.3g}] (within ×/÷{window:g}); "
                    f"{describe_run(run)}", fontsize=10)
    return figure
