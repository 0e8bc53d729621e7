"""Processes that end cleanly: one policy for stop signals, workers that die with their driver.

* :func:`stop_signals` is the policy every command runs under: SIGTERM (``kill PID``, a batch
  system's time limit) raises :class:`Terminated`, Ctrl-C (SIGINT) ``KeyboardInterrupt``, so
  the same clean-up runs for both (workers stopped, finished work kept, files closed); from
  the first of them on, both are ignored, so a second signal cannot cut the clean-up short
  (``kill -9`` always can). The command line then exits with status 143 ("terminated") or
  130 ("interrupted"), with what :func:`on_stop` noted (where the finished work is kept).
* :func:`die_with_parent` makes a worker process end when its driver does, even by
  ``kill -9`` (which runs no clean-up): Linux's ``PR_SET_PDEATHSIG``, or elsewhere a thread
  that polls the parent's pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

EXIT_TERMINATED = 128 + signal.SIGTERM
EXIT_INTERRUPTED = 128 + signal.SIGINT
PARENT_POLL_S = 1.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop like Ctrl-C, exit with status 143."""


def exit_status(stop: KeyboardInterrupt) -> tuple[int, str]:
    """The exit status and word for a stop: (143, "terminated") or (130, "interrupted")."""
    if isinstance(stop, Terminated):
        return EXIT_TERMINATED, "terminated"
    return EXIT_INTERRUPTED, "interrupted"


@contextlib.contextmanager
def stop_signals(restore: bool = True) -> Iterator[None]:
    """Within the block (main thread only; elsewhere a no-op), SIGTERM raises
    :class:`Terminated` and SIGINT ``KeyboardInterrupt``; the first of them sets both to be
    ignored, so the clean-up that follows runs to its end. ``restore=False`` leaves them
    ignored after a stop (a process on its way out: the interpreter's own shutdown, which
    joins worker processes and releases their semaphores, is not cut short either)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopped = False

    def handler(signum, frame):
        nonlocal stopped
        stopped = True
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    previous = {number: signal.signal(number, handler) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        if restore or not stopped:
            for number, action in previous.items():
                signal.signal(number, action)


def sigterm_as_interrupt() -> contextlib.AbstractContextManager:
    """The stop policy (:func:`stop_signals`), under its name of versions up to 0.2."""
    return stop_signals()


@contextlib.contextmanager
def on_stop(note: str) -> Iterator[None]:
    """Attach ``note`` (what was kept, how to continue) to a stop raised in the block; the
    command line prints it after "terminated" or "interrupted"."""
    try:
        yield
    except KeyboardInterrupt as stop:
        if not getattr(stop, "note", None):
            stop.note = note  # type: ignore[attr-defined]
        raise


def die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` (its parent) ends. Call it first thing in a
    worker."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            PR_SET_PDEATHSIG = 1
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent_pid:  # the parent died before prctl took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent_pid:
            threading.Event().wait(PARENT_POLL_S)
        os._exit(1)

    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
