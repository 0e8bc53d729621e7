"""Where trials run: typed jobs (:mod:`.jobs`), the function a worker runs (:mod:`.worker`),
executors in this process, in local processes or on Dask (:mod:`.executors`), trials packed
onto GPUs (:mod:`.gpu`), this machine's cores and memory (:mod:`.resources`) and Dask scheduler
addresses (:mod:`.cluster`). Nothing here knows what a search is."""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

if TYPE_CHECKING:
    from .executors import DaskExecutor, LocalExecutor, make_executor
    from .jobs import DataSource, TrialJob, TrialResult, TrialState
    from .worker import run_trial

__getattr__, __dir__ = lazy_exports(__name__, {
    "DaskExecutor": ".executors",
    "LocalExecutor": ".executors",
    "make_executor": ".executors",
    "DataSource": ".jobs",
    "TrialJob": ".jobs",
    "TrialResult": ".jobs",
    "TrialState": ".jobs",
    "run_trial": ".worker",
})

__all__ = ["DaskExecutor", "DataSource", "LocalExecutor", "TrialJob", "TrialResult",
           "TrialState", "make_executor", "run_trial"]
