"""tinyformula: find the best way to shrink a network to a compute budget (TinyNet's formula).

The public API is this package's top level; everything else is an implementation detail that
may move. Names load on first use: importing the package imports neither torch nor
scikit-learn, so ``tinyformula predict`` stays fast.

Networks and costs
    :class:`Scale`, :func:`get_base`, :func:`list_bases`, :func:`register_base` (your own
    network: a spec or a PyTorch model's factory), :class:`BaseNetwork`, :class:`Cost`,
    :class:`Yardstick` (how c is measured), :class:`Configuration`, :class:`LatencyModel`,
    :class:`LatencySetting`, :func:`measure_latency`, :func:`measure_module_latency`,
    :func:`fvcore_flops`,
    :func:`param_count`.
Formulas
    :class:`TinyFormula`, :class:`Recommendation`, :func:`solve_budget`,
    :class:`BudgetUnreachable`, :func:`fit_builtin`.
Data, models and training
    :func:`load_dataset`, :func:`prepare_dataset`, :func:`verify_dataset`,
    :func:`open_prepared`, :class:`PrepareSettings`, :class:`ImageData`, :class:`ImageRows`,
    :func:`create_model`, :func:`load_model`,
    :func:`save_model`, :func:`export_model`, :class:`TrainConfig`, :func:`train`,
    :class:`RecipeConfig`, :func:`train_final`, :func:`base_teacher`; re-parameterised
    training: :func:`reparameterise`, :func:`fold`.
Searches
    :func:`search`, :class:`SearchConfig`, :data:`PRESETS`, :func:`load_run`,
    :class:`SearchResult` (``Run``), :func:`fit_formula`, :func:`plan_candidates`,
    :class:`TrialStore`, :func:`plot_run`; checking formulas: :func:`validate`,
    :class:`ValidationConfig`, :class:`ValidationResult`, :func:`load_validation`,
    :func:`plot_validation`; and where trials run: :class:`TrialJob`,
    :class:`DataSource`, :func:`run_trial`, :class:`LocalExecutor`, :class:`GpuExecutor`,
    :func:`make_executor`, :func:`aggregate_rate`.
Figures
    :func:`new_figure`, :func:`save_figure`, :func:`log_axis`.
Errors
    :class:`TinyFormulaError`: bad input, named with what to do about it.

The package is laid out in layers, each importing only from those before it: ``core`` ->
``nets`` -> ``cost`` -> ``formula`` -> ``data`` -> ``models`` -> ``training`` -> ``execution``
-> ``sweep`` (the search) -> ``viz`` -> ``cli`` (docs/architecture.md).
"""

from typing import TYPE_CHECKING

from .core.lazy import lazy_exports
from .core.version import VERSION as __version__

_EXPORTS = {
    # core
    "TinyFormulaError": ".core.errors",
    "new_figure": ".core.figures",
    "save_figure": ".core.figures",
    # nets
    "Scale": ".nets.scale",
    "BaseNetwork": ".nets.bases",
    "get_base": ".nets.bases",
    "list_bases": ".nets.bases",
    "register_base": ".nets.bases",
    "Cost": ".nets.count",
    "fvcore_flops": ".nets.build",
    "param_count": ".nets.build",
    "init_weights": ".nets.build",
    "network_cost": ".nets.count",
    "reparameterise": ".nets.reparam",
    "fold": ".nets.reparam",
    # cost
    "Yardstick": ".cost.yardstick",
    "Configuration": ".cost.yardstick",
    "LatencyModel": ".cost.latency.model",
    "LatencySetting": ".cost.latency.measure:Setting",
    "measure_latency": ".cost.latency.measure:measure_network",
    "measure_module_latency": ".cost.latency.measure:time_module",
    "LatencyProtocol": ".cost.latency.measure:Protocol",
    "machine_description": ".cost.latency.measure",
    # formula
    "TinyFormula": ".formula.estimator",
    "Recommendation": ".formula.recommendation",
    "solve_budget": ".formula.solve",
    "BudgetUnreachable": ".formula.solve",
    "fit_builtin": ".formula.builtin",
    # data
    "load_dataset": ".data.loading",
    "cached_dataset": ".data.loading",
    "ImageData": ".data.images",
    "ImageRows": ".data.images",
    "prepare_dataset": ".data.loading",
    "verify_dataset": ".data.loading",
    "open_prepared": ".data.mapped:open_cache",
    "PrepareSettings": ".data.settings",
    # models
    "create_model": ".models.create",
    "load_model": ".models.files",
    "save_model": ".models.files",
    "export_model": ".models.export",
    "check_images": ".models.export",
    # training
    "TrainConfig": ".training.config",
    "RecipeConfig": ".training.config",
    "train": ".training.trainer",
    "train_final": ".training.recipe",
    "base_teacher": ".training.recipe",
    # execution
    "TrialJob": ".execution.jobs",
    "DataSource": ".execution.jobs",
    "run_trial": ".execution.worker",
    "LocalExecutor": ".execution.executors",
    "make_executor": ".execution.executors",
    "GpuExecutor": ".execution.slots",
    "aggregate_rate": ".execution.gpu",
    # sweep: a search
    "search": ".sweep.driver",
    "SearchConfig": ".sweep.config",
    "PRESETS": ".sweep.presets",
    "load_run": ".sweep.results",
    "fit_formula": ".sweep.results",
    "SearchResult": ".sweep.results",
    "Run": ".sweep.results",
    "plan_candidates": ".sweep.space",
    "TrialStore": ".sweep.store",
    "Trial": ".sweep.trials",
    "search_candidates": ".sweep.driver",
    "trial_jobs": ".sweep.driver",
    "plan_gpus": ".sweep.driver",
    # sweep: validating formulas
    "validate": ".sweep.validation.driver",
    "ValidationConfig": ".sweep.validation.config",
    "ValidationResult": ".sweep.validation.result",
    "load_validation": ".sweep.validation.result",
    # viz
    "plot_run": ".viz.run",
    "plot_validation": ".viz.validation",
    "log_axis": ".viz.style",
}

