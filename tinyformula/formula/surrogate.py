"""A surrogate of top-1 over every trial, and the formula it implies.

The paper fits r(c) and d(c) through the strict Pareto frontier: six of sixty trials on the
presets, each a single noisy score. The surrogate uses them all: a Gaussian process of top-1
over (log r, log d, log c) (and log images, when the trials trained on several budgets, as
successive halving's rungs do), with an anisotropic RBF kernel and white noise held at least at
the measured seed noise, so it averages neighbours instead of chasing one lucky score. Its best
(r, d) along each budget c is the formula's path (:meth:`Surrogate.optimum_path`); the formula's
GPs of r(c) and d(c) are then fitted on that path, so a formula file stays plain floats.

The best (r, d) at a budget is looked for only where the search could have sampled and did:
the width the budget leaves must lie in the sampler's range (:class:`WidthModel`, a power law
fitted on the trials' own costs), and a trial must lie within ``SUPPORT`` (in log units, in
every coordinate) of the point: the surrogate is not asked about places it has not seen.

Everything here works on plain arrays of trial values (:class:`TrialPoints`); it imports
scikit-learn and numpy when fitting, never torch.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from ..core.errors import TinyFormulaError

GRID_R = 25            # (r, d) grid per budget, log-spaced over the trials' range
GRID_C = 24            # budgets on the path, log-spaced over the trials' range of c
SUPPORT = 0.5          # a grid point needs a trial within this distance in every log coordinate
MIN_TRIALS = 8         # fewer trials than this cannot shape a surface in three dimensions
NOISE_FLOOR_SHARE = 0.5   # white noise held at least at this share of the seed noise's variance
# A grid point ties the best when it beats it with at least this chance. 0.4 since 0.8: against
# 0.25, validated on six default searches (two bases, three seeds), +0.77 points at c = 0.06
# (two wins, four ties), +0.26 at 0.13, -0.05 and -0.08 at 0.25 and 0.5 (all ties), no loss
# (experiments/results/tie_chance.md): MobileNetV2's 16-px answers at c = 0.06 became 19 px.
TIE_CHANCE = 0.4


@dataclass(frozen=True)
class TrialPoints:
    """The finished trials a surrogate learns from, as parallel lists of floats: each trial's
    r, d, w, c, top-1 and training images (x epochs)."""

    r: list[float]
    d: list[float]
    w: list[float]
    c: list[float]
    top1: list[float]
    images: list[float]

    def __post_init__(self):
        n = len(self.c)
        if any(len(getattr(self, k)) != n for k in ("r", "d", "w", "top1", "images")):
            raise TinyFormulaError("trial columns differ in length")
        for key in ("r", "d", "w", "c", "images"):
            if not all(math.isfinite(v) and v > 0 for v in getattr(self, key)):
                raise TinyFormulaError(f"trial column {key!r} must hold finite numbers above 0")
        if not all(math.isfinite(v) for v in self.top1):
            raise TinyFormulaError("trial column 'top1' must hold finite numbers")

    def __len__(self) -> int:
        return len(self.c)

    def trained_on_at_least(self, images: float) -> "TrialPoints":
        """The trials trained on at least ``images`` (x epochs)."""
        return self.take([i for i, n in enumerate(self.images) if n >= images])

    def take(self, rows) -> "TrialPoints":
        """These rows (repeats allowed: a bootstrap resample)."""
        return TrialPoints(**{key: [getattr(self, key)[i] for i in rows]
                              for key in ("r", "d", "w", "c", "top1", "images")})


class WidthModel:
    """log c ~ a + b log r + e log d + g log w, least squares on the trials: the width a budget
    leaves at (r, d), close enough to tell whether it is inside the sampler's range."""

    def fit(self, points: TrialPoints) -> "WidthModel":
        import numpy as np

        x = np.column_stack([np.ones(len(points)), np.log(points.r), np.log(points.d),
                             np.log(points.w)])
        self.coef_, *_ = np.linalg.lstsq(x, np.log(points.c), rcond=None)
        if not abs(self.coef_[3]) > 1e-6:
            raise TinyFormulaError("the trials' cost does not grow with their width; the "
                                   "surrogate fit needs trials of several widths")
        return self

    def width(self, r, d, c):
        import numpy as np

        a, b, e, g = self.coef_
        return np.exp((np.log(c) - a - b * np.log(r) - e * np.log(d)) / g)


