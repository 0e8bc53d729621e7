"""How faithful a search's short schedules are: the seed-to-seed noise of each rung, and how
well each rung ranked the candidates the next one re-trained (successive halving's fidelity)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..core.numeric import spearman
from ..execution.jobs import TrialState
from .halving import Rungs
from .noise import seed_noise
from .pareto import pareto_frontier
from .trials import Trial


def rung_pairs(trials: Sequence[Trial], seed: int, rung: int) -> list[tuple[Trial, Trial]]:
    """(rung k result, rung k+1 result) of each candidate finished ok at both, search seed."""
    def ok_at(k):
        return {t.candidate: t for t in trials if t.rung == k and t.seed == seed
                and t.state is TrialState.OK and t.top1 is not None}
    low, high = ok_at(rung), ok_at(rung + 1)
    return [(low[c], high[c]) for c in sorted(set(low) & set(high))]


def fidelity_report(trials: Sequence[Trial], rungs: Rungs) -> dict:
    """How well each rung ranked the candidates the next one re-trained, and what it cost.

    ``rungs``: per rung, the images per trial, the trials planned and finished ok, the seed
    noise of its replicates, and its compute (training images, images x forward FLOPs, and
    worker-seconds). ``transitions``: per pair of consecutive rungs, over the promoted
    candidates, Spearman's rank correlation of their top-1 and how the frontier changed
    (``kept``: frontier points at both rungs; ``left``: on rung k's frontier of the promoted,
    not on rung k+1's; ``entered``: the reverse).
    """
    per_rung: list[dict] = []
    for k in range(len(rungs.train_sizes)):
        at = [t for t in trials if t.rung == k]
        done = [t for t in at if t.state is not TrialState.PENDING]
        per_rung.append({
            "rung": k, "images": rungs.images(k),
            "candidates": sum(t.seed == rungs.seed for t in at),
            "replicates": sum(t.seed != rungs.seed for t in at),
            "ok": sum(t.state is TrialState.OK for t in at),
            "noise": seed_noise(at),
            "compute": {"images": sum(t.images or 0 for t in done),
                        "image_flops": sum((t.images or 0) * t.config.flops for t in done),
                        "seconds": sum(t.seconds or 0.0 for t in done)}})
    transitions = []
    for k in range(len(per_rung) - 1):
        pairs = rung_pairs(trials, rungs.seed, k)
        if not pairs:
            continue
        before = {t.candidate for t in pareto_frontier([a for a, _ in pairs])}
        after = {t.candidate for t in pareto_frontier([b for _, b in pairs])}
        transitions.append({
            "from": k, "to": k + 1, "promoted": len(pairs),
            "spearman": _rank_correlation([a.top1 for a, _ in pairs],
                                          [b.top1 for _, b in pairs]),
            "kept": len(before & after), "left": len(before - after),
            "entered": len(after - before)})
    total = {key: sum(r["compute"][key] for r in per_rung)
             for key in ("images", "image_flops", "seconds")}
    return {"schedule": "halving" if rungs.halving else "full",
            "eta": rungs.eta if rungs.halving else None, "rungs": per_rung,
            "transitions": transitions, "compute": total}



def _rank_correlation(x: list[float], y: list[float]) -> float | None:
    """Spearman's rho of at least three pairs; None when undefined."""
    if len(x) < 3:
        return None
    value = spearman(x, y)
    return None if math.isnan(value) else value
