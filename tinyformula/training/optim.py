"""The optimizer, its schedule and the weight EMA the training step uses.

SGD with Nesterov momentum (default) or AdamW, a linear warm-up then cosine decay to 0, no
weight decay on BatchNorm and biases, bf16 autocast on CUDA, and an exponential moving average
of the weights whose decay ramps up so a short run is not dominated by its initialisation.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .config import TrainConfig


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
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
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
