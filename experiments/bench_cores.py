"""Benchmark: how to use the CPU's cores for many small models (the search's workload).

Trains the same list of small candidates (EfficientNet-B0 scaled down, real Fashion-MNIST,
whole ``train()`` calls: build, train, BatchNorm recalibration, scoring) in each layout:

* ``1 x 1``: one process, one thread (reference);
* ``1 x T``: one process with T threads (T = the number of cores), candidates one after another;
* ``P x 1``: P processes with one thread each, the candidates dealt out between them.

Every layout runs in fresh worker processes that load the data first and then start together
on a barrier; the wall time runs from the barrier to the last worker's end. Reports total
training images per second and candidates per minute.

    PYTHONPATH=. python experiments/bench_cores.py [--images 2048] [--candidates 4] [--cores 2]

Timings depend on what else runs on the machine: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

SCALES = [(0.5, 0.5, 0.5), (0.75, 0.5, 0.5), (0.5, 1.0, 0.5), (1.0, 0.5, 0.25),
          (0.75, 0.75, 0.5), (0.5, 0.5, 1.0), (1.0, 0.25, 0.5), (0.625, 0.75, 0.75)]


def worker(rank, scales, threads, images, barrier, results):
    import torch

    torch.set_num_threads(threads)
    from tinyformula import Scale, TrainConfig, load_dataset, train

    data = load_dataset("fashion-mnist")
    config = TrainConfig(train_size=images, val_size=2000, bn_recalibrate=512)
    train(data, "efficientnet_b0", Scale(0.5, 0.25, 0.25), TrainConfig(train_size=256, val_size=10))
    barrier.wait()
    start = time.time()
    seen, top1 = 0, []
    for r, d, w in scales:
        result = train(data, "efficientnet_b0", Scale(r, d, w), config)
        seen += result.images
        top1.append(result.top1)
    results.put((rank, start, time.time(), seen, top1))


def run_layout(processes, threads, scales, images):
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    shares = [scales[i::processes] for i in range(processes)]
    workers = [ctx.Process(target=worker, args=(i, shares[i], threads, images, barrier, results))
               for i in range(processes)]
    for p in workers:
        p.start()
    out = [results.get() for _ in workers]
    for p in workers:
        p.join()
    wall = max(o[2] for o in out) - min(o[1] for o in out)
    seen = sum(o[3] for o in out)
    top1 = {scale: t for o in out for scale, t in zip(shares[o[0]], o[4])}
    return wall, seen, top1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048, help="training images per candidate")
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    args = parser.parse_args()
    scales = SCALES[:args.candidates]
    layouts = [(1, 1), (1, args.cores), (args.cores, 1)]
    print(f"{args.candidates} candidates x {args.images} Fashion-MNIST images, {args.cores} cores, "
          f"load average at start {os.getloadavg()[0]:.2f}")
    reference = None
    for processes, threads in layouts:
        wall, seen, top1 = run_layout(processes, threads, scales, args.images)
        if reference is None:
            reference = top1
        same = all(top1[s] == reference[s] for s in scales)
        print(f"  {processes} process(es) x {threads} thread(s): {seen / wall:7.1f} images/s, "
              f"{60 * len(scales) / wall:5.2f} candidates/min, wall {wall:6.1f} s, "
              f"top-1 {'identical to' if same else 'differs from'} 1 x 1 "
              f"(load average {os.getloadavg()[0]:.2f})", flush=True)


if __name__ == "__main__":
    main()
