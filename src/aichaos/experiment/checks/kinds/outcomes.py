"""Checks on what the user got: success, errors, statuses."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from aichaos.experiment.checks.base import (
    Check,
    CheckContext,
    Measurement,
    needs_some,
    no_calls,
    share,
)
from aichaos.experiment.results import CallRecord
from aichaos.experiment.statuses import StatusPattern, any_matches


def _top_errors(calls: Sequence[CallRecord], limit: int = 3) -> str:
    counts = Counter(c.error or "error" for c in calls if not c.ok)
    return ", ".join(f"{name} x{n}" for name, n in counts.most_common(limit))


def _as_list(value: object) -> object:
    return [value] if isinstance(value, (str, int)) and not isinstance(value, bool) else value


class SuccessRate(Check):
    """The share of calls that succeeded is at least `min`."""

    summary: ClassVar[str] = "share of calls that succeeded (min)"
    check: Literal["success_rate"] = "success_rate"
    min: float = Field(ge=0.0, le=1.0, description="Lowest acceptable share of successful calls.")

    def bound(self) -> str:
        return f">= {self.min:g}"

    def measure(self, calls: Sequence[CallRecord], ctx: CheckContext) -> Measurement:
        if not calls:
            return no_calls()
        ok = sum(1 for c in calls if c.ok)
        value = share(ok, len(calls))
        detail = f"{ok} of {len(calls)} calls succeeded"
        if ok < len(calls):
            detail += f"; failures: {_top_errors(calls)}"
        return Measurement(value, value >= self.min, detail)


class ErrorRate(Check):
    """The share of calls that failed (optionally: with given statuses or errors) is <= `max`."""

    summary: ClassVar[str] = "share of calls that failed, optionally by status or error (max)"
    check: Literal["error_rate"] = "error_rate"
    max: float = Field(ge=0.0, le=1.0, description="Highest acceptable share of failed calls.")
    status: list[StatusPattern] | None = Field(
        None, description="Count only failures with these statuses (e.g. 429, 5xx)."
    )
    error: list[str] | None = Field(
        None, description="Count only failures whose error class matches (globs, e.g. '*Timeout*')."
    )

    @field_validator(
        "status", mode="before", json_schema_input_type=StatusPattern | list[StatusPattern] | None
    )
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return _as_list(value)

    @field_validator("error", mode="before", json_schema_input_type=str | list[str] | None)
    @classmethod
    def _one_or_many_errors(cls, value: object) -> object:
        return _as_list(value)

    def bound(self) -> str:
        return f"<= {self.max:g}"

    def _counts(self, call: CallRecord) -> bool:
        if call.ok:
            return False
        if self.status is not None and not any_matches(list(self.status), call.status):
            return False
        return self.error is None or any(fnmatchcase(call.error or "", p) for p in self.error)

    def measure(self, calls: Sequence[CallRecord], ctx: CheckContext) -> Measurement:
        if not calls:
            return no_calls()
        failed = [c for c in calls if self._counts(c)]
        value = share(len(failed), len(calls))
        detail = f"{len(failed)} of {len(calls)} calls failed"
        if failed:
            detail += f": {_top_errors(failed)}"
        return Measurement(value, value <= self.max, detail)


class StatusCheck(Check):
    """The statuses the user saw are all allowed (and none forbidden)."""

    summary: ClassVar[str] = "statuses the user saw (allowed / forbidden)"
    check: Literal["status"] = "status"
    allowed: list[StatusPattern] | None = Field(None, description="Statuses that may be seen.")
    forbidden: list[StatusPattern] | None = Field(None, description="Statuses never to be seen.")

    @field_validator(
        "allowed",
        "forbidden",
        mode="before",
        json_schema_input_type=StatusPattern | list[StatusPattern] | None,
    )
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return _as_list(value)

    @model_validator(mode="after")
    def _one_list(self) -> StatusCheck:
        needs_some(self, "allowed", "forbidden")
        return self

    def bound(self) -> str:
        parts = []
        if self.allowed is not None:
            parts.append("in " + ",".join(map(str, self.allowed)))
        if self.forbidden is not None:
            parts.append("not in " + ",".join(map(str, self.forbidden)))
        return " and ".join(parts)

    def _violates(self, status: int | None) -> bool:
        if status is None:
            return False  # no status (a timeout, a connection error): other checks judge it
        if self.allowed is not None and not any_matches(list(self.allowed), status):
            return True
        return self.forbidden is not None and any_matches(list(self.forbidden), status)

    def measure(self, calls: Sequence[CallRecord], ctx: CheckContext) -> Measurement:
        if not calls:
            return no_calls()
        bad = Counter(c.status for c in calls if self._violates(c.status))
        count = sum(bad.values())
        if not count:
            return Measurement(0, True, f"no call of {len(calls)} saw a status outside the bound")
        seen = ", ".join(f"{status} x{n}" for status, n in bad.most_common())
        return Measurement(count, False, f"{count} of {len(calls)} calls saw {seen}")
