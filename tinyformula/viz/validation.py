"""The figure of a validation: each formula's top-1 against c on the validation's schedule, with
its spread over seeds, and the search's fidelity (frontier points' short- against long-schedule
top-1). :func:`validation_curves` is the figure's data; :func:`figure_validation` draws it;
:func:`plot_validation` writes ``validation.png``."""

from __future__ import annotations

from pathlib import Path

from ..core.figures import new_figure, save_figure
from ..sweep.validation.result import FIGURE_NAME, ValidationResult, load_validation
from .style import COLOURS, log_axis

FORMULA_COLOURS = {"giant": COLOURS["giant"], "published": "#9467bd", "fast": "#ff7f0e",
                   "searched": "#8c8c8c"}
TESTED_COLOURS = ("#1f77b4", "#2ca02c", "#17becf", "#bcbd22", "#e377c2")


def validation_curves(result: ValidationResult, schedule: int = -1) -> dict[str, dict]:
    """Per formula, in the report's order (tested first): its points on schedule
    ``schedule``, by budget: the budget, the c its network achieves, and the mean, lowest and
    highest top-1 over seeds and how many seeds; ``tested`` says whether it is under test."""
    achieved = {(e["c_budget"], e["formula"]): e.get("c") for e in result.report["entries"]}
    curves: dict[str, dict] = {}
    for name in [*result.tested, *result.baselines]:
        curves[name] = {"tested": name in result.tested, "budget": [], "c": [], "mean": [],
                        "min": [], "max": [], "n": []}
    for row in result.report["by_schedule"][schedule]["budgets"]:
        for cell in row["formulas"]:
            curve = curves.setdefault(cell["formula"], {"tested": False, "budget": [], "c": [],
                                                        "mean": [], "min": [], "max": [],
                                                        "n": []})
            curve["budget"].append(row["c"])
            curve["c"].append(achieved.get((row["c"], cell["formula"])) or row["c"])
            for key in ("mean", "min", "max", "n"):
                curve[key].append(cell[key])
    return {name: curve for name, curve in curves.items() if curve["budget"]}


def figure_validation(result: ValidationResult, schedule: int = -1):
    """Top-1 against c per formula (mean over seeds, bars from the lowest to the highest seed),
    falls circled; beside it, the fidelity's frontier points."""
    curves = validation_curves(result, schedule)
    fidelity = [p for p in (result.fidelity.get("points") or []) if p.get("long") is not None]
    figure = new_figure(13.0 if fidelity else 8.0, 5.0)
    axes = figure.subplots(1, 2 if fidelity else 1, squeeze=False)[0]
    ax = axes[0]
    tested_colours = iter(TESTED_COLOURS)
    for name, curve in curves.items():
        colour = next(tested_colours, "black") if curve["tested"] \
            else FORMULA_COLOURS.get(name, "black")
        mean = [100 * v for v in curve["mean"]]
        low = [m - 100 * v for m, v in zip(mean, curve["min"])]
        high = [100 * v - m for m, v in zip(mean, curve["max"])]
        ax.errorbar(curve["c"], mean, yerr=[low, high], color=colour, capsize=3,
                    marker="o" if curve["tested"] else "s", ms=6 if curve["tested"] else 4,
                    lw=2.2 if curve["tested"] else 1.2, ls="-" if curve["tested"] else "--",
                    label=name + (" (tested)" if curve["tested"] else ""), zorder=3)
    for fall in result.report["by_schedule"][schedule]["falls"]:
        curve = curves.get(fall["formula"])
        if curve and curve["tested"] and fall["c"] in curve["budget"]:
            i = curve["budget"].index(fall["c"])
            ax.scatter([curve["c"][i]], [100 * curve["mean"][i]], s=260, facecolors="none",
                       edgecolors="red", linewidths=1.8, zorder=4)
    log_axis(ax, "x")
    ax.set_xticks(result.budgets, labels=[f"{c:g}" for c in result.budgets])
    ax.set_xlabel("c of the network (relative cost, log scale; ticks at the budgets)")
    ax.set_ylabel(f"top-1 (%) on {result.report['score_size']:,} held-out images")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    sched = result.report["schedules"][schedule]
    ax.set_title(f"{sched['images']:,} images ({sched['multiple']:.3g}x the search's), "
                 f"{len(result.seeds)} seeds; bars: lowest to highest seed; red circle: a fall",
                 fontsize=9)
    if fidelity:
        fx = axes[1]
        fx.scatter([100 * p["short"] for p in fidelity], [100 * p["long"] for p in fidelity],
                   color="black", zorder=3)
        for p in fidelity:
            fx.annotate(f"c={p['c']:.2g}", (100 * p["short"], 100 * p["long"]), fontsize=7,
                        xytext=(4, 2), textcoords="offset points")
        fx.set_xlabel("top-1 (%) in the search (short schedule)")
        fx.set_ylabel("top-1 (%) on the validation's schedule")
        tau, rho = result.fidelity.get("kendall_tau"), result.fidelity.get("spearman")
        fx.set_title("fidelity: Kendall tau " + ("-" if tau is None else f"{tau:+.2f}")
                     + ", Spearman " + ("-" if rho is None else f"{rho:+.2f}"), fontsize=9)
        fx.grid(True, alpha=0.3)
    figure.suptitle(f"Validation of {result.report['run']}: {result.report['base']} on "
                    f"{result.report['data']}", fontsize=10)
    return figure


def plot_validation(result, path=None) -> Path:
    """Draw a validation (a :class:`ValidationResult` or its folder) into ``path`` (default:
    ``validation.png`` beside its report); returns the path written."""
    if not isinstance(result, ValidationResult):
        result = load_validation(result)
    path = Path(path) if path is not None else result.path / FIGURE_NAME
    return save_figure(figure_validation(result), path)