if TYPE_CHECKING:
    from .core.errors import TinyFormulaError
    from .core.figures import new_figure, save_figure
    from .cost.latency.measure import Protocol as LatencyProtocol
    from .cost.latency.measure import Setting as LatencySetting
    from .cost.latency.measure import machine_description
    from .cost.latency.measure import measure_network as measure_latency
    from .cost.latency.measure import time_module as measure_module_latency
    from .cost.latency.model import LatencyModel
    from .cost.yardstick import Configuration, Yardstick
    from .data.images import ImageData, ImageRows
    from .data.loading import cached_dataset, load_dataset, prepare_dataset, verify_dataset
    from .data.mapped import open_cache as open_prepared
    from .data.settings import PrepareSettings
    from .execution.executors import LocalExecutor, make_executor
    from .execution.gpu import aggregate_rate
    from .execution.jobs import DataSource, TrialJob
    from .execution.slots import GpuExecutor
    from .execution.worker import run_trial
    from .formula.builtin import fit_builtin
    from .formula.estimator import TinyFormula
    from .formula.recommendation import Recommendation
    from .formula.solve import BudgetUnreachable, solve_budget
    from .models.create import create_model
    from .models.export import check_images, export_model
    from .models.files import load_model, save_model
    from .nets.bases import BaseNetwork, get_base, list_bases, register_base
    from .nets.build import fvcore_flops, init_weights, param_count
    from .nets.count import Cost, network_cost
    from .nets.reparam import fold, reparameterise
    from .nets.scale import Scale
    from .sweep.config import SearchConfig
    from .sweep.driver import plan_gpus, search, search_candidates, trial_jobs
    from .sweep.presets import PRESETS
    from .sweep.results import Run, SearchResult, fit_formula, load_run
    from .sweep.space import plan_candidates
    from .sweep.store import TrialStore
    from .sweep.trials import Trial
    from .sweep.validation.config import ValidationConfig
    from .sweep.validation.driver import validate
    from .sweep.validation.result import ValidationResult, load_validation
    from .training.config import RecipeConfig, TrainConfig
    from .training.recipe import base_teacher, train_final
    from .training.trainer import train
    from .viz.run import plot_run
    from .viz.style import log_axis
    from .viz.validation import plot_validation

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "BaseNetwork",
    "BudgetUnreachable",
    "Configuration",
    "Cost",
    "DataSource",
    "GpuExecutor",
    "ImageData",
    "ImageRows",
    "LatencyModel",
    "LatencyProtocol",
    "LatencySetting",
    "LocalExecutor",
    "PRESETS",
    "PrepareSettings",
    "RecipeConfig",
    "Recommendation",
    "Run",
    "Scale",
    "SearchConfig",
    "SearchResult",
    "TinyFormula",
    "TinyFormulaError",
    "TrainConfig",
    "Trial",
    "TrialJob",
    "TrialStore",
    "ValidationConfig",
    "ValidationResult",
    "Yardstick",
    "aggregate_rate",
    "base_teacher",
    "cached_dataset",
    "check_images",
    "create_model",
    "export_model",
    "fit_builtin",
    "fit_formula",
    "fold",
    "fvcore_flops",
    "get_base",
    "init_weights",
    "list_bases",
    "load_dataset",
    "load_model",
    "load_run",
    "load_validation",
    "log_axis",
    "machine_description",
    "make_executor",
    "measure_latency",
    "measure_module_latency",
    "network_cost",
    "new_figure",
    "open_prepared",
    "param_count",
    "plan_candidates",
    "plan_gpus",
    "plot_run",
    "plot_validation",
    "prepare_dataset",
    "register_base",
    "reparameterise",
    "run_trial",
    "save_figure",
    "save_model",
    "search",
    "search_candidates",
    "solve_budget",
    "train",
    "train_final",
    "trial_jobs",
    "validate",
    "verify_dataset",
    "__version__",
]
