"""Pictures of a search: how researchers judge one before they read its tables.

Three figures of a finished run folder, after the TinyNet paper's:

1. ``top1_vs_flops.png`` (its Figure 1): top-1 of every trial against c, the Pareto frontier
   drawn through its points, and where the inverted giant formula's configurations fall;
2. ``formula_vs_c.png`` (its Figure 3): r, d and w of the frontier models against c, the GP
   means with a +-2 sigma band, the width the solver gives, and the giant formula's curves;
3. ``top1_at_c<BUDGET>.png`` (its Figure 2): top-1 of the trials near one budget against
   their r, d and w, with Spearman's rank correlation for each;
4. ``rungs.png``, for a successive-halving search only: each promoted candidate's top-1 at
   rung k against rung k+1, one panel per pair of rungs, with Spearman's rank correlation.

The giant formula's configurations are solved, not trained: where no trial of the search
built the same network, figure 1 marks only their c on the axis and says they were not trained,
rather than show an accuracy nobody measured.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, never pyplot, so no
display is needed and no global backend is switched (a notebook's inline backend stays as
it is). Files are written to a temporary name and renamed: a reader never sees half a PNG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .errors import TinyFormulaError
from .files import write_atomically
from .quality import spearman

DEFAULT_BUDGET = 0.5
WINDOW = 1.25            # "near" a budget c: c / 1.25 <= c_trial <= c * 1.25 (+-22% in log c)
GIANT_BUDGETS = (0.06, 0.13, 0.25, 0.5)
GRID_POINTS = 80
DPI = 130

COLOURS = {"trial": "#8c8c8c", "frontier": "#1f77b4", "giant": "#d62728", "tiny": "#1f77b4",
           "solver": "#2ca02c"}


# -- the data the figures show ---------------------------------------------------------------

def plottable_run(path):
    """Load a run folder and check it holds at least one finished trial (a formula is not
    needed: without one, only the figures of the trials are drawn)."""
    from .results import load_run

    run = load_run(path)
    if not len(run.trials) or not (run.trials["status"] == "ok").any():
        raise TinyFormulaError(f"{run.path} holds no finished trial yet; run 'tinyformula fit "
                               f"--out {run.path}' first")
    return run


def missing_formula_note(run) -> str:
    """Why a run has no formula figure, and what to do."""
    from .formula import MIN_POINTS

    if not run.finished:
        pending = int((run.trials["status"] == "pending").sum())
        return (f"{run.path}: no formula yet ({pending} of {len(run.trials)} trials pending), so "
                f"formula_vs_c.png is not drawn; finish the search with 'tinyformula fit --out "
                f"{run.path}' and the same options")
    if len(run.frontier) >= MIN_POINTS:
        return (f"{run.path}: every trial is trained but there is no formula.json yet (it is "
                f"being fitted now, or the fit stopped), so formula_vs_c.png is not drawn; wait "
                f"a few seconds, or run 'tinyformula fit --out {run.path}' with the same options")
    return (f"{run.path}: the search fitted no formula (see 'tinyformula fit' for why), so "
            f"formula_vs_c.png is not drawn")


def top_rung_trials(run):
    """The trials the frontier is drawn from: every trial of a full-budget search, the top
    rung's of a successive-halving one (lower rungs trained on fewer images)."""
    return run.trials[run.trials["rung"] == run.config.top_rung]


def check_window(window) -> float:
    from .validate import Real, check

    return check("the window", window, Real(1, None, closed="neither",
                                            why="1.25 means c/1.25 to c*1.25"))


def trials_near(run, budget: float = DEFAULT_BUDGET, window: float = WINDOW):
    """Finished trials with c in [budget / window, budget * window], every seed included.

    Raises TinyFormulaError when there are none, naming the c range the trials cover.
    """
    from .yardstick import check_budget

    budget, window = check_budget(budget), check_window(window)
    trials = top_rung_trials(run)
    ok = trials[trials["status"] == "ok"]
    near = ok[(ok["c"] >= budget / window) & (ok["c"] <= budget * window)]
    if not len(near):
        if len(ok):
            closest = ok.iloc[(ok["c"].map(math.log) - math.log(budget)).abs().argmin()]["c"]
            hint = (f"its trials span c = {ok['c'].min():.3g} to {ok['c'].max():.3g}; try "
                    f"--budget {closest:.3g}")
        else:
            hint = "it has no finished trial"
        raise TinyFormulaError(f"no trial of {run.path} has c within a factor {window:g} of "
                               f"{budget:g} ({budget / window:.3g} to {budget * window:.3g}); "
                               f"{hint}")
    return near.sort_values("c")


@dataclass(frozen=True)
class GiantMark:
    """The inverted giant formula at one budget (``giant.budget``), and the trial of the
    search that built the very same network, if any."""

    giant: "object"                 # tinyformula.formula.Recommendation
    top1: float | None = None       # only when a trial of the search trained this network
    trial_id: int | None = None


