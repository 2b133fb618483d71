"""Checks that use per-call attribution: which backend served, how many upstream attempts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from aichaos.experiment.checks.base import Check, CheckContext, Measurement, fmt, no_calls, share
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
        if self.min_share is None and self.max_share is None:
            raise ValueError("served_by needs `min_share`, `max_share` or both")
        return self

    def bound(self) -> str:
        parts = []
        if self.min_share is not None:
            parts.append(f">= {self.min_share:g}")
        if self.max_share is not None:
            parts.append(f"<= {self.max_share:g}")
        return f"{self.backend} " + " and ".join(parts)

    def measure(self, calls: Sequence[CallRecord], ctx: CheckContext) -> Measurement:
        if not calls:
            return no_calls()
        served = Counter(c.served_by or "nobody (failed)" for c in calls)
        value = share(served.get(self.backend, 0), len(calls))
        passed = (self.min_share is None or value >= self.min_share) and (
            self.max_share is None or value <= self.max_share
        )
        detail = "served: " + ", ".join(f"{b} {n}" for b, n in served.most_common())
        return Measurement(value, passed, f"{detail} (of {len(calls)} calls)")


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
        counts = [len(c.attempts) for c in calls]
        value = percentile([float(n) for n in counts], self.percentile)
        if value is None:
            return no_calls()
        total = sum(counts)
        detail = (
            f"{total} attempts for {len(counts)} calls ({fmt(total / len(counts))} per call,"
            f" most {max(counts)})"
        )
        return Measurement(value, value <= self.max, detail)
