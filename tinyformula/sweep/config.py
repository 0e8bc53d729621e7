"""A search's settings, declared once: every default lives here and nowhere else.

The CLI builds a :class:`SearchConfig` from its arguments, ``search()`` from its keywords, and
the store keeps it (``to_dict``) and gives it back (``from_dict``). ``identity()`` is the part
that makes two searches the same search: a run folder holds one identity, and continuing it
with other values there is refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import ClassVar

from ..core.constraints import (
    COUNT,
    Boolean,
    Integer,
    Options,
    OrNone,
    Real,
    check_fields,
)
from ..core.devices import DEVICE, check_visible
from ..core.errors import TinyFormulaError
from ..cost.meters import get_meter
from ..cost.yardstick import COST_NAMES, Yardstick
from ..data.holdout import holdout_size as _holdout_size
from ..execution.cluster import check_scheduler
from ..formula.fits import FITS
from ..nets.bases import base_name, base_record
from .halving import (
    HALVING_RULES,
    SCHEDULES,
    Rungs,
    check_halving,
    equal_compute_candidates,
    rung_members,
    rung_replicates,
    rung_train_sizes,
)
from .presets import PRESETS
from .space import C_RANGE, PLANNER, SAMPLERS

EXECUTORS = ("local", "dask")


def holdout_size(train_images: int, preset: str = "default") -> int:
    """Training images to hold out for scoring by default: the preset's hold-out, at most a
    fifth of ``train_images`` (see :mod:`tinyformula.data.holdout`)."""
    return _holdout_size(train_images, PRESETS[preset].val_size)


@dataclass(frozen=True)
class SearchConfig:
    """Everything that defines a search and how it runs.

    Identity (a run folder must match): ``base, data, seed, sampler, c_range, train_size,
    epochs, batch_size, val_size``, the planner's version, the cost c is measured in (when not
    FLOPs), the schedule (when halving, with ``eta``, ``min_images``, ``min_rung`` and the
    version of its rules, ``halving_rules``; see :mod:`tinyformula.sweep.halving`).
    ``val_size`` (the training images held out to score candidates on) defaults to the
    preset's, at most a fifth of the dataset's training images; ``train_size`` defaults to the
    preset's, at most what the hold-out leaves. ``monotone`` and ``fit`` only change how the
    formula is fitted on the stored trials (a finished search refits with another ``fit`` and
    trains nothing). The trial count may grow to extend a search, and so may a second stage
    (``second_stage``: candidates sampled around the formula's band,
    :mod:`tinyformula.sweep.stages`); where and how trials run (``out``, ``executor``,
    ``workers``, ``scheduler``, ``device``, ``cuda_graph``, ``trials_per_gpu``, ``data_dir``)
    never changes which search it is.
    """

    base: str = "efficientnet_b0"
    data: str = "fashion-mnist"
    data_dir: str | None = None
    preset: str = "default"
    trials: int | None = None        # None: the preset's
    train_size: int | None = None    # None: the preset's, at most what the hold-out leaves
    epochs: int | None = None        # None: the preset's
    val_size: int | None = None      # None: the preset's, at most a fifth of the data
    c_range: tuple[float, float] = (0.03, 1.0)
    sampler: str = "budgeted"
    seed: int = 0
    batch_size: int = 128
    planner: int = PLANNER           # 1: plans of versions up to 0.1 (may repeat a network)
    cost: str = "flops"              # what c is relative to: flops, params, activations, latency
    latency_device: str = "cpu"      # where latency is measured, for cost="latency"
    latency_threads: int = 1
    schedule: str | None = None      # None: the preset's; "full" or "halving"
    eta: float = 3.0                 # halving: each rung keeps 1/eta, trains eta x longer
    min_images: int | None = None    # halving: smallest rung's images; None: full / eta**2
    min_rung: int = 6                # halving: no rung is cut below this many candidates
    halving_rules: int = HALVING_RULES  # 1: halving as in 0.2 (see sweep/halving.py)
    second_stage: int | None = None  # candidates sampled around the formula's band; None: preset's
    monotone: bool | None = None     # monotone GPs; None: TinyFormula's default (fit only)
    fit: str | None = None           # how the formula is fitted on the trials; None: the default
    device: str = "auto"
    cuda_graph: bool = True          # capture the training step in a CUDA graph on GPUs
    trials_per_gpu: int | None = None  # None: as many as memory allows (measured)
    out: str = "runs/search"
    executor: str = "local"
    workers: int | None = None       # None: one per core (local) or per core (Dask cluster)
    scheduler: str | None = None     # a running Dask scheduler's address

    constraints: ClassVar[dict] = {
        "preset": Options(tuple(PRESETS)),
        "trials": OrNone(Integer(1, 100_000, why="a search of more trials would run for years"),
                         "the preset's"),
        "train_size": OrNone(COUNT, "the preset's"),
        "epochs": OrNone(Integer(1, 1000, why="trials train on a short schedule"),
                         "the preset's"),
        "val_size": OrNone(COUNT, "the preset's"),
        "c_range": C_RANGE,
        "sampler": Options(SAMPLERS),
        "seed": Integer(0, 2**63 - 2, why="replicates train with seed + 1, and seeds are stored "
                                          "as 64-bit SQLite integers"),
        "batch_size": Integer(1, 65_536, why="larger batches do not fit in memory"),
        "planner": Integer(1, PLANNER),
        "cost": Options(COST_NAMES),
        "latency_device": Options(("cpu", "cuda")),
        "latency_threads": Integer(1, 1024),
        "schedule": OrNone(Options(SCHEDULES), "the preset's"),
        "eta": Real(2, 1000, why="each rung keeps 1/eta of the candidates and trains eta x "
                                 "longer"),
        "min_images": OrNone(COUNT, "the full budget / eta^2"),
        "min_rung": Integer(1, 100_000),
        "halving_rules": Integer(1, HALVING_RULES),
        "second_stage": OrNone(Integer(0, 100_000, why="a second stage trains each of its "
                                                       "candidates on the full budget"),
                               "the preset's"),
        "monotone": OrNone(Boolean(), "the formula's default"),
        "fit": OrNone(Options(FITS), "the default fit"),
        "device": DEVICE,
        "cuda_graph": Boolean(),
        "trials_per_gpu": OrNone(Integer(1, 4096), "as many as fit"),
        "executor": Options(EXECUTORS),
        "workers": OrNone(Integer(1, 4096, why="one process per trial in flight"),
                          "one per core"),
    }

    def __post_init__(self):
        check_fields(self, label="{flag}")

    # Settings that apply only under another one: given (or away from their default) without
    # it, they would be silently ignored, so they are refused.
    ONLY_WITH: ClassVar[dict] = {
        "latency_device": "--cost latency (a cost measured on a machine)",
        "latency_threads": "--cost latency (a cost measured on a machine)",
        "eta": "--schedule halving", "min_images": "--schedule halving",
        "min_rung": "--schedule halving",
        "trials_per_gpu": "a GPU (--device auto, cuda or cuda:N)",
        "cuda_graph": "a GPU (--device auto, cuda or cuda:N)",
        "workers": "workers of this search's own (not with --scheduler, whose cluster has its "
                   "workers)",
    }

    def check_applies(self, given: frozenset | set = frozenset()) -> None:
        """Refuse a setting that does not apply to this search (see :attr:`ONLY_WITH`): set
        away from its default, or named in ``given`` (the settings a user passed)."""
        defaults = {f.name: f.default for f in fields(self)}
        schedule = self.schedule or PRESETS[self.preset].schedule \
            if self.preset in PRESETS else self.schedule
        applies = {
            "latency_device": get_meter(self.cost).machine_bound,
            "latency_threads": get_meter(self.cost).machine_bound,
            "eta": schedule == "halving", "min_images": schedule == "halving",
            "min_rung": schedule == "halving",
            "trials_per_gpu": self.device != "cpu", "cuda_graph": self.device != "cpu",
            "workers": self.scheduler is None,
        }
        for name, needs in self.ONLY_WITH.items():
            if not applies[name] and (name in given or getattr(self, name) != defaults[name]):
                flag = "--no-cuda-graph" if name == "cuda_graph" else \
                    "--" + name.replace("_", "-")
                raise TinyFormulaError(f"{flag} applies only with {needs}; drop it (it would "
                                       f"be ignored)")

    @classmethod
    def from_options(cls, **options) -> "SearchConfig":
        """A config from keyword options, where None means "the default" (as the CLI passes
        unset flags). Unknown names are refused, and so are settings that do not apply."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TinyFormulaError(f"unknown search setting(s): {', '.join(unknown)}")
        config = cls(**{k: v for k, v in options.items() if v is not None})
        config.check_applies({k for k, v in options.items() if v is not None})
        return config

    def resolved(self, train_images: int | None = None) -> "SearchConfig":
        """Sizes filled in from the preset and checked together (each value was checked on
        construction; a CUDA device against the GPUs torch sees: this imports torch only
        then); with ``train_images`` (the dataset's training images), the held-out and
        training sizes fitted to it, and a request for more images than exist refused.
        Touches no file and no network."""
        preset = PRESETS[self.preset]
        val_size, train_size = self.val_size, self.train_size
        if train_images is not None:
            if val_size is None:
                val_size = holdout_size(train_images, self.preset)
            if train_size is None:
                train_size = min(preset.train_size, train_images - val_size)
            if val_size + max(train_size, 1) > train_images:
                raise TinyFormulaError(
                    f"{self.data} has {train_images:,} training images: --val-size {val_size:,} "
                    f"and --train-size {train_size:,} ask for {val_size + train_size:,}; "
                    f"lower them (the hold-out defaults to a fifth of the images at most)")
        config = replace(
            self,
            trials=preset.trials if self.trials is None else self.trials,
            second_stage=preset.second_stage if self.second_stage is None else self.second_stage,
            train_size=preset.train_size if train_size is None else train_size,
            val_size=preset.val_size if val_size is None else val_size,
            epochs=preset.epochs if self.epochs is None else self.epochs,
            schedule=preset.schedule if self.schedule is None else self.schedule,
            data_dir=str(self.data_dir) if self.data_dir else None,
            out=str(self.out))
        if config.schedule == "halving":
            eta, min_images = check_halving(config.train_size, config.epochs, config.eta,
                                            config.min_images, config.min_rung)
            config = replace(config, eta=eta, min_images=min_images)
            if self.trials is None and config.halving_rules >= 2:
                # Halving at equal compute: as many candidates as keep the training images
                # equal to the full schedule's (eta x the preset's trials with three rungs).
                config = replace(config, trials=equal_compute_candidates(
                    preset.trials, config.rung_train_sizes, config.eta, config.min_rung))
        config.check_applies()
        check_visible(config.device)
        if config.scheduler is not None:
            if config.executor != "dask":
                raise TinyFormulaError("--scheduler needs --executor dask")
            check_scheduler(config.scheduler)
        # A spec file's path becomes the name it registers (the folder records the spec).
        return replace(config, base=base_name(config.base))

    def continuing(self, stored: "SearchConfig | None",
                   given: "SearchConfig") -> "SearchConfig":
        """This (resolved) config, continuing the ``stored`` search of a run folder: settings
        the user left unset (``given``'s None) whose defaults changed since that search was
        written take the stored values (its planner version and halving rules, its hold-out,
        its trial count, schedule and second stage: a preset's defaults may change between
        versions), so the same command continues it. Anything set explicitly stays, and is
        checked against the folder's identity as usual."""
        if stored is None:
            return self
        changes: dict = {}
        for name in ("planner", "halving_rules"):
            if getattr(stored, name) != getattr(self, name):
                changes[name] = getattr(stored, name)
        for name in ("val_size", "train_size", "trials", "schedule", "second_stage"):
            if getattr(given, name) is None and getattr(stored, name) is not None:
                changes[name] = getattr(stored, name)
        if changes.get("schedule") == "halving" and given.min_images is None:
            changes["min_images"] = stored.min_images   # halving's sizes as they were planned
        return replace(self, **changes)

    @property
    def replicates(self) -> int:
        """Candidates trained again with the next seed, to measure seed-to-seed noise."""
        return min(PRESETS[self.preset].replicates, self.trials or 0)

    def yardstick(self, num_classes: int, resolution_base: int) -> Yardstick:
        """How this search measures c, for a dataset of ``num_classes`` and base size."""
        return Yardstick(self.base, num_classes, resolution_base, self.cost,
                         device=self.latency_device, threads=self.latency_threads)

    @property
    def rung_train_sizes(self) -> tuple[int, ...]:
        """Training images per epoch at each rung, smallest first; one rung for the full
        schedule, whose budget is ``train_size x epochs`` for every candidate."""
        if self.schedule != "halving":
            return (self.train_size,)
        return rung_train_sizes(self.train_size, self.epochs, self.eta, self.min_images)

    @property
    def top_rung(self) -> int:
        """The rung the frontier and the formula come from (0 for the full schedule)."""
        return len(self.rung_train_sizes) - 1

    def rungs(self, num_classes: int | None = None) -> Rungs:
        """The schedule as the typed plan successive halving (and the fidelity report) take;
        with the task's ``num_classes``, a rung whose scores are at chance promotes by c alone
        (see :mod:`tinyformula.sweep.halving`)."""
        return Rungs(train_sizes=self.rung_train_sizes, epochs=self.epochs, eta=self.eta,
                     min_rung=self.min_rung, seed=self.seed, trials=self.trials,
                     replicates=self.replicates, halving=self.schedule == "halving",
                     num_classes=num_classes, val_size=self.val_size,
                     rules=self.halving_rules)

    def identity(self) -> dict:
        """What makes two searches the same search (the trial count may grow). The planner's
        version, the cost c is measured in and the schedule are part of it; searches from
        before each was a choice have none stored: planner 1, FLOPs, full schedule."""
        identity = {"base": self.base, "data": self.data, "seed": self.seed,
                    "sampler": self.sampler, "c_range": list(self.c_range),
                    "train_size": self.train_size, "epochs": self.epochs,
                    "batch_size": self.batch_size, "val_size": self.val_size}
        record = base_record(self.base)
        if record is not None:   # a spec base: the same name must mean the same network
            identity["base_spec"] = record["checksum"]
        if self.planner != 1:
            identity["planner"] = self.planner
        if self.cost != "flops":  # the default cost: not stored, as before costs were a choice
            identity["cost"] = self.cost
        if get_meter(self.cost).machine_bound:
            identity.update(latency_device=self.latency_device,
                            latency_threads=self.latency_threads)
        if self.schedule == "halving":
            identity.update(schedule=self.schedule, eta=self.eta, min_images=self.min_images,
                            min_rung=self.min_rung)
            if self.halving_rules != 1:  # halving as in 0.2 stores none
                identity["halving_rules"] = self.halving_rules
        return identity

    def to_dict(self) -> dict:
        return {**asdict(self), "c_range": list(self.c_range)}

    @classmethod
    def from_dict(cls, data: dict) -> "SearchConfig":
        """Read back a stored config; keys this version does not know are ignored (a run
        folder's settings also hold the yardstick's and the replicate count). Settings
        stored before a key existed take the value those versions used."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "c_range" in values:
            values["c_range"] = tuple(values["c_range"])
        values.setdefault("planner", 1)  # stored before plans skipped repeated networks
        values.setdefault("halving_rules", 1)  # stored before the rules had a version
        values.setdefault("second_stage", 0)   # stored before second stages existed
        if values.get("schedule") is None:
            values["schedule"] = "full"        # stored before halving existed
        if values.get("val_size") is None and values.get("preset") in PRESETS:
            # Stored before val_size was a setting: it was the preset's.
            values["val_size"] = PRESETS[values["preset"]].val_size
        return cls(**values)


def describe_preset(name: str) -> str:
    """What a preset's search trains when no flag changes it, in one line (for ``fit
    --help``): its candidates, the re-trained replicates and the images each trains on; for
    a halving preset, each rung's and the total, beside the full schedule it matches."""
    config = SearchConfig(preset=name, device="cpu").resolved()
    sizes = config.rung_train_sizes
    if config.schedule != "halving":
        around = (f" + {config.second_stage} around the formula's band"
                  if config.second_stage else "")
        total = config.trials + config.replicates + config.second_stage
        return (f"{config.trials} candidates + {config.replicates} re-trained with another seed"
                f"{around} = {total} trials x {sizes[0]:,} images")
    rungs = config.rungs()
    members = rung_members(config.trials, len(sizes), config.eta, config.min_rung)
    repeats = [rung_replicates(rungs, n, k) for k, n in enumerate(members)]
    second = config.second_stage
    images = sum((n + r) * size for n, r, size in zip(members, repeats, sizes)) \
        + second * sizes[-1]
    full = SearchConfig(preset=name, device="cpu", schedule="full").resolved()
    stage = (f", then {second} candidates around the formula's band on {sizes[-1]:,} images"
             if second else "")
    return (f"halving at equal compute: {' + '.join(map(str, members))} candidates "
            f"(+ {' + '.join(map(str, repeats))} re-trained with another seed) on "
            f"{', '.join(f'{size:,}' for size in sizes)} images{stage}, "
            f"{images / 1e6:.2f} M training images in all, about as many as "
            f"{full.trials + full.replicates + second} full trials x {full.train_size:,} images")
