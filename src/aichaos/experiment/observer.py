"""What a run tells whoever watches it (the live console, tests). Every method is optional."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
    """Tells every one of `observers`, in order (the console and the metrics, say): each
    method of `Observer` is passed on as it is called (set below, one fan-out for all)."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers


def _fan_out(name: str) -> Callable[..., None]:
    def tell_each(self: Observers, *args: Any, **kwargs: Any) -> None:
        for o in self.observers:
            getattr(o, name)(*args, **kwargs)

    tell_each.__name__, tell_each.__qualname__ = name, f"Observers.{name}"
    return tell_each


for _name in [name for name in vars(Observer) if not name.startswith("_")]:
    setattr(Observers, _name, _fan_out(_name))
