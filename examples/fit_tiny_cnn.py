"""From "here is my network" to a fitted formula, in Python: examples/tiny_cnn.py's CNN,
searched on the smoke preset, its formula asked for a quarter of the FLOPs, the model built
and exported.

    python3 examples/fit_tiny_cnn.py [--out runs/tiny_cnn] [--preset smoke]

The same from the command line (the spec file names the factory):

    tinyformula fit --base examples/tiny_cnn.toml --preset smoke --out runs/tiny_cnn
    tinyformula predict --formula runs/tiny_cnn/formula.json --flops 0.25
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))   # so workers import tiny_cnn too

from tiny_cnn import build  # noqa: E402

import tinyformula  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/tiny_cnn")
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--data", default="fashion-mnist")
    args = parser.parse_args()

    # 1. Your network, as a factory of (depth multiplier, width multiplier, classes).
    base = tinyformula.register_base("tiny_cnn", factory=build, resolution=32,
                                     summary="a small custom CNN (examples/tiny_cnn.py)")
    print(f"{base.name}: {base.cost(num_classes=10, resolution_base=32).flops:,} FLOPs at 32 px; "
          f"{base.note}")

    # 2. The search: sample (r, d, w), train each candidate briefly, fit r(c) and d(c).
    result = tinyformula.search("tiny_cnn", args.data, preset=args.preset, out=args.out)
    print(f"frontier of {len(result.frontier)} candidates; formula in {args.out}/formula.json")

    # 3. The formula at a quarter of the FLOPs: r and d from the GPs, w solved to fit.
    formula = result.formula
    rec = formula.recommend(0.25)
    print(f"c = 0.25: r = {rec.config.r:.3f}, d = {rec.config.d:.3f}, w = {rec.config.w:.3f} "
          f"({rec.config.resolution} px, {rec.config.flops:,} FLOPs)")

    # 4. The network itself, fresh, and exported (the model file carries its base).
    model = tinyformula.create_model("tiny_cnn", flops=0.25, formula=formula, seed=0)
    path = tinyformula.save_model(model, Path(args.out) / "tiny_cnn_c0.25.pt")
    print(f"model written to {path} ({model.tinyformula['params']:,} parameters)")


if __name__ == "__main__":
    main()
