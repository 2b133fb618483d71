"""The `prometheus` check: ask the team's own Prometheus what it saw during the run.

Either a PromQL `query` whose value must stay within `min`/`max` (at the end of the check's
phase or of the run, or `throughout` it), or `alert: NAME` that must be firing within
`within` of the inject phase's start (read from Prometheus' `ALERTS` series). A server that
cannot be reached or a query it rejects fails the check with the reason.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from aichaos.experiment.checks.base import Check, CheckContext, Measurement, fmt, range_text
from aichaos.experiment.results import CallRecord
from aichaos.telemetry.promql import PrometheusClient, PrometheusError, Sample, public_url
from aichaos.units import Duration

POLL_INTERVAL = 1.0  # seconds between looks while waiting for an alert


class PrometheusCheck(Check):
    """A PromQL query within bounds, or an alert firing soon enough after faults begin."""

    summary: ClassVar[str] = (
        "a PromQL query within bounds, or an alert firing within a time of inject's start"
        " (url, query + min / max, or alert + within)"
    )
    windowed: ClassVar[bool] = False
    check: Literal["prometheus"] = "prometheus"
    url: str = Field(description="The Prometheus server, e.g. http://127.0.0.1:9090.")
    query: str | None = Field(None, description="A PromQL expression; every series is judged.")
    min: float | None = Field(None, description="Lowest acceptable value of the query.")
    max: float | None = Field(None, description="Highest acceptable value of the query.")
    at: Literal["end", "throughout"] = Field(
        "end",
        description="Judge the query at the end of the phase (or run), or at every step of it.",
    )
    alert: str | None = Field(None, description="An alert name (the `alertname` label).")
    within: Duration | None = Field(
        None,
        description="With `alert`: how soon after the inject phase's start (or the start of"
        " its `stage`, or of its `during` fault's window) it must fire.",
    )
    timeout: Duration = Field(5.0, gt=0, description="Longest wait for one answer of the server.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> PrometheusCheck:
        if (self.query is None) == (self.alert is None):
            raise ValueError("prometheus needs either `query` (with min/max) or `alert`")
        if self.query is not None:
            if self.min is None and self.max is None:
                raise ValueError("a prometheus `query` needs `min`, `max` or both")
            if self.within is not None:
                raise ValueError("`within` goes with `alert`, not with `query`")
        else:
            if self.within is None:
                raise ValueError("a prometheus `alert` needs `within` (e.g. within: 2m)")
            if self.min is not None or self.max is not None or self.at != "end":
                raise ValueError("`min`, `max` and `at` go with `query`, not with `alert`")
        return self

    def bound(self) -> str:
        if self.alert is not None:
            return f"alert {self.alert} firing within {fmt(self.within, 's')} of inject"
        where = " throughout" if self.at == "throughout" else ""
        return f"{self.query} {range_text(self.min, self.max)}{where}"

    def measure(self, calls: Sequence[CallRecord], ctx: CheckContext) -> Measurement:
        client = PrometheusClient(self.url, timeout=self.timeout)
        try:
            if self.alert is not None:
                return self._alert(client, ctx)
            return self._query(client, ctx)
        except PrometheusError as exc:
            return Measurement(None, False, str(exc))

    # --- query -------------------------------------------------------------------------
    def _query(self, client: PrometheusClient, ctx: CheckContext) -> Measurement:
        assert self.query is not None
        start, end = self._span(ctx)
        if self.at == "throughout" and start is not None and end is not None:
            step = max((end - start) / 200, 1.0)
            samples = client.range(self.query, start, end, step)
        else:  # a phase's end, or now: the run has just ended
            scoped = self.scope() != "all"
            samples = client.instant(self.query, end if scoped else None)
        if not samples:
            return Measurement(None, False, f"the query returned no data from {self._where}")
        worst = self._worst(samples)
        passed = all(self._within(s.value) for s in samples)
        series = len({tuple(sorted(s.labels.items())) for s in samples})
        detail = f"{len(samples)} samples of {series} series; {self._describe(worst)}"
        return Measurement(worst.value, passed, detail)

    def _within(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def _worst(self, samples: list[Sample]) -> Sample:
        outside = [s for s in samples if not self._within(s.value)]
        pool = outside or samples
        if self.max is not None and (not outside or any(s.value > self.max for s in outside)):
            return max(pool, key=lambda s: s.value if not math.isnan(s.value) else math.inf)
        return min(pool, key=lambda s: s.value if not math.isnan(s.value) else -math.inf)

    @staticmethod
    def _describe(sample: Sample) -> str:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
        return f"{{{labels}}} = {sample.value:g}"

    def _span(self, ctx: CheckContext) -> tuple[float | None, float | None]:
        """Wall-clock start and end of the check's phase (or of the run)."""
        if ctx.started_at is None:
            return None, None
        period = ctx.period(self)
        if period is not None:
            start, end = period
            return ctx.started_at + start, ctx.started_at + (end if end is not None else start)
        ends = [p.ended for p in ctx.phases.values() if p.ended is not None]
        starts = [p.started for p in ctx.phases.values()]
        if not starts:
            return None, None
        return ctx.started_at + min(starts), ctx.started_at + max(ends or starts)

    @property
    def _where(self) -> str:
        return public_url(self.url)

    # --- alert -------------------------------------------------------------------------
    def _alert(self, client: PrometheusClient, ctx: CheckContext) -> Measurement:
        assert self.alert is not None and self.within is not None
        scoped = self.stage is not None or self.during is not None
        began = ctx.period(self) if scoped else ctx.span("inject")
        if ctx.started_at is None or began is None:
            what = self.scope() if scoped else "inject phase"
            return Measurement(None, False, f"no {what} ran: nothing to measure from")
        start = ctx.started_at + began[0]
        deadline = start + self.within
        name = self.alert.replace("\\", "\\\\").replace('"', '\\"')
        query = f'ALERTS{{alertname="{name}",alertstate="firing"}}'
        while True:
            now = time.time()
            samples = client.range(query, start, min(now, deadline), 1.0)
            if samples:
                first = samples[0].at - start
                what = self.scope() if scoped else "inject"
                late = "" if first > 0 else f" (already firing when {what} began)"
                shown = fmt(max(first, 0.0), "s")
                detail = f"{self.alert} firing {shown} after {what} began{late}"
                return Measurement(max(first, 0.0), True, detail)
            if now >= deadline:
                return Measurement(
                    None,
                    False,
                    f"{self.alert} was not firing within {fmt(self.within, 's')} of"
                    f" {self.scope() if scoped else 'inject'}'s start"
                    f" (asked {self._where})",
                )
            time.sleep(min(POLL_INTERVAL, max(deadline - now, 0.0)))
