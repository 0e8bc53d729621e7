"""What every command's parser shares: one-line usage errors, flags checked by the declared
constraints of the settings they fill, and the arguments several commands take."""

from __future__ import annotations

import argparse
import re

from ..core.constraints import Constraint, Integer, parser_for
from ..nets.scale import MULTIPLIERS

EXIT_BAD_INPUT = 2
NEGATIVE_VALUE = re.compile(r"^-\.?\d")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus where to read more), exit status 2, and
    no prefix matching: ``--sched`` must not silently become ``--scheduler``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def _parse_optional(self, arg_string):
        # "-5M" or "-.5" is a (bad) value, not an option: let the flag's check refuse it in
        # its own words instead of argparse's "expected one argument".
        if NEGATIVE_VALUE.match(arg_string):
            return None
        return super()._parse_optional(arg_string)


def checked(parser: argparse.ArgumentParser, flag: str, constraint: Constraint, **options):
    """``parser.add_argument(flag, ...)`` whose value is parsed and checked by ``constraint``
    (the same declaration as the setting it fills), so a bad value gets the same line from the
    command as from the Python API. The action remembers its constraint (tests feed each
    flag every value its constraint refuses)."""
    action = parser.add_argument(flag, type=parser_for(constraint, flag), **options)
    action.constraint = constraint  # type: ignore[attr-defined]
    return action




def number(text: str) -> float:
    """A finite number (its range is checked where it is used)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number") from None
    return value


def add_scale_arguments(p, default: float | None = 1.0) -> None:
    """--base, --r, --d, --w; with ``default=None`` an option left out stays None, so a
    command can tell explicit multipliers from a budget (a missing one then means 1)."""
    p.add_argument("--base", default="efficientnet_b0" if default else None,
                   help="base network: a name or a spec file (.toml/.json) (default: "
                        "efficientnet_b0, or the formula's)")
    for name, what in (("r", "resolution"), ("d", "depth"), ("w", "width")):
        checked(p, f"--{name}", MULTIPLIERS[name], default=default,
                help=f"{what} multiplier in (0, 16] (default 1)")


def add_model_choice(p, resolution_default: str) -> None:
    """The model as explicit --r/--d/--w (above), or a budget and a formula."""
    from ..cost.budgets import BUDGET_HELP

    p.add_argument("--budget", "--flops", dest="budget", metavar="BUDGET",
                   help="build what the formula recommends for this budget: " + BUDGET_HELP)
    p.add_argument("--formula", metavar="PATH",
                   help="with --budget: a fitted formula.json, zoo:BASE/DATASET for a formula "
                        "of the zoo, or 'giant' for EfficientNet's inverted compound formula "
                        "(default: the base's built-in formula)")
    checked(p, "--resolution-base", Integer(1, 4096), default=None, metavar="N",
            help=f"input size at r = 1 (default: {resolution_default}); budgets are counted "
                 f"at it")
