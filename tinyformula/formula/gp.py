"""Gaussian-process regression for the formula: fitted by scikit-learn, predicted without it.

The GPs regress r (or d) on log c with kernel ``C * RBF + DotProduct + White``: the RBF bends
with the frontier, the linear term makes extrapolation follow the trend instead of reverting
to the mean, and the white term absorbs the noise of short-schedule scores. ``GPPosterior``
keeps what prediction needs (training inputs, alpha, Cholesky factor, normalisation, kernel
hyper-parameters) as plain floats and predicts exactly as scikit-learn does, in pure Python:
``tinyformula predict`` imports neither scikit-learn nor numpy.

A *monotone* GP (``GPPosterior.monotone``) is fitted on the isotonic (non-decreasing)
projection of its targets (:func:`isotonic`) and its mean is rearranged to be non-decreasing
in log c: on a lattice of step ``LATTICE_STEP`` anchored at the smallest training input, the
running maximum of the GP mean to the right of the anchor and the running minimum to its left,
interpolated linearly between lattice points. That keeps the file format (a posterior plus one
flag) and prediction in pure Python; the mean moves from the plain GP's only where that one
falls as c grows. Standard deviations are the plain GP's.
"""

from __future__ import annotations

import math

from ..core.constraints import Real, check
from ..core.errors import TinyFormulaError

LATTICE_STEP = 0.01   # in log c: 1% steps in c; the rearranged mean is exact on the lattice


