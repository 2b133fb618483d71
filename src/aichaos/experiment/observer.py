"""What a run tells whoever watches it (the live console, tests). Every method is optional."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aichaos.records import Attempt

if TYPE_CHECKING:
    from aichaos.experiment.model import Experiment
    from aichaos.experiment.phases import PhasePlan
    from aichaos.experiment.results import CallRecord, PhaseResult
    from aichaos.experiment.run_result import RunResult
    from aichaos.intercept.session import Session


class Observer:
    """Receives the run's events. Subclass and override what you need.

    `attempt_finished` may be called from worker threads (sync SDK clients);
    every other method is called from the run's event loop.
    """

    def run_started(self, experiment: Experiment, seed: int, plans: list[PhasePlan]) -> None:
        """The run begins."""

    def session_ready(self, session: Session) -> None:
        """The run's injection session exists (before any request): hooks may be added."""

    def phase_started(self, plan: PhasePlan) -> None:
        """A phase begins."""

    def call_started(self, call: CallRecord) -> None:
        """A call to the target begins."""

    def call_finished(self, call: CallRecord) -> None:
        """A call to the target completed (successfully or not)."""

    def attempt_finished(self, attempt: Attempt) -> None:
        """An upstream attempt completed."""

    def phase_finished(self, phase: PhaseResult) -> None:
        """A phase ended; its metrics are filled in."""

    def event(self, message: str) -> None:
        """Something worth a line: fault windows, stop_when firing, the target's output."""

    def run_finished(self, result: RunResult) -> None:
        """The run is over; checks are judged."""

    def close(self) -> None:
        """Release the display (called even when the run failed to start)."""


class Observers(Observer):
    """Tells every one of `observers`, in order (the console and the metrics, say)."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def run_started(self, experiment: Experiment, seed: int, plans: list[PhasePlan]) -> None:
        for o in self.observers:
            o.run_started(experiment, seed, plans)

    def session_ready(self, session: Session) -> None:
        for o in self.observers:
            o.session_ready(session)

    def phase_started(self, plan: PhasePlan) -> None:
        for o in self.observers:
            o.phase_started(plan)

    def call_started(self, call: CallRecord) -> None:
        for o in self.observers:
            o.call_started(call)

    def call_finished(self, call: CallRecord) -> None:
        for o in self.observers:
            o.call_finished(call)

    def attempt_finished(self, attempt: Attempt) -> None:
        for o in self.observers:
            o.attempt_finished(attempt)

    def phase_finished(self, phase: PhaseResult) -> None:
        for o in self.observers:
            o.phase_finished(phase)

    def event(self, message: str) -> None:
        for o in self.observers:
            o.event(message)

    def run_finished(self, result: RunResult) -> None:
        for o in self.observers:
            o.run_finished(result)

    def close(self) -> None:
        for o in self.observers:
            o.close()
