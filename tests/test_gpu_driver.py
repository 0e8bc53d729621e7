"""The GPU path's decisions around the trainer, the final recipe and the search driver, on the
CPU: a failed capture ends a run (never trains on), the steady state is timed apart from the
warm-up, the driver's GPU plan (ramp, host caps), which searches spawn workers, and
out-of-memory trials retried on resume."""

import dataclasses
import math

import pytest
import torch

from tinyformula import Scale, TinyFormulaError, create_model
from tinyformula.data import load_dataset
from tinyformula.execution.gpu import Gpu
from tinyformula.execution.gpu_memory import TrialMemory
from tinyformula.execution.jobs import TrialResult, TrialState
from tinyformula.training import recipe as recipe_module
from tinyformula.training import trainer
from tinyformula.training.config import RecipeConfig, TrainConfig
from tinyformula.training.steps import WARMUP_STEPS, CaptureFailed

GiB = 2**30
TINY = Scale(r=0.5, d=0.25, w=0.25)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_a_failed_capture_ends_the_run_with_its_own_status(digits, monkeypatch):
    calls = []

    def failing_step(*args, **kwargs):
        def step(*batch):
            calls.append(1)
            if len(calls) > WARMUP_STEPS:
                raise CaptureFailed("CUDA graph capture failed: RuntimeError: no sync allowed")
            return torch.tensor(1.0)
        step.note, step.graphed = "", False
        return step

    monkeypatch.setattr(trainer, "make_step", failing_step)
    config = TrainConfig(train_size=256, batch_size=32, epochs=1, val_size=50, threads=1)
    result = trainer.train(digits, "efficientnet_b0", TINY, config)
    assert result.status == "capture_failed" and result.top1 is None
    assert "no sync allowed" in result.message and "cuda_graph=False" in result.message
    assert len(calls) == WARMUP_STEPS + 1  # nothing trained after the failure

    def out_of_memory_in_capture(*args, **kwargs):
        def step(*batch):
            raise CaptureFailed("CUDA graph capture failed: out of memory", out_of_memory=True)
        return step

    monkeypatch.setattr(trainer, "make_step", out_of_memory_in_capture)
    assert trainer.train(digits, "efficientnet_b0", TINY, config).status == "oom"


def test_the_final_recipe_stops_at_a_failed_capture_and_says_how_to_go_on(digits, tmp_path,
                                                                          monkeypatch):
    def failing_step(*args, **kwargs):
        raise CaptureFailed("CUDA graph capture failed: RuntimeError: no sync allowed")

    monkeypatch.setattr(recipe_module, "make_step", failing_step)
    model = create_model(num_classes=10, resolution_base=32, seed=0, r=0.5, d=0.25, w=0.25)
    recipe = RecipeConfig.of(epochs=1, train_size=128, batch_size=64, val_size=50, threads=1)
    with pytest.raises(TinyFormulaError, match="--no-cuda-graph") as error:
        recipe_module.train_final(digits, model, tmp_path, recipe)
    assert len(str(error.value).splitlines()) == 1 and "no sync allowed" in str(error.value)


def test_the_steady_state_is_timed_after_the_warm_up_and_capture(digits):
    config = TrainConfig(train_size=320, batch_size=32, epochs=1, val_size=50, threads=1,
                         bn_recalibrate=0)
    result = trainer.train(digits, "efficientnet_b0", TINY, config)
    assert result.steps == 10
    assert result.steady_images == (10 - WARMUP_STEPS - 1) * 32
    assert 0 < result.steady_seconds and result.steady_start > 0
    assert result.steady_images_per_s == pytest.approx(result.steady_images /
                                                       result.steady_seconds)
    short = trainer.train(digits, "efficientnet_b0", TINY, config.replace(train_size=128))
    assert short.steps == 4 and short.steady_images == 0 and short.steady_images_per_s == 0.0


# -- the driver -----------------------------------------------------------------------------------

def search_config(**changes):
    from tinyformula.sweep.config import SearchConfig

    config = SearchConfig.from_options(base="efficientnet_b0", data="digits", preset="smoke",
                                       trials=8).resolved(train_images=1000)
    return dataclasses.replace(config, **changes)


@pytest.mark.parametrize("changes, cuda, spawns, advice", [
    (dict(workers=1), False, False, ""),
    (dict(workers=2), False, True, "workers=1"),
    (dict(workers=1), True, True, "GPU trials always run in worker processes"),
    (dict(workers=1, device="cpu"), True, False, ""),
    (dict(workers=1, executor="dask"), False, True, "local executor"),
])
def test_which_searches_start_worker_processes(monkeypatch, changes, cuda, spawns, advice):
    from tinyformula.sweep.driver import spawns_workers

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    said = spawns_workers(search_config(**changes))
    assert said[0] is spawns and advice in said[1] and (said[1] == "") is (not spawns)