class Surrogate:
    """A GP of top-1 over (log r, log d, log c[, log images]) fitted on every finished trial
    (or, with ``min_images_share``, on those trained longest).

    Parameters
    ----------
    noise_sigma : float or None
        One trial's top-1 standard deviation between seeds, when measured: the GP's white noise
        is held at least at ``NOISE_FLOOR_SHARE`` of its variance.
    random_state : int
        Seed of the optimiser's restarts (fits are deterministic).
    restarts : int
        Optimiser restarts (bootstrap refits use fewer).
    min_images_share : float
        Leave out the trials trained on less than this share of the most images any trial
        trained on, unless fewer than ``MIN_TRIALS`` would remain; 0 (the default) reads every
        trial. Leaving out halving's first rung (0.3 at eta 3) was measured twice and rejected:
        its networks rank resolutions unlike the top rung's, and without them MobileNetV2's
        formulas validated better, but EfficientNet-B0's validated worse, under 0.7's ties and
        under 0.8's (``experiments/results/surrogate_rungs.md``, ``rung0_under_tie.md``).
    """

    def __init__(self, noise_sigma: float | None = None, random_state: int = 0,
                 restarts: int = 2, min_images_share: float = 0.0):
        self.noise_sigma = noise_sigma
        self.random_state = random_state
        self.restarts = restarts
        self.min_images_share = min_images_share

    def _inputs(self, r, d, c, images=None):
        import numpy as np

        columns = [np.log(r), np.log(d), np.log(c)]
        if self.multi_fidelity_:
            columns.append(np.log(images))
        return (np.column_stack(columns) - self.x_mean_) / self.x_scale_

    def fit(self, points: TrialPoints) -> "Surrogate":
        import numpy as np
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        if len(points) < MIN_TRIALS:
            raise TinyFormulaError(f"the surrogate fit needs at least {MIN_TRIALS} finished "
                                   f"trials, got {len(points)}; use --fit frontier or run more "
                                   f"trials")
        if self.min_images_share > 0:
            longer = points.trained_on_at_least(self.min_images_share * max(points.images))
            if len(longer) >= MIN_TRIALS:
                points = longer
        self.points_ = points
        self.full_images_ = max(points.images)
        self.multi_fidelity_ = len(set(points.images)) > 1
        columns = [np.log(points.r), np.log(points.d), np.log(points.c)]
        if self.multi_fidelity_:
            columns.append(np.log(points.images))
        raw = np.column_stack(columns)
        self.x_mean_ = raw.mean(axis=0)
        self.x_scale_ = np.where(raw.std(axis=0) > 0, raw.std(axis=0), 1.0)
        x = (raw - self.x_mean_) / self.x_scale_
        y = np.asarray(points.top1, dtype=float)
        spread = float(np.std(y)) or 1.0
        floor = 1e-4
        if self.noise_sigma:
            floor = max(floor, NOISE_FLOOR_SHARE * (self.noise_sigma / spread) ** 2)
        floor = min(floor, 0.5)
        kernel = (ConstantKernel(1.0, (1e-2, 1e2))
                  * RBF(np.ones(x.shape[1]), [(0.1, 20.0)] * x.shape[1])
                  + WhiteKernel(max(floor, 0.1), (floor, 1.0)))
        self.gp_ = GaussianProcessRegressor(kernel, normalize_y=True,
                                            n_restarts_optimizer=self.restarts,
                                            random_state=self.random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.gp_.fit(x, y)
        self.width_model_ = WidthModel().fit(points)
        return self

    def predict(self, r, d, c, return_std: bool = False):
        """Expected top-1 (and the standard deviation of that expectation, the seed noise left
        out) at (r, d, c), at the largest training budget of the trials."""
        import numpy as np

        r, d, c = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (r, d, c)))
        x = self._inputs(r.ravel(), d.ravel(), c.ravel(),
                         np.full(r.size, self.full_images_))
        if not return_std:
            return self.gp_.predict(x).reshape(r.shape)
        mean, std = self.gp_.predict(x, return_std=True)
        noise = self.gp_.kernel_.k2.noise_level * float(np.ravel(self.gp_._y_train_std)[0]) ** 2
        latent = np.sqrt(np.maximum(std ** 2 - noise, 1e-12))
        return mean.reshape(r.shape), latent.reshape(r.shape)

    def supported(self, r: float, d: float, c: float) -> bool:
        """Whether a trial lies within ``SUPPORT`` of (r, d, c) in every log coordinate: the
        surrogate is only asked about places the search looked."""
        p = self.points_
        point = (math.log(r), math.log(d), math.log(c))
        return any(max(abs(math.log(a) - b) for a, b in zip(trial, point)) <= SUPPORT
                   for trial in zip(p.r, p.d, p.c))

    def grid(self, c_grid, width_range: tuple[float, float]):
        """The (r, d) grid at each budget of ``c_grid`` with a mask of the points searched:
        inside the sampler's width range and near a trial. Returns (r, d, mask), r and d of
        shape (grid,) and mask of shape (budgets, grid)."""
        import numpy as np

        p = self.points_
        rs = np.geomspace(min(p.r), max(p.r), GRID_R)
        ds = np.geomspace(min(p.d), max(p.d), GRID_R)
        r, d = (a.ravel() for a in np.meshgrid(rs, ds, indexing="ij"))
        c = np.asarray(c_grid, dtype=float)[:, None]
        w = self.width_model_.width(r[None, :], d[None, :], c)
        mask = (w >= width_range[0]) & (w <= width_range[1])
        trials = np.log(np.column_stack([p.r, p.d, p.c]))
        for j, budget in enumerate(np.log(c[:, 0])):
            near_c = trials[np.abs(trials[:, 2] - budget) <= SUPPORT]
            if not len(near_c):
                mask[j] = False
                continue
            gap = np.maximum(np.abs(np.log(r)[:, None] - near_c[None, :, 0]),
                             np.abs(np.log(d)[:, None] - near_c[None, :, 1])).min(axis=1)
            mask[j] &= gap <= SUPPORT
        return r, d, mask

    def optimum_path(self, c_grid, width_range: tuple[float, float]) -> dict:
        """The surrogate's best (r, d) at each budget: columns ``c, r, d, top1`` over the
        budgets of ``c_grid`` where any point is searched (others are left out).

        "Best" is not the arg-max of the mean, which jumps between distant grid points when
        the surface is flat. It is the middle of the points that tie the arg-max: those that
        beat it with a chance of at least ``TIE_CHANCE`` (Phi of their difference over its
        standard deviation), averaged in log space with that chance as weight, so (r, d) moves
        smoothly with c. Points less likely than that are left out: many of them, each with a
        small weight, would otherwise drag the middle towards where they lie. When the ties
        form separate islands, their middle can fall in a valley between them; then the tied
        point nearest the others (their weighted medoid) is taken instead. ``top1`` is the
        surrogate's expectation at the point taken.
        """
        import numpy as np
        from scipy.special import ndtr

        r, d, mask = self.grid(c_grid, width_range)
        path: dict[str, list[float]] = {"c": [], "r": [], "d": [], "top1": []}
        for j, c in enumerate(c_grid):
            if not mask[j].any():
                continue
            rs, ds = r[mask[j]], d[mask[j]]
            mean, std = self.predict(rs, ds, np.full(len(rs), c), return_std=True)
            best = int(np.argmax(mean))
            chance = ndtr((mean - mean[best]) / np.sqrt(std ** 2 + std[best] ** 2))
            tie = chance >= TIE_CHANCE                    # the arg-max itself has chance 0.5
            centre_r, centre_d = _middle(np.log(rs[tie]), np.log(ds[tie]), chance[tie])
            expected = float(self.predict(centre_r, centre_d, c))
            if expected < mean[tie].min() or not self.supported(centre_r, centre_d, c):
                centre_r, centre_d = _medoid(np.log(rs[tie]), np.log(ds[tie]), chance[tie])
                expected = float(self.predict(centre_r, centre_d, c))
            for key, value in (("c", c), ("r", centre_r), ("d", centre_d), ("top1", expected)):
                path[key].append(float(value))
        return path

    def best_on(self, c_grid, width_range: tuple[float, float]):
        """The surrogate's best expected top-1 at each budget of ``c_grid`` (nan where nothing
        is searched): what a perfectly informed formula would reach under this surrogate."""
        import numpy as np

        r, d, mask = self.grid(c_grid, width_range)
        best = np.full(len(c_grid), np.nan)
        for j, c in enumerate(c_grid):
            if mask[j].any():
                best[j] = float(self.predict(r[mask[j]], d[mask[j]],
                                             np.full(int(mask[j].sum()), c)).max())
        return best


def _middle(log_r, log_d, weight) -> tuple[float, float]:
    """The weighted geometric mean of the points (r, d)."""
    import numpy as np

    return (float(np.exp(np.average(log_r, weights=weight))),
            float(np.exp(np.average(log_d, weights=weight))))


def _medoid(log_r, log_d, weight) -> tuple[float, float]:
    """The point (r, d) with the least weighted squared log distance to the others: a middle
    that is one of the points, so it never lies between two islands of them."""
    import numpy as np

    gap = (log_r[:, None] - log_r[None, :]) ** 2 + (log_d[:, None] - log_d[None, :]) ** 2
    k = int(np.argmin(gap @ weight))
    return float(np.exp(log_r[k])), float(np.exp(log_d[k]))


def c_grid(lo: float, hi: float, points: int = GRID_C) -> list[float]:
    """``points`` budgets log-spaced from ``lo`` to ``hi``."""
    if points < 2 or hi <= lo:
        return [lo]
    step = math.log(hi / lo) / (points - 1)
    return [lo * math.exp(step * i) for i in range(points)]
