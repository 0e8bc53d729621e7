"""The final recipe, GhostNetV3's way, measured: plain, EMA, EMA + re-parameterisation, and
EMA + re-parameterisation + distillation from a teacher trained longer, at two budgets.

    python experiments/final_recipe.py [--formula PATH] [--budgets 0.06 0.25] [--seeds 2]
        [--train-size 16384] [--epochs 2] [--reparam 1] [--teacher-epochs 6] [--teacher-c 0.9]
        [--workers 2] [--work /work/runs/recipe/final_recipe] [--rounds 7] [--report-only]

At each budget c (FLOPs relative to EfficientNet-B0 at 32 px, 10 classes) the fitted
formula's model (``create_model(flops=c, formula=...)``) is trained with the final recipe
(``train_final``: SGD + Nesterov, warm-up then cosine, label smoothing 0.1, crops and flips,
no Mixup/CutMix) on the same ``--train-size`` Fashion-MNIST training images for ``--epochs``
epochs (equal images for every arm), every seed, five ways:

* **plain**: no EMA, raw weights saved;
* **ema**: a weight EMA (decay 0.999), EMA weights saved;
* **ema+rep**: and re-parameterised training (``reparam=--reparam`` k x k branches per
  depthwise and 1x1 convolution, a 1x1 depthwise branch beside k x k depthwise ones, a
  BatchNorm identity where shapes allow), folded into the plain network when saved;
* **ema+rep+kd[base]**: and distilled (T = 1, weight 0.5: the recipe's defaults,
  GhostNetV3's) from EfficientNet-B0 (r = d = w = 1) trained by ``base_teacher`` (what
  ``train --teacher base`` does) for ``--teacher-epochs`` epochs on the same images, seed 0;
* **ema+rep+kd**: the same, distilled from the formula's own network at ``--teacher-c``
  (default 0.9, the top of the default formula's fitted range) trained the same way. On these
  small images B0 itself learns slowly and scores below its students after 6 epochs; a network
  the formula chose for a larger budget is a teacher worth distilling from.

Top-1 of the saved weights on the official 10,000-image test split (final models; nothing is
chosen on it), means, spreads and seed-paired differences. Then, in one process with one
thread: each arm's training-step time per image, its arms interleaved (plus re-param with 2
and 3 branches); the folded model's latency next to the plain arm's (batch 1, one thread,
``measure_module_latency``, interleaved rounds); the ONNX export of the re-parameterised (KD)
model, its graph's multiply-adds against the cost model's and its top-1 against torch's on
the whole test split.

Each run trains in its own single-thread process (``--workers`` at a time) in a folder under
``--work``; running the script again continues unfinished runs and reuses finished ones.
``--report-only`` trains nothing: it reports the runs already finished under ``--work`` (listing
the missing ones and the command that finishes them), then times, measures and exports.
Writes ``experiments/results/final_recipe.md``, ``final_recipe_runs.csv`` and
``final_recipe.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, provenance, write_csv  # noqa: E402

ARMS = ("plain", "ema", "ema+rep", "ema+rep+kd[base]", "ema+rep+kd")
TEACHER_OF = {"ema+rep+kd[base]": "base", "ema+rep+kd": "formula"}   # a KD arm's teacher
# the zoo's entry: the default preset's seed-0 search on Fashion-MNIST, validated
DEFAULT_FORMULA = (Path(__file__).resolve().parents[1] / "tinyformula" / "formulas" / "zoo"
                   / "efficientnet_b0--fashion-mnist.json")
FALLBACK_FORMULA = RESULTS / "final_recipe_formula.json"
EMA = 0.999
BATCH = 128


def recipe(job: dict):
    from tinyformula import RecipeConfig

    arm = job["arm"]
    return RecipeConfig.of(epochs=job["epochs"], train_size=job["train_size"], seed=job["seed"],
                           batch_size=BATCH, threads=1, ema=None if arm == "plain" else EMA,
                           reparam=job["reparam"] if "rep" in arm else None)


def run_one(job: dict) -> dict:
    """Train one arm (or the teacher) in this worker process, one thread."""
    import torch

    from tinyformula import base_teacher, create_model, load_dataset, load_model, train_final

    torch.set_num_threads(1)
    data = load_dataset("fashion-mnist")
    if job["arm"] == "teacher" and job["teacher_from"] == "base":
        student = recipe({**job, "arm": "ema"})
        _, folder = base_teacher(data, "efficientnet_b0", 32, student, job["work"],
                                 epochs=job["teacher_epochs"],
                                 command="experiments/final_recipe.py (teacher)")
        return teacher_row(folder, "base")
    if job["arm"] == "teacher":   # the formula's network at teacher_c, trained as long
        model = create_model(flops=job["teacher_c"], formula=job["formula"], num_classes=10,
                             resolution_base=32, seed=0)
        train_final(data, model, job["out"],
                    recipe({**job, "arm": "ema", "epochs": job["teacher_epochs"]}),
                    command="experiments/final_recipe.py (formula teacher)")
        return teacher_row(job["out"], "formula")
    model = create_model(flops=job["c"], formula=job["formula"], num_classes=10,
                         resolution_base=32, seed=job["seed"])
    teacher = load_model(job["teacher"], "teacher") if job.get("teacher") else None
    card = train_final(data, model, job["out"], recipe(job), teacher=teacher,
                       teacher_path=job.get("teacher"),
                       command=f"experiments/final_recipe.py ({job['arm']})")
    return from_card(job, card)


def teacher_row(folder, kind: str) -> dict:
    card = json.loads((Path(folder) / "card.json").read_text())
    return {"arm": "teacher", "teacher_from": kind, "c": card["model"]["c"], "seed": 0,
            "resolution": card["model"]["resolution"], "top1": card["top1"],
            "train_seconds": card["train_seconds"], "seconds": card["seconds"],
            "images": card["data"]["train_images"] * card["recipe"]["epochs"],
            "epochs_done": len(card["epochs"]), "out": str(folder), "status": card["status"]}


def from_card(job: dict, card: dict) -> dict:
    """One run's row, from its card."""
    config = card["model"]
    images = job["train_size"] * job["epochs"] // BATCH * BATCH
    return {"arm": job["arm"], "c": job["c"], "seed": job["seed"], "r": config["r"],
            "d": config["d"], "w": config["w"], "resolution": config["resolution"],
            "c_achieved": config["c"], "flops": config["flops"], "params": config["params"],
            "top1": card["top1"], "top1_raw": card["top1_raw"], "status": card["status"],
            "train_seconds": card["train_seconds"], "seconds": card["seconds"],
            "images": images, "ms_per_image": 1000 * card["train_seconds"] / images,
            "out": job["out"]}


