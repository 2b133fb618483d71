"""Checks that use per-call attribution: which backend served, how many upstream attempts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from aichaos.experiment.attribution import (
    ADVICE,
    attempt_bounds,
    incomplete_options,
    last_answer,
    served_label,
    served_options,
    untied,
)
from aichaos.experiment.checks.base import (
    Check,
    CheckContext,
    Measurement,
    bounded,
    fmt,
    needs_some,
    no_calls,
    range_text,
    share,
)
from aichaos.experiment.metrics import percentile
from aichaos.experiment.results import CallRecord


class ServedBy(Check):
    """The share of calls a backend served (its answer was the one the call got)."""

    summary: ClassVar[str] = "share of calls a backend served (backend, min_share / max_share)"
    check: Literal["served_by"] = "served_by"
    backend: str = Field(description="A backend declared in `backends`.")
    min_share: float | None = Field(None, ge=0.0, le=1.0, description="Lowest acceptable share.")
    max_share: float | None = Field(None, ge=0.0, le=1.0, description="Highest acceptable share.")

    @model_validator(mode="after")
    def _a_bound(self) -> ServedBy:
        needs_some(self, "min_share", "max_share")
        return self

    def bound(self) -> str:
        return f"{self.backend} {range_text(self.min_share, self.max_share)}"

    def measure(self, calls: Sequence[CallRecord], ctx: CheckContext) -> Measurement:
        if not calls:
            return no_calls()
        options = [served_options(c) for c in calls]
        surely = sum(1 for o in options if o == {self.backend})
        maybe = sum(1 for o in options if self.backend in o)
        served = Counter(served_label(c, o) for c, o in zip(calls, options, strict=True))
        detail = "served: " + ", ".join(f"{b} {n}" for b, n in served.most_common())
        detail += f" (of {len(calls)} calls)"
        if surely != maybe:
            detail += f"; {maybe - surely} calls could have been served by several backends"
            detail = with_advice(detail)
        n = len(calls)
        return bounded(share(surely, n), share(maybe, n), self.min_share, self.max_share, detail)


def with_advice(detail: str) -> str:
    """A detail line that says how to make attribution exact."""
    return f"{detail}: attempts could not be tied to calls exactly; {ADVICE}"


class Attempts(Check):
    """Upstream attempts per call stay at most `max` (retry amplification)."""

    summary: ClassVar[str] = "upstream attempts per target call: retry amplification (max)"
    check: Literal["attempts"] = "attempts"
    max: int = Field(ge=0, description="Most upstream attempts a call may cause.")
    percentile: float = Field(
        100.0, gt=0, le=100, description="Judge this percentile of calls (100: every call)."
    )

    def bound(self) -> str:
        which = "max" if self.percentile >= 100 else f"p{self.percentile:g}"
        return f"{which} <= {self.max}"

    def measure(self, calls: Sequence[CallRecord], ctx: CheckContext) -> Measurement:
        if not calls:
            return no_calls()
        spans = [attempt_bounds(c) for c in calls]
        low = percentile([b.low for b in spans], self.percentile)
        high = percentile([b.high for b in spans], self.percentile)
        assert low is not None and high is not None
        total = sum(len(c.attempts) for c in calls)
        unsure = untied(calls)
        detail = (
            f"{total} attempts for {len(calls)} calls ({fmt(total / len(calls))} per call,"
            f" most {max(int(b.low) for b in spans)})"
        )
        if unsure:
            detail = with_advice(f"{detail}; {unsure} more could belong to several calls")
        return bounded(low, high, None, self.max, detail)


class IncompleteAnswers(Check):
    """Successful calls whose app got an incomplete last answer stay at most a share `max`.

    A call counts when the target reported success although the last upstream answer its
    app received before returning did not end complete (a dropped connection, an in-band
    error event, a stream without its terminator, a stall): its user saw a cut answer.
    """

    summary: ClassVar[str] = "share of successful calls whose app got a cut-short answer (max)"
    check: Literal["incomplete_answers"] = "incomplete_answers"
    max: float = Field(
        0.0, ge=0.0, le=1.0, description="Highest acceptable share of successful calls."
    )

    def bound(self) -> str:
        return f"<= {self.max:g}"

    def measure(self, calls: Sequence[CallRecord], ctx: CheckContext) -> Measurement:
        answered = [c for c in calls if c.ok]
        if not answered:
            return no_calls("successful calls")
        options = [incomplete_options(c) for c in answered]
        surely = [c for c, o in zip(answered, options, strict=True) if o == {True}]
        maybe = sum(1 for o in options if True in o)
        n = len(answered)
        detail = f"{len(surely)} of {n} successful calls got an incomplete last answer"
        if surely:
            detail += f" ({_ends(surely)}; e.g. {surely[0].id})"
        if maybe != len(surely):
            detail = with_advice(f"{detail}; {maybe - len(surely)} more may have")
        return bounded(share(len(surely), n), share(maybe, n), None, self.max, detail)


def _ends(calls: Sequence[CallRecord]) -> str:
    """How the last answers ended, e.g. `stream_incomplete 3, connection_dropped 1`."""
    ends: Counter[str] = Counter()
    for call in calls:
        last = last_answer(call.attempts)
        if last is not None:
            ends[last.outcome or last.error or "incomplete"] += 1
    return ", ".join(f"{name} {n}" for name, n in ends.most_common())
