"""What a run records as it goes: one record per target call, per-phase results, check verdicts.

Nothing here refers to the experiment model (checks and drivers fill these in);
the whole run's result, which does, is `run_result.RunResult`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from aichaos.records import Attempt

Verdict = Literal["PASS", "FAIL", "INCONCLUSIVE"]
CANCELLED = "cancelled"  # the error of a call cut off in flight by stop_when or Ctrl-C
SHED = "shed"  # the error of an open-loop arrival not sent: too many calls in flight
PHASES: tuple[str, ...] = ("baseline", "inject", "recovery")


@dataclass
class CallRecord:
    """One call to the target (one request of the load) and the upstream attempts it caused.

    Times are seconds from the start of the run.
    """

    id: str
    phase: str
    index: int
    prompt: str
    started: float
    scheduled: float | None = None  # open loop: when the arrival was due
    ended: float | None = None
    ok: bool = False
    status: int | None = None  # HTTP status the user saw (python: from the exception, or 200)
    error: str | None = None  # error class, e.g. `openai.RateLimitError`, `timeout`, `http_503`
    message: str | None = None  # first line of the error
    output: str | None = None  # the answer's text, for `response` checks
    ttft: float | None = None  # seconds from the call's start to its first streamed output
    trace_id: str | None = None  # the W3C trace id its `traceparent` carried (http, command)
    attempts: list[Attempt] = field(default_factory=list)  # tied to it (exactly or inferred)
    # Attempts that may be its own but could as well be another call's (see attribution.py).
    possible: list[Attempt] = field(default_factory=list)

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (None while running)."""
        return None if self.ended is None else self.ended - self.started

    @property
    def cancelled(self) -> bool:
        """Cut off in flight by the run itself (stop_when, Ctrl-C): no verdict on it."""
        return self.error == CANCELLED

    @property
    def served_by(self) -> str | None:
        """The backend of the last complete answer, if the call succeeded and that is known."""
        if not self.ok:
            return None
        for attempt in reversed(self.attempts):
            if attempt.ok:  # a complete 2xx answer
                return attempt.backend
        return None


@dataclass
class CheckResult:
    """The verdict of one hypothesis check."""

    check: str  # the check's kind, e.g. `success_rate`
    name: str  # a readable label, e.g. `success_rate >= 0.99 (inject)`
    phase: str  # a phase name, or `all`
    value: float | None  # what was measured
    bound: str  # what it had to be, e.g. `>= 0.99`
    passed: bool
    detail: str = ""
    inconclusive: bool = False  # the records cannot decide it (never together with passed)

    @property
    def verdict(self) -> Verdict:
        """PASS, FAIL or INCONCLUSIVE; only PASS holds."""
        if self.passed:
            return "PASS"
        return "INCONCLUSIVE" if self.inconclusive else "FAIL"

    def to_dict(self) -> dict[str, Any]:
        """The verdict as JSON-ready data."""
        named = _named(self, "check", "name", "phase", "value", "bound", "passed")
        return {**named, "result": self.verdict, "detail": self.detail}


@dataclass(frozen=True)
class FaultWindow:
    """When one fault was really active in a phase or stage (seconds from the run's start):
    from its window's opening to its closing, cut at the time the faults went off."""

    label: str  # its `name`, else its kind's label
    kind: str
    backend: str  # as people read it: `openai` or `openai, claude`
    start: float
    end: float
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The window as JSON-ready data (the journal's phase `faults`)."""
        named = _named(self, "label", "name", "kind", "backend")
        return {**named, "start": round(self.start, 6), "end": round(self.end, 6)}


def _named(record: object, *names: str) -> dict[str, Any]:
    """`{name: record.name}` for each of `names`, in that order (the journal's)."""
    return {name: getattr(record, name) for name in names}


@dataclass
class PhaseResult:
    """One phase (or stage) as it ran: when, with what load and faults, and its metrics."""

    name: str
    started: float
    ended: float | None = None
    planned: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    completed: bool = False
    fault_windows: list[FaultWindow] = field(default_factory=list)

    @property
    def stage(self) -> bool:
        """Whether it is a stage of a timeline (in the inject phase's place)."""
        return bool(self.planned.get("stage"))


def judged(calls: Iterable[CallRecord], phase: str | None = None) -> list[CallRecord]:
    """The calls a verdict is about: ended and not cancelled by the run (of `phase`, if given)."""
    return [
        c
        for c in calls
        if c.ended is not None and not c.cancelled and (phase is None or c.phase == phase)
    ]
