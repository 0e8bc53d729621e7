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

Three guards keep a schedule from deciding the formula by itself:

* **A rung at chance does not rank.** When a rung's best top-1 cannot be told from chance
  (:func:`tinyformula.formula.quality.chance_margin`: the best of n trials at chance would reach
  it by luck), its scores carry no information and its promotions follow coverage of log c
  alone (:func:`spread_in_log_c`), never its scores. The search warns before it starts when its
  smallest rung trains fewer than ``WARN_STEPS`` optimiser steps (:func:`small_rung_warning`).
* **The top rung is topped up.** When every top-rung trial has finished and its frontier holds
  fewer than ``MIN_POINTS`` (3, the least a formula takes), the next candidates in promotion
  order are trained there too, until it does or the rung below has none left: a search never
  ends without a formula because of its own schedule.
* **Equal compute.** By default (``--trials`` not given) a halving search plans as many
  candidates as keep its training images equal to the full schedule's
  (:func:`equal_compute_candidates`: eta x the preset's trials with three rungs), so its top
  rung keeps as many candidates near the frontier as the full search trains.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.constraints import POSITIVE_INT, Real, check
from ..core.errors import TinyFormulaError
from ..formula.estimator import MIN_POINTS
from ..formula.quality import chance_level, chance_margin
from .noise import seed_noise
from .pareto import pareto_frontier, pareto_fronts
from .trials import PlannedTrial, Trial, TrialState

SCHEDULES = ("full", "halving")
# The version of the rules below (part of a halving search's identity): 2 adds the guards (a
# rung at chance does not rank, the top rung is topped up, as many replicates at the top rung
# as the full schedule's, equal compute by default); a folder planned by 0.2's rules (1) keeps
# them, so it resumes exactly.
HALVING_RULES = 2
ETA = Real(2, 1000, why="each rung keeps 1/eta of the candidates and trains eta x longer")
# A smallest rung of fewer optimiser steps than this may score at chance (the smoke preset's
# 228 images, 2 steps of 128, did: 8-15% on 10 classes); the search says so before it starts.
WARN_STEPS = 8
# Equal compute: a halving search's training images may exceed the full schedule's by this much
# (rungs round their image counts).
EQUAL_COMPUTE_SLACK = 1.01


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
    num_classes, val_size : int or None
        The task's classes and the held-out images trials are scored on: what tells a rung's
        scores from chance (None: every rung ranks, as before 0.3).
    rules : int
        The version of halving's rules (``HALVING_RULES``; 1: as in 0.2, without the guards).
    """

    train_sizes: tuple[int, ...]
    epochs: int
    eta: float
    min_rung: int
    seed: int
    trials: int
    replicates: int
    halving: bool = False
    num_classes: int | None = None
    val_size: int | None = None
    rules: int = HALVING_RULES

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


def rung_members(n0: int, rungs: int, eta: float, min_rung: int) -> list[int]:
    """Search-seed candidates at each of ``rungs`` rungs when rung 0 trains ``n0`` (every
    candidate finishing ok): each rung keeps ceil(n / eta), never fewer than ``min_rung``."""
    members = [n0]
    for _ in range(rungs - 1):
        below = members[-1]
        members.append(max(math.ceil(below / eta), min(min_rung, below)))
    return members


def equal_compute_candidates(trials: int, train_sizes: Sequence[int], eta: float,
                             min_rung: int) -> int:
    """The most candidates a halving search over ``train_sizes`` may start with and still train
    no more images than a full search of ``trials`` candidates (within 1%): eta x ``trials``
    with three rungs (3T/9 + T/3 + T/3 = T at eta 3)."""
    full = trials * train_sizes[-1] * EQUAL_COMPUTE_SLACK

    def images(n0):
        return sum(n * size for n, size in zip(rung_members(n0, len(train_sizes), eta, min_rung),
                                               train_sizes))
    n0 = trials
    while images(n0 + 1) <= full:
        n0 += 1
    return n0


def small_rung_warning(train_size: int, epochs: int, batch_size: int) -> str | None:
    """A warning, before a halving search starts, when its smallest rung (``train_size``
    images per epoch) is so short that its scores may not rise above chance."""
    steps = epochs * math.ceil(train_size / batch_size)
    if steps >= WARN_STEPS:
        return None
    return (f"warning: the smallest rung trains on {train_size:,} images x {epochs} epoch(s), "
            f"{steps} optimiser step(s) of {batch_size}: its scores may not rise above chance. "
            f"A rung at chance promotes by c alone (its scores are not used); for a rung that "
            f"ranks, raise --min-images (at least {WARN_STEPS * batch_size:,}) or --train-size, "
            f"or use --schedule full")


def rung_at_chance(rungs: Rungs, results: Sequence[Trial], known: Sequence[Trial],
                   rung: int) -> bool:
    """Whether the search seed's ``results`` at ``rung`` cannot be told from chance: their best
    top-1 is no higher than the best of as many trials at chance would score by luck (the
    rung's measured seed noise or the binomial spread on the held-out images)."""
    if (not results or rungs.rules < 2 or rungs.num_classes is None
            or rungs.val_size is None):
        return False
    noise = seed_noise(known, rung=rung).get("mean_abs_diff")
    best = max(t.top1 for t in results)
    return best - chance_level(rungs.num_classes) < chance_margin(
        rungs.num_classes, rungs.val_size, noise, len(results))


def rung_replicates(rungs: Rungs, members: int, rung: int | None = None) -> int:
    """How many of a rung's ``members`` candidates are trained again with the next seed: the
    rung's share of the search's replicates; at the top rung of a halving search (rules 2) as
    many as the full schedule replicates, since the formula's noise is measured there."""
    if not rungs.replicates or not members:
        return 0
    share = max(1, round(rungs.replicates * members / rungs.trials))
    if rungs.halving and rungs.rules >= 2 and rung == rungs.top:
        share = max(share, rungs.replicates)
    return min(members, share)


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

def promotion_order(results: Sequence[Trial], at_chance: bool = False) -> list[Trial]:
    """Every result, in the order successive halving promotes them: by Pareto front, each
    front thinned for coverage of log c against those before it; or, for a rung at chance
    (``at_chance``), by coverage of log c alone."""
    if at_chance:
        return spread_in_log_c(results, [], len(results))
    order: list[Trial] = []
    for front in pareto_fronts(results):
        order += spread_in_log_c(front, order, len(front))
    return order


def plan_rung(rungs: Rungs, rung: int, candidates: Sequence,
              known: Sequence[Trial]) -> list[PlannedTrial]:
    """The trials of ``rung``: every candidate at rung 0; at rung k > 0 the candidates promoted
    from rung k - 1's results in ``known`` (the store's rows), plus any already trained at rung
    k; at the top rung, topped up from the promotion order while its finished frontier has
    fewer than ``MIN_POINTS`` points. Search-seed trials first (by candidate), then the
    replicates."""
    images = rungs.images(rung)
    if rung == 0:
        members = list(range(len(candidates)))
    else:
        below = [t for t in known if t.rung == rung - 1 and t.seed == rungs.seed
                 and t.candidate < len(candidates)]
        ok = [t for t in below if t.state is TrialState.OK and t.top1 is not None]
        count = max(math.ceil(len(below) / rungs.eta), min(rungs.min_rung, len(below)))
        order = [t.candidate for t in promotion_order(
            ok, rung_at_chance(rungs, ok, known, rung - 1))]
        here = {t.candidate: t for t in known if t.rung == rung and t.seed == rungs.seed
                and t.candidate < len(candidates)}
        # A rung once planned keeps its members (a resumed search promotes nothing new); a
        # search grown with more candidates promotes again, keeping what was trained.
        chosen = set(here) if len(here) >= count else set(order[:count]) | set(here)
        if rung == rungs.top and rungs.rules >= 2:
            chosen |= set(_top_up(order + _lower_orders(rungs, known, rung - 1, candidates),
                                  chosen, here))
        members = sorted(chosen)
    count = rung_replicates(rungs, len(members), rung)
    replicated = set(members[:count])
    if rung > 0 and rungs.rules >= 2:  # replicates once planned stay planned (a top-up
        # may come before them by index)
        stored = {t.candidate for t in known if t.rung == rung and t.seed == rungs.seed + 1
                  and t.candidate in set(members)}
        replicated = stored if len(stored) >= count else replicated | stored
    plan = [PlannedTrial(i, rungs.seed, candidates[i], rung, images) for i in members]
    plan += [PlannedTrial(i, rungs.seed + 1, candidates[i], rung, images)
             for i in members if i in replicated]
    return plan


def _lower_orders(rungs: Rungs, known: Sequence[Trial], rung: int,
                  candidates: Sequence) -> list[int]:
    """The promotion orders of the rungs below ``rung``, nearest first: where a top-up looks
    once every candidate of the rung below has reached the top."""
    order: list[int] = []
    for k in range(rung - 1, -1, -1):
        ok = [t for t in known if t.rung == k and t.seed == rungs.seed
              and t.candidate < len(candidates) and t.state is TrialState.OK
              and t.top1 is not None]
        order += [t.candidate for t in promotion_order(ok, rung_at_chance(rungs, ok, known, k))
                  if t.candidate not in order]
    return order


def _top_up(order: list[int], chosen: set[int], here: dict[int, Trial]) -> list[int]:
    """Candidates to add to the top rung: none while any of ``chosen`` is unfinished there
    (``here``: its stored trials); else the next ``MIN_POINTS - frontier`` of ``order`` not
    chosen, when its frontier is short of a formula's points."""
    if any(c not in here or here[c].state is TrialState.PENDING for c in chosen):
        return []
    frontier = pareto_frontier([here[c] for c in chosen])
    missing = MIN_POINTS - len(frontier)
    fresh = list(dict.fromkeys(c for c in order if c not in chosen))
    return fresh[:max(missing, 0)]
