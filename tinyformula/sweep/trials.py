"""Typed trials, after Optuna's ``FrozenTrial``: what the store keeps, and a DataFrame of them
built on demand.

* :class:`Trial`: one planned or finished training of one candidate with one seed, at one
  rung of the schedule (rung 0 only, unless the search uses successive halving); its state is
  a :class:`~tinyformula.execution.jobs.TrialState`.
* :class:`PlannedTrial`: what the planner asks the store for.

What goes to an executor and comes back (``TrialJob``, ``TrialResult``) is
:mod:`tinyformula.execution.jobs`'.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import NamedTuple

from ..core.constraints import Integer, Options, OrNone, Real
from ..core.schema import Number, Record, Text
from ..cost.yardstick import Configuration
from ..execution.jobs import TrialResult, TrialState
from ..nets.scale import MULTIPLIERS, Scale


@dataclass(frozen=True)
class Trial:
    """One trial: candidate ``candidate`` of the plan (its configuration) trained with ``seed``
    at rung ``rung`` on ``images`` training images (training-set size x epochs).

    ``id`` is the execution order. Results are None until the trial finishes; ``top1`` and
    ``loss`` are None unless it finished ok.
    """

    id: int
    candidate: int
    seed: int
    config: Configuration
    state: TrialState = TrialState.PENDING
    top1: float | None = None
    loss: float | None = None
    seconds: float | None = None
    images_per_s: float | None = None
    message: str | None = None
    finished_at: float | None = None
    rung: int = 0
    images: int | None = None

    @property
    def scale(self) -> Scale:
        return self.config.scale

    def finish(self, result: TrialResult, finished_at: float) -> "Trial":
        return replace(self, state=result.state, top1=result.top1, loss=result.loss,
                       seconds=result.seconds, images_per_s=result.images_per_s,
                       message=result.message, finished_at=finished_at)

    def to_row(self) -> dict:
        """Flat, with the columns of ``trials.csv`` (``COLUMNS``)."""
        row = {"id": self.id, "candidate": self.candidate, "seed": self.seed,
               "rung": self.rung, "images": self.images,
               **self.config.to_dict(), "status": self.state.value}
        row.update({name: getattr(self, name) for name in RESULT_COLUMNS})
        return row

    @classmethod
    def from_row(cls, row: dict) -> "Trial":
        config = Configuration(**{name: row[name] for name in CONFIG_COLUMNS})
        return cls(id=row["id"], candidate=row["candidate"], seed=row["seed"], config=config,
                   state=TrialState(row["status"]), rung=row["rung"], images=row["images"],
                   **{name: row[name] for name in RESULT_COLUMNS})


CONFIG_COLUMNS = tuple(f.name for f in fields(Configuration))
RESULT_COLUMNS = ("top1", "loss", "seconds", "images_per_s", "message", "finished_at")
COLUMNS = ("id", "candidate", "seed", "rung", "images", *CONFIG_COLUMNS, "status",
           *RESULT_COLUMNS)


class PlannedTrial(NamedTuple):
    """A trial as the planner asks for it: candidate, seed and configuration, the rung and
    the training images (None: the search's full budget, ``train_size x epochs``)."""

    candidate: int
    seed: int
    config: Configuration
    rung: int = 0
    images: int | None = None


def trials_dataframe(trials: list[Trial]):
    """A pandas DataFrame, one row per trial, with the columns of ``trials.csv``."""
    import pandas as pd

    return pd.DataFrame([t.to_row() for t in trials], columns=list(COLUMNS))


_COUNT = Integer(0, 2**63 - 1)
TRIAL_ROW = Record({
    "id": _COUNT, "candidate": _COUNT, "seed": _COUNT, "rung": Integer(0, 1000),
    "images": OrNone(_COUNT, "the search's full budget"),
    **MULTIPLIERS, "c": Real(0, 1e6, closed="right"), "resolution": Integer(1, 1 << 20),
    "flops": _COUNT, "params": _COUNT, "status": Options(tuple(s.value for s in TrialState)),
    "top1": OrNone(Real(0, 1), "no score"), "loss": OrNone(Number(), "no score"),
    "seconds": OrNone(Real(0, 1e10), "not finished"),
    "images_per_s": OrNone(Real(0, 1e12), "not finished"),
    "message": OrNone(Text(max_length=100_000), "no message"),
    "finished_at": OrNone(Real(0, 1e11), "not finished")})
"""One row of the ``trials`` table (and of ``trials.csv``), every value in its range."""
