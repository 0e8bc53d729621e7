"""Random models at one budget: which of resolution, depth and width matter (paper Figure 2).

    python experiments/random_at_budget.py [--c 0.25] [--models 36] [--train-size 6144]
                                           [--replicates 4] [--workers 2]

Draws ``--models`` EfficientNet-B0 mutations whose FLOPs land within 3% of c (32 px base,
10 classes): r and d log-uniform in [0.25, 4], w solved so the FLOPs fit (the search's
``budgeted`` sampler, rejecting w outside [0.25, 4]; a draw that builds the same network as an
earlier one is skipped); trains each with one recipe and one seed
(common random numbers: every model sees the same images, order and augmentation), scored on
2,000 images held out from Fashion-MNIST's training split. The first ``--replicates`` models
are trained again with the next seed to show how large the noise is. Reports Spearman's rank
correlation of top-1 with r, d and w, and the best and worst models.

Takes about 5 minutes on a 2-core CPU with the defaults (40 trainings, 2 worker processes),
measured with the CPU shared with another two-process job.
Writes ``experiments/results/random_at_budget.md``, ``random_at_budget.png`` and every single
run in ``random_at_budget_runs.csv``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, VAL_SIZE, provenance, run_jobs, save_figure, write_csv  # noqa: E402

TOLERANCE = 0.03


def candidates(c: float, n: int, seed: int) -> list[dict]:
    """The first n *distinct* networks the sampler draws. At 32 px several r give the same
    input size (r = 0.2765 and 0.2788 are both 8 px) and d rounds per stage, so two draws can
    build the very same network; counting it twice would weigh it twice in the correlations."""
    from tinyformula import Yardstick, plan_candidates

    planned = plan_candidates(Yardstick("efficientnet_b0", num_classes=10, resolution_base=32),
                              3 * n, sampler="budgeted",
                              c_range=(c * (1 - TOLERANCE), c * (1 + TOLERANCE)), seed=seed)
    chosen, seen = [], set()
    for p in planned:
        key = (p.resolution, p.flops, p.params)
        if key not in seen and len(chosen) < n:
            seen.add(key)
            chosen.append({"index": p.index, "r": p.r, "d": p.d, "w": p.w, "c": p.c})
    return chosen


def spearman(x, y) -> float:
    import pandas as pd

    return float(pd.Series(list(x)).rank().corr(pd.Series(list(y)).rank()))


def figure(main, args):
    from tinyformula import log_axis, new_figure

    fig = new_figure(13.5, 4.6)
    axes = fig.subplots(1, 3, sharey=True)
    names = {"r": "resolution multiplier r (input int(32·r) px)", "d": "depth multiplier d",
             "w": "width multiplier w"}
    points = None
    for ax, key in zip(axes, ("r", "d", "w")):
        points = ax.scatter([m[key] for m in main], [100 * m["top1"] for m in main],
                            c=[m["params"] / 1e6 for m in main], cmap="viridis",
                            s=40, edgecolors="none")
        log_axis(ax, "x")
        ax.set_xlabel(f"{names[key]} (log scale)")
        rho = spearman([m[key] for m in main], [m["top1"] for m in main])
        ax.set_title(f"Spearman ρ(top-1, {key}) = {rho:+.2f}", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel(f"top-1 (%) on {VAL_SIZE:,} held-out training images")
    bar = fig.colorbar(points, ax=axes, pad=0.01, shrink=0.9)
    bar.set_label("parameters (M)")
    fig.suptitle(f"{len(main)} random EfficientNet-B0 mutations at c = {args.c:g} ± 3% "
                 f"(Fashion-MNIST, 32 px base, one epoch over {args.train_size:,} images, "
                 f"seed 0 for all)", fontsize=10)
    return fig


def markdown(main, replicates, args, seconds) -> str:
    rho = {key: spearman([m[key] for m in main], [m["top1"] for m in main])
           for key in ("r", "d", "w")}
    rho["resolution"] = spearman([m["resolution"] for m in main], [m["top1"] for m in main])
    rho["params"] = spearman([m["params"] for m in main], [m["top1"] for m in main])
    scores = [100 * m["top1"] for m in main]

    def between(a, b):
        return spearman([m[a] for m in main], [m[b] for m in main])

    gaps = [abs(100 * (a["top1"] - b["top1"])) for a, b in replicates]
    lines = [f"# Random models at c = {args.c:g}: which of r, d, w matter (Fashion-MNIST)", "",
             provenance(sys.argv, seconds),
             f"{len(main)} EfficientNet-B0 mutations with FLOPs within 3% of c = {args.c:g} "
             f"(relative to B0 at a 32 px base resolution, 10 classes): r and d log-uniform in "
             f"[0.25, 4], w solved to fit (the search's `budgeted` sampler, seed "
             f"{args.seed}; draws "
             f"building a network already drawn skipped). "
             f"Each trained for one epoch over {args.train_size:,} Fashion-MNIST training "
             f"images with seed 0 (the same images, order and augmentation for all), scored on "
             f"{VAL_SIZE:,} images held out from the training split.", "",
             f"Top-1 ranges from {min(scores):.1f}% to {max(scores):.1f}% (median "
             f"{statistics.median(scores):.1f}%).", ""]
    if gaps:
        lines += [f"Noise: {len(gaps)} models re-trained with seed 1 moved by "
                  f"{statistics.fmean(gaps):.1f} pp on average (at most {max(gaps):.1f} pp).", ""]
    lines += ["| Spearman ρ of top-1 with | r | d | w | input px | params |",
              "|---|---:|---:|---:|---:|---:|",
              f"| {len(main)} models | {rho['r']:+.2f} | {rho['d']:+.2f} | {rho['w']:+.2f} | "
              f"{rho['resolution']:+.2f} | {rho['params']:+.2f} |", "",
              "At a fixed budget the three multipliers are not independent (FLOPs grow about "
              "as r² d w²), so one multiplier's correlation partly reflects the others'. Among "
              "these models:", "",
              "| Spearman ρ between | r, d | r, w | d, w |", "|---|---:|---:|---:|",
              f"| {len(main)} models | {between('r', 'd'):+.2f} | {between('r', 'w'):+.2f} | "
              f"{between('d', 'w'):+.2f} |", "",
              "All models, best first:", "",
              "| rank | r | d | w | px | c | params | top-1 (%) |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for rank, m in enumerate(sorted(main, key=lambda m: -m["top1"]), 1):
        lines.append(f"| {rank} | {m['r']:.3f} | {m['d']:.3f} | {m['w']:.3f} | "
                     f"{m['resolution']} | {m['c']:.4f} | {m['params'] / 1e6:.2f} M | "
                     f"{100 * m['top1']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--c", type=float, default=0.25)
    parser.add_argument("--models", type=int, default=36)
    parser.add_argument("--train-size", type=int, default=6144)
    parser.add_argument("--replicates", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    start = time.perf_counter()
    drawn = candidates(args.c, args.models, args.seed)
    jobs = [{**m, "seed": 0, "train_size": args.train_size, "val_size": VAL_SIZE} for m in drawn]
    jobs += [{**m, "seed": 1, "train_size": args.train_size, "val_size": VAL_SIZE}
             for m in drawn[:args.replicates]]
    results = list(run_jobs(jobs, args.workers))
    failed = [r for r in results if r["status"] != "ok"]
    if failed:
        print(f"{len(failed)} trainings failed or diverged: {failed}", file=sys.stderr)
    main_runs = sorted((r for r in results if r["seed"] == 0 and r["status"] == "ok"),
                       key=lambda r: r["index"])
    by_index = {r["index"]: r for r in main_runs}
    replicates = [(by_index[r["index"]], r) for r in results
                  if r["seed"] == 1 and r["status"] == "ok" and r["index"] in by_index]
    seconds = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(main_runs, replicates, args, seconds)
    (args.out / "random_at_budget.md").write_text(text)
    write_csv(results, args.out / "random_at_budget_runs.csv")
    save_figure(figure(main_runs, args), args.out / "random_at_budget.png")
    print(text)


if __name__ == "__main__":
    main()
