"""Declarative experiments: the YAML format, its loader, the runner, checks and results.

from aichaos.experiment import load_experiment, run_experiment, ExperimentError

experiment = load_experiment("experiments/outage-fallback.yaml")  # ExperimentError: exit 2
result = await run_experiment(experiment, seed=None, console=None)  # RunResult
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aichaos.experiment.errors import ExperimentError, Problem
    from aichaos.experiment.loader import load_experiment, parse_experiment
    from aichaos.experiment.model import Experiment
    from aichaos.experiment.observer import Observer
    from aichaos.experiment.results import CallRecord, CheckResult, PhaseResult
    from aichaos.experiment.run_result import RunResult
    from aichaos.experiment.runner import run_experiment

__all__ = [
    "CallRecord",
    "CheckResult",
    "Experiment",
    "ExperimentError",
    "Observer",
    "PhaseResult",
    "Problem",
    "RunResult",
    "load_experiment",
    "parse_experiment",
    "run_experiment",
]

_HOMES = {
    "ExperimentError": "errors",
    "Problem": "errors",
    "load_experiment": "loader",
    "parse_experiment": "loader",
    "Experiment": "model",
    "Observer": "observer",
    "CallRecord": "results",
    "CheckResult": "results",
    "PhaseResult": "results",
    "RunResult": "run_result",
    "run_experiment": "runner",
}


def __getattr__(name: str) -> Any:
    # Lazy, so `aichaos validate` does not import the runner and its dependencies.
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'aichaos.experiment' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"aichaos.experiment.{home}"), name)