def giant_marks(run, budgets=GIANT_BUDGETS) -> list[GiantMark]:
    """The giant formula's configurations at ``budgets`` inside the run's c range.

    A configuration gets a top-1 only when a finished trial (search seed) built the very same
    network: same input size and same layer tree.
    """
    from .formula import giant_recommendation
    from .scale import Scale
    from .solve import BudgetUnreachable
    from .space import network_key

    trials = top_rung_trials(run)
    ok = trials[(trials["status"] == "ok") & (trials["seed"] == run.config.seed)]
    lo, hi = trials["c"].min(), trials["c"].max()
    marks = []
    for c in budgets:
        if not lo / WINDOW <= c <= hi * WINDOW:
            continue
        try:
            giant = giant_recommendation(run.yardstick, c)
        except BudgetUnreachable:
            continue
        s = giant.config
        key = network_key(run.yardstick, s)
        same = ok[(ok["resolution"] == s.resolution) & (ok["flops"] == s.flops)]
        match = [t for t in same.itertuples()
                 if network_key(run.yardstick, run.yardstick.measure(Scale(t.r, t.d, t.w)))
                 == key]
        marks.append(GiantMark(giant, match[0].top1 if match else None,
                               int(match[0].id) if match else None))
    return marks


def formula_curves(run, points: int = GRID_POINTS) -> dict:
    """The formula and the giant formula over the frontier's c range, as arrays.

    Keys: ``c``; ``r``, ``d`` (GP means), ``r_std``, ``d_std``; ``w`` (the width solver at the
    GP's r and d, i.e. ``recommend(c).w``); ``giant_r``, ``giant_d``, ``giant_w``. A budget
    the solver cannot reach is nan.
    """
    import numpy as np

    formula = run.formula
    lo, hi = formula.c_range_
    c = np.geomspace(lo, min(hi, 1.0) if hi > lo else lo * 1.01, points)
    r, d, r_std, d_std = formula.predict(c, return_std=True)
    curves = {"c": c, "r": r, "d": d, "r_std": r_std, "d_std": d_std}
    for key in ("w", "giant_r", "giant_d", "giant_w"):
        curves[key] = np.full(points, np.nan)
    for i, budget in enumerate(c):
        try:
            curves["w"][i] = formula.recommend(float(budget)).w
        except TinyFormulaError:
            pass
        try:
            g = formula.giant(float(budget)).config
            curves["giant_r"][i], curves["giant_d"][i], curves["giant_w"][i] = g.r, g.d, g.w
        except TinyFormulaError:
            pass
    return curves


# -- figures -----------------------------------------------------------------------------------

def new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def log_axis(axis, which: str = "x", scale: bool = True) -> None:
    """Log scale with plain-number tick labels (0.1, 0.25, 0.5), not powers of ten."""
    if scale:
        getattr(axis, f"set_{which}scale")("log")
    _plain_log_ticks(getattr(axis, f"{which}axis"))


def _auto_scale(axis, values, which: str = "x") -> bool:
    """Log scale where the values span a factor of 4 or more (multipliers are drawn
    log-uniform), linear otherwise, where a log axis would only add odd tick labels."""
    values = [v for v in values if v > 0]
    wide = bool(values) and max(values) / min(values) >= 4
    if wide:
        log_axis(axis, which)
    return wide


def _plain_log_ticks(ticks) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator

    ticks.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    ticks.set_minor_locator(LogLocator(base=10, subs=tuple(range(1, 10))))
    ticks.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ticks.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def _describe(run) -> str:
    config = run.config
    return (f"{config.base} on {config.data}, {config.train_size:,} images x {config.epochs} "
            f"epoch(s), {config.preset} preset")


def _accuracy_label(run) -> str:
    return f"top-1 (%) on {run.config.val_size:,} images held out from the training split"


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
    ax.set_ylabel(_accuracy_label(run))
    # The top axis in the cost's own unit: millions of FLOPs, params or activations, or ms.
    scale = 1.0 if yardstick.cost == "latency" else 1e6
    reference = yardstick.reference / scale
    top = ax.secondary_xaxis("top", functions=(lambda c: c * reference,
                                               lambda m: m / reference))
    _plain_log_ticks(top.xaxis)
    unit = "ms" if yardstick.cost == "latency" else f"M{yardstick.unit}"
    top.set_xlabel(f"{unit} at {yardstick.resolution_base} px base resolution "
                   f"({'predicted, batch 1' if yardstick.cost == 'latency' else 'batch 1'})")

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
    ax.set_title(f"Accuracy against {yardstick.unit}: {len(run.trials)} trials ({failed} failed), "
                 f"{_describe(run)}\n{_verdict(run)}", fontsize=10)
    return figure


def _verdict(run) -> str:
    """The formula's quality in one line (or why there is none)."""
    from .quality import describe

    if run.formula is None:
        return "no formula fitted" + ("" if run.finished else " yet: the search is unfinished")
    return describe(run.formula.quality_)


