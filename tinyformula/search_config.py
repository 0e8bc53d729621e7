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
from .space import SAMPLERS, check_c_range
from .validate import POSITIVE_INT, SEED, Options, check

EXECUTORS = ("local", "dask")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class SearchConfig:
    """Everything that defines a search and how it runs.

    Identity (a run folder must match): ``base, data, seed, sampler, c_range, train_size,
    epochs, batch_size`` and the held-out size of the preset. The trial count may grow to
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

    def resolved(self) -> "SearchConfig":
        """Sizes filled in from the preset, every value checked."""
        check("--preset", self.preset, Options(tuple(PRESETS)))
        preset = PRESETS[self.preset]
        config = replace(
            self,
            trials=preset.trials if self.trials is None else self.trials,
            train_size=preset.train_size if self.train_size is None else self.train_size,
            epochs=preset.epochs if self.epochs is None else self.epochs,
            c_range=check_c_range(self.c_range),
            data_dir=str(self.data_dir) if self.data_dir else None,
            out=str(self.out))
        for name in ("trials", "train_size", "epochs", "batch_size"):
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

    @property
    def val_size(self) -> int:
        """Training images held out to score candidates on."""
        return PRESETS[self.preset].val_size

    def identity(self) -> dict:
        """What makes two searches the same search (the trial count may grow)."""
        return {"base": self.base, "data": self.data, "seed": self.seed,
                "sampler": self.sampler, "c_range": list(self.c_range),
                "train_size": self.train_size, "epochs": self.epochs,
                "batch_size": self.batch_size, "val_size": self.val_size}

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
        return cls(**values)
