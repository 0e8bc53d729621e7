"""What each ``tinyformula`` command does, given its parsed arguments.

One handler per command, each returning the exit status; ``cli.py`` holds the parser and the
entry point. ``predict``/``compare`` live in ``formula_commands.py``, ``build``/``export`` and
the final recipe in ``model_commands.py``, ``latency`` in ``latency_command.py``. Bad input raises :class:`TinyFormulaError`, which the entry point turns into one
line on stderr and exit status 2. Heavy modules are imported inside the handler that needs them.
"""

from __future__ import annotations

import json
import sys


def _millions(n: int) -> str:
    return f"{n:,} ({n / 1e6:.2f} M)" if n < 1e9 else f"{n:,} ({n / 1e9:.3f} G)"


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2))


def _print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


# -- tinyformula bases ---------------------------------------------------------------------------

def cmd_bases(args) -> int:
    from .bases import get_base, list_bases

    records = []
    for name in list_bases():
        base = get_base(name)
        cost = base.cost()
        records.append({"name": name, "resolution": cost.resolution, "flops": cost.flops,
                        "params": cost.params, "summary": base.summary})
    if args.json:
        _print_json(records)
        return 0
    header = ("base", "resolution", "FLOPs", "params", "")
    table = [header] + [(r["name"], str(r["resolution"]), f"{r['flops'] / 1e6:,.1f} M",
                         f"{r['params'] / 1e6:,.2f} M", r["summary"]) for r in records]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in (1, 2, 3)]
        print("  ".join(cells + [row[4]]).rstrip())
    print("\nFLOPs: fvcore's count (one multiply-add = one FLOP), batch 1, 1000 classes.")
    return 0


# -- tinyformula flops ---------------------------------------------------------------------------

def cmd_flops(args) -> int:
    from .bases import get_base
    from .scale import Scale

    base = get_base(args.base)
    scale = Scale(args.r, args.d, args.w)
    cost = base.cost(scale, args.num_classes, args.resolution_base)
    reference = base.cost(None, args.num_classes, args.resolution_base)
    modules = base.cost_breakdown(scale, args.num_classes, args.resolution_base,
                                  depth=args.by_module or 1)
    record = {"base": base.name, "r": scale.r, "d": scale.d, "w": scale.w,
              "resolution": cost.resolution, "flops": cost.flops, "params": cost.params,
              "activations": cost.activations, "c": cost.flops / reference.flops,
              "by_module": [{"module": m.module, "flops": m.flops, "params": m.params,
                             "activations": m.activations} for m in modules]}
    verified = True
    if args.verify:
        from .build import activation_counts, fvcore_flops, param_count

        model = base.build(scale, args.num_classes, args.resolution_base)
        record["fvcore_flops"] = fvcore_flops(model, model.input_resolution)
        record["built_params"] = param_count(model)
        record["built_activations"] = sum(
            activation_counts(model, model.input_resolution).values())
        verified = (record["fvcore_flops"] == cost.flops and record["built_params"] == cost.params
                    and record["built_activations"] == cost.activations)
        record["verified"] = verified
    if args.json:
        _print_json(record)
        return 0 if verified else 1
    rows = [("base", f"{base.name}  ({base.summary})"),
            ("scale", str(scale)),
            ("resolution", f"{cost.resolution} px  (int({args.resolution_base or base.default_resolution}"
                           f" x r))"),
            ("FLOPs", _millions(cost.flops)),
            ("params", _millions(cost.params)),
            ("activations", _millions(cost.activations)),
            ("c", f"{record['c']:.4f}  (FLOPs / {reference.flops:,} of the base at r = d = w = 1)")]
    if args.verify:
        def mark(ok):
            return "matches" if ok else "DIFFERS from the analytic count"
        rows += [("fvcore FLOPs", f"{record['fvcore_flops']:,}  "
                                  f"{mark(record['fvcore_flops'] == cost.flops)}"),
                 ("built params", f"{record['built_params']:,}  "
                                  f"{mark(record['built_params'] == cost.params)}"),
                 ("built activations", f"{record['built_activations']:,}  "
                                       f"{mark(record['built_activations'] == cost.activations)}  "
                                       f"(counted in a forward pass)")]
    _print_rows(rows)
    if args.by_module:
        print()
        _print_module_table(modules, cost)
    return 0 if verified else 1


