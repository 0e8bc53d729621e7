"""For a search whose cost belongs to a machine (latency): FLOPs against the predicted cost of
every candidate, where the two disagree."""

from __future__ import annotations

from ..core.figures import new_figure
from ..core.numeric import spearman
from .style import COLOURS, describe_run, log_axis, wrapped


def figure_flops_vs_latency(run):
    """FLOPs against predicted latency of every trial of a latency search: where the two
    costs disagree, networks of equal FLOPs run at different speeds."""
    figure = new_figure(7.5, 5.5)
    ax = figure.add_subplot()
    trials = run.trials.drop_duplicates("candidate")
    latency = trials["c"] * run.yardstick.reference
    points = ax.scatter(trials["flops"] / 1e6, latency, c=trials["resolution"], cmap="viridis",
                        s=30, zorder=3)
    frontier = run.frontier
    ax.scatter(frontier["flops"] / 1e6, frontier["c"] * run.yardstick.reference, s=110,
               facecolors="none", edgecolors=COLOURS["frontier"], linewidths=1.5, zorder=4,
               label="on the Pareto frontier")
    log_axis(ax, "x")
    log_axis(ax, "y")
    ax.set_xlabel("MFLOPs (fvcore count, batch 1)")
    ax.set_ylabel(f"predicted {run.yardstick.describe_cost()}, ms")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    figure.colorbar(points, ax=ax, pad=0.01).set_label("input size (px)")
    rho = spearman(trials["flops"], latency) if len(trials) >= 3 else float("nan")
    ax.set_title(wrapped(f"FLOPs against latency, {len(trials)} candidates (Spearman ρ = "
                         f"{rho:+.2f}); {describe_run(run)}", 7.5, 9), fontsize=9)
    return figure
