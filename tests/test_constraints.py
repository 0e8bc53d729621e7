"""One way to check inputs: every setting's constraint is declared once and refuses the same
values everywhere.

For every config that declares constraints, every declared field is given each value its
constraint refuses (``Constraint.invalid_values``, as scikit-learn's
``generate_invalid_param_val``): construction raises the one exception type with one line. For
every flag of every command that is parsed by a declared constraint, each refused value is
typed on the command line: exit status 2, one line on stderr, nothing on stdout. Flags with a
fixed set of choices get a value outside it.
"""

from __future__ import annotations

import argparse
import math

import pytest

from tinyformula import TinyFormulaError
from tinyformula.cli import COMMANDS, build_parser
from tinyformula.core.constraints import (
    INVALID,
    Boolean,
    Integer,
    Options,
    OrNone,
    Pair,
    Real,
    check,
)
from tinyformula.cost.latency.measure import Setting
from tinyformula.cost.yardstick import Yardstick
from tinyformula.data.settings import PrepareSettings
from tinyformula.nets.scale import Scale
from tinyformula.sweep.config import SearchConfig
from tinyformula.sweep.validation.config import ValidationConfig
from tinyformula.training.config import RecipeConfig, TrainConfig

CONFIGS = (TrainConfig, RecipeConfig, SearchConfig, Setting, Yardstick, Scale, PrepareSettings,
           ValidationConfig)


def declared():
    for config in CONFIGS:
        for name, constraint in config.constraints.items():
            for value in constraint.invalid_values():
                yield pytest.param(config, name, value,
                                   id=f"{config.__name__}.{name}={value!r}"[:80])


@pytest.mark.parametrize("config, name, value", declared())
def test_every_declared_field_refuses_what_its_constraint_refuses(config, name, value):
    with pytest.raises(TinyFormulaError) as refused:
        config(**{name: value})
    message = str(refused.value)
    named = message.lower().replace("_", "-").replace(" ", "-")
    assert len(message.splitlines()) == 1 and name.replace("_", "-") in named, message


def checked_flags():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command in COMMANDS:
        for action in sub.choices[command]._actions:
            constraint = getattr(action, "constraint", None)
            flag = action.option_strings[0] if action.option_strings else None
            if flag is None:
                continue
            if constraint is not None:
                texts = {str(v) for v in constraint.invalid_values() if v is not None}
                texts |= {"abc", "nan", "1e999"}
                for text in sorted(texts):
                    parsed = constraint.parse(text)
                    if constraint.convert(parsed) is not INVALID:
                        continue  # a valid value once typed ("7" is a fine trial count)
                    yield pytest.param(command, flag, text, id=f"{command} {flag} {text}")
            elif action.choices:
                yield pytest.param(command, flag, "no-such-choice",
                                   id=f"{command} {flag} no-such-choice")


@pytest.mark.parametrize("command, flag, text", checked_flags())
def test_every_checked_flag_refuses_in_one_line(cli, command, flag, text):
    code, out, err = cli(command, flag, text)
    assert code == 2 and out == "", (code, out)
    assert len(err.strip().splitlines()) == 1 and flag in err, err


def test_a_flag_and_its_setting_give_the_same_answer(cli):
    code, _, err = cli("fit", "--epochs", "0")
    with pytest.raises(TinyFormulaError) as refused:
        SearchConfig(epochs=0)
    wanted = SearchConfig.constraints["epochs"].inner  # the flag cannot be None
    for text in (err, str(refused.value)):
        assert f"must be {wanted.describe()}" in text and wanted.why in text, text
    assert code == 2


@pytest.mark.parametrize("constraint, good, bad", [
    (Integer(1, 10), [1, 10, 5.0], [0, 11, 2.5, True, "3", None, math.nan]),
    (Real(0, 1, closed="right"), [1, 0.5, 1e-9], [0, 1.01, math.inf, math.nan, False, "x"]),
    (Options(("a", "b")), ["a"], ["c", 1, None]),
    (Boolean(), [True, False], [1, "yes", None]),
    (OrNone(Integer(1)), [None, 3], [0, "x"]),
    (Pair(Real(0, None, closed="neither")), [(0.1, 0.5), [1, 2]], [(0.5, 0.1), (0, 1), (1,),
                                                                  "ab", None]),
])
def test_constraints_accept_and_refuse(constraint, good, bad):
    for value in good:
        check("x", value, constraint)
    for value in bad:
        with pytest.raises(TinyFormulaError):
            check("x", value, constraint)
