"""A validation's settings, declared once, its presets, and what they resolve to against a run:
the schedules (:class:`Schedule`), the seeds and the budgets.

The schedule is longer than the search's: by default the preset's multiple of the search's
training images (4x for ``default``: every one of Fashion-MNIST's 60,000 training images is
seen at least once, and a trial costs about what four search trials do), as many distinct
images as the dataset has, in as many passes as that takes. ``--images`` and ``--epochs``
choose another; ``--schedules`` several (multiples of the search's images), the longest
deciding the verdicts. Seeds are ones the search never used (it trains with its seed and the
next one): by default the first free ones from :data:`FIRST_SEED`, the same for every run
validated, so that validations of several runs share their baselines' trainings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import ClassVar

from ...core.constraints import (
    COUNT,
    SEED,
    Boolean,
    Integer,
    Items,
    Options,
    OrNone,
    Real,
    check_fields,
)
from ...core.devices import DEVICE
from ...core.errors import TinyFormulaError
from ...cost.budgets import SUMMARY_BUDGETS
from ...formula.baselines import BASELINES
from ..config import EXECUTORS

FIRST_SEED = 100
SEARCHED = "searched"
ALL_BASELINES = (*BASELINES, SEARCHED)
NO_BASELINES = "none"   # --baselines none: the tested formulas only, against each other


@dataclass(frozen=True)
class ValidationPreset:
    """A validation size: the schedule (a multiple of the search's training images), how many
    seeds, how many frontier points are retrained to measure the search's fidelity, and how
    many held-out images each training is scored on (None: all)."""

    multiple: float
    seeds: int
    fidelity: int
    score_size: int | None
    note: str


VALIDATION_PRESETS = {
    "smoke": ValidationPreset(
        multiple=2.0, seeds=2, fidelity=4, score_size=2000,
        note="checks the validation end to end; about 2 minutes for a smoke run on an idle "
             "2-core CPU"),
    "default": ValidationPreset(
        multiple=4.0, seeds=3, fidelity=6, score_size=None,
        note="scored on the whole held-out split; for a default-preset run about 45 minutes "
             "on an idle 2-core CPU"),
}

BUDGET_VALUE = Real(0, None, closed="neither", why="a relative cost c")
MULTIPLE = Real(1, 1000, why="a schedule at least as long as the search's, in multiples of "
                             "its training images")


@dataclass(frozen=True)
class Schedule:
    """A training schedule: ``train_size`` distinct images, ``epochs`` passes over them."""

    train_size: int
    epochs: int

    @property
    def images(self) -> int:
        return self.train_size * self.epochs

    def describe(self, search_images: int) -> str:
        return (f"{self.images:,} images ({self.images / search_images:.3g}x the search's "
                f"{search_images:,}: {self.train_size:,} x {self.epochs} epoch(s))")

    def to_dict(self, search_images: int) -> dict:
        return {"images": self.images, "train_size": self.train_size, "epochs": self.epochs,
                "multiple": self.images / search_images}


@dataclass(frozen=True)
class ValidationConfig:
    """What to validate and how; None keeps the preset's (or the run's) choice.

    ``budgets``: relative costs c, inside the search's c range (default: 0.06, 0.13, 0.25,
    0.5, those inside it). ``images`` / ``epochs``: the schedule (see the module's docstring);
    ``schedules``: several, as multiples of the search's images. ``seeds``: seeds the
    search never used. ``baselines``: which of giant, published, fast and searched to train
    (default: all), or ``none``: only the tested formulas, compared with each other (to add
    formulas to a comparison whose baselines were trained before). ``fidelity``: frontier
    points retrained (0: none). ``score_size``: held-out images each training is scored on.
    ``out``: where the validation's files go (None: the run folder). The rest say where
    trainings run, as for a search.
    """

    preset: str = "default"
    budgets: tuple[float, ...] | None = None
    images: int | None = None
    epochs: int | None = None
    schedules: tuple[float, ...] | None = None
    seeds: tuple[int, ...] | None = None
    baselines: tuple[str, ...] | None = None
    fidelity: int | None = None
    score_size: int | None = None
    out: str | None = None
    executor: str = "local"
    workers: int | None = None
    scheduler: str | None = None
    device: str = "auto"
    cuda_graph: bool = True
    trials_per_gpu: int | None = None

    constraints: ClassVar[dict] = {
        "preset": Options(tuple(VALIDATION_PRESETS)),
        "budgets": OrNone(Items(BUDGET_VALUE, most=100), "the summary budgets"),
        "images": OrNone(COUNT, "the preset's multiple of the search's images"),
        "epochs": OrNone(Integer(1, 10_000, why="a schedule longer than that would not finish"),
                         "as many passes as the images need"),
        "schedules": OrNone(Items(MULTIPLE, most=10), "one schedule"),
        "seeds": OrNone(Items(SEED, most=100), "the preset's count of unused seeds"),
        "baselines": OrNone(Items(Options((*ALL_BASELINES, NO_BASELINES))), "every baseline"),
        "fidelity": OrNone(Integer(0, 1000), "the preset's"),
        "score_size": OrNone(COUNT, "the preset's"),
        "executor": Options(EXECUTORS),
        "workers": OrNone(Integer(1, 4096, why="one process per training in flight"),
                          "one per core"),
        "device": DEVICE,
        "cuda_graph": Boolean(),
        "trials_per_gpu": OrNone(Integer(1, 4096), "as many as fit"),
    }

    def __post_init__(self):
        check_fields(self, label="{flag}")
        if self.schedules is not None and (self.images is not None or self.epochs is not None):
            raise TinyFormulaError("--schedules gives the schedules as multiples of the "
                                   "search's images; leave out --images and --epochs with it")
        if self.baselines is not None and NO_BASELINES in self.baselines \
                and len(self.baselines) > 1:
            raise TinyFormulaError("--baselines none trains no baseline; name no other with it")

    @classmethod
    def from_options(cls, **options) -> "ValidationConfig":
        """A config from keyword options, None meaning the default; a single number is taken
        for a one-item ``budgets``, ``seeds`` or ``schedules``. Unknown names are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TinyFormulaError(f"unknown validation setting(s): {', '.join(unknown)}")
        for name in ("budgets", "seeds", "schedules", "baselines"):
            if isinstance(options.get(name), (int, float, str)) \
                    and not isinstance(options[name], bool):
                options[name] = (options[name],)
        return cls(**{k: v for k, v in options.items() if v is not None})

    @property
    def wanted_baselines(self) -> tuple[str, ...]:
        """The baselines asked for: every one by default, none for ``none``."""
        if self.baselines is None:
            return ALL_BASELINES
        return () if self.baselines == (NO_BASELINES,) else self.baselines

    @property
    def preset_values(self) -> ValidationPreset:
        return VALIDATION_PRESETS[self.preset]

    def to_dict(self) -> dict:
        return asdict(self)

    # -- resolved against a run ----------------------------------------------------------------

    def resolve_schedules(self, search_images: int, available: int) -> tuple[Schedule, ...]:
        """The schedules, shortest first (the last decides the verdicts); refuses one shorter
        than the search's or asking for more distinct images than ``available``."""
        wanted: list[tuple[int | None, int | None]]
        if self.schedules is not None:
            wanted = [(round(m * search_images), None) for m in sorted(self.schedules)]
        elif self.images is not None or self.epochs is not None:
            wanted = [(self.images, self.epochs)]
        else:
            wanted = [(round(self.preset_values.multiple * search_images), None)]
        schedules = []
        for images, epochs in wanted:
            schedule = schedule_for(images, epochs, available)
            if schedule.images < search_images:
                raise TinyFormulaError(
                    f"a validation trains longer than the search: {schedule.images:,} images is "
                    f"below the search's {search_images:,}; give at least that many (--images) "
                    f"or leave the preset's {self.preset_values.multiple:g}x")
            schedules.append(schedule)
        if len({s.images for s in schedules}) != len(schedules):
            raise TinyFormulaError("--schedules gives two schedules of the same length")
        return tuple(sorted(schedules, key=lambda s: s.images))

    def resolve_seeds(self, used: set[int], search_seed: int) -> tuple[int, ...]:
        """The seeds to train with: those given, none of which the search used, or the
        preset's count of free seeds from :data:`FIRST_SEED`."""
        if self.seeds is not None:
            clash = sorted(set(self.seeds) & used)
            if clash:
                raise TinyFormulaError(
                    f"seed {clash[0]} was used by the search (it trains with seed {search_seed} "
                    f"and {search_seed} + 1 for its replicates); a validation needs seeds the "
                    f"search never saw, e.g. --seeds "
                    f"{' '.join(map(str, free_seeds(len(self.seeds), used)))}")
            return tuple(self.seeds)
        return free_seeds(self.preset_values.seeds, used)

    def resolve_budgets(self, c_range: tuple[float, float]) -> tuple[float, ...]:
        """The budgets, each inside the search's c range (where its trials were)."""
        lo, hi = c_range
        if self.budgets is None:
            inside = tuple(c for c in SUMMARY_BUDGETS if lo <= c <= hi)
            if not inside:
                raise TinyFormulaError(
                    f"none of the default budgets ({' '.join(f'{c:g}' for c in SUMMARY_BUDGETS)}"
                    f") lies in the search's c range {lo:g}..{hi:g}; give --budgets inside it")
            return inside
        outside = [c for c in self.budgets if not lo <= c <= hi]
        if outside:
            raise TinyFormulaError(
                f"budget c={outside[0]:g} is outside the search's c range {lo:g}..{hi:g}: its "
                f"trials say nothing there; give --budgets between {lo:g} and {hi:g}")
        return tuple(sorted(self.budgets))


def schedule_for(images: int | None, epochs: int | None, available: int) -> Schedule:
    """A schedule of ``images`` training images in ``epochs`` passes, over at most
    ``available`` distinct images: with images alone, as many distinct images as there are,
    in as few passes as that allows (never fewer images than asked); with epochs alone, that
    many passes over every image."""
    if images is None:
        return Schedule(available, epochs or 1)
    if epochs is None:
        epochs = -(-images // available)
    train_size = -(-images // epochs)
    if train_size > available:
        raise TinyFormulaError(
            f"{images:,} images in {epochs} epoch(s) needs {train_size:,} distinct training "
            f"images, and the dataset has {available:,}; give more --epochs or fewer --images")
    return Schedule(train_size, epochs)


def free_seeds(count: int, used: set[int]) -> tuple[int, ...]:
    """The first ``count`` seeds from :data:`FIRST_SEED` that are not in ``used``."""
    seeds: list[int] = []
    seed = FIRST_SEED
    while len(seeds) < count:
        if seed not in used:
            seeds.append(seed)
        seed += 1
    return tuple(seeds)
