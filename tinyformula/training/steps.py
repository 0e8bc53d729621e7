"""One training step - forward, loss, backward, optimizer step, schedule, EMA - eager or as a
replayed CUDA graph. Every model the toolkit trains, a search's trial or a final model, trains
through it.

:class:`EagerStep` is the step as PyTorch runs it op by op (always on CPU). On a GPU a small
candidate's step is launch-bound: hundreds of tiny kernels, each waiting on Python. There,
:class:`GraphedStep` runs the first few steps eagerly on a side stream (the warm-up the CUDA
graph documentation asks for; they are real training steps, not extra ones), captures the
whole step once in a ``torch.cuda.CUDAGraph`` and replays it for every later batch, after
copying the batch into the graph's static input tensors. Everything that changes from step to
step lives on the device: the learning rate (a 0-dim tensor, set from a precomputed table
before each step; SGD is the fused implementation and AdamW the capturable one, the two that
read a tensor learning rate inside a graph) and the EMA weight. Warm-up and capture run on
the step's own side stream, on the step's device (the caller runs the trial under
``torch.cuda.device(device)``: :func:`on_device`), so a model on ``cuda:1`` captures there.

A failed capture raises :class:`CaptureFailed`: the process that tried it is no longer safe
for CUDA work (``capture_end`` raising leaves the thread on the capture stream and the
graph's private memory pool reserved), so the run ends there, and whoever runs trials
(:mod:`tinyformula.execution`) trains it again eagerly in a fresh worker process. Where this
torch cannot run the graphed optimizer at all (fused SGD or capturable AdamW reading a
tensor learning rate), :func:`make_step` returns an eager step saying so in ``note``.

The loss is a hook (:mod:`.losses`): a step is called as ``step(x, labels, *extra)`` and
minimises ``loss(model(x), labels, *extra)``, so distillation runs inside the same step (and
the same graph) as plain cross-entropy. A step may start part-way through a schedule
(``start``, for a resumed run) and hand its optimizer and EMA state to a checkpoint
(:meth:`state` / :meth:`load_state`).

Both return the loss as a tensor; reading it is the caller's choice (a read waits for the GPU).
"""

from __future__ import annotations

import contextlib
import inspect

import torch
from torch import nn

from .config import TrainConfig
from .losses import LabelSmoothing
from .optim import WeightEma, autocast, lr_factor, make_optimizer

WARMUP_STEPS = 3  # eager steps on a side stream before capture (the PyTorch docs use 3)


class CaptureFailed(RuntimeError):
    """Capturing the step in a CUDA graph failed. The process's CUDA state is unreliable
    from here on: train the run again eagerly (``cuda_graph=False``) in a new process.
    ``out_of_memory``: the capture ran out of GPU memory."""

    def __init__(self, message: str, out_of_memory: bool = False):
        super().__init__(message)
        self.out_of_memory = out_of_memory


def on_device(device: torch.device):
    """The context a run on ``device`` trains in: ``torch.cuda.device(device)`` on CUDA (so
    streams, graphs and their memory pools are made on the run's GPU), nothing on CPU."""
    if device.type == "cuda":
        return torch.cuda.device(device)
    return contextlib.nullcontext()