# -- after training: step times, latency, export ------------------------------------------------

def step_times(jobs_by_c: dict, reparams: tuple, rounds: int = 7) -> list:
    """Median training-step time per image of every arm at each budget (batch 128, one
    thread, arms interleaved round by round so they share the machine's load). The KD arm's
    teacher is EfficientNet-B0 at 32 px as the experiment's, freshly initialised: its cost
    does not depend on its weights."""
    import torch

    from tinyformula import TrainConfig, create_model, reparameterise
    from tinyformula.training.losses import Distillation
    from tinyformula.training.steps import make_step

    torch.set_num_threads(1)
    teacher = create_model(num_classes=10, resolution_base=32, seed=0).eval()
    teacher = teacher.to(memory_format=torch.channels_last)
    rows = []
    for c, job in jobs_by_c.items():
        steps, inputs = {}, {}
        for name, branches, ema, kd in ([("plain", None, None, False),
                                         ("ema", None, EMA, False)]
                                        + [(f"ema+rep{n}", n, EMA, False) for n in reparams]
                                        + [(f"ema+rep{reparams[0]}+kd", reparams[0], EMA,
                                            True)]):
            model = create_model(flops=c, formula=job["formula"], num_classes=10,
                                 resolution_base=32, seed=0)
            resolution = model.tinyformula["resolution"]
            if branches:
                reparameterise(model, branches, seed=0)
            model = model.to(memory_format=torch.channels_last)
            loss = Distillation(teacher, 1.0, 0.5, 0.1) if kd else None
            steps[name] = make_step(model, TrainConfig(ema=ema), 10_000, torch.device("cpu"),
                                    loss=loss)
            generator = torch.Generator().manual_seed(0)
            x = torch.randn(BATCH, 3, resolution, resolution, generator=generator)
            extra = (torch.randn(BATCH, 3, 32, 32, generator=generator)
                     .contiguous(memory_format=torch.channels_last),) if kd else ()
            inputs[name] = (x.contiguous(memory_format=torch.channels_last),
                            torch.randint(0, 10, (BATCH,), generator=generator), *extra)
        for name, step in steps.items():
            step(*inputs[name])                          # warm-up
        times: dict = {name: [] for name in steps}
        for _ in range(rounds):
            for name, step in steps.items():
                tic = time.perf_counter()
                step(*inputs[name])
                times[name].append(time.perf_counter() - tic)
        plain = statistics.median(times["plain"])
        for name, values in times.items():
            median = statistics.median(values)
            rows.append({"c": c, "arm": name, "ms_per_image": 1000 * median / BATCH,
                         "vs_plain": median / plain,
                         "min_ms": 1000 * min(values) / BATCH,
                         "max_ms": 1000 * max(values) / BATCH})
    return rows


