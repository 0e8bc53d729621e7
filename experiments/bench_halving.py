"""Benchmark: Pareto-aware successive halving against the full-budget search, same candidates.

    python experiments/bench_halving.py [--trials 40] [--train-size 4096] [--longer 3]
                                        [--workers 2] [--out runs/bench-halving]

On Fashion-MNIST, the same candidates (the smoke preset's settings, ``--trials`` candidates x
``--train-size`` images) are searched twice, with ``--schedule full`` and ``--schedule
halving`` (eta 3, three rungs). Reported: the training compute of each (training images,
images x forward FLOPs, worker-seconds), the overlap of the two frontiers, both formulas at
c = 0.06, 0.13, 0.25, 0.5, and the top-1 of both formulas' configurations trained on a
``--longer`` x longer schedule with seeds 0 and 1. Then the warm-start question: for the
candidates of the top rung, the rung-1 network continued on the top rung's budget against the
same network trained from scratch. Writes experiments/results/halving.md and halving_runs.csv.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, provenance, run_jobs, write_csv  # noqa: E402

from tinyformula import search

BUDGETS = (0.06, 0.13, 0.25, 0.5)
SEEDS = (0, 1)


def warm_start(run, candidates: list[int], seed: int = 0) -> list[dict]:
    """Top-1 of each candidate's rung-1 network trained on, with a fresh warm-up-and-cosine
    cycle, (a) over the top rung's whole budget and (b) over only the images the top rung adds
    (other images: the seed + 7 subset), with ``train(..., model=)`` continuing the same module
    on one thread; the from-scratch numbers are the search's own top-rung rows."""
    import torch

    from tinyformula import Scale, TrainConfig, cached_dataset, get_base, train

    torch.set_num_threads(1)
    config, trials = run.config, run.trials
    low, high = config.rung_train_sizes[-2], config.rung_train_sizes[-1]
    data = cached_dataset(config.data, config.data_dir, config.val_size)
    base = get_base(config.base)
    rows = []
    for candidate in candidates:
        top = trials[(trials["candidate"] == candidate) & (trials["seed"] == seed)]
        scratch = top[top["rung"] == config.top_rung]["top1"].item()
        at_low = top[top["rung"] == config.top_rung - 1]["top1"].item()
        row = top.iloc[0]
        scale = Scale(row["r"], row["d"], row["w"])
        results = {}
        for name, images, second_seed in (("continued_full", high, seed),
                                          ("continued_rest", high - low, seed + 7)):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = base.build(scale, data.num_classes, data.resolution_base)
            for size, run_seed in ((low, seed), (images, second_seed)):
                result = train(data, base, scale, TrainConfig(train_size=size, epochs=1,
                                                              seed=run_seed, device="cpu"),
                               model=model)
            results[name] = result.top1
        rows.append({"candidate": candidate, "c": row["c"], "rung_low_top1": at_low,
                     "scratch_top1": scratch, **results})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--train-size", type=int, default=4096)
    parser.add_argument("--longer", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="runs/bench-halving")
    args = parser.parse_args()
    began = time.perf_counter()
    out = Path(args.out)
    common = dict(preset="smoke", trials=args.trials, train_size=args.train_size,
                  workers=args.workers, progress=False)
    runs, walls = {}, {}
    for schedule in ("full", "halving"):
        folder = out / schedule
        if not (folder / "formula.json").exists():
            shutil.rmtree(folder, ignore_errors=True)
        start = time.perf_counter()
        runs[schedule] = search("efficientnet_b0", "fashion-mnist", out=folder,
                                schedule=schedule, **common)
        walls[schedule] = time.perf_counter() - start
        print(f"{schedule}: {walls[schedule] / 60:.1f} min", file=sys.stderr, flush=True)
    halving = runs["halving"]

    compute = {name: run.fidelity["compute"] for name, run in runs.items()}
    frontiers = {name: set(run.frontier["candidate"]) for name, run in runs.items()}
    overlap = frontiers["full"] & frontiers["halving"]

    formulas = []
    jobs = []
    for c in BUDGETS:
        entry = {"c": c}
        for name, run in runs.items():
            rec = run.formula.recommend(c)
            entry[name] = {"r": rec.config.r, "d": rec.config.d, "w": rec.config.w,
                           "c": rec.config.c, "resolution": rec.config.resolution}
            for seed in SEEDS:
                jobs.append({"formula": name, "budget": c, "r": rec.config.r, "d": rec.config.d,
                             "w": rec.config.w, "seed": seed,
                             "train_size": args.train_size * args.longer})
        formulas.append(entry)
    long_rows = list(run_jobs(jobs, args.workers, val_size=2000))
    write_csv(long_rows, RESULTS / "halving_runs.csv")

    top = sorted(halving.trials[(halving.trials["rung"] == halving.config.top_rung)
                                & (halving.trials["seed"] == 0)]["candidate"])
    warm = warm_start(halving, top[:3])

    report = {"args": vars(args), "walls": walls, "compute": compute,
              "frontiers": {k: sorted(v) for k, v in frontiers.items()},
              "overlap": sorted(overlap), "formulas": formulas, "long": long_rows,
              "warm": warm, "fidelity": halving.fidelity,
              "noise": {name: run.seed_spread for name, run in runs.items()},
              "rungs": list(halving.config.rung_train_sizes)}
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    write_markdown(report, time.perf_counter() - began)


