"""Pareto-aware successive halving: spend the search's training where the frontier is.

With ``schedule="halving"`` a search trains in rungs. Rung 0 trains every candidate on a small
budget; rung k+1 trains the ``ceil(n_k / eta)`` candidates of rung k closest to the frontier
on ``eta`` times the images, up to the full budget (``train_size x epochs``) at the top rung,
where the frontier and the formula come from. Successive halving is Jamieson & Talwalkar's
and Li et al.'s (Hyperband, ASHA); the promotion rule follows MO-ASHA (Schmucker et al. 2021):

A rung keeps at least ``min_rung`` candidates (default 6): the formula is fitted on the top
rung's frontier, and three points are the least a formula takes.

1. **Pareto rank.** The rung's results (search seed, finished ok) are sorted into
   non-dominated fronts over (c lower, top-1 higher). Whole fronts are promoted, best first.
   Ranking by top-1 alone would drop every small network: the frontier needs them.
2. **Coverage of c.** The front that does not fit whole is thinned greedily in log c: each
   pick is the member farthest (in log c) from everything already promoted, the cheapest
   first when nothing is (ties: higher top-1, then lower candidate index). This is an
   epsilon-net in log c, so the promoted set keeps the frontier's c range covered.

Synchronous: a rung is planned only when the rung below has finished, so the promoted set is a
pure function of that rung's stored results, and a resumed search promotes exactly what an
uninterrupted one does. A candidate once trained at a rung stays planned there (``--trials``
may grow the search; nothing trained is thrown away).

With eta = 3 and three rungs a search trains 1/9 + 1/9 + 1/9 = 1/3 of the full schedule's
images (plus the floor and the replicates). The fidelity is the number of training images:
rung k trains on ``round(train_size / eta**(K - k))`` images for ``epochs`` passes (a
seed-fixed subset; the images of a smaller rung are a prefix of a larger one's), where K is the
largest number of halvings that keeps the smallest rung at or above ``min_images`` (default
``train_size x epochs / eta**2``: three rungs).

A promoted candidate is retrained from scratch on its rung's budget, not continued from the
rung below: the trainer's learning rate follows one warm-up-and-cosine cycle, so a run cut short
is not the beginning of a longer one; each trial stays one independent, deterministic job (no
checkpoint to store or move between workers). Continuing was measured in
experiments/bench_halving.py and looked promising but not clearly better (3 candidates, one
seed; experiments/results/halving.md).

The schedule reaches this module as a typed plan, :class:`Rungs`, which the search's config
builds (:meth:`~tinyformula.sweep.config.SearchConfig.rungs`); a full schedule is one rung.

Replicates (the search seed + 1) measure the seed-to-seed noise at every rung: a rung with n
candidates replicates its first ``round(replicates x n / trials)`` (at least one) by candidate
index, the same share of the rung as the full schedule replicates of the search.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.constraints import POSITIVE_INT, Real, check
from ..core.errors import TinyFormulaError
from .pareto import pareto_fronts
from .trials import PlannedTrial, Trial, TrialState

SCHEDULES = ("full", "halving")
ETA = Real(2, 1000, why="each rung keeps 1/eta of the candidates and trains eta x longer")


@dataclass(frozen=True)
class Rungs:
    """A search's training schedule, typed: what each rung trains and who is replicated.

    Attributes
    ----------
    train_sizes : tuple of int
        Training images per epoch at each rung, smallest first; the last is the full budget's.
        One entry for the full schedule.
    epochs : int
        Passes over them at every rung.
    eta, min_rung : float, int
        Halving: each rung keeps 1/eta of the candidates, but never fewer than ``min_rung``.
    seed, trials, replicates : int
        The search seed (replicates train with ``seed + 1``), its candidates, and how many of
        them it replicates to measure the noise.
    halving : bool
        Whether this is successive halving (else one rung).
    """

    train_sizes: tuple[int, ...]
    epochs: int
    eta: float
    min_rung: int
    seed: int
    trials: int
    replicates: int
    halving: bool = False

    @property
    def top(self) -> int:
        """The rung the frontier and the formula come from."""
        return len(self.train_sizes) - 1

    def images(self, rung: int) -> int:
        """Training images (x epochs) of one trial at ``rung``."""
        return self.train_sizes[rung] * self.epochs


# -- rungs -------------------------------------------------------------------------------------

def rung_train_sizes(train_size: int, epochs: int, eta: float,
                     min_images: int) -> tuple[int, ...]:
    """Training images per epoch at each rung, smallest first; the last is ``train_size``."""
    full = train_size * epochs
    halvings = 0
    while full / eta ** (halvings + 1) >= min_images * (1 - 1e-12):
        halvings += 1
    return tuple(round(train_size / eta ** (halvings - k)) for k in range(halvings + 1))



def check_halving(train_size: int, epochs: int, eta, min_images, min_rung) -> tuple[float, int]:
    """``(eta, min_images)`` for a halving schedule, checked, ``min_images`` filled in (the
    full budget / eta^2 when None); a schedule with fewer than two rungs, a rung above the full
    budget or a rung too small to train is refused."""
    eta = float(check("--eta", eta, ETA))
    check("--min-rung", min_rung, POSITIVE_INT)
    full = train_size * epochs
    if eta > math.sqrt(full):  # no second rung could train one image: say so before dividing
        raise TinyFormulaError(f"--eta {eta:g} leaves no room for two rungs in the full budget "
                               f"({train_size:,} images x {epochs} epoch(s) = {full:,}); use an "
                               f"eta below {math.sqrt(full):.3g} or --schedule full")
    # Name what the user gave: a derived smallest rung is eta's doing, not a --min-images.
    named = "--min-images" if min_images is not None else f"--eta {eta:g} (its smallest rung)"
    min_images = math.floor(full / eta ** 2) if min_images is None else min_images
    min_images = check(named, min_images, POSITIVE_INT)
    if min_images > full:
        raise TinyFormulaError(f"--min-images {min_images:,} is above the full budget "
                               f"({train_size:,} images x {epochs} epoch(s) = "
                               f"{full:,}): no rung may train longer than the full schedule")
    sizes = rung_train_sizes(train_size, epochs, eta, min_images)
    if len(sizes) < 2:
        raise TinyFormulaError(f"{named} ({min_images:,} images) leaves a single rung (the "
                               f"full budget {full:,} / eta {eta:g} is below it): lower "
                               f"--min-images or use --schedule full")
    if sizes[0] < 2:
        raise TinyFormulaError(f"{named} ({min_images:,} images) makes the smallest rung train "
                               f"on {sizes[0]} image(s) per epoch; a batch needs 2")
    return eta, min_images


def rung_replicates(rungs: Rungs, members: int) -> int:
    """How many of a rung's ``members`` candidates are trained again with the next seed."""
    if not rungs.replicates or not members:
        return 0
    return min(members, max(1, round(rungs.replicates * members / rungs.trials)))


