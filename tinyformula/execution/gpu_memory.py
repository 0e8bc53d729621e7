"""One trial's memory: on its GPU (measured on a short run, its data counted, its CUDA
context from NVML) and on the host (one worker process and its dataset copy).

A trial's GPU memory (:class:`TrialMemory`) is measured on a short run of the search's
largest candidate, with what differs in a real trial counted explicitly: the training subset
it keeps on the GPU as uint8 with its draws (:func:`~tinyformula.training.batches.resident_bytes`)
and the held-out images it scores; and the process's own CUDA context, read from NVML where
``nvidia-ml-py`` is installed (:func:`process_gpu_bytes`), else the documented estimate
:data:`CONTEXT_BYTES`. Only :func:`process_gpu_bytes` and :func:`measure_trial_memory` need
a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

# A CUDA context and torch's kernels, per process, when NVML cannot measure it: a documented
# estimate (the CUDA runtime, cuBLAS/cuDNN handles and workspaces: 300-600 MiB on recent
# GPUs and CUDA 12; lazy module loading keeps it at the low end).
CONTEXT_BYTES = 512 * 2**20
# Host memory of one GPU worker process beyond its dataset copy: the CUDA driver's and torch's
# host-side state (pinned staging buffers, the context's host half, allocator metadata) and
# Python; an estimate, generous for a process that trains one small model.
GPU_WORKER_HOST_BYTES = 3 * 2**30


def estimate_trial_bytes(params: int, activation_elements: int, batch_size: int,
                         optimizer: str = "sgd", ema: bool = False) -> int:
    """A rough upper bound on one trial's GPU memory when none was measured: the CUDA context;
    fp32 weights, gradients and optimizer state (momentum; AdamW's two moments) and an EMA
    copy; and ``activation_elements`` (the outputs of every layer for one image) kept for
    the backward pass at 4 bytes each (bf16 halves most of them: hence an upper bound),
    doubled for the graph's private pool and the allocator's rounding."""
    copies = 2 + (2 if optimizer == "adamw" else 1) + (1 if ema else 0)
    return CONTEXT_BYTES + 4 * params * copies + 2 * 4 * activation_elements * batch_size


@dataclass(frozen=True)
class TrialMemory:
    """One trial's GPU memory, from a short measured run: the allocator's ``peak`` (reserved
    bytes), of which ``short_data`` was the short run's data; the real trial's data
    (``data``: training subset, draws and held-out images, counted); and the process's CUDA
    context (``context``: NVML's per-process figure less the allocator's, or the estimate
    :data:`CONTEXT_BYTES`; ``context_measured`` says which)."""

    peak: int
    short_data: int
    data: int
    context: int
    context_measured: bool = False

    @property
    def total(self) -> int:
        return max(0, self.peak - self.short_data) + self.data + self.context

    def describe(self) -> str:
        how = "measured by NVML" if self.context_measured else "estimated"
        return (f"{self.total / 2**30:.2f} GiB per trial: {self.peak / 2**30:.2f} GiB measured "
                f"peak, data {self.data / 2**30:.2f} GiB (counted), CUDA context "
                f"{self.context / 2**30:.2f} GiB ({how})")


def trial_data_bytes(data, config) -> int:
    """Bytes of data a trial keeps on its GPU: its training subset, labels and draws
    (:func:`~tinyformula.training.batches.resident_bytes`) and the held-out images and
    labels it scores (``config.val_size`` of them, or all)."""
    from ..data.images import image_bytes
    from ..training.batches import resident_bytes
    from ..training.trainer import training_images

    train_size = training_images(data, config)
    held = resident_bytes(data, train_size=train_size, batch_size=config.batch_size,
                          epochs=config.epochs, augment=config.augment)
    n_val = len(data.val_images)
    if config.val_size is not None:
        n_val = min(config.val_size, n_val)
    per_image = image_bytes(data.val_images)
    return held + n_val * (per_image + data.val_labels.element_size())


def host_bytes_per_worker(data) -> int:
    """Host memory of one GPU worker process: :data:`GPU_WORKER_HOST_BYTES` and its own copy
    of the dataset (each worker loads it)."""
    from ..data.images import ImageRows, image_bytes

    tensors = (data.train_images, data.train_labels, data.val_images, data.val_labels)
    # Images mapped from a prepared cache are shared page cache, not the worker's own copy.
    return GPU_WORKER_HOST_BYTES + sum(len(t) * image_bytes(t) if t.dim() > 1 else
                                       t.numel() * t.element_size()
                                       for t in tensors if not isinstance(t, ImageRows))


def process_gpu_bytes(index: int, nvml=None) -> int | None:
    """GPU memory this process uses on visible GPU ``index`` (its CUDA context and every
    allocation), as NVML reports it; None where NVML is missing (``pip install
    nvidia-ml-py``) or does not list this process (in a container NVML may see the host's
    process ids). ``nvml``: the module to ask (tests pass a fake)."""
    import os

    import torch

    if nvml is None:
        try:
            import pynvml
        except ImportError:
            return None
        nvml = pynvml
    try:
        nvml.nvmlInit()
        uuid = str(torch.cuda.get_device_properties(index).uuid).lower().removeprefix("gpu-")
        for k in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(k)
            theirs = nvml.nvmlDeviceGetUUID(handle)
            theirs = (theirs.decode() if isinstance(theirs, bytes) else str(theirs)).lower()
            if theirs.removeprefix("gpu-") != uuid:
                continue
            for process in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                used = getattr(process, "usedGpuMemory", None)
                if process.pid == os.getpid() and used:
                    return int(used)
            return None
    except Exception:  # NVML missing a function or a driver: fall back to the estimate
        return None
    return None


def measure_trial_memory(data, base, scale, config, *,
                         resolution_base: int | None = None) -> TrialMemory:
    """One trial's GPU memory (:class:`TrialMemory`): the peak of a short run of it (warm-up,
    capture and a few replays at the configured batch size and scoring batch) with its data
    counted apart, and this process's CUDA context from NVML. Measure the search's largest
    candidate (highest c and resolution): the others need less. Call it before
    :func:`visible_gpus`, whose free memory then excludes this process's context."""
    import dataclasses

    import torch

    from ..training.steps import WARMUP_STEPS
    from ..training.trainer import train

    device = torch.device(config.device if config.device.startswith("cuda") else "cuda")
    index = device.index if device.index is not None else torch.cuda.current_device()
    short = dataclasses.replace(config, device=f"cuda:{index}", epochs=1,
                                train_size=min(len(data.train_images),
                                               config.batch_size * (WARMUP_STEPS + 3)))
    with torch.cuda.device(index):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()  # the peak below then counts this run alone
        torch.cuda.reset_peak_memory_stats()
        result = train(data, base, scale, short, resolution_base=resolution_base)
        if result.status not in ("ok", "diverged"):
            raise RuntimeError(f"could not measure a trial's memory: {result.status} "
                               f"{result.message}")
        peak = torch.cuda.max_memory_reserved()
        used, reserved = process_gpu_bytes(index), torch.cuda.memory_reserved()
        torch.cuda.empty_cache()  # so visible_gpus() afterwards sees the memory free again
    context = used - reserved if used is not None and used > reserved else None
    return TrialMemory(peak=peak, short_data=trial_data_bytes(data, short),
                       data=trial_data_bytes(data, config),
                       context=CONTEXT_BYTES if context is None else context,
                       context_measured=context is not None)


def measure_job_memory(job) -> TrialMemory:
    """:func:`measure_trial_memory` of a :class:`~.jobs.TrialJob`, its data loaded here (run
    it in a process of its own: a failed capture must not leave the caller's unreliable, and
    the caller keeps no CUDA context)."""
    from ..data import cached_dataset

    data = cached_dataset(job.data.name, job.data.data_dir, job.data.validation)
    return measure_trial_memory(data, job.base, job.scale, job.train,
                                resolution_base=job.resolution_base)


def measure_trial_bytes(data, base, scale, config, *, resolution_base: int | None = None) -> int:
    """:func:`measure_trial_memory`'s total, in bytes."""
    return measure_trial_memory(data, base, scale, config, resolution_base=resolution_base).total