def _print_module_table(modules, total) -> None:
    """One line per module: FLOPs (with their share of the total), params, activations."""
    header = ("module", "FLOPs", "%", "params", "activations")
    table = [header] + [(m.module, f"{m.flops:,}", f"{100 * m.flops / total.flops:.1f}",
                         f"{m.params:,}", f"{m.activations:,}") for m in modules]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join([row[0].ljust(widths[0])]
                        + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]))


# -- tinyformula fit ---------------------------------------------------------------------------

def cmd_fit(args) -> int:
    from dataclasses import fields

    from .driver import search
    from .search_config import SearchConfig

    # The parser leaves unset flags None: the defaults live in SearchConfig alone.
    options = {f.name: getattr(args, f.name, None) for f in fields(SearchConfig)}
    config = SearchConfig.from_options(**options)
    try:
        result = search(progress=not args.json, **options)
    except KeyboardInterrupt as interrupt:
        from .signals import EXIT_TERMINATED, Terminated

        terminated = isinstance(interrupt, Terminated)
        print(f"tinyformula fit: {'terminated' if terminated else 'interrupted'}; every "
              f"finished trial is saved in {config.out}. Run the same command again to "
              f"continue.", file=sys.stderr)
        return EXIT_TERMINATED if terminated else 130
    from .results import run_summary

    summary = run_summary(result)
    if args.json:
        _print_json(summary)
    else:
        _print_summary(summary)
    return 0


def _print_summary(summary: dict) -> None:
    print(f"\nSearch in {summary['out']}: {summary['trials']} trials, {summary['ok']} ok, "
          f"{summary['failed']} failed or diverged.")
    spread = summary["seed_spread"]
    if spread:
        print(f"Seed-to-seed noise: top-1 differs by {spread['mean_abs_diff']:.1%} on average "
              f"(at most {spread['max_abs_diff']:.1%}) over {spread['pairs']} re-trained "
              f"candidates; read frontier gaps smaller than that as ties.")
    _print_fidelity(summary["fidelity"])
    print(f"\nPareto frontier ({len(summary['frontier'])} points):")
    print(f"{'c':>8}{'r':>8}{'d':>8}{'w':>8}{'px':>6}{'top-1':>9}")
    for p in summary["frontier"]:
        print(f"{p['c']:8.3f}{p['r']:8.3f}{p['d']:8.3f}{p['w']:8.3f}{p['resolution']:6d}"
              f"{p['top1']:9.1%}")
    print("\nThe fitted formula beside the inverted giant formula:")
    print(f"{'c':>6}  {'tiny r / d / w':>22}  {'expected top-1':>16}  {'giant r / d / w':>22}")
    for entry in summary["budgets"]:
        cells = []
        for side in ("tiny", "giant"):
            v = entry[side]
            cells.append("unreachable" if "error" in v else
                         f"{v['r']:.3f} / {v['d']:.3f} / {v['w']:.3f}")
        tiny = entry["tiny"]
        top1 = (f"{tiny['top1']:.1%} +- {2 * tiny['top1_std']:.1%}"
                if tiny.get("top1") is not None else "-")
        print(f"{entry['c']:6.2f}  {cells[0]:>22}  {top1:>16}  {cells[1]:>22}")
    from .quality import lines

    print("\n" + "\n".join(lines(summary["quality"])))
    print(f"\nFormula written to {summary['formula']}; use it with "
          f"'tinyformula predict --formula {summary['formula']} --flops C'.")


