"""``tinyformula fit``: run (or resume) a search and print its summary."""

from __future__ import annotations

import argparse

from ..core.signals import on_stop
from ..cost.yardstick import COST_NAMES
from ..formula.fits import DEFAULT_FIT, DESCRIPTIONS, FITS
from ..sweep.config import SearchConfig, describe_preset
from ..sweep.presets import PRESETS
from .arguments import checked, number
from .output import multiplier, print_json

FIT = SearchConfig.constraints
Defaults = SearchConfig


def register(sub) -> None:
    p = sub.add_parser(
        "fit", help="run the search and fit a formula",
        description="Sample (r, d, w) mutations of a base, keep those whose FLOPs fall in the "
                    "c range, train each on a short schedule, keep the Pareto frontier and fit "
                    "the Tiny Formula on it. Every finished trial is saved as it finishes: run "
                    "the same command on the same --out to resume.",
        epilog="presets: " + "; ".join(
            f"{name}: {describe_preset(name)}; {p.note}" for name, p in PRESETS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    # Every default and limit is SearchConfig's: unset flags stay None and the config fills
    # them in; it checks each value against its limit, with the reason.
    p.add_argument("--base", help=f"base network: a name ('tinyformula bases' lists them) or a "
                                  f"spec file, mynet.toml or .json (default: {Defaults.base})")
    p.add_argument("--data", help="fashion-mnist, digits, cifar10, cifar100 or imagefolder:PATH "
                                  f"(default: {Defaults.data})")
    p.add_argument("--data-dir", help="where the dataset's files are")
    p.add_argument("--preset", choices=list(PRESETS),
                   help=f"search size (default: {Defaults.preset})")
    checked(p, "--trials", FIT['trials'], help="candidates to train (default: preset's)")
    checked(p, "--train-size", FIT['train_size'],
            help="training images per trial (default: preset's)")
    checked(p, "--epochs", FIT['epochs'], help="passes over them (default: preset's)")
    p.add_argument("--c-range", type=number, nargs=2, metavar=("LO", "HI"),
                   help="relative FLOPs studied (default: {:g} {:g})".format(*Defaults.c_range))
    p.add_argument("--sampler", choices=["random", "budgeted"],
                   help="random: the paper's log-uniform r, d, w kept inside the c range; "
                        f"budgeted: draw c, r, d and solve w (default: {Defaults.sampler})")
    checked(p, "--seed", FIT['seed'], help=f"fixes the whole plan (default {Defaults.seed})")
    checked(p, "--batch-size", FIT['batch_size'],
            help=f"training batch size (default {Defaults.batch_size})")
    p.add_argument("--cost", choices=list(COST_NAMES),
                   help="what c is relative to: flops (fvcore's count: one multiply-add = one "
                        "FLOP, so FLOPs here = MACs; papers counting 2 FLOPs per multiply-add "
                        "give twice the number), params, activations "
                        "(exact, analytic) or latency (predicted from a table of this "
                        f"machine's measured block latencies) (default: {Defaults.cost})")
    p.add_argument("--latency-device", choices=["cpu", "cuda"],
                   help=f"with --cost latency: where latency is measured (default: "
                        f"{Defaults.latency_device})")
    checked(p, "--latency-threads", FIT['latency_threads'],
            help=f"with --cost latency: torch threads it is measured with (default: "
                 f"{Defaults.latency_threads})")
    p.add_argument("--out", help=f"run folder (default: {Defaults.out})")
    p.add_argument("--executor", choices=["local", "dask"],
                   help=f"local processes or Dask distributed (default: {Defaults.executor})")
    checked(p, "--workers", FIT['workers'],
            help="trials run at once, each in its own single-thread process "
                 "(default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="join a running Dask cluster (tcp://host:port)")
    p.add_argument("--device", metavar="DEVICE",
                   help=f"auto (CUDA when available), cpu, cuda or cuda:N "
                        f"(default: {Defaults.device})")
    checked(p, "--val-size", FIT['val_size'], metavar="N",
            help="training images held out to score candidates on (default: the "
                 "preset's, at most a fifth of the training images)")
    p.add_argument("--fit", choices=list(FITS),
                   help="how the formula is fitted on the trials: frontier (GPs through the "
                        "Pareto frontier, the paper's) or surrogate (GPs along the best (r, d) "
                        "of a top-1 surrogate of every trial); changes only the fit: a finished "
                        f"search refits without training (default: {DEFAULT_FIT})")
    checked(p, "--second-stage", FIT['second_stage'], metavar="N",
            help="after the search, N more candidates sampled around the formula's band where "
                 "it is widest, trained on the full budget, then the formula refitted "
                 "(default: the preset's)")
    p.add_argument("--monotone", action=argparse.BooleanOptionalAction,
                   help="fit r(c), d(c) and top-1(c) non-decreasing in c (default: on); "
                        "--no-monotone fits the frontier as it is")
    p.add_argument("--no-cuda-graph", dest="cuda_graph", action="store_false", default=None,
                   help="on GPUs, train eagerly instead of replaying a captured CUDA graph")
    checked(p, "--trials-per-gpu", FIT['trials_per_gpu'],
            help="trials sharing one GPU at once (default: as many as the measured "
                 "memory of the largest candidate allows)")
    p.add_argument("--schedule", choices=["full", "halving"],
                   help="full: every candidate trains on the whole budget; halving: Pareto-aware "
                        "successive halving, each rung re-trains the candidates closest to the "
                        "frontier on eta x the images (default: the preset's)")
    checked(p, "--eta", FIT['eta'],
            help=f"halving: each rung keeps 1/eta of the candidates (default {Defaults.eta:g})")
    checked(p, "--min-images", FIT['min_images'],
            help="halving: training images (x epochs) of the smallest rung "
                 "(default: the full budget / eta^2, three rungs)")
    checked(p, "--min-rung", FIT['min_rung'],
            help=f"halving: no rung is cut below this many candidates (default "
                 f"{Defaults.min_rung})")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    from dataclasses import fields

    from ..sweep.config import SearchConfig
    from ..sweep.driver import search

    # The parser leaves unset flags None: the defaults live in SearchConfig alone.
    options = {f.name: getattr(args, f.name, None) for f in fields(SearchConfig)}
    config = SearchConfig.from_options(**options)
    with on_stop(f"every finished trial is saved in {config.out}. Run the same command "
                 f"again to continue."):
        result = search(progress=not args.json, **options)
    from ..sweep.results import run_summary

    summary = run_summary(result)
    if args.json:
        print_json(summary)
    else:
        print_summary(summary)
    return 0



def print_summary(summary: dict, what: str = "Search") -> None:
    """A search's summary (``run_summary``) for people; ``what`` names it in the first line
    (``tinyformula pool`` prints a pool's)."""
    print(f"\n{what} in {summary['out']}: {summary['trials']} trials, {summary['ok']} ok, "
          f"{summary['failed']} failed or diverged.")
    base = summary.get("base") or {}
    if base.get("counted") == "traced":
        each = base.get("seconds_per_count")
        print(f"Base {base['name']} is a PyTorch model counted by tracing: "
              f"{base.get('counts', 0)} distinct network(s) counted here"
              + (f", {each * 1e3:,.0f} ms each on average" if each else "")
              + f" ({base.get('note') or 'cached'}).")
    spread = summary["seed_spread"]
    if spread:
        print(f"Seed-to-seed noise: top-1 differs by {100 * spread['mean_abs_diff']:.1f} pp on "
              f"average (at most {100 * spread['max_abs_diff']:.1f} pp) over {spread['pairs']} "
              f"re-trained candidates; read frontier gaps smaller than that as ties.")
    _print_fidelity(summary["fidelity"])
    print(f"\nPareto frontier ({len(summary['frontier'])} points; c in {summary['cost']}):")
    print(f"{'c':>8}{'r':>8}{'d':>8}{'w':>8}{'px':>6}{'top-1':>9}")
    for p in summary["frontier"]:
        print(f"{p['c']:8.3f}{multiplier(p['r']):>8}{multiplier(p['d']):>8}"
              f"{multiplier(p['w']):>8}{p['resolution']:6d}{p['top1']:9.1%}")
    from ..cost.meters import get_meter

    meter = get_meter(summary["yardstick"]["cost"])
    y = summary["yardstick"]
    print(f"\nThe fitted formula beside the inverted giant formula (c = 1 is "
          f"{meter.format(summary['reference'])}: {y['base']} at r = d = w = 1, "
          f"{y['resolution_base']} px, {y['num_classes']} classes):")
    print(f"{'c':>6} {'budget':>14}  {'tiny r / d / w':>20}  {'expected top-1':>24}  "
          f"{'giant r / d / w':>20}")
    unreachable = []
    for entry in summary["budgets"]:
        cells = []
        for side in ("tiny", "giant"):
            v = entry[side]
            if "error" in v:
                cells.append("unreachable")
                unreachable.append(f"{side} at c = {entry['c']:g}: {v['error']}")
            else:
                cells.append(" / ".join(multiplier(v[k]) for k in ("r", "d", "w")))
        tiny = entry["tiny"]
        top1 = "-"
        if tiny.get("top1") is not None:
            top1 = (f"{tiny['top1']:.1%} +- {200 * tiny['top1_std']:.1f} pp"
                    + (" (extrap.)" if tiny.get("extrapolated") else ""))
        amount = meter.format(entry["c"] * summary["reference"])
        print(f"{entry['c']:6.2f} {amount:>14}  {cells[0]:>20}  {top1:>24}  {cells[1]:>20}")
    for line in unreachable:
        print(f"  {line}")
    print("  (expected top-1: one training of that network under the search's schedule, +- 2 "
          "standard deviations: the seed noise and the GP's uncertainty)")
    if any(e["tiny"].get("extrapolated") for e in summary["budgets"] if "error" not in e["tiny"]):
        print("  (extrap.: outside the c range the formula was fitted on; r, d and top-1 "
              "are extrapolated)")
    _print_band(summary)
    from ..formula.quality import lines

    print("\n" + "\n".join(lines(summary["quality"])))
    print(f"\nFormula written to {summary['formula']}; use it with "
          f"'tinyformula predict --formula {summary['formula']} --budget B', B a relative c "
          f"(0.25) or an amount in {meter.unit} ({meter.example}).")


def _print_band(summary: dict) -> None:
    """The band of r and d at each budget, and the top-1 it is expected to cost."""
    rows = [(entry["c"], entry["tiny"].get("band")) for entry in summary["budgets"]
            if "error" not in entry["tiny"]]
    print(f"\nFit: {summary['fit']} ({DESCRIPTIONS[summary['fit']]}).")
    if not any(band for _, band in rows):
        print("No band (the search's trials reach none of these budgets).")
        return
    print("Band: where the formula would land if the search were run again (80% of "
          "bootstrap refits), and the top-1 that uncertainty is expected to cost:")
    print(f"{'c':>6}  {'r band':>13}  {'d band':>13}  {'top-1 cost':>10}")
    for c, band in rows:
        if band is None:
            print(f"{c:6.2f}  {'-':>13}  {'-':>13}  {'-':>10}")
            continue
        print(f"{c:6.2f}  {band['r_lo']:5.3f}-{band['r_hi']:<7.3f}  "
              f"{band['d_lo']:5.3f}-{band['d_hi']:<7.3f}  {100 * band['top1_cost']:7.1f} pp")


def _print_fidelity(fidelity: dict) -> None:
    """Successive halving's rungs: what each cost, its noise, how well it ranked."""
    if fidelity.get("schedule") != "halving":
        return
    total = fidelity["compute"]["images"] or 1
    print(f"\nSuccessive halving (eta {fidelity['eta']:g}), the frontier from rung "
          f"{len(fidelity['rungs']) - 1}:")
    print(f"{'rung':>4}{'images':>9}{'trials':>8}{'ok':>5}{'noise':>8}{'compute':>9}")
    for r in fidelity["rungs"]:
        noise = f"{100 * r['noise']['mean_abs_diff']:.1f} pp" if r["noise"] else "-"
        print(f"{r['rung']:4d}{r['images']:9,d}{r['candidates'] + r['replicates']:8d}"
              f"{r['ok']:5d}{noise:>8}{r['compute']['images'] / total:9.0%}")
    for t in fidelity["transitions"]:
        rho = "-" if t["spearman"] is None else f"{t['spearman']:+.2f}"
        print(f"rung {t['from']} -> {t['to']}: Spearman {rho} over {t['promoted']} promoted; "
              f"frontier kept {t['kept']}, left {t['left']}, entered {t['entered']}")
    print("(noise: mean top-1 difference between two seeds, in percentage points; compute: "
          "share of training images)")

