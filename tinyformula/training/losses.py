"""What a training step minimises: the loss hook.

A loss is called as ``loss(logits, labels, *extra)``, where ``extra`` holds whatever else the
batch iterator yields for the batch (a distillation teacher's inputs). The search trains with
:class:`LabelSmoothing` alone; the final recipe may distil from a teacher
(:class:`Distillation`). Both run inside the one training step, eager or captured in a CUDA
graph, so they may not synchronise with the host.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LabelSmoothing(nn.Module):
    """Cross-entropy against labels smoothed by ``smoothing``."""

    def __init__(self, smoothing: float = 0.0):
        super().__init__()
        self.criterion = nn.CrossEntropyLoss(label_smoothing=smoothing)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, *extra) -> torch.Tensor:
        return self.criterion(logits, labels)


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), averaged over the batch."""
    return F.kl_div(F.log_softmax(student / temperature, dim=1),
                    F.log_softmax(teacher / temperature, dim=1), reduction="batchmean",
                    log_target=True) * temperature ** 2


class Distillation(nn.Module):
    """``(1 - weight) * CE_smoothed(student, label) + weight * T^2 * KL(teacher_T || student_T)``
    (Hinton et al. 2015), both soft-maxes at temperature T. The teacher (in eval mode, no
    gradients) sees the batch's augmented images at its own resolution: the batch's first
    extra tensor."""

    def __init__(self, teacher: nn.Module, temperature: float, weight: float,
                 smoothing: float = 0.0):
        super().__init__()
        self.teacher = teacher.eval()
        for parameter in self.teacher.parameters():
            parameter.requires_grad_(False)
        self.temperature, self.weight = temperature, weight
        self.hard = LabelSmoothing(smoothing)

    def train(self, mode: bool = True) -> "Distillation":
        super().train(mode)
        self.teacher.eval()  # the teacher's BatchNorm statistics never move
        return self

    def forward(self, logits: torch.Tensor, labels: torch.Tensor,
                teacher_inputs: torch.Tensor | None = None, *extra) -> torch.Tensor:
        loss = self.hard(logits, labels)
        if self.weight <= 0 or teacher_inputs is None:
            return loss
        with torch.no_grad():
            target = self.teacher(teacher_inputs).float()
        return (1 - self.weight) * loss + self.weight * distillation_loss(
            logits, target, self.temperature)
