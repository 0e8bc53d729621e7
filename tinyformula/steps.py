"""One training step - forward, loss, backward, optimizer step, schedule, EMA - eager or as a
replayed CUDA graph.

:class:`EagerStep` is the step as PyTorch runs it op by op (always on CPU). On a GPU a small
candidate's step is launch-bound: hundreds of tiny kernels, each waiting on Python. There,
:class:`GraphedStep` runs the first few steps eagerly on a side stream (the warm-up the CUDA
graph documentation asks for; they are real training steps, not extra ones), captures the
whole step once in a ``torch.cuda.CUDAGraph`` and replays it for every later batch, after
copying the batch into the graph's static input tensors. Everything that changes from step to
step lives on the device: the learning rate (a 0-dim tensor, set from a precomputed table
before each step; SGD is the fused implementation and AdamW the capturable one, the two that
read a tensor learning rate inside a graph) and the EMA weight. If capture fails, the step
stays eager for the rest of the run and says why in ``note``.

Both take ``(x, labels)`` and return the loss as a tensor; reading it is the caller's choice
(a read waits for the GPU).
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from .train import TrainConfig

WARMUP_STEPS = 3  # eager steps on a side stream before capture (the PyTorch docs use 3)


def lr_factor(step: int, total: int, warmup: float) -> float:
    """Multiplier of the peak rate at ``step`` (0-based): linear warm-up, then cosine to 0."""
    warm = max(1, round(warmup * total)) if warmup > 0 else 0
    if step < warm:
        return (step + 1) / warm
    span = max(1, total - warm)
    return 0.5 * (1 + math.cos(math.pi * min(step - warm, span) / span))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: weights of convolutions and linear layers decay; BatchNorm parameters and
    biases (every parameter of one dimension or fewer) do not, since shrinking them only
    fights normalisation."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, config: TrainConfig,
                   lr: torch.Tensor | None = None) -> torch.optim.Optimizer:
    """SGD (Nesterov momentum 0.9) or AdamW at the peak rate; with ``lr`` (a 0-dim device
    tensor) the implementation that reads the rate from that tensor inside a CUDA graph:
    fused SGD, capturable AdamW."""
    groups = param_groups(model, config.weight_decay)
    if lr is None:
        if config.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=config.peak_lr, momentum=0.9, nesterov=True)
        return torch.optim.AdamW(groups, lr=config.peak_lr, betas=(0.9, 0.999))
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, fused=True)
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), capturable=True)


def autocast(device: torch.device, cache: bool = True):
    """bf16 autocast on CUDA (``cache=False`` inside CUDA graphs, as PyTorch requires), none
    on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=cache)
    return torch.autocast("cpu", enabled=False)


