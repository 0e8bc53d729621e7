"""Three formulas' models at c = 0.25, trained with the final recipe, with and without KD.

    python experiments/final_recipe.py --formula runs/smoke/formula.json
        [--train-size 8192] [--epochs 2] [--seeds 2] [--workers 2] [--work runs/final_recipe]

At c = 0.25 (FLOPs relative to EfficientNet-B0 at 32 px, 10 classes) it builds, with
``tinyformula.create_model``:

* **fitted**: the formula fitted on Fashion-MNIST by ``tinyformula fit`` (``--formula``);
* **published**: the built-in formula (fitted on the published TinyNet A-E, ImageNet's);
* **giant**: EfficientNet's compound formula inverted (``formula="giant"``);

and trains each with the final recipe (``tinyformula.recipe``: SGD + Nesterov, warm-up then
cosine, label smoothing 0.1, weight EMA 0.999, crops and flips, no Mixup/CutMix) on the same
``--train-size`` training images for ``--epochs`` epochs, every seed, once plainly and once
distilled (T = 4, weight 0.5) from EfficientNet-B0 (r = d = w = 1) trained the same way with
seed 0. Top-1 of the saved (EMA) weights on the official 10,000-image test split: these are
final models, and nothing here is chosen on it. Then the published formula's model is exported
to ONNX and its latency through onnxruntime is measured against torch eager, batch 1 and 32,
both with one thread.

Each run trains in its own single-thread process (2 at a time) and writes its folder under
``--work``; running the script again continues unfinished runs and reuses finished ones.
About 15 minutes on a 2-core CPU shared with other work at the defaults.
Writes ``experiments/results/final_recipe.md`` and ``final_recipe_runs.csv``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, write_csv  # noqa: E402

BUDGET = 0.25
FORMULAS = ("fitted", "published", "giant")
MACHINE = "2-core CPU, torch 2.13.0"
DATE = "2026-11-23"


def _formula_argument(name: str, fitted_path: str):
    return {"fitted": fitted_path, "published": None, "giant": "giant"}[name]


def run_one(job: dict) -> dict:
    """Train one model with the final recipe (in a worker process, one thread)."""
    import torch

    from tinyformula import RecipeConfig, create_model, load_dataset, load_model, train_final

    torch.set_num_threads(1)
    data = load_dataset("fashion-mnist")
    if job["formula"] == "teacher":
        model = create_model(num_classes=10, resolution_base=32, seed=job["seed"])
    else:
        model = create_model(flops=BUDGET, formula=_formula_argument(job["formula"], job["path"]),
                             num_classes=10, resolution_base=32, seed=job["seed"])
    teacher = load_model(job["teacher"], "teacher") if job.get("teacher") else None
    recipe = RecipeConfig.of(epochs=job["epochs"], train_size=job["train_size"], seed=job["seed"],
                          threads=1)
    card = train_final(data, model, job["out"], recipe, teacher=teacher,
                       teacher_path=job.get("teacher"), command="experiments/final_recipe.py")
    config = card["model"]
    return {"formula": job["formula"], "kd": bool(job.get("teacher")), "seed": job["seed"],
            "r": config["r"], "d": config["d"], "w": config["w"],
            "resolution": config["resolution"], "c": config["c"], "params": config["params"],
            "top1": card["top1"], "top1_raw": card["top1_raw"], "status": card["status"],
            "seconds": card["seconds"], "out": job["out"]}


def latency(model_dir: Path, repeats: int = 50) -> list[dict]:
    """Median latency of torch eager and onnxruntime (one thread each), batch 1 and 32."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from tinyformula import check_images, export_model, load_dataset, load_model

    torch.set_num_threads(1)
    data = load_dataset("fashion-mnist")
    model = load_model(model_dir)
    report = export_model(model, "onnx", model_dir / "model.onnx", data)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_dir / "model.onnx"), options,
                                   providers=["CPUExecutionProvider"])
    x_all, _ = check_images(model, data, 32)
    rows = []
    for batch in (1, 32):
        x = x_all[:batch].contiguous()
        feed = {"images": x.numpy()}
        times = {"torch eager": [], "onnxruntime": []}
        with torch.inference_mode():
            for _ in range(5):
                model(x), session.run(None, feed)
            for _ in range(repeats):  # interleaved, so both see the same machine load
                tic = time.perf_counter()
                model(x)
                times["torch eager"].append(time.perf_counter() - tic)
                tic = time.perf_counter()
                session.run(None, feed)
                times["onnxruntime"].append(time.perf_counter() - tic)
        for name, values in times.items():
            rows.append({"runtime": name, "batch": batch,
                         "median_ms": 1000 * float(np.median(values)),
                         "p90_ms": 1000 * float(np.percentile(values, 90))})
    return rows, report