def latency(pairs: dict, rounds: int = 5) -> list:
    """Batch-1, one-thread latency of the plain arm's model against the folded re-param
    model's, in interleaved rounds (``measure_module_latency``, the standard protocol)."""
    from tinyformula import LatencySetting, load_model, measure_module_latency

    setting = LatencySetting(threads=1, batch=1)
    rows = []
    for c, (plain_dir, folded_dir) in pairs.items():
        models = {"plain": load_model(plain_dir), "folded re-param": load_model(folded_dir)}
        shape = (3, models["plain"].tinyformula["resolution"],
                 models["plain"].tinyformula["resolution"])
        medians: dict = {name: [] for name in models}
        for _ in range(rounds):
            for name, model in models.items():
                medians[name].append(measure_module_latency(model, shape, setting).median_ms)
        for name, values in medians.items():
            rows.append({"c": c, "model": name, "median_ms": statistics.median(values),
                         "min_ms": min(values), "max_ms": max(values),
                         "rounds": rounds, "types_equal": [type(m) for m in
                                                           models["plain"].modules()]
                         == [type(m) for m in models[name].modules()]})
    return rows


def exports(models: dict) -> list:
    """ONNX export of each budget's re-parameterised model, checked on the whole test
    split: graph multiply-adds against the cost model, top-1 against torch."""
    from tinyformula import export_model, load_dataset, load_model

    data = load_dataset("fashion-mnist")
    rows = []
    for c, folder in models.items():
        model = load_model(folder)
        report = export_model(model, "onnx", Path(folder) / "model.onnx", data,
                              n_images=len(data.val_images))
        rows.append({"c": c, "folder": str(folder), "arm": Path(folder).name.split("-")[1],
                     **report.to_dict(),
                     "flops_plain": model.tinyformula["flops"]})
    return rows


# -- summaries and the report -------------------------------------------------------------------

def summarise(results: list[dict], budgets, seeds) -> tuple[list, list]:
    table, pairs = [], []
    for c in budgets:
        by_arm = {arm: {r["seed"]: r for r in results if r["c"] == c and r["arm"] == arm}
                  for arm in ARMS}
        for arm in ARMS:
            runs = [by_arm[arm][s] for s in seeds if s in by_arm[arm]]
            scores = [100 * r["top1"] for r in runs]
            table.append({"c": c, "arm": arm, "n": len(runs),
                          "mean": statistics.fmean(scores) if scores else float("nan"),
                          "spread": max(scores) - min(scores) if scores else float("nan"),
                          "scores": scores,
                          "ms_per_image": statistics.fmean(r["ms_per_image"] for r in runs)
                          if runs else float("nan"),
                          **({k: runs[0][k] for k in ("r", "d", "w", "resolution",
                                                      "c_achieved", "params")} if runs else {})})
        for a, b in (("ema", "plain"), ("ema+rep", "ema"), ("ema+rep+kd[base]", "ema+rep"),
                     ("ema+rep+kd", "ema+rep"), ("ema+rep+kd", "ema+rep+kd[base]"),
                     ("ema+rep", "plain"), ("ema+rep+kd", "plain")):
            common = [s for s in seeds if s in by_arm[a] and s in by_arm[b]]
            diffs = [100 * (by_arm[a][s]["top1"] - by_arm[b][s]["top1"]) for s in common]
            pairs.append({"c": c, "arm": a, "against": b, "diffs": diffs,
                          "mean": statistics.fmean(diffs) if diffs else float("nan")})
    return table, pairs


def teacher_words(args, teacher: dict | None) -> str:
    if teacher is None:
        return "(its training had not finished: no KD runs)"
    if teacher["status"] != "done":
        return (f"(its training had not finished: {100 * teacher['top1']:.2f}% after "
                f"{teacher['epochs_done']} of {args.teacher_epochs} epochs; no KD runs)")
    return (f"{teacher['resolution']} px, c = {teacher['c']:.3g}, which scored "
            f"**{100 * teacher['top1']:.2f}%** on the test split")