class WeightEma:
    """Exponential moving average of parameters and BatchNorm statistics.

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` at update ``n`` so a short run is
    not dominated by its random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def weight(self, update: int) -> float:
        """The share of the live weights in update ``update`` (1-based)."""
        return 1 - min(self.decay, (1 + update) / (10 + update))

    def _pairs(self, model: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        mine = [t for t in self.model.state_dict().values() if t.dtype.is_floating_point]
        theirs = [t for t in model.state_dict().values() if t.dtype.is_floating_point]
        return mine, theirs

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        mine, theirs = self._pairs(model)
        torch._foreach_lerp_(mine, theirs, self.weight(self.updates))

    @torch.no_grad()
    def update_with(self, model: nn.Module, weight: torch.Tensor) -> None:
        """One update with ``weight`` a 0-dim device tensor (readable inside a CUDA graph):
        ``ema += weight * (live - ema)``."""
        mine, theirs = self._pairs(model)
        step = torch._foreach_sub(theirs, mine)
        torch._foreach_mul_(step, weight)
        torch._foreach_add_(mine, step)


class EagerStep:
    """The step run op by op, the learning rate a Python float set before each step."""

    graphed = False

    def __init__(self, model: nn.Module, config: TrainConfig, total_steps: int,
                 device: torch.device):
        self.model, self.config, self.total_steps, self.device = model, config, total_steps, device
        self.optimizer = make_optimizer(model, config)
        self.ema = WeightEma(model, config.ema) if config.ema else None
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.done = 0
        self.note = ""

    @property
    def scored(self) -> nn.Module:
        """The weights to score: the EMA's when on, else the model's."""
        return self.ema.model if self.ema is not None else self.model

    def __call__(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        lr = self.config.peak_lr * lr_factor(self.done, self.total_steps, self.config.warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device):
            loss = self.criterion(self.model(x).float(), labels)
        loss.backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.done += 1
        return loss


class GraphedStep:
    """The step captured once in a CUDA graph and replayed (CUDA only; see the module doc).

    The first ``WARMUP_STEPS`` steps run eagerly on a side stream; the next is captured and
    replayed, and so is every later one. On a failed capture the run continues eagerly with
    the same optimizer and schedule, ``graphed`` stays False and ``note`` says why.
    """

    def __init__(self, model: nn.Module, config: TrainConfig, total_steps: int,
                 device: torch.device):
        if device.type != "cuda":
            raise ValueError("GraphedStep needs a CUDA device")
        self.model, self.config, self.total_steps, self.device = model, config, total_steps, device
        factors = [config.peak_lr * lr_factor(k, total_steps, config.warmup)
                   for k in range(total_steps)]
        self.lr_table = torch.tensor(factors, dtype=torch.float32, device=device)
        self.lr = self.lr_table[0].clone()
        self.optimizer = make_optimizer(model, config, lr=self.lr)
        if any(group["lr"] is not self.lr for group in self.optimizer.param_groups):
            raise RuntimeError("the optimizer copied its learning-rate tensor; the schedule "
                               "would not reach it")
        self.ema = WeightEma(model, config.ema) if config.ema else None
        if self.ema is not None:
            weights = [self.ema.weight(k + 1) for k in range(total_steps)]
            self.ema_table = torch.tensor(weights, dtype=torch.float32, device=device)
            self.ema_weight = self.ema_table[0].clone()
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.done = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failed = False
        self.note = ""
        self._side = torch.cuda.Stream(device)

    @property
    def graphed(self) -> bool:
        return self.graph is not None

    @property
    def scored(self) -> nn.Module:
        return self.ema.model if self.ema is not None else self.model

    def _compute(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Forward, loss, backward, optimizer step, EMA: the captured region."""
        with autocast(self.device, cache=False):
            loss = self.criterion(self.model(x).float(), labels)
        loss.backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update_with(self.model, self.ema_weight)
        return loss

    def _eager(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        return self._compute(x, labels)

    def _capture(self, x: torch.Tensor, labels: torch.Tensor) -> None:
        self._x, self._labels = x.clone(), labels.clone()
        self.optimizer.zero_grad(set_to_none=True)  # backward allocates grads in the graph's pool
        graph = torch.cuda.CUDAGraph()
        # thread_local: trials in other threads of this process (Dask) cannot break the capture.
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self._loss = self._compute(self._x, self._labels)
        self.graph = graph

    def __call__(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.lr.copy_(self.lr_table[self.done])
        if self.ema is not None:
            self.ema_weight.copy_(self.ema_table[self.done])
        if self.graph is None and not self.failed and self.done == WARMUP_STEPS:
            try:
                self._capture(x, labels)
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as error:  # any capture failure: train on, eagerly
                self.graph, self.failed = None, True
                self.note = ("CUDA graph capture failed, trained eagerly: "
                             f"{type(error).__name__}: {error}").splitlines()[0][:300]
                torch.cuda.synchronize(self.device)
        if self.graph is not None:
            self._x.copy_(x)
            self._labels.copy_(labels)
            self.graph.replay()
            loss = self._loss
        elif self.done < WARMUP_STEPS and not self.failed:
            self._side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self._side):
                loss = self._eager(x, labels)
            torch.cuda.current_stream(self.device).wait_stream(self._side)
        else:
            loss = self._eager(x, labels)
        self.done += 1
        return loss


def make_step(model: nn.Module, config: TrainConfig, total_steps: int,
              device: torch.device) -> EagerStep | GraphedStep:
    """A graphed step on CUDA when ``config.cuda_graph`` and the run is longer than the
    warm-up; otherwise eager."""
    if device.type == "cuda" and config.cuda_graph and total_steps > WARMUP_STEPS:
        return GraphedStep(model, config, total_steps, device)
    return EagerStep(model, config, total_steps, device)
