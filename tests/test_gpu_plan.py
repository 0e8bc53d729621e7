"""Packing trials onto GPUs, their memory, Dask's GPU workers, the graph's torch fallback and
the driver's GPU plan: arithmetic and wiring, no GPU needed."""

import re
import types

import pytest
import torch

from tinyformula.core.errors import TinyFormulaError
from tinyformula.execution.gpu import (
    DASK_RESOURCE,
    Gpu,
    aggregate_rate,
    choose_trials_per_gpu,
    dask_gpu_plan,
    dask_trial_resources,
    dask_worker_resources,
    host_worker_cap,
    measure_ramp,
    pinned_dask_workers,
    plan_gpu_workers,
    ramp_steps,
    share_out,
    trials_that_fit,
    worker_environment,
)
from tinyformula.execution.gpu_memory import (
    CONTEXT_BYTES,
    TrialMemory,
    estimate_trial_bytes,
    host_bytes_per_worker,
    process_gpu_bytes,
    trial_data_bytes,
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


def test_dask_resources_are_one_slot_per_single_thread_worker():
    assert dask_worker_resources() == {DASK_RESOURCE: 1}
    assert dask_trial_resources() == {DASK_RESOURCE: 1}
    workers = pinned_dask_workers((0, 1, 0), "4,6")
    assert list(workers) == ["gpu0-0", "gpu1-0", "gpu0-1"]
    assert [w["env"]["CUDA_VISIBLE_DEVICES"] for w in workers.values()] == ["4", "6", "4"]
    assert all(w["nthreads"] == 1 and w["resources"] == {DASK_RESOURCE: 1}
               for w in workers.values())


def worker(nthreads=1, slots=None, cuda=False):
    return {"nthreads": nthreads, "resources": {DASK_RESOURCE: slots} if slots else {},
            "cuda": cuda}


@pytest.mark.parametrize("device, workers, expected", [
    ("cpu", {"a": worker(slots=1)}, (None, "cpu")),
    ("cuda", {"a": worker(slots=1), "b": worker()}, ({DASK_RESOURCE: 1}, "cuda")),
    ("auto", {"a": worker(slots=1)}, ({DASK_RESOURCE: 1}, "cuda")),  # auto asks too
    ("auto", {"a": worker(), "b": worker(4)}, (None, "cpu")),
])
def test_dask_trials_ask_for_a_gpu_slot_whenever_they_train_on_cuda(device, workers, expected):
    assert dask_gpu_plan(device, workers) == expected


@pytest.mark.parametrize("device, workers, message", [
    ("cuda", {"a": worker()}, "declares GPU_TRIALS"),
    ("cuda", {"a": worker(nthreads=4, slots=4)}, "runs 4 thread(s)"),
    ("auto", {"a": worker(nthreads=2, slots=1)}, "one GPU trial per process"),
    ("cuda", {"a": worker(slots=2)}, "GPU_TRIALS=2"),
    ("auto", {"a": worker(cuda=True)}, "sees a GPU but declares no GPU_TRIALS"),
    ("cuda:1", {"a": worker(slots=1)}, "names a GPU of this machine"),
])
def test_dask_clusters_that_would_share_a_process_or_run_unpinned_are_refused(device, workers,
                                                                             message):
    with pytest.raises(TinyFormulaError, match=re.escape(message)):
        dask_gpu_plan(device, workers)


def test_dask_executor_asks_for_gpu_slots_with_device_auto(monkeypatch):
    """On a running cluster whose workers declare GPU_TRIALS, --device auto trials ask for a
    slot each (they used to ask for nothing, and ran anywhere)."""
    pytest.importorskip("dask.distributed")
    from tinyformula.execution import executors

    submitted = []

    class Client:
        def __init__(self, address, timeout):
            pass

        def scheduler_info(self):
            return {"workers": {"tcp://w:1": {"name": "w", "nthreads": 1,
                                              "resources": {DASK_RESOURCE: 1}}}}

        def submit(self, function, *args, resources=None, pure=True):
            submitted.append(resources)
            return types.SimpleNamespace(key=len(submitted))

        def close(self):
            pass

    import dask.distributed

    monkeypatch.setattr(dask.distributed, "Client", Client)
    with executors.DaskExecutor(2, "tcp://w:8786", device="auto") as executor:
        assert executor.job_device == "cuda"
        executor._submit(object.__new__(type("Job", (), {"id": 0})))
    assert submitted == [{DASK_RESOURCE: 1}]


# -- host caps ------------------------------------------------------------------------------------

def test_host_caps_workers_by_cores_and_memory():
    assert host_worker_cap(8, 64 * GiB, 3 * GiB) == (8, 21)
    assert host_worker_cap(0, None, 3 * GiB)[0] == 1 and host_worker_cap(4, GiB, 3 * GiB)[1] == 1
    gpus = [gpu(0, 80), gpu(1, 80)]
    plan = plan_gpu_workers(gpus, 2 * GiB, host_cap=(6, 100))
    assert plan.per_gpu == {0: 3, 1: 3} and plan.workers == 6
    assert "6 usable core(s)" in plan.notes[0]
    plan = plan_gpu_workers(gpus, 2 * GiB, host_cap=(16, 5))
    assert sum(plan.per_gpu.values()) == 5 and "host memory allows 5" in plan.notes[-1]
    forced = plan_gpu_workers(gpus, 2 * GiB, override=8, host_cap=(2, 100))
    assert forced.per_gpu == {0: 8, 1: 8}  # the cores cap leaves an override alone ...
    forced = plan_gpu_workers(gpus, 2 * GiB, override=8, host_cap=(2, 4))
    assert forced.per_gpu == {0: 2, 1: 2}  # ... the memory cap does not
    assert plan_gpu_workers(gpus, 2 * GiB, host_cap=(1, 1)).per_gpu == {0: 1, 1: 1}


def test_share_out_takes_from_the_fullest_gpu_first():
    assert share_out({0: 9, 1: 2}, 7) == {0: 5, 1: 2}
    assert share_out({0: 4, 1: 4, 2: 4}, 8) == {0: 3, 1: 3, 2: 2}
    assert share_out({0: 3, 1: 3}, 1) == {0: 1, 1: 1}
    assert share_out({0: 2}, 5) == {0: 2}


def test_aggregate_rate_never_overstates_what_running_together_gained():
    assert aggregate_rate([(10.0, 2.0, 1000), (10.5, 2.0, 1000)]) == pytest.approx(2000 / 2.5)
    apart = aggregate_rate([(0.0, 1.0, 500), (1.0, 1.0, 500)])  # one after the other
    assert apart == pytest.approx(500.0)
    assert aggregate_rate([]) == 0.0 and aggregate_rate([(0.0, 0.0, 10)]) == 0.0


# -- memory ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    from tinyformula.data import load_dataset

    return load_dataset("digits")


def test_resident_bytes_are_what_the_batches_hold(digits):
    from tinyformula.training.batches import TrainBatches, resident_bytes

    for augment in (True, False):
        for train_size, batch, epochs in ((200, 64, 2), (100, 128, 3), (333, 50, 1)):
            batches = TrainBatches(digits, train_size=train_size, batch_size=batch,
                                   epochs=epochs, seed=0, resolution=16, augment=augment)
            assert batches.device_bytes == resident_bytes(
                digits, train_size=train_size, batch_size=batch, epochs=epochs, augment=augment)


def test_a_trials_data_is_counted_explicitly(digits):
    from tinyformula.training.batches import resident_bytes
    from tinyformula.training.config import TrainConfig

    config = TrainConfig(train_size=1000, epochs=2, batch_size=100, val_size=300)
    image = digits.val_images[0].numel()  # uint8: one byte per element
    counted = trial_data_bytes(digits, config)
    assert counted == resident_bytes(digits, train_size=1000, batch_size=100, epochs=2) + \
        min(300, len(digits.val_images)) * (image + 8)
    assert trial_data_bytes(digits, config.replace(train_size=1200)) > counted
    memory = TrialMemory(peak=3 * GiB, short_data=GiB // 4, data=2 * GiB, context=GiB // 2)
    assert memory.total == 3 * GiB - GiB // 4 + 2 * GiB + GiB // 2
    assert "estimated" in memory.describe()
    assert TrialMemory(GiB, 0, 0, GiB, context_measured=True).describe().endswith("(measured by "
                                                                                  "NVML)")
    assert host_bytes_per_worker(digits) > 3 * GiB


class FakeNvml:
    """NVML with one GPU (uuid GPU-abc) running this process (``pid``) and another one."""

    def __init__(self, pid, used=700 * 2**20, uuid=b"GPU-ABC"):
        self.pid, self.used, self.uuid = pid, used, uuid

    def nvmlInit(self):
        pass

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, k):
        return k

    def nvmlDeviceGetUUID(self, handle):
        return self.uuid if handle == 1 else b"GPU-other"

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [types.SimpleNamespace(pid=1, usedGpuMemory=5 * GiB),
                types.SimpleNamespace(pid=self.pid, usedGpuMemory=self.used)]


def test_process_gpu_memory_from_nvml_matches_the_gpu_by_uuid(monkeypatch):
    import os

    properties = types.SimpleNamespace(uuid="abc")
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: properties)
    assert process_gpu_bytes(0, nvml=FakeNvml(os.getpid())) == 700 * 2**20
    assert process_gpu_bytes(0, nvml=FakeNvml(os.getpid(), uuid="GPU-abc")) == 700 * 2**20
    assert process_gpu_bytes(0, nvml=FakeNvml(os.getpid() + 1)) is None  # a container's pids
    assert process_gpu_bytes(0, nvml=FakeNvml(os.getpid(), used=None)) is None
    assert process_gpu_bytes(0, nvml=types.SimpleNamespace()) is None  # a broken NVML
    assert CONTEXT_BYTES == 512 * 2**20  # the documented estimate used then


