"""A search's settings, declared once: every default lives here and nowhere else.

The CLI builds a :class:`SearchConfig` from its arguments, ``search()`` from its keywords, and
the store keeps it (``to_dict``) and gives it back (``from_dict``). ``identity()`` is the part
that makes two searches the same search: a run folder holds one identity, and continuing it
with other values there is refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from .bases import get_base
from .errors import TinyFormulaError
from .presets import PRESETS
from .space import PLANNER, SAMPLERS, check_c_range
from .validate import POSITIVE_INT, SEED, Options, check

EXECUTORS = ("local", "dask")
VAL_FRACTION = 0.2   # the held-out split takes at most this share of the training images
DEVICES = ("auto", "cpu", "cuda")


def holdout_size(train_images: int, preset: str = "default") -> int:
    """Training images to hold out for scoring by default: the preset's hold-out, at most
    ``VAL_FRACTION`` of ``train_images`` (and at least one)."""
    return max(1, min(PRESETS[preset].val_size, int(VAL_FRACTION * train_images)))


@dataclass(frozen=True)
class SearchConfig:
    """Everything that defines a search and how it runs.

    Identity (a run folder must match): ``base, data, seed, sampler, c_range, train_size,
    epochs, batch_size, val_size``. ``val_size`` (the training images held out to score
    candidates on) defaults to the preset's, at most ``VAL_FRACTION`` of the dataset's training
    images; ``train_size`` defaults to the preset's, at most what the hold-out leaves.
    ``monotone`` only changes how the formula is fitted on the trials. The trial count may grow to
    extend a search; where and how trials run (``out``, ``executor``, ``workers``,
    ``scheduler``, ``device``, ``data_dir``) never changes which search it is.
    """

    base: str = "efficientnet_b0"
    data: str = "fashion-mnist"
    data_dir: str | None = None
    preset: str = "default"
    trials: int | None = None        # None: the preset's
    train_size: int | None = None    # None: the preset's
    epochs: int | None = None        # None: the preset's
    val_size: int | None = None      # None: the preset's, at most VAL_FRACTION of the data
    c_range: tuple[float, float] = (0.03, 1.0)
    sampler: str = "budgeted"
    seed: int = 0
    batch_size: int = 128
    device: str = "auto"
    out: str = "runs/search"
    executor: str = "local"
    workers: int | None = None       # None: one per core (local) or per core (Dask cluster)
    scheduler: str | None = None     # a running Dask scheduler's address
    monotone: bool | None = None     # monotone GPs; None: TinyFormula's default (fit only)

    @classmethod
    def from_options(cls, **options) -> "SearchConfig":
        """A config from keyword options, where None means "the default" (as the CLI passes
        unset flags). Unknown names are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TinyFormulaError(f"unknown search setting(s): {', '.join(unknown)}")
        return cls(**{k: v for k, v in options.items() if v is not None})

    def resolved(self, train_images: int | None = None) -> "SearchConfig":
        """Sizes filled in from the preset, every value checked; with ``train_images`` (the
        dataset's training images), the held-out and training sizes fitted to it, and a
        request for more images than exist refused."""
        check("--preset", self.preset, Options(tuple(PRESETS)))
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
            train_size=preset.train_size if train_size is None else train_size,
            val_size=preset.val_size if val_size is None else val_size,
            epochs=preset.epochs if self.epochs is None else self.epochs,
            c_range=check_c_range(self.c_range),
            data_dir=str(self.data_dir) if self.data_dir else None,
            out=str(self.out))
        for name in ("trials", "train_size", "val_size", "epochs", "batch_size"):
            check(f"--{name.replace('_', '-')}", getattr(config, name), POSITIVE_INT)
        check("--workers", config.workers, POSITIVE_INT, allow_none=True)
        check("--seed", config.seed, SEED)
        check("--sampler", config.sampler, Options(SAMPLERS))
        check("--executor", config.executor, Options(EXECUTORS))
        if config.device not in DEVICES and not config.device.startswith("cuda:"):
            raise TinyFormulaError(f"--device must be auto, cpu, cuda or cuda:N, got "
                                   f"{config.device!r}")
        if config.scheduler and config.executor != "dask":
            raise TinyFormulaError("--scheduler needs --executor dask")
        get_base(config.base)
        return config

    @property
    def replicates(self) -> int:
        """Candidates trained again with the next seed, to measure seed-to-seed noise."""
        return min(PRESETS[self.preset].replicates, self.trials or 0)

    def identity(self) -> dict:
        """What makes two searches the same search (the trial count may grow)."""
        return {"base": self.base, "data": self.data, "seed": self.seed,
                "sampler": self.sampler, "c_range": list(self.c_range),
                "train_size": self.train_size, "epochs": self.epochs,
                "batch_size": self.batch_size, "val_size": self.val_size, "planner": PLANNER}

    def to_dict(self) -> dict:
        return {**asdict(self), "c_range": list(self.c_range)}

    @classmethod
    def from_dict(cls, data: dict) -> "SearchConfig":
        """Read back a stored config; keys this version does not know are ignored (a run
        folder's settings also hold the yardstick's and the replicate count)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "c_range" in values:
            values["c_range"] = tuple(values["c_range"])
        if values.get("val_size") is None and values.get("preset") in PRESETS:
            # Stored before val_size was a setting: it was the preset's.
            values["val_size"] = PRESETS[values["preset"]].val_size
        return cls(**values)
