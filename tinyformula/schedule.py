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
images (plus the floor and the replicates). The fidelity is the number of training images: rung k trains on
``round(train_size / eta**(K - k))`` images for ``epochs`` passes (a seed-fixed subset; the
images of a smaller rung are a prefix of a larger one's), where K is the largest number of
halvings that keeps the smallest rung at or above ``min_images`` (default
``train_size x epochs / eta**2``: three rungs).

A promoted candidate is retrained from scratch on its rung's budget, not continued from the
rung below: the trainer's learning rate follows one warm-up-and-cosine cycle, so a run cut short
is not the beginning of a longer one; each trial stays one independent, deterministic job (no
checkpoint to store or move between workers). Continuing was measured in
experiments/bench_halving.py and looked promising but not clearly better (3 candidates, one
seed; experiments/results/halving.md).

Replicates (the search seed + 1) measure the seed-to-seed noise at every rung: a rung with n
candidates replicates its first ``round(replicates x n / trials)`` (at least one) by candidate
index, the same share of the rung as the full schedule replicates of the search.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from .errors import TinyFormulaError
from .trial import PlannedTrial, Trial, TrialState
from .validate import POSITIVE_INT, Real, check

SCHEDULES = ("full", "halving")
ETA = Real(2, None, why="each rung keeps 1/eta of the candidates and trains eta x longer")


# -- rungs -------------------------------------------------------------------------------------

def rung_train_sizes(train_size: int, epochs: int, eta: float,
                     min_images: int) -> tuple[int, ...]:
    """Training images per epoch at each rung, smallest first; the last is ``train_size``."""
    full = train_size * epochs
    halvings = 0
    while full / eta ** (halvings + 1) >= min_images * (1 - 1e-12):
        halvings += 1
    return tuple(round(train_size / eta ** (halvings - k)) for k in range(halvings + 1))


def check_halving(config):
    """``config`` (a SearchConfig with sizes resolved) with ``eta`` and ``min_images`` checked
    and ``min_images`` filled in; a schedule with fewer than two rungs, a rung above the full
    budget or a rung too small to train is refused."""
    eta = float(check("--eta", config.eta, ETA))
    check("min_rung", config.min_rung, POSITIVE_INT)
    full = config.train_size * config.epochs
    min_images = math.floor(full / eta ** 2) if config.min_images is None else config.min_images
    min_images = check("--min-images", min_images, POSITIVE_INT)
    if min_images > full:
        raise TinyFormulaError(f"--min-images {min_images:,} is above the full budget "
                               f"({config.train_size:,} images x {config.epochs} epoch(s) = "
                               f"{full:,}): no rung may train longer than the full schedule")
    sizes = rung_train_sizes(config.train_size, config.epochs, eta, min_images)
    if len(sizes) < 2:
        raise TinyFormulaError(f"--min-images {min_images:,} leaves a single rung (the full "
                               f"budget {full:,} / eta {eta:g} is below it): lower --min-images "
                               f"or use --schedule full")
    if sizes[0] < 2:
        raise TinyFormulaError(f"--min-images {min_images:,} makes the smallest rung train on "
                               f"{sizes[0]} image(s) per epoch; a batch needs 2")
    return replace(config, eta=eta, min_images=min_images)


def rung_replicates(config, members: int) -> int:
    """How many of a rung's ``members`` candidates are trained again with the next seed."""
    if not config.replicates or not members:
        return 0
    return min(members, max(1, round(config.replicates * members / config.trials)))


# -- promotion ---------------------------------------------------------------------------------

def _dominates(a: Trial, b: Trial) -> bool:
    return (a.config.c <= b.config.c and a.top1 >= b.top1
            and (a.config.c < b.config.c or a.top1 > b.top1))


def pareto_ranks(results: Sequence[Trial]) -> list[list[Trial]]:
    """Non-dominated sorting over (c lower, top-1 higher): the fronts, best first, each by c."""
    remaining, fronts = list(results), []
    while remaining:
        front = [t for t in remaining if not any(_dominates(o, t) for o in remaining)]
        fronts.append(sorted(front, key=lambda t: (t.config.c, -t.top1, t.candidate)))
        remaining = [t for t in remaining if t not in front]
    return fronts


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
    for front in pareto_ranks(results):
        room = count - len(promoted)
        if room <= 0:
            break
        promoted += front if len(front) <= room else spread_in_log_c(front, promoted, room)
    return sorted(promoted, key=lambda t: t.candidate)


# -- planning ----------------------------------------------------------------------------------

def plan_rung(config, rung: int, candidates: Sequence, known: Sequence[Trial]) -> list[PlannedTrial]:
    """The trials of ``rung``: every candidate at rung 0; at rung k > 0 the candidates promoted
    from rung k - 1's results in ``known`` (the store's rows), plus any already trained at rung
    k. Search-seed trials first (by candidate), then the replicates."""
    images = config.rung_train_sizes[rung] * config.epochs
    if rung == 0:
        members = list(range(len(candidates)))
    else:
        below = [t for t in known if t.rung == rung - 1 and t.seed == config.seed
                 and t.candidate < len(candidates)]
        ok = [t for t in below if t.state is TrialState.OK and t.top1 is not None]
        count = max(math.ceil(len(below) / config.eta), min(config.min_rung, len(below)))
        chosen = {t.candidate for t in promote(ok, count)}
        chosen |= {t.candidate for t in known if t.rung == rung and t.seed == config.seed
                   and t.candidate < len(candidates)}
        members = sorted(chosen)
    plan = [PlannedTrial(i, config.seed, candidates[i], rung, images) for i in members]
    plan += [PlannedTrial(i, config.seed + 1, candidates[i], rung, images)
             for i in members[:rung_replicates(config, len(members))]]
    return plan


# -- fidelity ----------------------------------------------------------------------------------

def _noise(pairs: list[float]) -> dict:
    if not pairs:
        return {}
    return {"pairs": len(pairs), "mean_abs_diff": sum(pairs) / len(pairs),
            "max_abs_diff": max(pairs)}


def seed_noise(trials: Sequence[Trial], rung: int | None = None) -> dict:
    """Top-1 differences between the two seeds of each replicated candidate (at ``rung``, or
    at every rung, each pair within its rung)."""
    runs: dict[tuple[int, int], dict[int, float]] = {}
    for t in trials:
        if t.state is TrialState.OK and t.top1 is not None and rung in (None, t.rung):
            runs.setdefault((t.candidate, t.rung), {})[t.seed] = t.top1
    return _noise([abs(a - b) for seeds in runs.values() if len(seeds) == 2
                   for a, b in [tuple(seeds.values())]])


def _spearman(x: list[float], y: list[float]) -> float | None:
    if len(x) < 3:
        return None
    import pandas as pd

    value = pd.Series(x).corr(pd.Series(y), method="spearman")
    return None if math.isnan(value) else float(value)


def rung_pairs(trials: Sequence[Trial], seed: int, rung: int) -> list[tuple[Trial, Trial]]:
    """(rung k result, rung k+1 result) of each candidate finished ok at both, search seed."""
    def ok_at(k):
        return {t.candidate: t for t in trials if t.rung == k and t.seed == seed
                and t.state is TrialState.OK and t.top1 is not None}
    low, high = ok_at(rung), ok_at(rung + 1)
    return [(low[c], high[c]) for c in sorted(set(low) & set(high))]


def fidelity_report(trials: Sequence[Trial], config) -> dict:
    """How well each rung ranked the candidates the next one re-trained, and what it cost.

    ``rungs``: per rung, the images per trial, the trials planned and finished ok, the seed
    noise of its replicates, and its compute (training images, images x forward FLOPs, and
    worker-seconds). ``transitions``: per pair of consecutive rungs, over the promoted
    candidates, Spearman's rank correlation of their top-1 and how the frontier changed
    (``kept``: frontier points at both rungs; ``left``: on rung k's frontier of the promoted,
    not on rung k+1's; ``entered``: the reverse).
    """
    from .pareto import pareto_frontier

    rungs = []
    for k, size in enumerate(config.rung_train_sizes):
        at = [t for t in trials if t.rung == k]
        done = [t for t in at if t.state is not TrialState.PENDING]
        rungs.append({
            "rung": k, "images": size * config.epochs,
            "candidates": sum(t.seed == config.seed for t in at),
            "replicates": sum(t.seed != config.seed for t in at),
            "ok": sum(t.state is TrialState.OK for t in at),
            "noise": seed_noise(at),
            "compute": {"images": sum(t.images or 0 for t in done),
                        "image_flops": sum((t.images or 0) * t.config.flops for t in done),
                        "seconds": sum(t.seconds or 0.0 for t in done)}})
    transitions = []
    for k in range(len(rungs) - 1):
        pairs = rung_pairs(trials, config.seed, k)
        if not pairs:
            continue
        before = {t.candidate for t in pareto_frontier([a for a, _ in pairs])}
        after = {t.candidate for t in pareto_frontier([b for _, b in pairs])}
        transitions.append({
            "from": k, "to": k + 1, "promoted": len(pairs),
            "spearman": _spearman([a.top1 for a, _ in pairs], [b.top1 for _, b in pairs]),
            "kept": len(before & after), "left": len(before - after),
            "entered": len(after - before)})
    total = {key: sum(r["compute"][key] for r in rungs)
             for key in ("images", "image_flops", "seconds")}
    return {"schedule": config.schedule, "eta": config.eta if config.schedule == "halving"
            else None, "rungs": rungs, "transitions": transitions, "compute": total}
