"""A run's events as Prometheus metrics (`aichaos run --metrics-port`) and, with the `otel`
extra, OpenTelemetry spans (`TracingObserver`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aichaos.experiment.observer import Observer
from aichaos.records import Attempt
from aichaos.telemetry.metrics import Metrics

if TYPE_CHECKING:
    from aichaos.experiment.model import Experiment
    from aichaos.experiment.phases import PhasePlan
    from aichaos.experiment.results import CallRecord, PhaseResult
    from aichaos.experiment.run_result import RunResult
    from aichaos.intercept.session import Session


class MetricsObserver(Observer):
    """Feeds `metrics` from a run: attempts, calls, and the current phase."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.session: Session | None = None

    def session_ready(self, session: Session) -> None:
        # attempts in flight are counted from the session; finished ones from `attempt_finished`
        self.session = session
        session.request_hooks.append(self.metrics.attempt_began)

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
        if self.session is not None and self.metrics.attempt_began in self.session.request_hooks:
            self.session.request_hooks.remove(self.metrics.attempt_began)


class TracingObserver(Observer):
    """Spans for a run: one per upstream attempt (in the app's trace when its request carries
    a `traceparent`), one for the run and each phase, fault windows as events of the phase
    that injects. `tracer` is an OpenTelemetry `Tracer` (the `otel` extra)."""

    def __init__(self, tracer: Any) -> None:
        from aichaos.telemetry.tracing import RunSpans, Tracing

        self.tracing = Tracing(tracer)
        self.spans = RunSpans(tracer)
        self.experiment: Experiment | None = None
        self.session: Session | None = None
        self.phase_since = 0.0  # perf_counter() at the current phase's start

    def run_started(self, experiment: Experiment, seed: int, plans: list[PhasePlan]) -> None:
        self.experiment = experiment
        self.spans.run_started(experiment.name, seed)

    def session_ready(self, session: Session) -> None:
        self.session = session
        self.tracing.attach(session)

    def phase_started(self, plan: PhasePlan) -> None:
        self.phase_since = time.perf_counter()
        self.spans.phase_started(plan.name, at=self.phase_since)

    def phase_finished(self, phase: PhaseResult) -> None:
        # The phase's own times (run seconds) map to perf_counter by one shift, so its fault
        # windows fall inside its span.
        shift = self.phase_since - phase.started
        self.spans.fault_windows(
            (w.label, w.kind, w.backend, w.start + shift, w.end + shift)
            for w in phase.fault_windows
        )
        ended = phase.ended + shift if phase.ended is not None else time.perf_counter()
        self.spans.phase_finished(failed=not phase.completed, at=ended)

    def run_finished(self, result: RunResult) -> None:
        self.spans.run_finished(result.status)
        if self.session is not None:
            self.tracing.detach(self.session)
