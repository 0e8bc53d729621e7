"""How the figures look: colours, log axes with plain tick labels, and the words every title
and axis shares."""

from __future__ import annotations

from ..formula.quality import describe as describe_quality

COLOURS = {"trial": "#8c8c8c", "frontier": "#1f77b4", "giant": "#d62728", "tiny": "#1f77b4",
           "solver": "#2ca02c"}


def log_axis(axis, which: str = "x", scale: bool = True) -> None:
    """Log scale with plain-number tick labels (0.1, 0.25, 0.5), not powers of ten."""
    if scale:
        getattr(axis, f"set_{which}scale")("log")
    plain_log_ticks(getattr(axis, f"{which}axis"))


def auto_scale(axis, values, which: str = "x") -> bool:
    """Log scale where the values span a factor of 4 or more (multipliers are drawn
    log-uniform), linear otherwise, where a log axis would only add odd tick labels."""
    values = [v for v in values if v > 0]
    wide = bool(values) and max(values) / min(values) >= 4
    if wide:
        log_axis(axis, which)
    return wide


def plain_log_ticks(ticks) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator

    ticks.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    ticks.set_minor_locator(LogLocator(base=10, subs=tuple(range(1, 10))))
    ticks.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ticks.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def describe_run(run) -> str:
    config = run.config
    return (f"{config.base} on {config.data}, {config.train_size:,} images x {config.epochs} "
            f"epoch(s), {config.preset} preset")


def accuracy_label(run) -> str:
    return f"top-1 (%) on {run.config.val_size:,} images held out from the training split"


def verdict(run) -> str:
    """The formula's quality in one line (or why there is none)."""
    if run.formula is None:
        return "no formula fitted" + ("" if run.finished else " yet: the search is unfinished")
    return describe_quality(run.formula.quality_)


def budget_file_name(budget: float) -> str:
    return f"top1_at_c{budget:g}.png"


def wrapped(text: str, width_inches: float, fontsize: float) -> str:
    """``text`` broken into lines that fit ``width_inches`` at ``fontsize`` points (each line of
    it on its own): constrained layout makes room for a tall title, not for a wide one, which
    it would clip at the figure's edges."""
    import textwrap

    chars = max(20, int(width_inches * 72 / (0.56 * fontsize)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))
