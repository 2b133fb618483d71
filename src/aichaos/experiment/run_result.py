"""The result of one run: the experiment, its verdicts, calls, phases and attempts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from aichaos.experiment.model import Experiment
from aichaos.experiment.results import CallRecord, CheckResult, PhaseResult, judged
from aichaos.records import Attempt

Status = Literal["passed", "failed", "aborted", "interrupted"]

EXIT_CODES: dict[str, int] = {"passed": 0, "failed": 1, "aborted": 3, "interrupted": 3}


@dataclass
class RunResult:
    """Everything one run produced; what the journal, the console and the reports show."""

    experiment: Experiment
    seed: int
    status: Status
    checks: list[CheckResult]
    calls: list[CallRecord]
    phases: list[PhaseResult]
    attempts: list[Attempt]  # every attempt, attributed to a call or not
    started_at: float  # wall clock (epoch seconds)
    duration: float
    clock_origin: float  # time.perf_counter() at the start (attempt times are on that clock)
    reason: str | None = None  # why the run was aborted or interrupted
    faults: list[dict[str, Any]] = field(default_factory=list)  # what each fault did
    fault_end: float | None = None  # when the last fault window ended (seconds from start)
    events: list[dict[str, Any]] = field(default_factory=list)
    attribution: dict[str, int] = field(default_factory=dict)  # attempts tied how (exact, ...)

    @property
    def exit_code(self) -> int:
        """0 every check held, 1 one failed, 3 aborted or interrupted."""
        return EXIT_CODES[self.status]

    @property
    def passed(self) -> bool:
        """Whether every check held and the run was not stopped."""
        return self.status == "passed"

    def calls_in(self, phase: str | None) -> list[CallRecord]:
        """The judged calls of one phase (every phase when None or `all`): ended, not cancelled."""
        return judged(self.calls, None if phase == "all" else phase)

    @property
    def cancelled(self) -> int:
        """Calls cut off in flight by stop_when or Ctrl-C."""
        return sum(1 for c in self.calls if c.cancelled)
