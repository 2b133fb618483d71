"""The check interface and the registry of checks (one small class per check, by `check:` name).

A check is a pydantic model: its fields are what the YAML may say about it. It
measures one value over a set of calls and compares it with its bound. The same
classes serve `hypothesis` (over a phase, at the end) and `stop_when` (over a
sliding window, continuously).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from aichaos.experiment.results import CallRecord, CheckResult, PhaseResult, judged
from aichaos.registry import Registered
from aichaos.units import Duration

PhaseName = Literal["baseline", "inject", "recovery"]

_REGISTRY: dict[str, type[Check]] = {}


@dataclass
class Measurement:
    """What a check measured and whether it held."""

    value: float | None
    passed: bool
    detail: str = ""
    inconclusive: bool = False  # the records cannot decide it: not passed, not failed either


@dataclass
class CheckContext:
    """What checks may look at once a run is over (or while it runs, for stop_when)."""

    calls: Sequence[CallRecord]
    phases: dict[str, PhaseResult] = field(default_factory=dict)
    fault_end: float | None = None  # seconds from the run's start; None: no fault ran
    base_dir: Path = Path(".")
    started_at: float | None = None  # wall clock (time.time()) at the run's start
    # When each named fault was really active: (start, end) in seconds from the run's start.
    windows: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    stages: frozenset[str] = frozenset()  # the stage names, for `phase: inject` over them

    def selects(self, check: Check, call: CallRecord) -> bool:
        """Whether a call is in a check's scope: its `phase` (`inject`: every stage),
        `stage`, or the active window of its `during` fault (the call overlaps it)."""
        if check.during is not None:
            end = call.ended if call.ended is not None else call.started
            spans = self.windows.get(check.during, [])
            return any(call.started < close and end > open_ for open_, close in spans)
        wanted = check.stage or check.phase
        if wanted is None:
            return True
        if wanted == "inject" and call.phase in self.stages:
            return True
        return call.phase == wanted

    def period(self, check: Check) -> tuple[float, float | None] | None:
        """When a check's scope ran: its phase or stage, or from the first opening to the
        last closing of its `during` fault (None: the whole run, or it never ran)."""
        if check.during is not None:
            spans = self.windows.get(check.during)
            return (spans[0][0], spans[-1][1]) if spans else None
        name = check.stage or check.phase
        return None if name is None else self.span(name)

    def span(self, name: str) -> tuple[float, float | None] | None:
        """Start and end (seconds from the run's start) of a phase or stage that ran; the
        inject phase of a run with stages spans them all."""
        if name == "inject" and name not in self.phases:
            parts = [p for n, p in self.phases.items() if n in self.stages]
            if not parts:
                return None
            return parts[0].started, parts[-1].ended
        phase = self.phases.get(name)
        return None if phase is None else (phase.started, phase.ended)


class Check(Registered):
    """Base of every check. Subclasses set `check`, implement `measure` and `bound`."""

    kinds = _REGISTRY
    discriminator = "check"

    check: str
    name: str | None = Field(None, description="A label for reports (default: check and bound).")
    phase: PhaseName | None = Field(
        None,
        description="Only calls of this phase (default: every phase); with stages, `inject`"
        " is all of them.",
    )
    stage: str | None = Field(None, description="Only calls of this stage (see `stages`).")
    during: str | None = Field(
        None,
        description="Only calls that overlap the time the fault with this `name` was active.",
    )
    window: Duration | None = Field(
        None, description="stop_when only: length of the sliding window (default 5s)."
    )
    min_calls: int | None = Field(
        None, ge=1, description="stop_when only: calls needed in the window to judge (default 10)."
    )

    windowed: ClassVar[bool] = True
    """Whether the check can judge a sliding window (stop_when)."""

    @model_validator(mode="after")
    def _one_scope(self) -> Check:
        given = [key for key in ("phase", "stage", "during") if getattr(self, key) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of `phase`, `stage` or `during`, not {' and '.join(given)}")
        return self

    def measure(self, calls: Sequence[CallRecord], ctx: CheckContext) -> Measurement:
        """Measure the calls in scope (those of `phase`, or of a stop_when window)."""
        raise NotImplementedError

    def bound(self) -> str:
        """What the value had to be, e.g. `>= 0.99`."""
        raise NotImplementedError

    def scope(self) -> str:
        """What is judged: the phase, the stage, `during NAME`, or `all`."""
        if self.during is not None:
            return f"during {self.during}"
        return self.stage or self.phase or "all"

    def label(self) -> str:
        """The name in reports: `name`, else the check, its bound and scope."""
        if self.name:
            return self.name
        scope = self.scope()
        where = f" ({scope})" if scope != "all" else ""
        return f"{self.check} {self.bound()}{where}"

    def evaluate(self, ctx: CheckContext) -> CheckResult:
        """The verdict over the calls in this check's scope."""
        chosen = [c for c in ctx.calls if ctx.selects(self, c)]
        unrun = None if chosen else self._unrun_scope(ctx)
        if unrun is not None:  # nothing happened there to judge: not a failure of the app
            return CheckResult(
                check=self.check,
                name=self.label(),
                phase=self.scope(),
                value=None,
                bound=self.bound(),
                passed=False,
                detail=unrun,
                inconclusive=True,
            )
        calls = judged(chosen)
        result = self.measure(calls, ctx)
        detail = result.detail
        cancelled = sum(1 for c in chosen if c.cancelled)
        if cancelled:
            detail += f"; {cancelled} calls cancelled in flight by the run are not judged"
        return CheckResult(
            check=self.check,
            name=self.label(),
            phase=self.scope(),
            value=result.value,
            bound=self.bound(),
            passed=result.passed and not result.inconclusive,
            detail=detail,
            inconclusive=result.inconclusive and not result.passed,
        )

    def _unrun_scope(self, ctx: CheckContext) -> str | None:
        """Why the check's phase, stage or `during` fault never ran (the run ended before
        it, or the fault never became active), or None when it ran."""
        if self.during is not None:
            if ctx.windows.get(self.during):
                return None
            return f"fault {self.during!r} was never active: nothing ran during it to judge"
        name = self.stage or self.phase
        if name is None or ctx.span(name) is not None:
            return None
        what = "stage" if self.stage is not None else "phase"
        return f"{what} {name!r} did not run (the run ended before it): run it to judge this"


def check_kinds() -> dict[str, type[Check]]:
    """Every registered check by name, in registration order.

    The built-in checks register when the `aichaos.experiment.checks` package is
    imported, which Python does before any of its modules, this one included.
    """
    return dict(_REGISTRY)


def no_calls(what: str = "calls") -> Measurement:
    """Nothing to judge: a hypothesis that cannot be shown to hold does not hold."""
    return Measurement(None, False, f"no {what} to judge")


def share(part: int, whole: int) -> float:
    """`part / whole`, 0 for nothing."""
    return part / whole if whole else 0.0


def needs_some(check: Check, first: str, second: str) -> None:
    """Refuse a check that gives neither of two optional keys (a bound, a list)."""
    if getattr(check, first) is None and getattr(check, second) is None:
        raise ValueError(f"{check.check} needs `{first}`, `{second}` or both")


def range_text(least: float | None, most: float | None) -> str:
    """A bound in words, `>= 0.5 and <= 0.9`, leaving out an end that is None."""
    ends = ((">=", least), ("<=", most))
    return " and ".join(f"{op} {value:g}" for op, value in ends if value is not None)


def fmt(value: float | None, unit: str = "") -> str:
    """A figure for messages: seconds as ms/s, shares as plain numbers."""
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"
    return f"{value:.3g}"


def bounded(
    low: float, high: float, least: float | None, most: float | None, detail: str
) -> Measurement:
    """The verdict when the records only bound the value to [low, high] (attribution).

    Every value in the range within [least, most]: PASS; none: FAIL; otherwise
    INCONCLUSIVE. The value shown is the worst end for the bound.
    """

    def holds(value: float) -> bool:
        return (least is None or value >= least) and (most is None or value <= most)

    shown = high if least is None else low
    if holds(low) and holds(high):
        return Measurement(shown, True, detail)
    if (least is not None and high < least) or (most is not None and low > most):
        return Measurement(shown, False, detail)
    return Measurement(None, False, detail, inconclusive=True)