def _out_of_memory(error: BaseException | None) -> bool:
    """Whether ``error``, or an error it arose from, is CUDA running out of memory (inside a
    capture the OOM surfaces as ``capture_end``'s error, with the OOM as its context)."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


class EagerStep:
    """The step run op by op, the learning rate a Python float set before each step.

    Parameters
    ----------
    model : nn.Module
        Trained in place (on ``device`` already).
    config : TrainConfig
        Optimizer, schedule, label smoothing and EMA.
    total_steps : int
        The schedule's length: the learning rate follows it whatever ``start`` is.
    device : torch.device
    loss : callable, optional
        ``loss(logits, labels, *extra)``; default label-smoothed cross-entropy.
    start : int
        The step the run is at (a resumed run starts part-way through its schedule).
    """

    graphed = False

    def __init__(self, model: nn.Module, config: TrainConfig, total_steps: int,
                 device: torch.device, loss=None, start: int = 0):
        self.model, self.config, self.total_steps, self.device = model, config, total_steps, device
        self.optimizer = make_optimizer(model, config)
        self.ema = WeightEma(model, config.ema) if config.ema else None
        self.loss = loss if loss is not None else LabelSmoothing(config.label_smoothing)
        self.done = start
        self.note = ""

    @property
    def scored(self) -> nn.Module:
        """The weights to score: the EMA's when on, else the model's."""
        return self.ema.model if self.ema is not None else self.model

    def __call__(self, x: torch.Tensor, labels: torch.Tensor, *extra) -> torch.Tensor:
        lr = self.config.peak_lr * lr_factor(self.done, self.total_steps, self.config.warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device):
            loss = self.loss(self.model(x).float(), labels, *extra)
        loss.backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.done += 1
        return loss

    # -- checkpoints

    def state(self) -> dict:
        """The optimizer's and the EMA's state, for a checkpoint."""
        return {"optimizer": self.optimizer.state_dict(),
                "ema": self.ema.model.state_dict() if self.ema is not None else None,
                "ema_updates": self.ema.updates if self.ema is not None else 0}

    def load_state(self, state: dict) -> None:
        """Continue from a checkpoint's :meth:`state`."""
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None:
            self.ema.model.load_state_dict(state["ema"])
            self.ema.updates = state["ema_updates"]


class GraphedStep(EagerStep):
    """The step captured once in a CUDA graph and replayed (CUDA only; see the module doc).

    The first ``WARMUP_STEPS`` steps run eagerly on the step's side stream; the next is
    captured on that same stream and replayed, and so is every later one. A failed capture
    raises :class:`CaptureFailed` (never trains on in this process).
    """

    def __init__(self, model: nn.Module, config: TrainConfig, total_steps: int,
                 device: torch.device, loss=None, start: int = 0):
        if device.type != "cuda":
            raise ValueError("GraphedStep needs a CUDA device")
        self.model, self.config, self.total_steps, self.device = model, config, total_steps, device
        factors = [config.peak_lr * lr_factor(k, total_steps, config.warmup)
                   for k in range(total_steps)]
        self.lr_table = torch.tensor(factors, dtype=torch.float32, device=device)
        self.lr = self.lr_table[min(start, total_steps - 1)].clone()
        self.optimizer = make_optimizer(model, config, lr=self.lr)
        self._check_lr_shared()
        self.ema = WeightEma(model, config.ema) if config.ema else None
        if self.ema is not None:
            weights = [self.ema.weight(k + 1) for k in range(total_steps)]
            self.ema_table = torch.tensor(weights, dtype=torch.float32, device=device)
            self.ema_weight = self.ema_table[min(start, total_steps - 1)].clone()
        self.loss = loss if loss is not None else LabelSmoothing(config.label_smoothing)
        self.done = start
        self.eager_done = 0   # eager warm-up steps taken by this object
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failed = False
        self.note = ""
        self._side = torch.cuda.Stream(device)  # warm-up and capture, both here

    def _check_lr_shared(self) -> None:
        if any(group["lr"] is not self.lr for group in self.optimizer.param_groups):
            raise RuntimeError("the optimizer copied its learning-rate tensor; the schedule "
                               "would not reach it")

    @property
    def graphed(self) -> bool:  # type: ignore[override]
        return self.graph is not None

    def _compute(self, x: torch.Tensor, labels: torch.Tensor, *extra) -> torch.Tensor:
        """Forward, loss, backward, optimizer step, EMA: the captured region."""
        with autocast(self.device, cache=False):
            loss = self.loss(self.model(x).float(), labels, *extra)
        loss.backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update_with(self.model, self.ema_weight)
        return loss

    def _eager(self, x: torch.Tensor, labels: torch.Tensor, *extra) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        return self._compute(x, labels, *extra)

    def _capture(self, x: torch.Tensor, labels: torch.Tensor, *extra) -> None:
        self._inputs = [t.clone() for t in (x, labels, *extra)]
        self.optimizer.zero_grad(set_to_none=True)  # backward allocates grads in the graph's pool
        graph = torch.cuda.CUDAGraph()
        # On the step's own stream (made on its device), where the warm-up ran: without
        # ``stream=`` torch captures on a stream made on the *current* device. One trial runs
        # per process; thread_local only keeps a stray CUDA call from another thread of the
        # process (none is expected) from invalidating this capture.
        self._side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.graph(graph, stream=self._side, capture_error_mode="thread_local"):
            self._loss = self._compute(*self._inputs)
        torch.cuda.current_stream(self.device).wait_stream(self._side)
        self.graph = graph

    def __call__(self, x: torch.Tensor, labels: torch.Tensor, *extra) -> torch.Tensor:
        self.lr.copy_(self.lr_table[self.done])
        if self.ema is not None:
            self.ema_weight.copy_(self.ema_table[self.done])
        if self.failed:
            raise CaptureFailed("this step's CUDA graph capture failed; train it again "
                                "eagerly in a new process")
        if self.graph is None and self.eager_done == WARMUP_STEPS:
            try:
                self._capture(x, labels, *extra)
            except Exception as error:  # never train on in a process whose capture failed
                self.graph, self.failed = None, True
                message = (f"CUDA graph capture failed: {type(error).__name__}: "
                           f"{error}").splitlines()[0][:300]
                raise CaptureFailed(message, out_of_memory=_out_of_memory(error)) from error
        if self.ema is not None:
            self.ema.updates = self.done + 1  # the update this step makes (for a checkpoint)
        if self.graph is not None:
            for static, value in zip(self._inputs, (x, labels, *extra)):
                static.copy_(value)
            self.graph.replay()
            loss = self._loss
        else:  # the eager warm-up, on the side stream the capture will use
            self._side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self._side):
                loss = self._eager(x, labels, *extra)
            torch.cuda.current_stream(self.device).wait_stream(self._side)
            self.eager_done += 1
        self.done += 1
        return loss

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        # Loading replaces each group's learning rate with the saved value: point them back
        # at the device tensor the schedule writes.
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        self._check_lr_shared()