def summarise(results: list[dict]) -> list[dict]:
    table = []
    for name in FORMULAS:
        for kd in (False, True):
            runs = [r for r in results if r["formula"] == name and r["kd"] == kd]
            scores = [100 * r["top1"] for r in runs if r["status"] == "done"]
            raw = [100 * r["top1_raw"] for r in runs if r["status"] == "done"]
            first = runs[0]
            table.append({"formula": name, "kd": kd, "r": first["r"], "d": first["d"],
                          "w": first["w"], "resolution": first["resolution"], "c": first["c"],
                          "params": first["params"], "n": len(scores),
                          "mean": statistics.fmean(scores) if scores else float("nan"),
                          "spread": (max(scores) - min(scores)) if scores else float("nan"),
                          "raw_mean": statistics.fmean(raw) if raw else float("nan"),
                          "seconds": statistics.fmean(r["seconds"] for r in runs)})
    return table


def markdown(table, teacher, lat, report, args, seconds) -> str:
    labels = {"fitted": f"fitted on Fashion-MNIST (`{args.formula}`)",
              "published": "published (built-in, TinyNet A-E)",
              "giant": "inverted giant"}
    lines = [
        "# The final recipe at c = 0.25 on Fashion-MNIST: three formulas, with and without KD",
        "",
        f"Produced by `python {' '.join(sys.argv)}` on {DATE}, {MACHINE} (shared with other "
        f"work), in {seconds / 60:.1f} min.",
        "",
        f"Each model: EfficientNet-B0 scaled by the formula's (r, d, w) for c = {BUDGET} at a "
        f"32 px base resolution, trained with `tinyformula train --recipe final` (SGD + "
        f"Nesterov, warm-up then cosine, label smoothing 0.1, weight EMA 0.999, crops and "
        f"flips, no Mixup/CutMix) on the same {args.train_size:,} training images for "
        f"{args.epochs} epochs ({args.train_size * args.epochs:,} images per run), seeds "
        f"{', '.join(map(str, range(args.seeds)))}. KD: distilled (T = 4, weight 0.5) from "
        f"EfficientNet-B0 (r = d = w = 1) trained the same way with seed 0, which scored "
        f"{100 * teacher['top1']:.1f}%.",
        "",
        "**Scored on the official 10,000-image Fashion-MNIST test split** (top-1 of the saved "
        "EMA weights; the raw weights' in the last column): these are final models; nothing was "
        "chosen on the test split. Spread = max - min over the seeds.",
        "",
        "| formula | KD | r | d | w | px | c achieved | params | top-1 mean (%) | spread (pp) "
        "| raw weights (%) | s per run |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in table:
        lines.append(
            f"| {labels[row['formula']]} | {'yes' if row['kd'] else 'no'} | {row['r']:.3f} | "
            f"{row['d']:.3f} | {row['w']:.3f} | {row['resolution']} | {row['c']:.4f} | "
            f"{row['params'] / 1e6:.2f} M | {row['mean']:.2f} | {row['spread']:.2f} | "
            f"{row['raw_mean']:.2f} | {row['seconds']:.0f} |")
    lines += ["", "## Export: ONNX through onnxruntime against torch eager", "",
              f"The published formula's trained model (seed 0, no KD) exported with `tinyformula "
              f"export --format onnx`: largest logit difference {report.max_abs_diff:.2g} on "
              f"{report.images} test images, top-1 {100 * report.top1_exported:.2f}% in both "
              f"(check {'passed' if report.ok else 'FAILED: ' + report.message}), "
              f"{report.macs_exported:,} multiply-adds counted in the graph = the cost model's "
              f"{report.macs_cost_model:,}. Latency, one thread each, interleaved runs, "
              f"{MACHINE} shared with other work:", "",
              "| runtime | batch | median (ms) | 90th percentile (ms) |", "|---|---:|---:|---:|"]
    for row in lat:
        lines.append(f"| {row['runtime']} | {row['batch']} | {row['median_ms']:.2f} | "
                     f"{row['p90_ms']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formula", required=True, help="formula.json from 'tinyformula fit'")
    parser.add_argument("--train-size", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("runs/final_recipe"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    start = time.perf_counter()
    common = {"path": str(Path(args.formula).resolve()), "train_size": args.train_size,
              "epochs": args.epochs}
    teacher_job = {**common, "formula": "teacher", "seed": 0, "out": str(args.work / "teacher")}
    plain = [{**common, "formula": f, "seed": s, "out": str(args.work / f"{f}-seed{s}")}
             for s in range(args.seeds) for f in FORMULAS]
    distilled = [{**job, "teacher": teacher_job["out"],
                  "out": job["out"].replace("-seed", "-kd-seed")} for job in plain]
    results, teacher = [], None
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        pending = {pool.submit(run_one, teacher_job): teacher_job}
        pending.update({pool.submit(run_one, job): job for job in plain})
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                result = future.result()
                print(json.dumps({k: result[k] for k in ("formula", "kd", "seed", "top1",
                                                        "status", "seconds")}), flush=True)
                if job is teacher_job:
                    teacher = result
                    pending.update({pool.submit(run_one, j): j for j in distilled})
                else:
                    results.append(result)
    lat, report = latency(Path(args.work / "published-seed0"))
    table = summarise(results)
    seconds = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(table, teacher, lat, report, args, seconds)
    (args.out / "final_recipe.md").write_text(text)
    write_csv(results + [teacher], args.out / "final_recipe_runs.csv")
    print(text)


if __name__ == "__main__":
    main()