def figure_formula(run, curves: dict | None = None):
    """Figure 2: r, d, w of the frontier against c, the formula (GP mean +-2 sigma, the width
    solver) and the inverted giant formula."""
    curves = curves or formula_curves(run)
    figure = new_figure(13.5, 4.6)
    axes = figure.subplots(1, 3, sharex=True)
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
            ax.fill_between(curves["c"], mean - 2 * std, mean + 2 * std, color=COLOURS["tiny"],
                            alpha=0.18, lw=0, label="GP mean ± 2σ")
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
    lo, hi = run.formula.c_range_
    fit = "monotone GPs" if run.formula.monotone else "unconstrained GPs"
    figure.suptitle(f"The fitted formula against c (fitted on {len(frontier)} frontier points, "
                    f"c = {lo:.3g} to {hi:.3g}, {fit}); {_describe(run)}\n{_verdict(run)}",
                    fontsize=10)
    return figure


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
    ax.set_title(f"FLOPs against latency, {len(trials)} candidates (Spearman ρ = {rho:+.2f}); "
                 f"{_describe(run)}", fontsize=9)
    return figure


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
        wide = _auto_scale(ax, near[key])
        ax.set_xlabel(f"{names[key]}" + (" (log scale)" if wide else ""))
        rho = spearman(main[key], main["top1"]) if len(main) >= 3 else float("nan")
        ax.set_title(f"Spearman ρ(top-1, {key}) = {rho:+.2f}" if math.isfinite(rho)
                     else "Spearman ρ: needs 3 trials", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel(_accuracy_label(run))
    axes[0].legend(fontsize=7.5, loc="best")
    bar = figure.colorbar(points, ax=axes, pad=0.01, shrink=0.9)
    bar.set_label("c of the trial")
    ticks = [budget / window, budget, budget * window]
    bar.set_ticks(ticks, labels=[f"{t:.3g}" for t in ticks])
    bar.ax.minorticks_off()
    figure.suptitle(f"Which of r, d, w matter at c = {budget:g}: {len(near)} "
                    f"trial{'s' if len(near) != 1 else ''} with c in "
                    f"[{budget / window:.3g}, {budget * window:.3g}] (within ×/÷{window:g}); "
                    f"{_describe(run)}", fontsize=10)
    return figure


# -- writing -----------------------------------------------------------------------------------

def save_figure(figure, path) -> Path:
    """Write a PNG atomically: a reader never sees half of one."""
    return write_atomically(path, lambda handle: figure.savefig(handle, format="png"))


def budget_file_name(budget: float) -> str:
    return f"top1_at_c{budget:g}.png"


def figure_rungs(run):
    """Top-1 of each promoted candidate at rung k (x) against rung k+1 (y), search seed."""
    from .schedule import rung_pairs
    from .trial import Trial

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
    figure.suptitle(f"Successive halving, eta {run.config.eta:g}: {_describe(run)}", fontsize=9)
    return figure


def plot_run(path, budget: float = DEFAULT_BUDGET, window: float = WINDOW, out=None,
             log=None) -> list[Path]:
    """Write the figures of a run into ``out`` (default ``RUN_DIR/plots``) and return their
    paths: the trials against c, the formula (when there is one), the trials near one budget,
    and ``flops_vs_latency.png`` for a latency search, ``rungs.png`` for a halving one. Every
    input is checked and every figure drawn before a file is written.

    A run without a formula (unfinished, or its fit refused) gets the figures of its trials;
    ``log`` (default: print to stderr) is told that formula_vs_c.png was skipped and why.
    """
    import sys

    from .validate import check_output_path

    run = plottable_run(path)
    trials_near(run, budget, window)  # fail before drawing anything
    out = Path(out) if out is not None else run.path / "plots"
    if out.exists() and not out.is_dir():
        raise TinyFormulaError(f"{out} is a file; plots need a folder there")
    try:
        check_output_path("the plots folder", out)
    except TinyFormulaError as error:
        raise TinyFormulaError(f"{error} (give --out DIR for the figures)") from None
    figures = {"top1_vs_flops.png": figure_frontier(run)}
    if run.formula is not None:
        figures["formula_vs_c.png"] = figure_formula(run)
    else:
        (log or (lambda message: print(f"tinyformula: note: {message}", file=sys.stderr)))(
            missing_formula_note(run))
    figures[budget_file_name(budget)] = figure_budget(run, budget, window)
    if run.yardstick.cost == "latency":
        figures["flops_vs_latency.png"] = figure_flops_vs_latency(run)
    if run.config.schedule == "halving" and run.fidelity.get("transitions"):
        figures["rungs.png"] = figure_rungs(run)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TinyFormulaError(f"cannot create {out}: {error.strerror}; give --out DIR for the "
                               f"figures") from None
    return [save_figure(figure, out / name) for name, figure in figures.items()]
