"""Packing trials onto GPUs: pure arithmetic, no GPU needed."""

import pytest

from tinyformula.execution.gpu import (
    DASK_RESOURCE,
    Gpu,
    choose_trials_per_gpu,
    claim_gpu,
    dask_trial_resources,
    dask_worker_resources,
    estimate_trial_bytes,
    measure_ramp,
    plan_gpu_workers,
    ramp_steps,
    trials_that_fit,
    worker_environment,
)

GiB = 2**30


def gpu(index, free_gib, total_gib=80):
    return Gpu(index, "test GPU", int(free_gib * GiB), total_gib * GiB)


@pytest.mark.parametrize("free_gib, trial_gib, fits", [
    (80, 2, 36), (10, 2, 4), (1.5, 2, 0), (2.3, 2, 1),
])
def test_trials_that_fit_keep_ten_percent_headroom(free_gib, trial_gib, fits):
    assert trials_that_fit(int(free_gib * GiB), int(trial_gib * GiB)) == fits


def test_estimate_counts_context_state_and_activations():
    sgd = estimate_trial_bytes(params=1_000_000, activation_elements=1_000, batch_size=100)
    assert sgd == 512 * 2**20 + 4 * 1_000_000 * 3 + 8 * 1_000 * 100
    adamw_ema = estimate_trial_bytes(1_000_000, 1_000, 100, optimizer="adamw", ema=True)
    assert adamw_ema - sgd == 4 * 1_000_000 * 2


@pytest.mark.parametrize("ramp, cap, chosen", [
    ({1: 100.0, 2: 190.0, 4: 300.0, 8: 310.0}, 16, 4),   # 8 gains under 5%: 4 is enough
    ({1: 100.0, 2: 190.0, 4: 300.0, 8: 400.0}, 16, 8),
    ({1: 100.0, 2: 190.0, 4: 300.0, 8: 400.0}, 5, 4),    # memory caps it
    ({1: 100.0, 2: 90.0}, 16, 1),                         # contention: one alone is best
    ({}, 16, 1), ({2: 50.0}, 1, 1),
])
def test_choose_from_the_ramp(ramp, cap, chosen):
    assert choose_trials_per_gpu(ramp, cap) == chosen


def test_ramp_doubles_and_stops_when_the_gain_flattens():
    assert ramp_steps(1) == [1] and ramp_steps(6) == [1, 2, 4, 6] and ramp_steps(8) == [1, 2, 4, 8]
    rates = {1: 100.0, 2: 180.0, 4: 185.0, 8: 400.0}
    asked = []

    def rate(n):
        asked.append(n)
        return rates[n]

    assert measure_ramp(rate, cap=8) == {1: 100.0, 2: 180.0, 4: 185.0}
    assert asked == [1, 2, 4]


def test_plan_memory_only_ramp_and_override():
    gpus = [gpu(0, 40), gpu(1, 10)]
    plan = plan_gpu_workers(gpus, trial_bytes=4 * GiB)
    assert plan.per_gpu == {0: 9, 1: 2} and plan.notes == ()
    assert plan.slots[:4] == (0, 1, 0, 1) and plan.slots.count(0) == 9 and plan.workers == 11
    ramp = {1: 100.0, 2: 200.0, 4: 390.0, 8: 395.0}
    assert plan_gpu_workers(gpus, 4 * GiB, ramp=ramp).per_gpu == {0: 4, 1: 2}
    forced = plan_gpu_workers(gpus, 4 * GiB, override=3)
    assert forced.per_gpu == {0: 3, 1: 3} and len(forced.notes) == 1 and "cuda:1" in forced.notes[0]
    full = plan_gpu_workers([gpu(0, 1)], 4 * GiB)
    assert full.per_gpu == {0: 1} and "one at a time" in full.notes[0]
    assert plan_gpu_workers([gpu(0, 80)], GiB // 4).per_gpu == {0: 16}  # the per-GPU ceiling
    with pytest.raises(ValueError):
        plan_gpu_workers([], GiB)
    with pytest.raises(ValueError):
        plan_gpu_workers(gpus, GiB, override=0)


def test_worker_environment_maps_visible_to_physical_ids():
    assert worker_environment(1) == {"CUDA_VISIBLE_DEVICES": "1"}
    assert worker_environment(1, "4, 6") == {"CUDA_VISIBLE_DEVICES": "6"}
    assert worker_environment(0, "GPU-ab12") == {"CUDA_VISIBLE_DEVICES": "GPU-ab12"}
    with pytest.raises(ValueError):
        worker_environment(2, "4,6")


def test_claim_gpu_takes_one_slot(monkeypatch):
    import queue

    slots = queue.Queue()
    for index in (1, 0):
        slots.put(index)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert claim_gpu(slots, "3,5") == 1
    import os

    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"


def test_dask_resources_are_whole_slots():
    assert dask_worker_resources(4) == {DASK_RESOURCE: 4}
    assert dask_trial_resources() == {DASK_RESOURCE: 1}
    with pytest.raises(ValueError):
        dask_worker_resources(0)
