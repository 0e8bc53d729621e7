"""Benchmark: our trainer against a plain PyTorch loop, images per second, in one run.

Both train the same model (EfficientNet-B0 at the base resolution, 32 px, 10 classes) on real
Fashion-MNIST with the same batch size, optimiser (the trainer's default: SGD + Nesterov 0.05,
weight decay 0.05, label smoothing 0.1), the same augmentation (padded random crop, flip, resize
28 -> 32 px) and the
same number of images. The plain loop is what one writes first: a per-sample ``Dataset``
whose ``__getitem__`` crops, flips and resizes one image, and a ``DataLoader``
(``num_workers=0``: with two cores, a worker process only takes a core from the model). It is
run twice: as written (NCHW tensors), and with channels_last, so the output separates what
the batch pipeline buys from what the memory format buys. Repeats alternate the contenders;
the median is reported.

    PYTHONPATH=. python experiments/bench_trainer.py [--images 2048] [--repeats 3] [--threads N]
                                                     [--device cpu|cuda]

Timings depend on what else runs on the machine: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from tinyformula import Scale, TrainConfig, get_base, load_dataset, train


class PerSampleFashion(Dataset):
    """One image at a time: crop, flip, resize, normalise, three channels."""

    def __init__(self, data, indices, resolution):
        self.images, self.labels = data.train_images, data.train_labels
        self.indices, self.resolution = indices, resolution
        self.mean, self.std = data.mean[0], data.std[0]
        self.pad = max(1, data.size // 8)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        j = self.indices[i]
        image = F.pad(self.images[j], (self.pad,) * 4)
        y, x = torch.randint(0, 2 * self.pad + 1, (2,)).tolist()
        size = self.images.shape[-1]
        image = image[:, y:y + size, x:x + size]
        if torch.rand(()) < 0.5:
            image = image.flip(-1)
        image = F.interpolate(image[None].float(), size=(self.resolution,) * 2, mode="bilinear",
                              align_corners=False)[0]
        image = ((image - self.mean) / self.std).expand(3, -1, -1)
        return image, self.labels[j]


def plain_loop(data, n_images, batch_size, device, channels_last, seed=0) -> float:
    """Images per second of the training loop (data loading included, model building not)."""
    torch.manual_seed(seed)
    model = get_base("efficientnet_b0").build(Scale(), data.num_classes, 32).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                                weight_decay=0.05)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    loader = DataLoader(PerSampleFashion(data, torch.arange(n_images), 32),
                        batch_size=batch_size, shuffle=True, drop_last=True, num_workers=0)
    model.train()
    seen = 0
    start = time.perf_counter()
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(y)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def ours(data, n_images, batch_size, device) -> float:
    config = TrainConfig(train_size=n_images, batch_size=batch_size, device=device.type,
                         optimizer="sgd",
                         bn_recalibrate=0, val_size=1)
    result = train(data, "efficientnet_b0", Scale(), config)
    assert result.status == "ok", result
    return result.images_per_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = load_dataset("fashion-mnist")
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, "
          f"{args.images} images, batch {args.batch_size}, load average at start "
          f"{os.getloadavg()[0]:.2f}")
    # Warm-up: first optimizer construction imports torch._dynamo, first kernels allocate.
    ours(data, 2 * args.batch_size, args.batch_size, device)
    plain_loop(data, 2 * args.batch_size, args.batch_size, device, True)

    runs = {"ours": [], "plain": [], "plain+channels_last": []}
    for repeat in range(args.repeats):
        order = list(runs) if repeat % 2 == 0 else list(reversed(runs))
        for name in order:
            if name == "ours":
                value = ours(data, args.images, args.batch_size, device)
            else:
                value = plain_loop(data, args.images, args.batch_size, device,
                                   channels_last=name.endswith("channels_last"))
            runs[name].append(value)
            print(f"  repeat {repeat + 1}: {name:<20} {value:8.1f} images/s", flush=True)
    medians = {name: statistics.median(values) for name, values in runs.items()}
    print(f"\nmedian of {args.repeats} (images/s), load average at end {os.getloadavg()[0]:.2f}:")
    for name, value in medians.items():
        print(f"  {name:<20} {value:8.1f}   ours / this = {medians['ours'] / value:.2f}x")


if __name__ == "__main__":
    main()
