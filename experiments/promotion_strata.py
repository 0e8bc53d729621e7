"""A search whose first promotion keeps high and low resolutions alike: an experiment.

    python experiments/promotion_strata.py FIT_ARGS...

Runs ``tinyformula fit FIT_ARGS...`` with one change to successive halving's promotion, in
this process only: at rung 0, the candidates are split at the median log r into a low and a
high stratum, each stratum is ordered as the package orders a rung (Pareto fronts, thinned in
log c: ``tinyformula.sweep.halving.promotion_order``), and the two orders are interleaved, so
rung 1 receives as many high-resolution candidates as low ones. Later rungs promote as the
package does.

Why: from rung 0 (1,820 images) to rung 1, a candidate gains 5-6 points more per unit of log r
the higher its r (``experiments/results/surrogate_rungs.md``), so rung 0's Pareto order holds
high resolutions back. MobileNetV2's seed-2 search ended with 3 of its 9 top-rung networks near
c = 0.5 above r = 1.1 (seed 1: 6 of 7), and its formula stayed at 30 px there on two
processors. Experiments, not defaults: a folder written here is a run like any other, and
``tinyformula fit`` on it again (without this script) would promote by the package's rule.
"""

from __future__ import annotations

import math
import sys


def stratified(original):
    """``original`` (the package's promotion order) with rung 0 split by r (see above)."""

    def promotion_order(results, at_chance: bool = False):
        if at_chance or len(results) < 4 or any(t.rung != 0 for t in results):
            return original(results, at_chance)
        logs = sorted(math.log(t.config.r) for t in results)
        middle = logs[len(logs) // 2]
        low = original([t for t in results if math.log(t.config.r) < middle])
        high = original([t for t in results if math.log(t.config.r) >= middle])
        order = []
        for i in range(max(len(low), len(high))):
            order += [side[i] for side in (high, low) if i < len(side)]
        return order

    return promotion_order


def main() -> None:
    import tinyformula.sweep.halving as halving
    from tinyformula.cli import main as cli

    halving.promotion_order = stratified(halving.promotion_order)
    sys.exit(cli(["fit", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
