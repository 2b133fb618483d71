"""A run's events as Prometheus metrics (`aichaos run --metrics-port`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aichaos.experiment.observer import Observer
from aichaos.records import Attempt
from aichaos.telemetry.metrics import Metrics

if TYPE_CHECKING:
    from aichaos.experiment.phases import PhasePlan
    from aichaos.experiment.results import CallRecord
    from aichaos.experiment.run_result import RunResult


class MetricsObserver(Observer):
    """Feeds `metrics` from a run: attempts, calls, and the current phase."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def phase_started(self, plan: PhasePlan) -> None:
        self.metrics.phase_started(plan.name)

    def call_started(self, call: CallRecord) -> None:
        self.metrics.call_started()

    def call_finished(self, call: CallRecord) -> None:
        self.metrics.call_finished(call.phase, bool(call.ok), call.duration)

    def attempt_finished(self, attempt: Attempt) -> None:
        self.metrics.attempt_finished(attempt)

    def run_finished(self, result: RunResult) -> None:
        self.metrics.run_finished()
