"""Tiny Formula against the inverted giant formula at equal FLOPs, on Fashion-MNIST.

    python experiments/tiny_vs_giant.py [--train-size 16384] [--seeds 3] [--workers 2]
                                        [--formula runs/search/formula.json]

The paper's headline comparison (its Table 2 / Figure 1) at this machine's scale. At each
budget c in {0.5, 0.25, 0.13, 0.06} (FLOPs relative to EfficientNet-B0 at 32 px, 10 classes)
it builds

* **tiny**: the built-in formula (fitted on the published TinyNet A-E, i.e. ImageNet's),
  ``TinyFormula.builtin().recommend(c, num_classes=10, resolution_base=32)``;
* **giant**: EfficientNet's compound formula inverted, ``solve_giant`` (largest phi that fits,
  then the same width solver, so both land within 2% below c);
* **fitted** (with ``--formula``): a formula fitted by ``tinyformula fit`` on this data,

trains each with the same recipe (one epoch over ``--train-size`` training images, SGD) with
every seed, scores it on 2,000 images held out from the training split, and reports mean +- std
top-1 and the difference tiny - giant with its seed-paired std. Whatever the sign.

Takes about 6 minutes on a 2-core CPU with the defaults (3 seeds: 24 models, 2 worker
processes), 11 minutes with ``--seeds 5`` (40 models), measured with the CPU shared with another
two-process job.
Writes ``experiments/results/tiny_vs_giant.md``, ``tiny_vs_giant.png`` and every single run
in ``tiny_vs_giant_runs.csv``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, VAL_SIZE, provenance, run_jobs, save_figure, write_csv  # noqa: E402

BUDGETS = (0.5, 0.25, 0.13, 0.06)


def configurations(formula_path: str | None) -> list[dict]:
    """Every (budget, formula) configuration, solved exactly as ``tinyformula compare`` does."""
    from tinyformula import TinyFormula

    formulas = {"tiny": TinyFormula.builtin("efficientnet_b0")}
    if formula_path:
        formulas["fitted"] = TinyFormula.load(formula_path)
    rows = []
    for c in BUDGETS:
        for name, formula in formulas.items():
            rec = formula.recommend(c, num_classes=10, resolution_base=32)
            rows.append({"c": c, "formula": name, "r": rec.r, "d": rec.d, "w": rec.w,
                         "c_achieved": rec.c})
        giant = formulas["tiny"].giant(c, num_classes=10, resolution_base=32)
        rows.append({"c": c, "formula": "giant", "r": giant.r, "d": giant.d, "w": giant.w,
                     "c_achieved": giant.c, "phi": giant.phi})
    return rows


def summarise(results: list[dict]) -> list[dict]:
    """Mean and std of top-1 per (c, formula), and tiny - giant paired by seed."""
    by = {}
    for r in results:
        by.setdefault((r["c"], r["formula"]), []).append(r)
    table = []
    order = {"tiny": 0, "giant": 1, "fitted": 2}
    for (c, name), runs in sorted(by.items(), key=lambda kv: (-kv[0][0], order[kv[0][1]])):
        scores = [100 * r["top1"] for r in runs if r["status"] == "ok"]
        first = runs[0]
        row = {"c": c, "formula": name, "r": first["r"], "d": first["d"], "w": first["w"],
               "resolution": first["resolution"], "c_achieved": first["c_achieved"],
               "params": first["params"], "n": len(scores),
               "mean": statistics.fmean(scores) if scores else float("nan"),
               "std": statistics.stdev(scores) if len(scores) > 1 else float("nan"),
               "seconds": statistics.fmean(r["seconds"] for r in runs)}
        giant = {r["seed"]: r["top1"] for r in by.get((c, "giant"), []) if r["status"] == "ok"}
        if name != "giant":
            diffs = [100 * (r["top1"] - giant[r["seed"]]) for r in runs
                     if r["status"] == "ok" and r["seed"] in giant]
            row["diff"] = statistics.fmean(diffs) if diffs else float("nan")
            row["diff_std"] = statistics.stdev(diffs) if len(diffs) > 1 else float("nan")
            row["wins"] = sum(d > 0 for d in diffs)
            row["pairs"] = len(diffs)
        table.append(row)
    return table


def markdown(table, args, seconds) -> str:
    lines = ["# Tiny Formula against the inverted giant formula (Fashion-MNIST)", "",
             provenance(sys.argv, seconds),
             f"Recipe: EfficientNet-B0 scaled by (r, d, w) at a 32 px base resolution, one epoch "
             f"over {args.train_size:,} Fashion-MNIST training images (SGD + Nesterov, cosine, "
             f"the search's trainer), seeds {', '.join(map(str, range(args.seeds)))} (the seed "
             f"fixes the image subset, order, augmentation and initial weights; both formulas "
             f"see the same ones); top-1 on {VAL_SIZE:,} images held out from the training "
             f"split, never the test set. **tiny** is the built-in formula (fitted on the "
             f"published TinyNet A-E: ImageNet's, 224 px), **giant** is EfficientNet's compound "
             f"scaling inverted; both widths are solved to land within 2% below c.", "",
             "| c | formula | r | d | w | px | c achieved | params | top-1 mean ± std (%) | "
             "minus giant (pp, paired by seed) | beats giant |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in table:
        diff = (f"{row['diff']:+.1f} ± {row['diff_std']:.1f}" if "diff" in row else "")
        wins = f"{row['wins']}/{row['pairs']}" if "wins" in row else ""
        lines.append(f"| {row['c']:g} | {row['formula']} | {row['r']:.3f} | {row['d']:.3f} | "
                     f"{row['w']:.3f} | {row['resolution']} | {row['c_achieved']:.4f} | "
                     f"{row['params'] / 1e6:.2f} M | {row['mean']:.1f} ± {row['std']:.1f} | "
                     f"{diff} | {wins} |")
    return "\n".join(lines) + "\n"


def figure(table, results):
    """Left: top-1 of each formula against c (mean +- std, single runs as dots, the two sides
    offset sideways so their bars do not hide each other). Right: the seed-paired difference."""
    from matplotlib.ticker import FixedLocator, NullLocator

    from tinyformula import new_figure

    fig = new_figure(12.5, 5.0)
    ax, diff_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    styles = {"tiny": ("#1f77b4", "o", "Tiny Formula (built-in, ImageNet's)", 0.97),
              "giant": ("#d62728", "s", "inverted giant formula", 1.03),
              "fitted": ("#2ca02c", "^", "formula fitted on this data", 1.0)}
    for name, (colour, marker, label, shift) in styles.items():
        rows = [r for r in table if r["formula"] == name]
        if not rows:
            continue
        ax.errorbar([r["c"] * shift for r in rows], [r["mean"] for r in rows],
                    yerr=[r["std"] for r in rows], color=colour, marker=marker, ms=7, capsize=4,
                    lw=1.8, label=f"{label}: mean ± std")
        runs = [r for r in results if r["formula"] == name and r["status"] == "ok"]
        ax.scatter([r["c"] * shift * 1.012 for r in runs], [100 * r["top1"] for r in runs],
                   color=colour, marker=marker, s=14, alpha=0.4, zorder=1)
        if name != "giant":
            diff_ax.errorbar([r["c"] * shift for r in rows], [r["diff"] for r in rows],
                             yerr=[r["diff_std"] for r in rows], color=colour, marker=marker,
                             ms=7, capsize=4, lw=0, elinewidth=1.8,
                             label=f"{label.split(' (')[0]} minus giant")
    diff_ax.axhline(0, color="black", lw=1)
    budgets = sorted({r["c"] for r in table})
    for axis in (ax, diff_ax):
        axis.set_xscale("log")
        axis.xaxis.set_major_locator(FixedLocator(budgets))
        axis.xaxis.set_minor_locator(NullLocator())
        axis.set_xticklabels([f"{c:g}" for c in budgets])
        axis.set_xlim(budgets[0] / 1.25, budgets[-1] * 1.25)
        axis.set_xlabel("budget c: FLOPs relative to EfficientNet-B0 at 32 px (log scale)")
        axis.grid(True, which="major", alpha=0.3)
    ax.set_ylabel(f"top-1 (%) on {VAL_SIZE:,} images held out from the training split")
    ax.legend(fontsize=8, loc="lower right")
    diff_ax.set_ylabel("top-1 difference (percentage points), paired by seed")
    diff_ax.legend(fontsize=8, loc="best")
    diff_ax.set_title("above 0: the formula beats giant", fontsize=9)
    seeds = max(r["n"] for r in table)
    ax.set_title(f"Equal FLOPs, Fashion-MNIST, {seeds} seeds each (dots: single runs)",
                 fontsize=9)
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=16384)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--formula", default=None,
                        help="also test a formula fitted by 'tinyformula fit' (formula.json)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.seeds < 3:
        parser.error("--seeds must be at least 3: one seed cannot tell a formula from noise")

    start = time.perf_counter()
    configs = configurations(args.formula)
    # Largest budgets first, so the two workers finish together.
    jobs = [{**config, "seed": seed, "train_size": args.train_size, "val_size": VAL_SIZE}
            for config in configs for seed in range(args.seeds)]
    results = list(run_jobs(jobs, args.workers))
    table = summarise(results)
    seconds = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(table, args, seconds)
    (args.out / "tiny_vs_giant.md").write_text(text)
    write_csv(results, args.out / "tiny_vs_giant_runs.csv")
    save_figure(figure(table, results), args.out / "tiny_vs_giant.png")
    print(text)


if __name__ == "__main__":
    main()
