"""The seed-to-seed noise of a search's trials: top-1 differences between the two seeds of each
replicated candidate (the one home of that measurement: the fidelity report, the formula's fit
and successive halving's promotions all read it here)."""

from __future__ import annotations

from collections.abc import Sequence

from ..execution.jobs import TrialState
from .trials import Trial


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
