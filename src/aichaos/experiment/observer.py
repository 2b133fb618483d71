"""What a run tells whoever watches it (the live console, tests). Every method is optional."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aichaos.records import Attempt

if TYPE_CHECKING:
    from aichaos.experiment.model import Experiment
    from aichaos.experiment.phases import PhasePlan
    from aichaos.experiment.results import CallRecord, PhaseResult, RunResult


class Observer:
    """Receives the run's events. Subclass and override what you need.

    `attempt_finished` may be called from worker threads (sync SDK clients);
    every other method is called from the run's event loop.
    """

    def run_started(self, experiment: Experiment, seed: int, plans: list[PhasePlan]) -> None:
        """The run begins."""

    def phase_started(self, plan: PhasePlan) -> None:
        """A phase begins."""

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