def missing_words(args, missing: list[str]) -> list[str]:
    if not missing:
        return []
    return ["", "## Not measured", "",
            f"**Partial results.** This report was made with `--report-only` from the runs that "
            f"had finished under `{args.work}`; these had not: {', '.join(missing)}. The "
            f"whole experiment takes about 30 minutes on an idle 2-core machine (each "
            f"6-epoch teacher about 6 minutes), hours when it is shared; to finish it "
            f"(finished runs are reused, unfinished ones continued):", "",
            f"    nice -n 5 python experiments/final_recipe.py --work {args.work}", ""]


def markdown(args, formula, table, pairs, teachers, steps, lat, onnx, seconds, loads,
             missing) -> str:
    seeds = ", ".join(map(str, range(args.seeds)))
    images = args.train_size * args.epochs // BATCH * BATCH
    lines = [
        "# The final recipe, GhostNetV3's way, on Fashion-MNIST: EMA, re-parameterisation, "
        "distillation",
        "",
        provenance(sys.argv, seconds).strip()
        + f" Load average (1 min) {loads[0]:.1f} at the start and {loads[1]:.1f} at the end: "
          + ("the machine was shared with other work, so every time below was measured "
             "under that load." if max(loads) > 2.5 else
             "each run had a core of its own (two runs at a time on the 2 cores)."),
        "",
        f"Formula: `{formula}`"
        + (" (the zoo's `efficientnet_b0/fashion-mnist`: the default-preset search's formula, "
           "seed 0)." if Path(formula).name == DEFAULT_FORMULA.name
           else " (the smoke-preset formula fitted on Fashion-MNIST for 0.2)."
           if Path(formula).name == FALLBACK_FORMULA.name else "."),
        "",
        f"Every run: EfficientNet-B0 scaled by the formula's (r, d, w) for c, 32 px base "
        f"resolution, `train_final` (SGD + Nesterov, 5% warm-up then cosine, label smoothing "
        f"0.1, crops and flips, no Mixup/CutMix, batch {BATCH}) on the same "
        f"{args.train_size:,} training images for {args.epochs} epochs ({images:,} images "
        f"per run, every arm), seeds {seeds}, one thread per run, {args.workers} runs at a "
        f"time. Arms: **plain** (no EMA, raw weights); **ema** (weight EMA 0.999, EMA weights "
        f"saved); **ema+rep** (and re-parameterised training with {args.reparam} k x k "
        f"branch(es) per depthwise and 1x1 convolution, a 1x1 branch beside each k x k "
        f"depthwise one and a BatchNorm identity where shapes allow; the saved model is the "
        f"folded, plain network); **ema+rep+kd[base]** (and distilled at T = 1, weight 0.5, "
        f"from EfficientNet-B0 (r = d = w = 1) trained by `base_teacher`, as `train --teacher "
        f"base` does, for {args.teacher_epochs} epochs on the same images, seed 0: "
        f"{teacher_words(args, teachers.get('base'))}); **ema+rep+kd** (the same, distilled "
        f"from the formula's own network at c = {args.teacher_c:g} trained the same way: "
        f"{teacher_words(args, teachers.get('formula'))}).",
        "",
        "**Scored on the official 10,000-image Fashion-MNIST test split** (final models; "
        "nothing was chosen on it). Spread = max - min over the seeds. Time per image: the "
        "runs' own training-step seconds (cards' `train_seconds`) over images seen, with two "
        "runs sharing the loaded machine, so only roughly comparable between arms; the "
        "interleaved step timing below is the fair comparison.",
        "",
        "| c | arm | px | r | d | w | c achieved | params | top-1 per seed (%) | mean (%) "
        "| spread (pp) | ms / image (runs) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    lines[2:2] = missing_words(args, missing)
    for row in table:
        if not row["n"]:
            continue
        lines.append(
            f"| {row['c']} | {row['arm']} | {row['resolution']} | {row['r']:.3f} | "
            f"{row['d']:.3f} | {row['w']:.3f} | {row['c_achieved']:.4f} | "
            f"{row['params'] / 1e6:.2f} M | {', '.join(f'{s:.2f}' for s in row['scores'])} | "
            f"{row['mean']:.2f} | {row['spread']:.2f} | {row['ms_per_image']:.2f} |")
    lines += ["", "## Seed-paired differences (percentage points)", "",
              "| c | arm | against | per seed | mean |", "|---:|---|---|---|---:|"]
    for row in pairs:
        if not row["diffs"]:
            continue
        lines.append(f"| {row['c']} | {row['arm']} | {row['against']} | "
                     f"{', '.join(f'{d:+.2f}' for d in row['diffs'])} | {row['mean']:+.2f} |")
    lines += ["", "## Training-step time per image, arms interleaved", "",
              f"One process, one thread, batch {BATCH}, {args.rounds} rounds of one step per "
              f"arm taken in turn (so every arm sees the same load); median, and the range "
              f"over rounds. The KD arm's step includes the teacher's forward pass (B0 at "
              f"32 px). Target: "
              f"re-parameterised training at most 2x the plain recipe's time per image.", "",
              "| c | arm | ms / image (median) | range | x plain |", "|---:|---|---:|---|---:|"]
    for row in steps:
        lines.append(f"| {row['c']} | {row['arm']} | {row['ms_per_image']:.2f} | "
                     f"{row['min_ms']:.2f}-{row['max_ms']:.2f} | {row['vs_plain']:.2f} |")
    lines += ["", "## Deployed cost: the folded model against the plain one", "",
              "Latency of seed 0's plain-arm model and its folded ema+rep model, batch 1, one "
              "thread, torch eager (`measure_module_latency`, standard protocol), 5 "
              "interleaved rounds: median of the rounds' medians and their range.", "",
              "| c | model | median (ms) | range of rounds (ms) | same module types as plain |",
              "|---:|---|---:|---|---|"]
    for row in lat:
        lines.append(f"| {row['c']} | {row['model']} | {row['median_ms']:.3f} | "
                     f"{row['min_ms']:.3f}-{row['max_ms']:.3f} | "
                     f"{'yes' if row['types_equal'] else 'NO'} |")
    lines += ["", "ONNX export of each budget's re-parameterised model (seed 0; ema+rep+kd, or "
              "ema+rep where that had not run), checked on the whole test split through "
              "onnxruntime:", "",
              "| c | arm | multiply-adds in the graph | cost model (plain network) "
              "| top-1 torch (%) | top-1 ONNX (%) | same predictions "
              "| largest logit difference | check |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for row in onnx:
        lines.append(f"| {row['c']} | {row['arm']} | {row['macs_exported']:,} | "
                     f"{row['macs_cost_model']:,} | "
                     f"{100 * row['top1_torch']:.2f} | {100 * row['top1_exported']:.2f} | "
                     f"{100 * row['same_predictions']:.2f}% | {row['max_abs_diff']:.2g} | "
                     f"{'passed' if row['ok'] else 'FAILED: ' + row['message']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formula", type=Path, default=None,
                        help=f"formula.json (default: {DEFAULT_FORMULA} if it exists, else "
                             f"{FALLBACK_FORMULA.name})")
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.06, 0.25])
    parser.add_argument("--train-size", type=int, default=16384)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--reparam", type=int, default=1)
    parser.add_argument("--teacher-epochs", type=int, default=6)
    parser.add_argument("--teacher-c", type=float, default=0.9,
                        help="the ema+rep+kd arm's teacher: the formula's network at this c")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/work/runs/recipe/final_recipe"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--rounds", type=int, default=7,
                        help="interleaved rounds of the step timing")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: report the runs finished under --work (the "
                             "missing ones are listed), then time, measure and export")
    args = parser.parse_args()
    formula = args.formula or (DEFAULT_FORMULA if DEFAULT_FORMULA.exists()
                               else FALLBACK_FORMULA)
    formula = str(Path(formula).resolve())
    args.work.mkdir(parents=True, exist_ok=True)

    start, load_start = time.perf_counter(), os.getloadavg()[0]
    common = {"formula": formula, "train_size": args.train_size, "epochs": args.epochs,
              "reparam": args.reparam, "teacher_epochs": args.teacher_epochs,
              "work": str(args.work)}
    digest = hashlib.sha256(Path(formula).read_bytes()).hexdigest()[:10]
    teacher_jobs = {"base": {**common, "arm": "teacher", "teacher_from": "base", "seed": 0},
                    "formula": {**common, "arm": "teacher", "teacher_from": "formula", "seed": 0,
                                "teacher_c": args.teacher_c,
                                "out": str(args.work / f"teacher-formula-{digest}-c"
                                                       f"{args.teacher_c:g}-e"
                                                       f"{args.teacher_epochs}")}}
    jobs = [{**common, "arm": arm, "c": c, "seed": s,
             "out": str(args.work / f"c{c}-{arm}-s{s}")}
            for c in sorted(args.budgets, reverse=True) for s in range(args.seeds)
            for arm in ARMS]
    if args.report_only:
        results, teachers = finished(jobs, teacher_jobs, args.work)
    else:
        results, teachers = train_all(args, jobs, teacher_jobs)
    done = {(r["c"], r["arm"], r["seed"]) for r in results}
    missing = [f"{arm} at c = {c} seed {s}" for c in args.budgets for arm in ARMS
               for s in range(args.seeds) if (c, arm, s) not in done]
    for kind in ("formula", "base"):
        if teachers.get(kind) is None or teachers[kind]["status"] != "done":
            missing.insert(0, f"the {args.teacher_epochs}-epoch {kind} teacher")
    seeds = list(range(args.seeds))
    table, pairs = summarise(results, args.budgets, seeds)
    first = {c: next(j for j in jobs if j["c"] == c) for c in args.budgets}
    steps = step_times(first, (args.reparam, *sorted({2, 3} - {args.reparam})), args.rounds)
    folder = {(j["c"], j["arm"]): j["out"] for j in jobs if j["seed"] == 0}
    lat = latency({c: (folder[c, "plain"], folder[c, "ema+rep"]) for c in args.budgets
                   if (c, "plain", 0) in done and (c, "ema+rep", 0) in done})
    onnx = exports({c: folder[c, "ema+rep+kd"] if (c, "ema+rep+kd", 0) in done
                    else folder[c, "ema+rep"] for c in args.budgets
                    if (c, "ema+rep+kd", 0) in done or (c, "ema+rep", 0) in done})
    seconds = time.perf_counter() - start
    text = markdown(args, formula, table, pairs, teachers, steps, lat, onnx, seconds,
                    (load_start, os.getloadavg()[0]), missing)
    args.out.mkdir(parents=True, exist_ok=True)
    old = args.out / "final_recipe.md"
    previous = old.read_text() if old.exists() else ""
    marker = "\n## Before issue 21"
    kept = previous[previous.index(marker):] if marker in previous else ""
    (args.out / "final_recipe.md").write_text(text + kept)
    write_csv(results + [t for t in teachers.values() if t], args.out / "final_recipe_runs.csv")
    (args.out / "final_recipe.json").write_text(json.dumps(
        {"formula": formula, "args": {k: str(v) for k, v in vars(args).items()},
         "table": table, "pairs": pairs, "teachers": teachers, "step_times": steps,
         "latency": [{k: v for k, v in row.items()} for row in lat], "onnx": onnx,
         "missing": missing, "seconds": seconds}, indent=1, default=str) + "\n")
    print(text)


