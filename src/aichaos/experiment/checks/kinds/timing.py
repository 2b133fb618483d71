"""Checks on time: latency and time to first token percentiles, and recovery after faults."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import Field

from aichaos.experiment.checks.base import Check, CheckContext, Measurement, fmt, no_calls
from aichaos.experiment.metrics import percentile
from aichaos.experiment.results import CallRecord
from aichaos.units import Duration


class _PercentileCheck(Check):
    """A percentile of one timing of the calls is at most `max`."""

    percentile: float = Field(95.0, gt=0, le=100, description="Which percentile, e.g. 95 or 99.")
    max: Duration = Field(description="Highest acceptable value at that percentile, e.g. 2s.")

    measures: ClassVar[tuple[str, str]]
    """The `CallRecord` field measured, and what has one (for the detail line)."""

    def bound(self) -> str:
        return f"p{self.percentile:g} <= {fmt(self.max, 's')}"

    def measure(self, calls: Sequence[CallRecord], ctx: CheckContext) -> Measurement:
        field, counted = self.measures
        values = [value for c in calls if (value := getattr(c, field)) is not None]
        value = percentile(values, self.percentile)
        if value is None:
            return no_calls(counted)
        detail = f"p{self.percentile:g} of {len(values)} {counted} = {fmt(value, 's')}"
        return Measurement(value, value <= self.max, detail)


class LatencyCheck(_PercentileCheck):
    """The call latency at `percentile` is at most `max` (failed calls included)."""

    summary: ClassVar[str] = "call latency percentile (percentile, max)"
    check: Literal["latency"] = "latency"
    measures: ClassVar[tuple[str, str]] = ("duration", "calls")


class Ttft(_PercentileCheck):
    """Time to first token of streamed answers at `percentile` is at most `max`."""

    summary: ClassVar[str] = "time to first token of streamed answers (percentile, max)"
    check: Literal["ttft"] = "ttft"
    measures: ClassVar[tuple[str, str]] = ("ttft", "streamed answers")


class RecoveryTime(Check):
    """After the last fault window ends, success returns within `max`.

    Measured from the end of the faults to the end of the first successful call
    that started after it (followed by `consecutive - 1` more successes). With
    `backend:`, only calls that backend served count as successes: a fallback that
    keeps answering does not hide a primary that stays benched.
    """

    summary: ClassVar[str] = "time from the end of the faults until success returns (max, backend)"
    windowed: ClassVar[bool] = False
    check: Literal["recovery_time"] = "recovery_time"
    max: Duration = Field(description="Longest acceptable time to recover.")
    consecutive: int = Field(1, ge=1, description="Successes in a row that count as recovered.")
    backend: str | None = Field(
        None, description="Count only calls served by this backend (its last complete answer)."
    )

    def bound(self) -> str:  # as served_by's: the backend first
        backend = f"{self.backend} " if self.backend is not None else ""
        return f"{backend}<= {fmt(self.max, 's')}"

    def _served(self, call: CallRecord) -> bool:
        return call.ok and (self.backend is None or call.served_by == self.backend)

    def measure(self, calls: Sequence[CallRecord], ctx: CheckContext) -> Measurement:
        end = ctx.fault_end
        if end is None:
            return Measurement(None, False, "no fault window ended during the run")
        after = sorted((c for c in calls if c.started >= end), key=lambda c: c.started)
        if not after:
            why = "no calls after the faults ended (add a recovery phase)"
            return Measurement(None, False, why)
        what = "success" if self.backend is None else f"{self.backend!r} serving"
        for i in range(len(after) - self.consecutive + 1):
            run = after[i : i + self.consecutive]
            if all(self._served(c) for c in run) and run[0].ended is not None:
                value = max(0.0, run[0].ended - end)
                other = "failed" if self.backend is None else "other"
                skipped = f" after {i} {other} calls" if i else ""
                detail = f"{what} returned {fmt(value, 's')} after the faults ended{skipped}"
                return Measurement(value, value <= self.max, detail)
        return Measurement(
            float("inf"), False, f"{what} did not return in {len(after)} calls after the faults"
        )