# -- promotion ---------------------------------------------------------------------------------

def spread_in_log_c(pool: Sequence[Trial], taken: Sequence[Trial], count: int) -> list[Trial]:
    """``count`` members of ``pool`` picked greedily farthest in log c from ``taken`` and from
    each other (an epsilon-net); the cheapest first when nothing is taken."""
    pool, chosen = list(pool), [math.log(t.config.c) for t in taken]
    picked: list[Trial] = []
    while pool and len(picked) < count:
        if chosen:
            def score(t):
                gap = min(abs(math.log(t.config.c) - x) for x in chosen)
                return (gap, t.top1, -t.candidate)
            best = max(pool, key=score)
        else:
            best = min(pool, key=lambda t: (t.config.c, -t.top1, t.candidate))
        picked.append(best)
        chosen.append(math.log(best.config.c))
        pool.remove(best)
    return picked


def promote(results: Sequence[Trial], count: int) -> list[Trial]:
    """The ``count`` results closest to the frontier: whole Pareto fronts, best first, then
    the next front thinned for coverage of log c. Returned by candidate index."""
    promoted: list[Trial] = []
    for front in pareto_fronts(results):
        room = count - len(promoted)
        if room <= 0:
            break
        promoted += front if len(front) <= room else spread_in_log_c(front, promoted, room)
    return sorted(promoted, key=lambda t: t.candidate)



# -- planning ----------------------------------------------------------------------------------

def plan_rung(rungs: Rungs, rung: int, candidates: Sequence,
              known: Sequence[Trial]) -> list[PlannedTrial]:
    """The trials of ``rung``: every candidate at rung 0; at rung k > 0 the candidates promoted
    from rung k - 1's results in ``known`` (the store's rows), plus any already trained at rung
    k. Search-seed trials first (by candidate), then the replicates."""
    images = rungs.images(rung)
    if rung == 0:
        members = list(range(len(candidates)))
    else:
        below = [t for t in known if t.rung == rung - 1 and t.seed == rungs.seed
                 and t.candidate < len(candidates)]
        ok = [t for t in below if t.state is TrialState.OK and t.top1 is not None]
        count = max(math.ceil(len(below) / rungs.eta), min(rungs.min_rung, len(below)))
        chosen = {t.candidate for t in promote(ok, count)}
        chosen |= {t.candidate for t in known if t.rung == rung and t.seed == rungs.seed
                   and t.candidate < len(candidates)}
        members = sorted(chosen)
    plan = [PlannedTrial(i, rungs.seed, candidates[i], rung, images) for i in members]
    plan += [PlannedTrial(i, rungs.seed + 1, candidates[i], rung, images)
             for i in members[:rung_replicates(rungs, len(members))]]
    return plan

