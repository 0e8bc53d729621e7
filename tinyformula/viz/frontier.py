"""Figure 1 of the TinyNet paper for a run: every trial's top-1 against c, the Pareto frontier,
the seed noise, and where the inverted giant formula's configurations fall."""

from __future__ import annotations

from ..core.errors import TinyFormulaError
from ..core.figures import new_figure
from .data import giant_marks, top_rung_trials
from .style import (
    COLOURS,
    accuracy_label,
    describe_run,
    log_axis,
    plain_log_ticks,
    verdict,
    wrapped,
)


def figure_frontier(run):
    """Figure 1: top-1 against c for every trial, the frontier, the giant formula's marks."""
    figure = new_figure(9.5, 5.8)
    ax = figure.add_subplot()
    seed = run.config.seed
    trials = top_rung_trials(run)
    ok = trials[trials["status"] == "ok"]
    main, other = ok[ok["seed"] == seed], ok[ok["seed"] != seed]
    failed = int((~run.trials["status"].isin(["ok", "pending"])).sum())
    ax.scatter(main["c"], 100 * main["top1"], s=26, color=COLOURS["trial"], alpha=0.8,
               label=f"trial, seed {seed} ({len(main)})", zorder=2)
    if len(other):
        ax.scatter(other["c"], 100 * other["top1"], s=40, facecolors="none",
                   edgecolors="black", linewidths=0.9,
                   label=f"same candidate, another seed ({len(other)}): the noise", zorder=3)
    frontier = run.frontier.sort_values("c")
    ax.plot(frontier["c"], 100 * frontier["top1"], "-o", color=COLOURS["frontier"], ms=6,
            lw=2, label=f"Pareto frontier ({len(frontier)})", zorder=4)
    log_axis(ax, "x")
    yardstick = run.yardstick
    ax.set_xlabel(f"c: {yardstick.describe_cost()} relative to {yardstick.base} at "
                  f"r = d = w = 1 (log scale)")
    ax.set_ylabel(accuracy_label(run))
    # The top axis in the cost's own unit: millions of FLOPs, params or activations, or ms
    # (left out when this machine's latency table cannot say what c = 1 is).
    meter = yardstick.meter
    try:
        reference = yardstick.reference / meter.display_scale
    except TinyFormulaError:
        reference = None
    if reference is not None:
        top = ax.secondary_xaxis("top", functions=(lambda c: c * reference,
                                                   lambda m: m / reference))
        plain_log_ticks(top.xaxis)
        top.set_xlabel(f"{meter.display_unit} at {yardstick.resolution_base} px base "
                       f"resolution ({'batch 1' if meter.exact else 'predicted, batch 1'})")

    untrained = False
    for mark in giant_marks(run):
        g = mark.giant.config
        label = (f"giant c={mark.giant.budget:g}: r={g.r:.2f} d={g.d:.2f} w={g.w:.2f} "
                 f"({g.resolution} px)")
        if mark.top1 is not None:
            ax.scatter([g.c], [100 * mark.top1], marker="*", s=220, color=COLOURS["giant"],
                       zorder=5, label=f"{label}, trained as trial {mark.trial_id}")
        else:
            untrained = True
            ax.axvline(g.c, color=COLOURS["giant"], ls=":", lw=1.2, zorder=1)
            ax.annotate(f"{label}, not trained", xy=(g.c, 0.02), xycoords=("data", "axes fraction"),
                        rotation=90, va="bottom", ha="right", fontsize=7.5,
                        color=COLOURS["giant"], xytext=(-2, 0), textcoords="offset points",
                        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7,
                              "pad": 1})
    if untrained:
        ax.plot([], [], ls=":", color=COLOURS["giant"],
                label="inverted giant formula's configuration at c\n(not trained in this "
                      "search: no accuracy shown)")
    spread = run.seed_spread
    if spread:
        ax.plot([], [], " ", label=f"seed-to-seed noise: top-1 differs by "
                f"{100 * spread['mean_abs_diff']:.1f} pp on average,\nat most "
                f"{100 * spread['max_abs_diff']:.1f} pp ({spread['pairs']} re-trained "
                f"candidates): read smaller gaps as ties")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    ax.set_title(wrapped(f"Accuracy against {yardstick.unit}: {len(run.trials)} trials "
                         f"({failed} failed), {describe_run(run)}\n{verdict(run)}", 9.5, 10),
                 fontsize=10)
    return figure
