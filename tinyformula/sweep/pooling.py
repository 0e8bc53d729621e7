"""Pooling searches: one formula fitted on the trials of several finished searches that differ
only in their seed (``tinyformula pool``).

A search's formula depends on its seed: five default searches of EfficientNet-B0 recommended
33 to 56 px at c = 0.25, and their networks scored up to 1.9 points apart when trained longer;
those whose quality report said ``weak`` there were at both ends. A weak report advises another
search with another seed; pooling is what the two searches are for together: the surrogate fit
sees every trial of both, twice the evidence where one search's was thin, and nothing is
trained again. Two disjoint pools of two searches each were trustworthy and recommended
networks within a few pixels of each other (experiments/results/validation_b0_pooled.md).

Pooled searches must be the same search but for ``seed`` (base, data, sizes, sampler, schedule,
cost: their :meth:`~.config.SearchConfig.identity` without the seed) and measure c the same
way. Inside the pool each search's candidates keep their own numbers, offset so that they stay
apart (a candidate is a network of one search's plan), and each trial's seed is read relative
to its own search's: what the fit asks of a seed is only whether the trial is a search's
primary training (its seed, common to all its candidates) or the replicate that measures the
noise (the next seed), so the primary trials of every search form the pooled frontier and each
replicate is paired with its own search's primary training.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..core.constraints import Integer
from ..core.errors import TinyFormulaError
from ..core.files import json_kind, read_json_file, write_atomically
from ..core.folders import check_folder, mark_folder
from ..core.schema import ListOf, Record, Text, validate
from ..cost.yardstick import Yardstick
from ..execution.jobs import TrialState
from ..formula.estimator import TinyFormula
from .config import SearchConfig
from .fitting import fit_formula
from .results import SearchResult, read_search, run_summary, unfinished
from .trials import Trial

MIN_RUNS = 2
POOL_KIND, MADE_BY = "pool", "tinyformula pool"
MANIFEST_FORMAT, MANIFEST_VERSION = "tinyformula-pool", 1
MAX_MANIFEST_BYTES = 2**20
MANIFEST = Record({"format": Text(max_length=100), "base": Text(), "data": Text(),
                   "seeds": ListOf(Integer(0, 2**63 - 1), MIN_RUNS, 100_000)})
"""What a pool manifest is read for (the rest is for people)."""
MANIFEST_KIND = json_kind("pool manifest",
                          lambda data: isinstance(data, dict)
                          and data.get("format") == MANIFEST_FORMAT)


@dataclass(frozen=True)
class PooledSource:
    """One search in a pool: its folder, seed and trial count."""

    path: str
    seed: int
    trials: int
    ok: int

    def to_dict(self) -> dict:
        return {"path": self.path, "seed": self.seed, "trials": self.trials, "ok": self.ok}


@dataclass(frozen=True)
class Pool:
    """Several searches' trials as one: the first search's settings, the common yardstick, every
    trial (candidates offset apart, seeds relative to the first search's), and the sources."""

    config: SearchConfig
    yardstick: Yardstick
    trials: list[Trial]
    sources: list[PooledSource]

    @property
    def seeds(self) -> list[int]:
        return [source.seed for source in self.sources]


def _identity_without_seed(config: SearchConfig) -> dict:
    return {key: value for key, value in config.identity().items() if key != "seed"}


def _difference(a: dict, b: dict) -> str:
    keys = sorted(key for key in set(a) | set(b) if a.get(key) != b.get(key))
    return ", ".join(f"{key} {a.get(key)!r} against {b.get(key)!r}" for key in keys[:3])


def pool_searches(paths: Sequence) -> Pool:
    """Read the finished searches in ``paths`` and pool their trials; raises TinyFormulaError
    (nothing read is changed) when fewer than two are given, one is given twice, one is not a
    finished search, two share a seed, or they differ in anything but their seed."""
    if len(paths) < MIN_RUNS:
        raise TinyFormulaError(f"pooling needs {MIN_RUNS} or more searches; got {len(paths)}")
    folders = [Path(path) for path in paths]
    resolved = [folder.resolve() for folder in folders]
    for i, folder in enumerate(resolved):
        if folder in resolved[:i]:
            raise TinyFormulaError(f"{folders[i]} is given twice; pool different searches")
    for folder in folders:
        if not (folder / "trials.sqlite").is_file():
            raise TinyFormulaError(f"{folder} is not a search's run folder (no trials.sqlite); "
                                   f"give folders written by 'tinyformula fit --out'")
    read = [(folder, *read_search(folder)) for folder in folders]
    first_folder, first, yardstick, _ = read[0]
    stride = 1 + max(t.candidate for _, _, _, trials in read for t in trials)
    trials: list[Trial] = []
    sources: list[PooledSource] = []
    seen: dict[int, Path] = {}
    for index, (folder, config, ystick, own) in enumerate(read):
        pending = sum(t.state is TrialState.PENDING for t in own)
        if pending:
            raise unfinished(folder, pending, len(own))
        if config.seed in seen:
            raise TinyFormulaError(f"{seen[config.seed]} and {folder} are searches with the "
                                   f"same seed ({config.seed}); pool searches with different "
                                   f"seeds")
        seen[config.seed] = folder
        mine, theirs = _identity_without_seed(config), _identity_without_seed(first)
        if mine != theirs:
            raise TinyFormulaError(
                f"{folder} is another search than {first_folder}, not the same with another "
                f"seed ({_difference(mine, theirs)}); only searches that differ in --seed pool")
        if ystick.to_dict() != yardstick.to_dict():
            raise TinyFormulaError(f"{folder} measures c otherwise than {first_folder}; only "
                                   f"searches of one base and cost pool")
        if config.monotone != first.monotone:
            raise TinyFormulaError(f"{folder} fits with monotone {config.monotone}, "
                                   f"{first_folder} with {first.monotone}; pool searches fitted "
                                   f"alike")
        trials += [replace(t, candidate=index * stride + t.candidate,
                           seed=t.seed - config.seed + first.seed) for t in own]
        sources.append(PooledSource(str(folder), config.seed, len(own),
                                    sum(t.state is TrialState.OK for t in own)))
    trials = [replace(t, id=i) for i, t in enumerate(trials)]
    return Pool(first, yardstick, trials, sources)


def fit_pool(pool: Pool, fit: str | None = None, draws: int | None = None) -> TinyFormula:
    """The formula of the pooled trials (:func:`~.fitting.fit_formula`, the same fits, band
    and quality report as a search's), its source naming every pooled seed."""
    return fit_formula(pool.config, pool.yardstick, pool.trials, fit=fit, draws=draws,
                       seeds=pool.seeds)


def pool_manifest(pool: Pool, formula: TinyFormula, out: Path) -> dict:
    """What ``pool.json`` records: the searches pooled, the fit and its verdict."""
    return {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION,
            "formula": str(out / "formula.json"), "fit": formula.method,
            "base": pool.config.base, "data": pool.config.data, "preset": pool.config.preset,
            "trials": len(pool.trials), "seeds": pool.seeds,
            "sources": [source.to_dict() for source in pool.sources],
            "verdict": (formula.quality_ or {}).get("verdict")}


def _check_same_pool(out: Path, pool: Pool) -> None:
    """Refuse to replace an earlier pool of other searches in ``out`` (its formula would be
    lost); the same searches again (another fit, say) replace their own files."""
    path = out / "pool.json"
    if not path.exists():
        return
    advice = "choose another --out"
    earlier = validate(read_json_file(path, MAX_MANIFEST_BYTES, "pool manifest", advice),
                       MANIFEST, str(path), advice)
    if earlier["format"] != MANIFEST_FORMAT:
        raise TinyFormulaError(f"{path} is not a pool manifest; {advice}")
    if sorted(earlier["seeds"]) != sorted(pool.seeds) or earlier["base"] != pool.config.base \
            or earlier["data"] != pool.config.data:
        seeds = ", ".join(map(str, earlier["seeds"]))
        raise TinyFormulaError(f"{out} holds the pool of other searches (seeds {seeds}); "
                               f"choose another --out, or remove it to replace it")


def write_pool(paths: Sequence, out, fit: str | None = None, log=None) -> dict:
    """Pool the searches in ``paths``, fit their formula and write it to ``out``
    (``formula.json``, with ``pool.json`` naming the searches); returns the summary a search
    has (:func:`~.results.run_summary`, its trials the pooled ones) with the manifest as
    ``pool``. ``out`` is checked before anything is read or fitted: a folder holding anything
    but an earlier pool's files is refused, and nothing is written unless the fit succeeds."""
    out = Path(out)
    check_folder(out, POOL_KIND, MADE_BY)
    pool = pool_searches(paths)
    _check_same_pool(out, pool)
    if log is not None:
        log(f"Pooling {len(pool.sources)} searches (seeds {', '.join(map(str, pool.seeds))}; "
            f"{len(pool.trials)} trials); fitting the formula and its bootstrap band...")
    formula = fit_pool(pool, fit)
    manifest = pool_manifest(pool, formula, out)
    mark_folder(out, POOL_KIND, MADE_BY)
    formula.save(out / "formula.json")
    write_atomically(out / "pool.json", json.dumps(manifest, indent=1) + "\n", MANIFEST_KIND)
    result = SearchResult.from_trials(out, pool.config, pool.yardstick, pool.trials, formula)
    return {**run_summary(result), "pool": manifest}