@pytest.fixture
def fake_gpus(monkeypatch):
    """Two 80 GiB GPUs, 3 GiB trials, 6 cores, plenty of host memory; the ramp recorded."""
    from tinyformula.execution import gpu, gpu_memory, resources, slots
    from tinyformula.sweep import driver

    ramps = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(slots, "run_apart", lambda function, *args: function(*args))
    monkeypatch.setattr(gpu_memory, "measure_trial_memory",
                        lambda *args, **kwargs: TrialMemory(2 * GiB, 0, GiB // 2, GiB // 2))
    monkeypatch.setattr(gpu, "visible_gpus", lambda: [Gpu(0, "A", 80 * GiB, 80 * GiB),
                                                      Gpu(1, "B", 80 * GiB, 80 * GiB)])
    monkeypatch.setattr(resources, "usable_cores", lambda: 6)
    monkeypatch.setattr(resources, "available_memory", lambda: 500 * GiB)

    def ramp(job, gpu_index, cap, log):
        ramps.append((job, gpu_index, cap))
        return {1: 100.0, 2: 190.0, 4: 195.0}

    monkeypatch.setattr(driver, "_measure_ramp", ramp)
    return ramps


def plan(config, lines):
    from tinyformula.data import cached_dataset
    from tinyformula.sweep.driver import plan_gpus, search_candidates
    from tinyformula.sweep.trials import Trial

    dataset = cached_dataset("digits", None, config.val_size)
    yardstick = config.yardstick(dataset.num_classes, dataset.resolution_base)
    trials = [Trial(i, i, config.seed, c, images=config.train_size * config.epochs)
              for i, c in enumerate(search_candidates(config, yardstick))]
    return plan_gpus(config, yardstick, trials, dataset, lines.append)


def test_the_gpu_plan_measures_the_ramp_only_when_it_pays_and_caps_by_cores(fake_gpus,
                                                                            monkeypatch):
    from tinyformula.sweep import driver

    lines = []
    slots, device = plan(search_config(device="cuda"), lines)
    assert device == "cuda" and not fake_gpus  # 8 trials: the ramp would cost more than it gains
    assert slots == (0, 1, 0, 1, 0, 1) and any("6 usable core(s)" in line for line in lines)
    assert any("ramp not measured" in line for line in lines)
    assert any("CUDA context 0.50 GiB (estimated)" in line for line in lines)

    monkeypatch.setattr(driver, "RAMP_MIN_TRIALS_PER_SLOT", 1)
    lines = []
    slots, _ = plan(search_config(device="cuda"), lines)
    [(job, gpu_index, cap)] = fake_gpus
    assert gpu_index == 0 and cap == 6 and job.train.device == "cuda"
    assert slots == (0, 1, 0, 1)  # the ramp's choice: 2 per GPU reach 95% of its best

    fake_gpus.clear()
    slots, _ = plan(search_config(device="cuda:1", trials_per_gpu=3), [])
    assert slots == (1, 1, 1) and not fake_gpus  # an override needs no ramp
    assert plan(search_config(device="cpu"), []) == ((), "cpu")


class _Executor:
    def __init__(self, state):
        self.state, self.jobs = state, []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def train(self, jobs):
        for job in jobs:
            self.jobs.append(job)
            top1 = 0.5 + 0.1 * math.log(job.scale.r * job.scale.d * job.scale.w ** 2 + 1)
            yield TrialResult(job.id, self.state, top1=top1 if self.state == "ok" else None,
                              loss=1.0, seconds=0.1, message="" if self.state == "ok" else
                              "CUDA out of memory (alone on cuda:0; retried when the search "
                              "resumes)")


def test_out_of_memory_trials_are_said_and_retried_on_resume(tmp_path, monkeypatch):
    from tinyformula import search
    from tinyformula.sweep import driver

    runs, lines = [], []

    def executor(kind, workers, scheduler, gpu_slots=None, **options):
        runs.append(_Executor(TrialState.OOM if not runs else TrialState.OK))
        return runs[-1]

    monkeypatch.setattr(driver, "make_executor", executor)
    options = dict(preset="smoke", trials=4, train_size=64, c_range=(0.03, 0.3),
                   out=tmp_path / "run", progress=False, log=lines.append, device="cpu")
    with pytest.raises(TinyFormulaError, match="only 0 Pareto-optimal"):
        search("efficientnet_b0", "digits", **options)
    assert any("did not finish (6 oom)" in line and "retries them" in line for line in lines)
    search("efficientnet_b0", "digits", **options)
    assert len(runs[1].jobs) == 6  # every out-of-memory trial trained again


def test_a_memory_measurement_whose_capture_failed_is_measured_eagerly(monkeypatch):
    from tinyformula.execution import slots
    from tinyformula.sweep.driver import _measure_memory, trial_jobs

    config = search_config(device="cuda")
    asked, lines = [], []

    def apart(function, job):
        asked.append(job.train.cuda_graph)
        if job.train.cuda_graph:
            raise RuntimeError("could not measure a trial's memory: capture_failed ...")
        return TrialMemory(GiB, 0, 0, GiB)

    monkeypatch.setattr(slots, "run_apart", apart)
    yardstick = config.yardstick(10, 32)
    job = trial_jobs(config, yardstick, [plan_trials(config)[0]], device="cuda")[0]
    assert _measure_memory(job, lines.append).total == 2 * GiB
    assert asked == [True, False] and "measuring it eagerly" in lines[0]
    monkeypatch.setattr(slots, "run_apart", lambda function, job: (_ for _ in ()).throw(
        RuntimeError("no GPU memory at all")))
    with pytest.raises(TinyFormulaError, match="could not measure a trial's GPU memory"):
        _measure_memory(job, lines.append)


def plan_trials(config):
    from tinyformula.sweep.driver import search_candidates
    from tinyformula.sweep.trials import Trial

    yardstick = config.yardstick(10, 32)
    return [Trial(i, i, config.seed, c, images=config.train_size * config.epochs)
            for i, c in enumerate(search_candidates(config, yardstick))]