def finished(jobs: list[dict], teacher_jobs: dict, work: Path) -> tuple[list, dict]:
    """--report-only: the rows of the runs finished under ``work``, and the teachers' (those
    with a card)."""
    results = []
    for job in jobs:
        card_path = Path(job["out"]) / "card.json"
        if card_path.exists():
            card = json.loads(card_path.read_text())
            if card["status"] == "done":
                results.append(from_card(job, card))
    found = sorted(p.parent for p in work.glob("teacher-efficientnet_b0-*/card.json"))
    teachers = {"base": teacher_row(found[0], "base") if len(found) == 1 else None}
    formula_card = Path(teacher_jobs["formula"]["out"]) / "card.json"
    teachers["formula"] = (teacher_row(formula_card.parent, "formula")
                           if formula_card.exists() else None)
    return results, teachers


def train_all(args, jobs: list[dict], teacher_jobs: dict) -> tuple[list, dict]:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    distilled = [j for j in jobs if j["arm"] in TEACHER_OF]
    results: list = []
    teachers: dict = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        pending = {pool.submit(run_one, job): job for job in teacher_jobs.values()}
        pending.update({pool.submit(run_one, j): j for j in jobs if j not in distilled})
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                result = future.result()
                print(json.dumps({k: result.get(k) for k in ("arm", "c", "seed", "top1",
                                                            "status", "train_seconds")}),
                      flush=True)
                if job["arm"] == "teacher":
                    kind = job["teacher_from"]
                    teachers[kind] = result
                    pending.update({pool.submit(run_one, {**j, "teacher": result["out"]}): j
                                    for j in distilled if TEACHER_OF[j["arm"]] == kind})
                else:
                    results.append(result)
    return results, teachers


if __name__ == "__main__":
    main()