def make_gp(noise_bounds: tuple[float, float], random_state: int = 0, restarts: int = 5):
    """An unfitted scikit-learn GP with the formula's kernel (imports scikit-learn)."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, DotProduct, WhiteKernel

    lo, hi = noise_bounds
    kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * RBF(1.0, (0.1, 10.0))
              + DotProduct(1.0, (1e-2, 1e1))
              + WhiteKernel(min(max(1e-3, lo), hi), (lo, hi)))
    # Restarts from a seeded generator: a fit is deterministic.
    return GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=restarts,
                                    random_state=random_state)


def isotonic(y: list[float]) -> list[float]:
    """The non-decreasing sequence closest to ``y`` in least squares (pool adjacent violators);
    ``y`` ordered by its input."""
    blocks: list[list[float]] = []   # [mean, weight]
    for value in y:
        blocks.append([float(value), 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, w2), (m1, w1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2])
    return [mean for mean, weight in blocks for _ in range(int(weight))]


def is_non_decreasing(values, tolerance: float = 1e-9) -> bool:
    """Whether each value is at least the one before it (less ``tolerance``)."""
    values = list(values)
    return all(b >= a - tolerance for a, b in zip(values, values[1:]))


class GPPosterior:
    """A fitted GP's posterior in plain floats.

    k(x, x') = constant * exp(-(x - x')^2 / (2 length_scale^2)) + sigma_0^2 + x x', plus
    ``noise`` on the training diagonal, on targets normalised by ``y_mean`` and ``y_std``.
    ``monotone``: the mean is rearranged to be non-decreasing in x (see the module docstring).
    """

    KEYS = ("x_train", "alpha", "cholesky", "y_mean", "y_std", "constant", "length_scale",
            "sigma_0", "noise")
    OPTIONAL = {"monotone": False}   # keys files written before they existed lack

    def __init__(self, x_train, alpha, cholesky, y_mean, y_std, constant, length_scale,
                 sigma_0, noise, monotone: bool = False):
        self.x_train = [float(v) for v in x_train]
        self.alpha = [float(v) for v in alpha]
        self.cholesky = [[float(v) for v in row] for row in cholesky]
        self.y_mean, self.y_std = float(y_mean), float(y_std)
        self.constant, self.length_scale = float(constant), float(length_scale)
        self.sigma_0, self.noise = float(sigma_0), float(noise)
        if not isinstance(monotone, bool):
            raise ValueError("monotone must be true or false")
        self.monotone = monotone
        self._lattice: dict[int, float] = {}   # rearranged means at lattice points, by index
        n = len(self.x_train)
        if n == 0 or len(self.alpha) != n or len(self.cholesky) != n or any(
                len(row) != n for row in self.cholesky):
            raise ValueError("GP arrays have inconsistent shapes")
        numbers = self.x_train + self.alpha + [v for row in self.cholesky for v in row] + [
            self.y_mean, self.y_std, self.constant, self.length_scale, self.sigma_0, self.noise]
        if not all(math.isfinite(v) for v in numbers) or min(
                self.y_std, self.length_scale, *(self.cholesky[i][i] for i in range(n))) <= 0:
            raise ValueError("GP parameters are not finite and positive")

    @classmethod
    def from_sklearn(cls, gp, monotone: bool = False) -> "GPPosterior":
        kernel = gp.kernel_  # (ConstantKernel * RBF + DotProduct) + WhiteKernel
        product, dot, white = kernel.k1.k1, kernel.k1.k2, kernel.k2
        return cls(x_train=gp.X_train_[:, 0], alpha=gp.alpha_.ravel(), cholesky=gp.L_,
                   y_mean=float(gp._y_train_mean), y_std=float(gp._y_train_std),
                   constant=product.k1.constant_value, length_scale=product.k2.length_scale,
                   sigma_0=dot.sigma_0, noise=white.noise_level, monotone=monotone)

    def predict(self, x: float) -> tuple[float, float]:
        """Posterior mean and standard deviation at one input x (log c)."""
        mean, std = self._plain(x)
        return (self._rearranged(x) if self.monotone else mean), std

    def _plain(self, x: float) -> tuple[float, float]:
        """The GP's own posterior mean and standard deviation at x."""
        cross = [self.constant * math.exp(-0.5 * ((x - xi) / self.length_scale) ** 2)
                 + self.sigma_0**2 + x * xi for xi in self.x_train]
        mean = sum(k * a for k, a in zip(cross, self.alpha))
        # Forward substitution: v = L^-1 k, so that k' K^-1 k = |v|^2.
        v: list[float] = []
        for i, row in enumerate(self.cholesky):
            v.append((cross[i] - sum(row[j] * v[j] for j in range(i))) / row[i])
        prior = self.constant + self.sigma_0**2 + x * x + self.noise
        var = max(prior - sum(vi * vi for vi in v), 0.0)
        return mean * self.y_std + self.y_mean, math.sqrt(var) * self.y_std

    def _at_lattice(self, k: int) -> float:
        """The rearranged mean at lattice point k: the running max of the plain mean from the
        anchor (k = 0) rightwards, the running min leftwards."""
        if k not in self._lattice:
            value = self._plain(min(self.x_train) + k * LATTICE_STEP)[0]
            if k != 0:
                inner = self._at_lattice(k - 1 if k > 0 else k + 1)
                value = max(value, inner) if k > 0 else min(value, inner)
            self._lattice[k] = value
        return self._lattice[k]

    def _rearranged(self, x: float) -> float:
        position = (x - min(self.x_train)) / LATTICE_STEP
        k = math.floor(position)
        # Fill the cache from the anchor outwards (no deep recursion).
        for j in (range(0, k + 2) if k >= 0 else range(0, k - 1, -1)):
            self._at_lattice(j)
        low, high = self._lattice[k], self._lattice[k + 1]
        return low + (high - low) * (position - k)

    def to_dict(self) -> dict:
        body = {key: getattr(self, key) for key in self.KEYS}
        if self.monotone:
            body["monotone"] = True   # plain posteriors keep the original keys
        return body

    @classmethod
    def from_dict(cls, data: dict) -> "GPPosterior":
        """Read a stored posterior, checking its shapes and values: a formula file is
        untrusted input, and absurd values would overflow in ``predict``."""
        if not isinstance(data, dict):
            raise TinyFormulaError("a GP posterior must be a mapping")
        values = {key: data[key] for key in cls.KEYS}  # KeyError: the caller names the file
        n = len(values["x_train"]) if isinstance(values["x_train"], list) else -1
        if not 1 <= n <= MAX_TRAINING_POINTS:
            raise TinyFormulaError(f"a GP posterior needs 1 to {MAX_TRAINING_POINTS} training "
                                   f"points")
        matrix = values["cholesky"]
        if not (isinstance(values["alpha"], list) and len(values["alpha"]) == n
                and isinstance(matrix, list) and len(matrix) == n
                and all(isinstance(row, list) and len(row) == n for row in matrix)):
            raise TinyFormulaError(f"a GP posterior's alpha and Cholesky factor must match its "
                                   f"{n} training points")
        for key, limit in POSTERIOR_VALUES.items():
            for value in _numbers(values[key]):
                check(f"the GP's {key}", value, limit)
        if any(matrix[i][i] < MIN_PIVOT for i in range(n)):
            raise TinyFormulaError("a GP posterior's Cholesky factor must have a positive "
                                   "diagonal")
        if not isinstance(data.get("monotone", False), bool):
            raise TinyFormulaError("a GP posterior's 'monotone' must be true or false")
        return cls(**values, **{key: data.get(key, default)
                                for key, default in cls.OPTIONAL.items()})


def _numbers(value) -> list:
    """The entries of a number, a list of numbers or a list of such lists (shapes checked)."""
    if not isinstance(value, list):
        return [value]
    return [item for part in value for item in (part if isinstance(part, list) else [part])]


# What a stored posterior may hold: far outside any fit, short of what overflows a float.
MAX_TRAINING_POINTS = 10_000
MIN_PIVOT = 1e-9


POSTERIOR_VALUES = {
    "x_train": Real(-100, 100),          # log c
    "alpha": Real(-1e9, 1e9),
    "cholesky": Real(-1e9, 1e9),
    "y_mean": Real(-1e6, 1e6),
    "y_std": Real(0, 1e6, closed="right"),
    "constant": Real(0, 1e6),
    "length_scale": Real(1e-6, 1e6),
    "sigma_0": Real(0, 1e6),
    "noise": Real(0, 1e6),
}
