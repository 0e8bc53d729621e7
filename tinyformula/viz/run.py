"""Drawing a run folder's figures into PNGs: :func:`plot_run` (``tinyformula plot``)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..core.errors import TinyFormulaError
from ..core.figures import save_figure
from ..core.files import PNG, check_replaceable
from ..core.paths import check_output_path
from ..cost.latency.model import no_timing
from .budget import figure_budget
from .data import DEFAULT_BUDGET, WINDOW, missing_formula_note, plottable_run, trials_near
from .formula import figure_formula
from .frontier import figure_frontier
from .latency import figure_flops_vs_latency
from .rungs import figure_rungs
from .style import budget_file_name


def plot_run(path, budget: float | None = None, window: float = WINDOW, out=None,
             log=None) -> list[Path]:
    """Write the figures of a run into ``out`` (default ``RUN_DIR/plots``) and return their
    paths: the trials against c, the formula (when there is one), the trials near one budget
    (``budget``, default 0.5), and ``flops_vs_latency.png`` for a latency search,
    ``rungs.png`` for a halving one. Every input is checked and every figure drawn before a
    file is written.

    A run draws what it has: without a formula (unfinished, or its fit refused) it gets the
    figures of its trials; with no trial near the default budget yet (a run killed early),
    the budget figure is left out. ``log`` (default: print to stderr) is told what was left
    out and why. A ``budget`` given explicitly with no trial near it is refused.
    """
    log = log or (lambda message: print(f"tinyformula: note: {message}", file=sys.stderr))
    run = plottable_run(path)
    explicit = budget is not None
    budget = DEFAULT_BUDGET if budget is None else budget
    try:
        trials_near(run, budget, window)  # fail before drawing anything
        near = True
    except TinyFormulaError as error:
        if explicit or "no trial of" not in str(error):
            raise
        log(f"{error}; {budget_file_name(budget)} is not drawn")
        near = False
    out = Path(out) if out is not None else run.path / "plots"
    if out.exists() and not out.is_dir():
        raise TinyFormulaError(f"{out} is a file; plots need a folder there")
    try:
        check_output_path("the plots folder", out)
    except TinyFormulaError as error:
        raise TinyFormulaError(f"{error} (give --out DIR for the figures)") from None
    # A plot only reads: nothing is timed, even for a latency run (its search timed what it
    # needed; blocks the table lacks are estimated from it).
    with no_timing():
        machine_cost = _machine_cost_known(run, log)
        figures = {"top1_vs_flops.png": figure_frontier(run)}
        if run.formula is not None:
            figures["formula_vs_c.png"] = figure_formula(run)
        else:
            log(missing_formula_note(run))
        if near:
            figures[budget_file_name(budget)] = figure_budget(run, budget, window)
        if machine_cost:
            figures["flops_vs_latency.png"] = figure_flops_vs_latency(run)
        if run.config.schedule == "halving" and run.fidelity.get("transitions"):
            figures["rungs.png"] = figure_rungs(run)
    for name in figures:  # a foreign file at any destination: refused before any is written
        if out.is_dir():
            check_replaceable(out / name, PNG)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TinyFormulaError(f"cannot create {out}: {error.strerror}; give --out DIR for the "
                               f"figures") from None
    return [save_figure(figure, out / name) for name, figure in figures.items()]


def _machine_cost_known(run, note) -> bool:
    """For a run whose cost belongs to a machine (latency): whether this machine's table can
    say what c = 1 is without timing anything (it can on the machine that ran the search).
    When it cannot, ``note`` says what is left out. False for other costs."""
    if not run.yardstick.meter.machine_bound:
        return False
    try:
        run.yardstick.reference
    except TinyFormulaError as error:
        note(f"{run.path}: {error}; flops_vs_latency.png and the figures' axes in ms are left "
             f"out (run the plot on the machine that ran the search)")
        return False
    return True
