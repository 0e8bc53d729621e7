"""Weight initialisation: timm's EfficientNet init against ours, on the short schedule.

    PYTHONPATH=. python experiments/bench_init.py [--seeds 3] [--train-size 4096] [--workers 2]

Issue #10: ``build.py`` said it initialised "as in timm" but did not. Four initialisations, all
with BatchNorm weight 1, bias 0 and every bias 0:

* **timm**: timm's ``_init_weight_goog``: convolutions normal(0, sqrt(2 / fan_out)) with
  ``fan_out = k_h * k_w * out_channels // groups``; the classifier uniform within
  ``1 / sqrt(out_features)``;
* **current**: ``tinyformula.init_weights`` (defaults): torch's
  ``kaiming_normal_(mode="fan_out")``,
  whose fan-out ignores groups (a depthwise conv's std is sqrt(groups) times smaller: 0.083
  instead of 0.471 on B0's first one), and a classifier bound ``1 / sqrt(in_features)``;
* the two mixtures, to tell which part matters.

Each is trained with the search's short schedule (SGD + Nesterov, one epoch over
``--train-size`` Fashion-MNIST training images, ``experiments/_common.py``) on three
EfficientNet-B0 candidates (r, d, w) at a 32 px resolution base with seeds 0 .. ``--seeds``-1
(the seed fixes the images, their order, the augmentation and the initialisation's random
draws: every init sees the same ones), and scored on 2,000 images held out from the training
split. The best mean top-1 over candidates and seeds wins, unless it beats timm's by no more
than two standard errors of the seed-paired difference (then timm's, the documented reference).
The script also checks which candidate ``build``'s default draws the same weights as.

Takes about 2 minutes on an idle 2-core CPU with the defaults (36 models, 2 single-thread worker
processes); 5.5 minutes measured with the cores shared with other jobs. Writes
``experiments/results/init.md``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, VAL_SIZE, provenance, run_jobs  # noqa: E402
from torch import nn  # noqa: E402

import tinyformula

CANDIDATES = ((1.0, 1.0, 1.0), (0.5, 0.5, 0.5), (0.75, 1.0, 0.5))


def candidate_init(module: nn.Module, conv_fan_out_per_group: bool, classifier_fan: str) -> None:
    """One candidate: ``tinyformula.init_weights`` with these two choices."""
    tinyformula.init_weights(module, conv_fan_out_per_group, classifier_fan)


# name: (conv fan-out divided by groups, classifier bound's fan)
INITS = {
    "timm": (True, "out"),
    "current": (False, "in"),
    "timm conv, fan-in classifier": (True, "in"),
    "current conv, fan-out classifier": (False, "out"),
}


def initialised(scale, seed: int, options=None, num_classes: int = 10,
                resolution_base: int = 32):
    """EfficientNet-B0 at ``scale``, built and then initialised from ``seed`` by the package's
    default init (``options`` None) or by the candidate init ``options``."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = tinyformula.get_base("efficientnet_b0").build(scale, num_classes,
                                                              resolution_base)
        torch.manual_seed(seed)
        if options is None:
            tinyformula.init_weights(model)
        else:
            candidate_init(model, *options)
    return model


def default_init_name() -> str:
    """Which candidate the package's default init is: the one drawing the same weights."""
    import torch

    from tinyformula import Scale

    def weights(options=None):
        return list(initialised(Scale(0.5, 0.5, 0.5), 0, options).state_dict().values())

    default = weights()
    for name, options in INITS.items():
        candidate = weights(options)
        if all(torch.allclose(a.float(), b.float()) for a, b in zip(default, candidate)):
            return name
    return "none of these"


def train_with_init(job: dict) -> dict:
    """Train one job as the search trains a trial, its model initialised by the init it
    names (the same seed draws the same weights for every init's shapes)."""
    from dataclasses import replace

    from _common import trial_job, with_result

    from tinyformula import cached_dataset, train

    spec = trial_job(job, val_size=job.get("val_size", VAL_SIZE))
    data = cached_dataset(spec.data.name, spec.data.data_dir, spec.data.validation)
    model = initialised(spec.scale, job["seed"], INITS[job["init"]], data.num_classes,
                        spec.resolution_base)
    result = train(data, spec.base, spec.scale, replace(spec.train, threads=1),
                   resolution_base=spec.resolution_base, model=model)
    return with_result(job, result)


