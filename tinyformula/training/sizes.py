"""A training run's size against the machine, before anything is drawn or allocated.

The user sizes a run (images, epochs, batch size, the model through r, d and w); these
checks refuse in one line, before any work, a run that cannot fit in this machine's (or
GPU's) memory or could not finish in a lifetime, saying what was asked and what is possible:

* on a CPU, the activations one training step keeps for its backward pass: at least
  ``batch x activations x 8 bytes`` (the outputs of every convolution and linear layer, the
  analytic count's ``activations``, and their gradients, in float32); on a GPU, running out
  of memory is already a trial's ``oom`` status, and GPU trials share a card as the GPU plan
  measured, so it is not second-guessed here;
* the batches' draws, all made up front (:class:`~.batches.TrainBatches`): about
  ``DRAW_BYTES`` per training image of the whole schedule;
* the time: ``3 x FLOPs`` per training image (forward and backward) at a rate no machine here
  beats (:data:`FAST_FLOPS_PER_S`), against :data:`LIFETIME_S`.
"""

from __future__ import annotations

from ..core.errors import TinyFormulaError
from ..core.memory import check_fits, largest

# Bytes per activation a training step keeps on a CPU at the least: the output and its
# gradient, in float32.
ACTIVATION_BYTES = 8
# What TrainBatches draws per training image of the schedule: an index (8 bytes), a crop
# offset pair (16) and a flip (1).
DRAW_BYTES = 25
# Faster than any device this runs on trains (generous: a refusal must always be right).
FAST_FLOPS_PER_S = {"cpu": 1e12, "cuda": 1e15}
LIFETIME_S = 10 * 365.25 * 86400      # ten years


def check_training_size(*, flops: int, activations: int, batch_size: int, images: int,
                        device: str, what: str = "training") -> None:
    """Refuse a run that cannot fit or finish: ``images`` is the whole schedule's training
    images (train size x epochs), ``device`` a torch device type or name."""
    kind = "cuda" if str(device).startswith("cuda") else "cpu"
    # Arithmetic first: whether the schedule could ever finish does not depend on what the
    # machine has free now.
    seconds = 3.0 * flops * images / FAST_FLOPS_PER_S[kind]
    if seconds > LIFETIME_S:
        years = seconds / (365.25 * 86400)
        possible = int(images * LIFETIME_S / seconds)
        raise TinyFormulaError(
            f"{what} of {images:,} training images (images x epochs) at {flops:,} FLOPs each "
            f"would take at least {years:,.0f} years even at {FAST_FLOPS_PER_S[kind]:.0e} "
            f"FLOPs/s; at most {possible:,} training images finish in ten years")
    if kind == "cpu":
        per_image = activations * ACTIVATION_BYTES
        check_fits(batch_size * per_image, f"{what} at --batch-size {batch_size:,} (a model of "
                                           f"{activations:,} activations per image)", "cpu",
                   lambda free: f"at most --batch-size {largest(per_image, free):,} here")
    check_fits(images * DRAW_BYTES, f"drawing every batch of {images:,} training images "
                                    f"(images x epochs) up front", "cpu",
               lambda free: f"at most {largest(DRAW_BYTES, free):,} training images in all: "
                            f"fewer --epochs or a smaller --train-size")