def graph_unsupported(config: TrainConfig, device: torch.device) -> str:
    """Why this torch cannot run ``config``'s optimizer inside a CUDA graph on ``device``
    (empty when it can): the graphed step needs SGD's fused implementation (torch 2.3 and
    later) or AdamW's capturable one to take a device tensor as the learning rate (tried on
    one small tensor, once per process and device), and ``torch.cuda.graph`` to take the
    capture stream and error mode."""
    key = (config.optimizer, str(device))
    graph_options = inspect.signature(torch.cuda.graph.__init__).parameters
    missing = [name for name in ("stream", "capture_error_mode") if name not in graph_options]
    if missing:
        return (f"torch {torch.__version__}'s torch.cuda.graph takes no {missing[0]}=; trained "
                f"eagerly, without a CUDA graph")
    if key not in _GRAPH_SUPPORT:
        try:
            probe = nn.Linear(2, 2).to(device)  # a decaying weight and a bias
            optimizer = make_optimizer(probe, config, lr=torch.tensor(0.1, device=device))
            for parameter in probe.parameters():
                parameter.grad = torch.ones_like(parameter)
            optimizer.step()
            _GRAPH_SUPPORT[key] = ""
        except Exception as error:  # whatever this torch objects to, the graph cannot run it
            reason = f"{type(error).__name__}: {error}".splitlines()[0][:160]
            _GRAPH_SUPPORT[key] = (f"torch {torch.__version__} cannot step {config.optimizer} "
                                   f"with a tensor learning rate on {device} ({reason}); "
                                   f"trained eagerly, without a CUDA graph")
    return _GRAPH_SUPPORT[key]


_GRAPH_SUPPORT: dict[tuple[str, str], str] = {}


def make_step(model: nn.Module, config: TrainConfig, total_steps: int,
              device: torch.device, loss=None, start: int = 0) -> EagerStep:
    """A graphed step on CUDA when ``config.cuda_graph``, more than the warm-up remains and
    this torch can run the optimizer in a graph; otherwise eager (``note`` says why when a
    graph was asked for but torch cannot). ``loss`` and ``start`` as in :class:`EagerStep`."""
    if device.type == "cuda" and config.cuda_graph and total_steps - start > WARMUP_STEPS:
        reason = graph_unsupported(config, device)
        if not reason:
            return GraphedStep(model, config, total_steps, device, loss, start)
        step = EagerStep(model, config, total_steps, device, loss, start)
        step.note = reason
        return step
    return EagerStep(model, config, total_steps, device, loss, start)