def summarise(results: list[dict]) -> tuple[list[dict], dict]:
    """Mean top-1 (%) of every init per candidate and overall, and the seed-paired differences
    (``paired(top1, a, b)``) of each init from timm's."""
    top1 = {(r["r"], r["d"], r["w"], r["seed"], r["init"]): 100 * r["top1"] for r in results
            if r["status"] == "ok"}
    rows = []
    for r, d, w in CANDIDATES:
        first = next(x for x in results if (x["r"], x["d"], x["w"]) == (r, d, w))
        row = {"r": r, "d": d, "w": w, "resolution": first["resolution"],
               "params": first["params"]}
        for init in INITS:
            row[init] = statistics.fmean(v for k, v in top1.items() if k[:3] == (r, d, w)
                                         and k[4] == init)
        rows.append(row)
    overall = {init: {"mean": statistics.fmean(v for k, v in top1.items() if k[4] == init),
                      "minus_timm": paired(top1, init, "timm")} for init in INITS}
    return rows, overall, top1


def paired(top1: dict, init: str, reference: str) -> tuple[float, float]:
    """Mean and standard error of ``init``'s top-1 minus ``reference``'s over every
    (candidate, seed) both trained."""
    runs = sorted({key[:4] for key in top1})
    differences = [top1[run + (init,)] - top1[run + (reference,)] for run in runs
                   if run + (init,) in top1 and run + (reference,) in top1]
    if len(differences) < 2:
        return statistics.fmean(differences) if differences else math.nan, math.nan
    return (statistics.fmean(differences),
            statistics.stdev(differences) / math.sqrt(len(differences)))


def choose(overall: dict) -> str:
    """The best mean, unless it beats timm's by no more than two standard errors: then timm."""
    best = max(overall, key=lambda init: overall[init]["mean"])
    difference, se = overall[best]["minus_timm"]
    if best != "timm" and not difference > 2 * se:
        return "timm"
    return best


def render(rows: list[dict], overall: dict, top1: dict, winner: str) -> str:
    names = list(INITS)
    lines = ["Top-1 (%), mean over seeds; in brackets: minus timm's (pp).", "",
             "| r | d | w | px | params | " + " | ".join(names) + " |",
             "|---:|---:|---:|---:|---:|" + "---:|" * len(names)]
    for row in rows:
        cells = [f"{row[n]:.1f}" if n == "timm" else f"{row[n]:.1f} ({row[n] - row['timm']:+.1f})"
                 for n in names]
        lines.append(f"| {row['r']:g} | {row['d']:g} | {row['w']:g} | {row['resolution']} | "
                     f"{row['params'] / 1e6:.2f} M | " + " | ".join(cells) + " |")
    lines.append("| **mean** | | | | | " + " | ".join(
        f"**{overall[n]['mean']:.1f}**" for n in names) + " |")
    for reference in dict.fromkeys(["timm", winner]):
        cells = []
        for n in names:
            difference, se = paired(top1, n, reference)
            cells.append("" if n == reference else f"{difference:+.1f} ± {se:.1f}")
        lines.append(f"| **minus {reference}** (pp, seed-paired, ± s.e.) | | | | | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    jobs = [{"r": r, "d": d, "w": w, "seed": seed, "init": init, "train_size": args.train_size,
             "val_size": VAL_SIZE}
            for (r, d, w) in CANDIDATES for seed in range(args.seeds) for init in INITS]
    start = time.perf_counter()
    results = list(run_jobs(jobs, args.workers, worker=train_with_init))
    seconds = time.perf_counter() - start
    rows, overall, top1 = summarise(results)
    winner, default = choose(overall), default_init_name()
    table = render(rows, overall, top1, winner)
    print(table)
    verdict = (f"Best by mean top-1 over {len(CANDIDATES)} candidates x {args.seeds} seeds, "
               f"timm's unless the best beats it by no more than two standard errors: "
               f"**{winner}**. the package's default init draws the same weights as: "
               f"**{default}**.")
    print(verdict)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "init.md").write_text("\n".join([
        "# Weight initialisation: timm's against ours (Fashion-MNIST)", "",
        provenance(sys.argv, seconds),
        f"Recipe: EfficientNet-B0 scaled by (r, d, w) at a 32 px resolution base, one epoch over "
        f"{args.train_size:,} Fashion-MNIST training images (SGD + Nesterov, cosine; the search's "
        f"short schedule), one torch thread a run, seeds {', '.join(map(str, range(args.seeds)))} "
        f"(the seed fixes the image subset, order, augmentation and the initialisation's random "
        f"draws); top-1 on {VAL_SIZE:,} images held out from the training split.", "",
        "Inits (all: BatchNorm weight 1, bias 0; every bias 0): **timm** is timm's "
        "``_init_weight_goog``: conv normal(0, sqrt(2 / fan_out)) with fan_out = k*k*out/groups, "
        "classifier uniform within 1/sqrt(out_features). **current** is ``build.py``'s init "
        "since the start: ``kaiming_normal_(mode='fan_out')``, whose fan_out = k*k*out ignores "
        "groups (a depthwise conv's std is sqrt(groups) times smaller), classifier within "
        "1/sqrt(in_features). The other two swap one of the two parts.", "",
        table, "", verdict, ""]))
    print(f"wrote {args.out / 'init.md'}")


if __name__ == "__main__":
    main()
