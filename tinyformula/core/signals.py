"""Processes that end cleanly: SIGTERM handled like Ctrl-C, workers that die with their driver.

* :func:`sigterm_as_interrupt` turns SIGTERM (``kill PID``, a batch system's time limit) into
  :class:`Terminated`, a ``KeyboardInterrupt``: the code that stops workers and keeps finished
  trials on Ctrl-C runs for it too.
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
PARENT_POLL_S = 1.0


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop like Ctrl-C, exit with status 143."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (once: a second
    SIGTERM during the clean-up is ignored, so the clean-up finishes). Elsewhere than the main
    thread, a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
