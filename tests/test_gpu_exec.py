"""The GPU executors on the CPU: real worker processes pinned through a fake visible-device
list, running fake trials (tests/gpu_fakes.py) that fail their capture, run out of memory or
die; and the decisions behind them, as plain bookkeeping."""

import os

import pytest
from gpu_fakes import fake_trial, job

from tinyformula.execution.jobs import TrialResult, TrialState
from tinyformula.execution.slots import GpuExecutor, SlotBoard
from tinyformula.execution.worker import describe_worker


def result(state, message=""):
    return TrialResult(0, state, message=message)


def test_board_capture_failure_reruns_eagerly_in_a_fresh_process(tmp_path):
    board, graphed = SlotBoard((0, 0)), job(0, "capture", tmp_path)
    action = board.decide(1, graphed, result(TrialState.CAPTURE_FAILED, "CUDA graph capture "
                                             "failed: x; train it again with ..."))
    assert action.restart and not action.retire and action.result is None
    assert action.requeue.train.cuda_graph is False and action.requeue.id == graphed.id
    assert "trained again eagerly in a fresh worker process" in action.note
    assert "train it again" not in action.note and board.on_gpu(0) == 2
    again = board.decide(1, action.requeue, result(TrialState.CAPTURE_FAILED, "?"))
    assert again.result.state is TrialState.FAILED and again.restart  # eager cannot capture


def test_board_out_of_memory_retires_a_slot_until_the_trial_is_alone(tmp_path):
    board, trial = SlotBoard((0, 1, 0, 1, 0)), job(3, "oom", tmp_path)
    first = board.decide(2, trial, result(TrialState.OOM, "CUDA out of memory"))
    assert first.retire and first.requeue == trial and first.result is None
    assert "3 trials at once on cuda:0; cuda:0 now runs 2" in first.note
    assert board.on_gpu(0) == 2 and board.on_gpu(1) == 2 and 2 not in board.active
    board.decide(0, trial, result(TrialState.OOM, "CUDA out of memory"))
    last = board.decide(4, trial, result(TrialState.OOM, "CUDA out of memory"))
    assert last.result.state is TrialState.OOM and last.restart and not last.retire
    assert "alone on cuda:0" in last.result.message and board.on_gpu(0) == 1


def test_board_dead_worker_is_replaced_and_its_trial_tried_once_more(tmp_path):
    board, trial = SlotBoard((0,)), job(1, "die-once", tmp_path)
    first = board.decide(0, trial, None)
    assert first.restart and first.requeue == trial and first.result is None
    second = board.decide(0, trial, None)
    assert second.result.state is TrialState.FAILED and "died" in second.result.message
    ok = board.decide(0, trial, result(TrialState.OK))
    assert ok.result.state is TrialState.OK and not ok.restart


def test_workers_pin_to_the_parents_visible_gpus_and_failures_take_fresh_processes(
        tmp_path, monkeypatch):
    """Through the executor: the parent sees CUDA_VISIBLE_DEVICES=4,6, so slots on its GPUs
    0 and 1 must see 4 and 6 (not 0 and 1); a failed capture is trained again eagerly in a
    new process, an out-of-memory trial retried with one trial fewer on its GPU, a dead
    worker replaced."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    lines = []
    with GpuExecutor((0, 1, 1), trial=fake_trial, log=lines.append) as executor:
        seen = executor.run_together(describe_worker, [()] * 3)
        assert [w["visible"] for w in seen] == ["4", "6", "6"]
        assert all(w["threads"] == 1 for w in seen) and len({w["pid"] for w in seen}) == 3
        jobs = [job(0, "capture", tmp_path), job(1, "oom-once", tmp_path),
                job(2, "die-once", tmp_path), job(3, "ok", tmp_path)]
        results = {r.id: r for r in executor.train(jobs)}
        after = executor.run_together(describe_worker, [()] * len(executor.board.active))
    assert all(r.state is TrialState.OK for r in results.values()) and len(results) == 4
    eager = results[0]
    assert not eager.graphed and "trained again eagerly in a fresh worker process" in \
        eager.message
    failed_pid = int(eager.message.split("pid ")[1].split()[0])
    rerun_pid = int(eager.message.split("pid ")[-1].split()[0])
    assert rerun_pid != failed_pid
    with pytest.raises(ProcessLookupError):  # the process whose capture failed is gone
        os.kill(failed_pid, 0)
    assert failed_pid not in {w["pid"] for w in after}
    assert "out of GPU memory with" in results[1].message and "now runs" in results[1].message
    assert executor.board.on_gpu(0) + executor.board.on_gpu(1) == 2  # one slot retired
    assert "died" in results[2].message
    assert {w["visible"] for w in after} <= {"4", "6"}
    assert any("trained again eagerly" in line for line in lines)


def test_run_apart_runs_in_a_process_of_its_own_and_raises_its_errors(monkeypatch):
    from tinyformula.execution.slots import run_apart

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    seen = run_apart(describe_worker)
    assert seen["pid"] != os.getpid() and seen["visible"] == "4,6" and seen["threads"] == 1
    with pytest.raises(ValueError, match="not among"):
        GpuExecutor((2,), visible="4,6")  # refused before any worker starts


def test_dask_local_cluster_pins_one_single_thread_worker_per_slot(tmp_path, monkeypatch):
    pytest.importorskip("dask.distributed")
    from tinyformula.execution.executors import DaskExecutor

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    with DaskExecutor(1, gpu_slots=(0, 1), trial=fake_trial) as executor:
        assert executor.job_device == "cuda" and executor.resources == {"GPU_TRIALS": 1}
        info = executor._client.scheduler_info()["workers"].values()
        assert sorted(w["nthreads"] for w in info) == [1, 1]
        assert all(w["resources"] == {"GPU_TRIALS": 1} for w in info)
        seen = executor._client.run(describe_worker)
        assert sorted(w["visible"] for w in seen.values()) == ["4", "6"]
        results = {r.id: r for r in executor.train([job(0, "capture", tmp_path),
                                                    job(1, "oom-once", tmp_path)])}
    rerun, retried = results[0], results[1]
    assert rerun.state is TrialState.OK and not rerun.graphed
    assert "trained again eagerly after restarting its worker process" in rerun.message
    assert retried.state is TrialState.OK and "out of GPU memory; tried again" in retried.message
