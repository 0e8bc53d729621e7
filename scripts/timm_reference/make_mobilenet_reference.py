"""Reference counts of timm's MobileNetV3 / MobileNetV4 at many (r, d, w): run in a test-only
environment, never by the package (which needs no timm).

    python3 -m venv --system-site-packages /tmp/timm-venv
    /tmp/timm-venv/bin/pip install --no-deps timm==1.0.31
    PYTHONPATH=scripts/timm_reference /tmp/timm-venv/bin/python \
        scripts/timm_reference/make_mobilenet_reference.py > /tmp/more.json

and merge its records into tests/data/mobilenet_timm_reference.json.

``torchvision.py`` beside this script is a stub (timm imports torchvision; nothing here uses
it). timm's V4 generator takes no depth multiplier: for d != 1 its table goes through timm's
own ``decode_arch_def(arch_def, depth_multiplier=d)`` (patched into the generator), the rule
the package's MobileNetV4 spec states.
"""

import json
import random
import sys

import timm
import torch
from fvcore.nn import FlopCountAnalysis
from timm.models import mobilenetv3 as mnv3

torch.set_num_threads(1)


def with_depth(d):
    """_gen_mobilenet_v4 with decode_arch_def's depth multiplier set to d."""
    original = mnv3.decode_arch_def

    def patched(arch_def, depth_multiplier=1.0, **kwargs):
        return original(arch_def, depth_multiplier=d, **kwargs)

    return patched


def build(base, w, d, num_classes):
    if base.startswith("mobilenetv3"):
        return mnv3._gen_mobilenet_v3(base, channel_multiplier=w, depth_multiplier=d,
                                      num_classes=num_classes)
    mnv3.decode_arch_def, saved = with_depth(d), mnv3.decode_arch_def
    try:
        return mnv3._gen_mobilenet_v4(base, channel_multiplier=w, num_classes=num_classes)
    finally:
        mnv3.decode_arch_def = saved


def count(model, resolution):
    analysis = FlopCountAnalysis(model.eval(), torch.randn(1, 3, resolution, resolution))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return int(analysis.total()), sum(p.numel() for p in model.parameters())


def main():
    rng = random.Random(22)
    records = []
    for base in ("mobilenetv3_large_100", "mobilenetv3_small_100", "mobilenetv4_conv_small"):
        points = [(1.0, 1.0, 1.0, 10)]
        for _ in range(7):
            r, d, w = (round(2 ** rng.uniform(-2, 1.5), 3) for _ in range(3))
            points.append((r, d, w, rng.choice([10, 100, 1000])))
        for r, d, w, num_classes in points:
            resolution = int(224 * r + 1e-9)
            flops, params = count(build(base, w, d, num_classes), resolution)
            records.append({"base": base, "rules": f"timm {timm.__version__} "
                            + ("_gen_mobilenet_v3" if "v3" in base else
                               "_gen_mobilenet_v4 + decode_arch_def(depth_multiplier=d)"),
                            "r": r, "w": w, "d": d, "resolution": resolution,
                            "num_classes": num_classes, "params": params, "fvcore_flops": flops})
            print(records[-1], file=sys.stderr)
    print("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]")


if __name__ == "__main__":
    main()