def _print_fidelity(fidelity: dict) -> None:
    """Successive halving's rungs: what each cost, its noise, how well it ranked."""
    if fidelity.get("schedule") != "halving":
        return
    total = fidelity["compute"]["images"] or 1
    print(f"\nSuccessive halving (eta {fidelity['eta']:g}), the frontier from rung "
          f"{len(fidelity['rungs']) - 1}:")
    print(f"{'rung':>4}{'images':>9}{'trials':>8}{'ok':>5}{'noise':>8}{'compute':>9}")
    for r in fidelity["rungs"]:
        noise = f"{r['noise']['mean_abs_diff']:.1%}" if r["noise"] else "-"
        print(f"{r['rung']:4d}{r['images']:9,d}{r['candidates'] + r['replicates']:8d}"
              f"{r['ok']:5d}{noise:>8}{r['compute']['images'] / total:9.0%}")
    for t in fidelity["transitions"]:
        rho = "-" if t["spearman"] is None else f"{t['spearman']:+.2f}"
        print(f"rung {t['from']} -> {t['to']}: Spearman {rho} over {t['promoted']} promoted; "
              f"frontier kept {t['kept']}, left {t['left']}, entered {t['entered']}")
    print("(noise: mean top-1 difference between two seeds; compute: share of training images)")


# -- tinyformula train ---------------------------------------------------------------------------

def cmd_train(args) -> int:
    from .bases import get_base
    from .model_commands import check_recipe_options, choose_model
    from .scale import Scale

    check_recipe_options(args)
    if args.recipe == "final":
        from .model_commands import cmd_train_final

        return cmd_train_final(args)
    base = get_base(args.base or "efficientnet_b0")  # fail on a bad base or scale before
    scale = Scale(*(1.0 if v is None else v for v in (args.r, args.d, args.w)))  # loading data
    from .data import load_dataset
    from .train import TrainConfig, train

    from dataclasses import replace

    config = TrainConfig(train_size=args.train_size, epochs=args.epochs or 1,
                         batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
                         seed=args.seed, device=args.device, val_size=args.val_size,
                         cuda_graph=args.cuda_graph)
    data = load_dataset(args.data, args.data_dir)
    resolution_base = args.resolution_base or data.resolution_base
    if args.flops is not None:  # the formula's model for this budget, at the data's classes
        chosen = choose_model(args, data.num_classes, resolution_base, None).tinyformula
        base, scale = get_base(chosen["base"]), Scale(chosen["r"], chosen["d"], chosen["w"])
    if args.score_on == "holdout":
        from .data.core import carve_validation
        from .search_config import holdout_size

        data = carve_validation(data, args.val_size or holdout_size(len(data.train_images)))
        config = replace(config, val_size=None)
    result = train(data, base, scale, config, resolution_base=resolution_base,
                   progress=not args.quiet)
    if args.json:
        _print_json({key: getattr(result, key) for key in
                     ("top1", "loss", "images_per_s", "seconds", "flops", "params",
                      "resolution", "status")})
        return 0
    ok = result.status == "ok"
    held_out = len(data.val_images) if config.val_size is None else min(config.val_size,
                                                                        len(data.val_images))
    rows = [("base", f"{base.name}  {scale}"),
            ("data", f"{data.name}: {result.images:,} training images seen, scored on "
                     f"{held_out:,} held-out ({data.val_source})"),
            ("status", result.status + (f"  ({result.message})" if result.message else "")),
            ("top-1", f"{100 * result.top1:.2f} %" if ok else "-"),
            ("loss", f"{result.loss:.4f}  (held-out cross-entropy)" if ok else "-"),
            ("images/s", f"{result.images_per_s:,.0f}  (training, {result.device}"
                         f"{', CUDA graph' if result.graphed else ''})"),
            ("seconds", f"{result.seconds:.1f}"),
            ("resolution", f"{result.resolution} px"),
            ("FLOPs", _millions(result.flops)),
            ("params", _millions(result.params))]
    _print_rows(rows)
    if args.score_on == "test":
        print("\nScored on the dataset's own held-out split (for most datasets its official test "
              "set); 'tinyformula fit' ranks candidates on images held out from the training "
              "split instead. To choose between models use --score-on holdout, and keep the "
              "test set for the one you chose.")
    return 0


# -- tinyformula plot ----------------------------------------------------------------------------

def cmd_plot(args) -> int:
    # matplotlib is imported here, not at the top: every other command stays light.
    from .plots import plot_run

    paths = plot_run(args.run_dir, budget=args.budget, window=args.window, out=args.out)
    if args.json:
        _print_json([str(path) for path in paths])
    else:
        for path in paths:
            print(path)
    return 0
