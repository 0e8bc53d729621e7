"""How well the idle-CPU time estimate (``tinyformula/sweep/estimate.py``) predicts trainings.

    python experiments/time_estimate.py SOURCE [SOURCE ...]

Each ``SOURCE`` is a run folder (its ``trials.csv`` and the search's scoring size) or a CSV of
trainings with columns ``flops, d, seconds`` and ``images`` or ``train_size`` (and
``val_size``, else 2,000 scored images, as ``experiments/_common.py`` scores). Prints, per
source, the measured seconds over the estimate (10th, 50th and 90th percentiles) for the
estimate as shipped, for the FLOP-only estimate it replaced, and for constants refitted here
(non-negative least squares on relative error over every source); and the refitted constants.
Trainings must have run as the search runs them (one thread each, as many at once as cores)
on an otherwise idle machine for the figures to mean what the estimate says.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

OLD_FLOPS_PER_S, OLD_OVERHEAD_S = 2.5e10, 0.5      # the estimate before 0.4.1


def load(source: Path):
    import pandas as pd

    if source.is_dir():
        from tinyformula import load_run

        table = pd.read_csv(source / "trials.csv")
        table["scored"] = load_run(source).config.val_size
    else:
        table = pd.read_csv(source)
        table["scored"] = table["val_size"] if "val_size" in table else 2000
        if "images" not in table:
            table["images"] = table["train_size"]
    table = table[table["status"] == "ok"]
    return table.assign(source=source.name)[["source", "flops", "d", "images", "scored",
                                             "seconds"]]


def main() -> None:
    import numpy as np
    import pandas as pd
    from scipy.optimize import nnls

    from tinyformula.sweep import estimate

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sources", nargs="+", type=Path)
    args = parser.parse_args()
    table = pd.concat([load(source) for source in args.sources], ignore_index=True)
    passed = estimate.images_passed(table["images"], table["scored"])
    terms = np.c_[table["flops"] * passed, passed, passed * table["d"], np.ones(len(table))]
    shipped = terms @ [1 / estimate.FLOPS_PER_S, estimate.SECONDS_PER_IMAGE,
                       estimate.SECONDS_PER_IMAGE_DEPTH, estimate.OVERHEAD_S]
    old = terms @ [1 / OLD_FLOPS_PER_S, 0, 0, OLD_OVERHEAD_S]
    seconds = table["seconds"].to_numpy()
    coef, _ = nnls(terms / seconds[:, None], np.ones(len(table)))
    refitted = terms @ coef
    print(f"{len(table)} trainings from {len(args.sources)} source(s); measured / estimated "
          f"seconds, 10th / 50th / 90th percentile:")
    print(f"{'source':<32} {'n':>4}  {'shipped':>16}  {'FLOP-only (old)':>16}  "
          f"{'refitted':>16}")
    for name, rows in table.groupby("source", sort=False):
        index = rows.index.to_numpy()
        cells = ["/".join(f"{q:.2f}" for q in np.percentile(seconds[index] / est[index],
                                                            [10, 50, 90]))
                 for est in (shipped, old, refitted)]
        print(f"{name[:32]:<32} {len(rows):>4}  {cells[0]:>16}  {cells[1]:>16}  {cells[2]:>16}")
    flops = f"{1 / coef[0]:.3g}" if coef[0] > 0 else "inf"
    print(f"refitted: FLOPS_PER_S = {flops}, SECONDS_PER_IMAGE = {coef[1]:.3g}, "
          f"SECONDS_PER_IMAGE_DEPTH = {coef[2]:.3g}, OVERHEAD_S = {coef[3]:.3g}")


if __name__ == "__main__":
    sys.exit(main())