# -- the graphed optimizer's torch fallback ----------------------------------------------------

def test_a_torch_without_the_graphed_optimizer_trains_eagerly_and_says_so(monkeypatch):
    from tinyformula.training import steps
    from tinyformula.training.config import TrainConfig

    monkeypatch.setattr(steps, "_GRAPH_SUPPORT", {})
    assert steps.graph_unsupported(TrainConfig(), torch.device("cpu")) == ""  # torch 2.13

    class OldSGD(torch.optim.SGD):
        def __init__(self, *args, fused=None, **kwargs):
            if fused:
                raise TypeError("SGD.__init__() got an unexpected keyword argument 'fused'")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(steps, "_GRAPH_SUPPORT", {})
    monkeypatch.setattr(torch.optim, "SGD", OldSGD)
    reason = steps.graph_unsupported(TrainConfig(), torch.device("cpu"))
    assert "cannot step sgd with a tensor learning rate" in reason and "fused" in reason
    monkeypatch.setitem(steps._GRAPH_SUPPORT, ("sgd", "cuda"), reason)
    model = torch.nn.Linear(3, 2)
    step = steps.make_step(model, TrainConfig(device="cpu"), 10, torch.device("cuda"))
    assert type(step) is steps.EagerStep and step.note == reason and not step.graphed
    assert type(steps.make_step(model, TrainConfig(device="cpu", cuda_graph=False), 10,
                                torch.device("cuda"))) is steps.EagerStep

    class OldGraph:  # torch.cuda.graph before capture_error_mode
        def __init__(self, cuda_graph, pool=None, stream=None):
            pass

    monkeypatch.setattr(torch.cuda, "graph", OldGraph)
    assert "takes no capture_error_mode=" in steps.graph_unsupported(TrainConfig(),
                                                                     torch.device("cpu"))
