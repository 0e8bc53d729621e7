"""Generate a photo-style image folder for benchmarks: JPEGs a few hundred pixels a side, one
sub-folder per class, ``train/`` and ``val/``, with class structure a network can learn.

Each image is drawn from its own seed (class, split, index), so the folder is the same on every
machine and a run can be resumed (existing files are kept). A class is a shape (disc, square,
triangle, ring, cross, star, hexagon, diamond, stripes, crescent) drawn large at a random place,
size, angle and colour over a textured, gradient background, with a few small distractor
shapes of other classes: the shape, not its colour, tells the class.

    python scripts/make_photo_folder.py OUT [--train 20000] [--val 2000] [--classes 10]
                                           [--workers 2] [--quality 90]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from multiprocessing import get_context
from pathlib import Path

import numpy as np

SHAPES = ("disc", "square", "triangle", "ring", "cross", "star", "hexagon", "diamond",
          "stripes", "crescent")


def polygon(cx, cy, radius, sides, angle, inner=None):
    points = []
    steps = sides * (2 if inner else 1)
    for k in range(steps):
        r = radius if not inner or k % 2 == 0 else radius * inner
        a = angle + 2 * math.pi * k / steps
        points.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return points


def draw_shape(draw, shape: str, cx, cy, radius, angle, fill, background):
    if shape == "disc":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
    elif shape == "square":
        draw.polygon(polygon(cx, cy, radius, 4, angle), fill=fill)
    elif shape == "triangle":
        draw.polygon(polygon(cx, cy, radius, 3, angle), fill=fill)
    elif shape == "ring":
        width = max(2, int(radius * 0.3))
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], outline=fill,
                     width=width)
    elif shape == "cross":
        for a in (angle, angle + math.pi / 2):
            dx, dy = math.cos(a) * radius, math.sin(a) * radius
            draw.line([cx - dx, cy - dy, cx + dx, cy + dy], fill=fill,
                      width=max(2, int(radius * 0.35)))
    elif shape == "star":
        draw.polygon(polygon(cx, cy, radius, 5, angle, inner=0.45), fill=fill)
    elif shape == "hexagon":
        draw.polygon(polygon(cx, cy, radius, 6, angle), fill=fill)
    elif shape == "diamond":
        points = polygon(cx, cy, radius, 4, angle + math.pi / 4)
        points = [(cx + (x - cx) * 0.55, y) if i % 2 else (x, y) for i, (x, y) in
                  enumerate(points)]
        draw.polygon(points, fill=fill)
    elif shape == "stripes":
        for k in range(-2, 3):
            off = k * radius * 0.4
            dx, dy = math.cos(angle) * radius, math.sin(angle) * radius
            ox, oy = -math.sin(angle) * off, math.cos(angle) * off
            draw.line([cx - dx + ox, cy - dy + oy, cx + dx + ox, cy + dy + oy], fill=fill,
                      width=max(2, int(radius * 0.15)))
    elif shape == "crescent":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
        sx, sy = cx + math.cos(angle) * radius * 0.45, cy + math.sin(angle) * radius * 0.45
        r2 = radius * 0.85
        draw.ellipse([sx - r2, sy - r2, sx + r2, sy + r2], fill=background)


def make_image(label: int, seed: int, classes: int):
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    w, h = (int(v) for v in rng.integers(256, 417, size=2))
    # Background: a colour gradient plus low-frequency noise (a "scene"), then fine grain.
    c0, c1 = rng.uniform(30, 225, 3), rng.uniform(30, 225, 3)
    t = np.linspace(0, 1, w)[None, :, None] * math.cos(rng.uniform(0, math.pi)) + \
        np.linspace(0, 1, h)[:, None, None] * math.sin(rng.uniform(0, math.pi))
    t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    base = c0 * (1 - t) + c1 * t
    coarse = rng.normal(0, 18, (h // 32 + 2, w // 32 + 2, 3))
    coarse = np.asarray(Image.fromarray(np.clip(coarse + 128, 0, 255).astype(np.uint8)).resize(
        (w, h), Image.Resampling.BICUBIC), dtype=np.float64) - 128
    pixels = np.clip(base + coarse + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    background = tuple(int(v) for v in base[h // 2, w // 2])
    short = min(w, h)
    # Distractors: small shapes of other classes.
    for _ in range(int(rng.integers(1, 4))):
        other = int(rng.integers(0, classes - 1))
        other += other >= label
        radius = rng.uniform(0.05, 0.11) * short
        draw_shape(draw, SHAPES[other % len(SHAPES)], rng.uniform(0, w), rng.uniform(0, h),
                   radius, rng.uniform(0, 2 * math.pi),
                   tuple(int(v) for v in rng.integers(0, 256, 3)), background)
    # The object: this class's shape, large.
    radius = rng.uniform(0.18, 0.34) * short
    cx = rng.uniform(radius, w - radius)
    cy = rng.uniform(radius, h - radius)
    fill = tuple(int(v) for v in rng.integers(0, 256, 3))
    draw_shape(draw, SHAPES[label % len(SHAPES)], cx, cy, radius, rng.uniform(0, 2 * math.pi),
               fill, background)
    if rng.uniform() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    return image


def _work(task) -> int:
    path, label, seed, classes, quality = task
    if os.path.exists(path):
        return 0
    image = make_image(label, seed, classes)
    tmp = f"{path}.tmp"
    image.save(tmp, format="JPEG", quality=quality)
    os.replace(tmp, path)
    return 1


def tasks(out: Path, split: str, count: int, classes: int, quality: int, offset: int):
    per_class = [count // classes + (c < count % classes) for c in range(classes)]
    for c in range(classes):
        folder = out / split / f"{c:02d}_{SHAPES[c % len(SHAPES)]}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class[c]):
            seed = offset + c * 1_000_000 + i
            yield str(folder / f"{split}_{c:02d}_{i:06d}.jpg"), c, seed, classes, quality


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=20000)
    parser.add_argument("--val", type=int, default=2000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quality", type=int, default=90)
    args = parser.parse_args(argv)
    from tqdm import tqdm

    out = Path(args.out)
    work = list(tasks(out, "train", args.train, args.classes, args.quality, 0))
    work += list(tasks(out, "val", args.val, args.classes, args.quality, 500_000))
    made = 0
    with get_context("spawn").Pool(args.workers) as pool:
        for n in tqdm(pool.imap_unordered(_work, work, chunksize=32), total=len(work),
                      unit="img", desc="photos"):
            made += n
    print(f"{len(work):,} images in {out} ({made:,} new)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
