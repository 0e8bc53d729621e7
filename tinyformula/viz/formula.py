"""Figure 3 of the TinyNet paper for a run: r, d and w of the frontier against c, the fitted
formula (GP mean, its band, the width the solver gives) and the inverted giant formula; with a
band, a fourth panel shows the top-1 the band is expected to cost."""

from __future__ import annotations

from ..core.figures import new_figure
from .data import formula_curves
from .style import COLOURS, describe_run, log_axis, verdict


def figure_formula(run, curves: dict | None = None):
    """Figure 2: r, d, w of the frontier against c, the formula (GP mean with its band, or
    +-2 sigma without one; the width solver) and the inverted giant formula; with a band, the
    top-1 it is expected to cost."""
    import numpy as np

    curves = curves or formula_curves(run)
    banded = bool(np.isfinite(curves["r_lo"]).any())
    figure = new_figure(18 if banded else 13.5, 4.6)
    axes = figure.subplots(1, 4 if banded else 3, sharex=True)
    frontier = run.frontier.sort_values("c")
    rb = run.formula.resolution_base
    labels = {"r": f"resolution multiplier r  (input int({rb}·r) px)",
              "d": "depth multiplier d  (stage repeats ×d)",
              "w": "width multiplier w  (channels ×w)"}
    for ax, key in zip(axes, ("r", "d", "w")):
        ax.scatter(frontier["c"], frontier[key], s=30, color="black", zorder=4,
                   label="frontier models")
        if key in ("r", "d"):
            mean, std = curves[key], curves[f"{key}_std"]
            ax.plot(curves["c"], mean, color=COLOURS["tiny"], lw=2, label="Tiny Formula: GP mean")
            if banded:
                ax.fill_between(curves["c"], curves[f"{key}_lo"], curves[f"{key}_hi"],
                                color=COLOURS["tiny"], alpha=0.25, lw=0,
                                label="band: 80% of refits on resampled trials")
            else:
                ax.fill_between(curves["c"], mean - 2 * std, mean + 2 * std,
                                color=COLOURS["tiny"], alpha=0.18, lw=0, label="GP mean ± 2σ")
        else:
            ax.plot(curves["c"], curves["w"], color=COLOURS["solver"], lw=2,
                    drawstyle="steps-mid", label="Tiny Formula: w solved at the GP's r, d")
        ax.plot(curves["c"], curves[f"giant_{key}"], color=COLOURS["giant"], lw=1.8, ls="--",
                label="inverted giant formula")
        log_axis(ax, "x")
        ax.set_xlabel(f"c: relative {run.yardstick.unit} (log scale)")
        ax.set_ylabel(labels[key])
        ax.set_ylim(bottom=0)  # multipliers are positive; a wide band would only add empty room
        ax.grid(True, which="major", alpha=0.3)
        if key == "r":
            px = ax.secondary_yaxis("right", functions=(lambda r: r * rb, lambda p: p / rb))
            px.set_ylabel("input size (px)")
        ax.legend(fontsize=7.5, loc="best")
    if banded:
        ax = axes[3]
        ax.plot(curves["c"], 100 * curves["top1_cost"], color=COLOURS["tiny"], lw=2,
                label="expected top-1 lost to the band")
        noise = (run.formula.quality_ or {}).get("seed_noise")
        if noise:
            ax.axhline(100 * noise, color="grey", ls=":", lw=1.2,
                       label=f"seed noise ({noise:.1%})")
        log_axis(ax, "x")
        ax.set_xlabel(f"c: relative {run.yardstick.unit} (log scale)")
        ax.set_ylabel("top-1 cost of the band (points)")
        ax.set_ylim(bottom=0)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7.5, loc="best")
    lo, hi = run.formula.c_range_
    fit = ("monotone GPs" if run.formula.monotone else "unconstrained GPs") + \
        f", {getattr(run.formula, 'method', 'frontier')} fit"
    figure.suptitle(f"The fitted formula against c ({len(frontier)} frontier points, "
                    f"c = {lo:.3g} to {hi:.3g}, {fit}); {describe_run(run)}\n{verdict(run)}",
                    fontsize=10)
    return figure
