"""The `python` check: a function of the user's that judges the run's records."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr

from aichaos.experiment.checks.base import Check, CheckContext, Measurement, fmt
from aichaos.experiment.functions import FunctionSpec
from aichaos.experiment.results import CallRecord


class PythonCheck(Check):
    """`function(calls)` judges the calls in scope.

    It returns a bool, a `(bool, detail)` pair, or a number compared with
    `min` / `max`. Each call is an `aichaos.experiment.CallRecord` with its
    upstream `attempts`.
    """

    summary: ClassVar[str] = "a function of yours that receives the run's records"
    check: Literal["python"] = "python"
    function: FunctionSpec = Field(description="`module:function` to call.")
    min: float | None = Field(None, description="When it returns a number: lowest acceptable.")
    max: float | None = Field(None, description="When it returns a number: highest acceptable.")

    _resolved: Callable[..., Any] | None = PrivateAttr(None)

    def bind(self, function: Callable[..., Any]) -> None:
        """Attach the imported function (done when the experiment is loaded)."""
        self._resolved = function

    def bound(self) -> str:
        parts = [f"{self.function}"]
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        return " ".join(parts)

    def measure(self, calls: Sequence[CallRecord], ctx: CheckContext) -> Measurement:
        if self._resolved is None:
            return Measurement(None, False, f"{self.function} was not imported")
        try:
            outcome = self._resolved(list(calls))
        except Exception as exc:
            return Measurement(None, False, f"{self.function} raised {type(exc).__name__}: {exc}")
        detail = ""
        if isinstance(outcome, tuple) and len(outcome) == 2:
            outcome, detail = outcome[0], str(outcome[1])
        if isinstance(outcome, bool):
            return Measurement(float(outcome), outcome, detail)
        if isinstance(outcome, (int, float)):
            value = float(outcome)
            passed = (self.min is None or value >= self.min) and (
                self.max is None or value <= self.max
            )
            return Measurement(value, passed, detail or f"{self.function} returned {fmt(value)}")
        return Measurement(
            None, False, f"{self.function} returned {type(outcome).__name__}, not a bool or number"
        )