def _pct(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def write_markdown(report: dict, seconds: float) -> None:
    args, compute = report["args"], report["compute"]
    ratio = {k: compute["halving"][k] / compute["full"][k] for k in compute["full"]}
    lines = ["# Pareto-aware successive halving against the full-budget search", "",
             provenance(sys.argv, seconds), "",
             f"Same {args['trials']} candidates (smoke preset settings, budgeted sampler, seed 0, "
             f"efficientnet_b0 on Fashion-MNIST, 1,000 held-out training images). Full: every "
             f"candidate on {args['train_size']:,} images (1 epoch). Halving: eta 3, rungs of "
             f"{', '.join(f'{n:,}' for n in report['rungs'])} images; the frontier and formula "
             f"from the top rung. Replicates (seed 1) as the schedule plans them.", "",
             "## Training compute", "",
             "| | full | halving | halving / full |", "|---|---:|---:|---:|"]
    for key, label in (("images", "training images"), ("image_flops", "images x FLOPs"),
                       ("seconds", "worker-seconds")):
        lines.append(f"| {label} | {compute['full'][key]:,.4g} | {compute['halving'][key]:,.4g} "
                     f"| {ratio[key]:.1%} |")
    lines.append(f"| wall time (2 workers, shared CPU) | {report['walls']['full'] / 60:.1f} min "
                 f"| {report['walls']['halving'] / 60:.1f} min | "
                 f"{report['walls']['halving'] / report['walls']['full']:.1%} |")
    fr = report["frontiers"]
    lines += ["", "## Frontiers", "",
              f"Full-budget frontier: {len(fr['full'])} points (candidates {fr['full']}); "
              f"halving top-rung frontier: {len(fr['halving'])} points (candidates "
              f"{fr['halving']}); on both: {len(report['overlap'])} ({report['overlap']}).",
              "", "Halving's rungs (fidelity report):", "",
              "| rung | images | trials | seed noise (mean abs) | share of images |",
              "|---:|---:|---:|---:|---:|"]
    total = report["fidelity"]["compute"]["images"]
    for r in report["fidelity"]["rungs"]:
        noise = _pct(r["noise"].get("mean_abs_diff")) + (f" ({r['noise']['pairs']} pairs)"
                                                          if r["noise"] else "")
        lines.append(f"| {r['rung']} | {r['images']:,} | {r['candidates'] + r['replicates']} | "
                     f"{noise} | {r['compute']['images'] / total:.0%} |")
    for t in report["fidelity"]["transitions"]:
        rho = "-" if t["spearman"] is None else f"{t['spearman']:+.2f}"
        lines.append(f"\nRung {t['from']} -> {t['to']}: Spearman {rho} over {t['promoted']} "
                     f"promoted candidates; frontier kept {t['kept']}, left {t['left']}, "
                     f"entered {t['entered']}.")
    lines += ["", f"Seed noise of the full search: {report['noise']['full']}.", "",
              "## The two formulas", "",
              "| c | full r / d / w (px) | halving r / d / w (px) |", "|---:|---|---|"]
    for e in report["formulas"]:
        cells = [f"{e[k]['r']:.3f} / {e[k]['d']:.3f} / {e[k]['w']:.3f} ({e[k]['resolution']})"
                 for k in ("full", "halving")]
        lines.append(f"| {e['c']} | {cells[0]} | {cells[1]} |")
    lines += ["", f"## Their configurations on a {args['longer']}x longer schedule "
                  f"({args['train_size'] * args['longer']:,} images, 2,000 held-out images)", "",
              "| c | full: top-1 seed 0 / 1 (mean) | halving: top-1 seed 0 / 1 (mean) | "
              "halving - full |", "|---:|---|---|---:|"]
    diffs = []
    for c in BUDGETS:
        means, cells = {}, []
        for name in ("full", "halving"):
            tops = [r["top1"] for r in report["long"] if r["formula"] == name
                    and r["budget"] == c and r["top1"] is not None]
            means[name] = statistics.fmean(tops) if tops else float("nan")
            cells.append(" / ".join(_pct(t) for t in tops) + f" ({_pct(means[name])})")
        diffs.append(means["halving"] - means["full"])
        lines.append(f"| {c} | {cells[0]} | {cells[1]} | {100 * diffs[-1]:+.1f} |")
    pair_gaps = {}
    for r in report["long"]:
        pair_gaps.setdefault((r["formula"], r["budget"]), []).append(r["top1"])
    gaps = [abs(a - b) for v in pair_gaps.values() if len(v) == 2 and None not in v
            for a, b in [v]]
    mean_diff = 100 * statistics.fmean(diffs)
    lines += ["", f"Mean halving - full over the four budgets: {mean_diff:+.1f} "
                  f"points; seed-to-seed noise on the longer schedule (mean |seed 0 - seed 1|): "
                  f"{100 * statistics.fmean(gaps):.1f} points.", "",
              "## Warm start or retrain", "",
              "The top rung's candidates (seed 0): the rung-1 network (the first stage re-trains "
              "it exactly) trained on with a fresh warm-up-and-cosine cycle, against the "
              "search's from-scratch top-rung result.", "",
              "| candidate | c | rung-1 top-1 | scratch, top budget | continued, top budget "
              "| continued, only the added images |", "|---:|---:|---:|---:|---:|---:|"]
    for w in report["warm"]:
        lines.append(f"| {w['candidate']} | {w['c']:.3f} | {_pct(w['rung_low_top1'])} | "
                     f"{_pct(w['scratch_top1'])} | {_pct(w['continued_full'])} | "
                     f"{_pct(w['continued_rest'])} |")
    (RESULTS / "halving.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
