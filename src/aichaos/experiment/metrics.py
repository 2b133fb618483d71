"""Figures over a set of calls: success, errors by class, latency percentiles, who served."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from aichaos.experiment.attribution import served_label, served_options
from aichaos.experiment.results import CallRecord, judged
from aichaos.records import Attempt


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile (the smallest value with at least p% of values at or below).

    Nearest rank never reports a value no call had, which keeps SLO checks honest.
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latencies(calls: Iterable[CallRecord]) -> list[float]:
    """Durations of the completed calls."""
    return [c.duration for c in calls if c.duration is not None]


def ttfts(calls: Iterable[CallRecord]) -> list[float]:
    """Times to first token of the calls that have one."""
    return [c.ttft for c in calls if c.ttft is not None]


def phase_metrics(calls: Sequence[CallRecord], elapsed: float | None = None) -> dict[str, Any]:
    """The journal's and console's per-phase figures, from the calls as attributed.

    `requests` counts the judged calls (ended, not cancelled by the run);
    `cancelled` those cut off in flight. Attempts and faults count every attempt
    tied or possibly tied to a call (each once); `attempts.max` is None when
    attribution cannot tell it; `served_by` says `unknown` for successful calls that
    several backends could have served.
    """
    done = judged(calls)
    ok = sum(1 for c in done if c.ok)
    lat = latencies(done)
    first_tokens = ttfts(done)
    seen: dict[int, Attempt] = {}
    for call in calls:  # a cancelled call's attempts were made, and faults hit them
        seen.update((id(a), a) for a in (*call.attempts, *call.possible))
    faults: Counter[str] = Counter()
    for attempt in seen.values():
        faults.update(attempt.faults)
    backends = Counter(served_label(c, served_options(c)) for c in done if c.ok)
    counts = [len(c.attempts) for c in done]
    unsure = any(c.possible for c in done)
    lags = [c.started - c.scheduled for c in done if c.scheduled is not None]
    metrics: dict[str, Any] = {
        "requests": len(done),
        "cancelled": sum(1 for c in calls if c.cancelled),
        "ok": ok,
        "failed": len(done) - ok,
        "success_rate": ok / len(done) if done else None,
        "errors": dict(Counter(c.error for c in done if not c.ok and c.error).most_common()),
        "statuses": _statuses(done),
        "latency": _spread(lat),
        "ttft": _spread(first_tokens),
        "attempts": {
            "total": len(seen),
            "per_call": len(seen) / len(done) if done else None,
            "max": max(counts) if counts and not unsure else None,
        },
        "faults": dict(faults.most_common()),
        "served_by": dict(backends.most_common()),
    }
    if elapsed:
        metrics["duration"] = elapsed
        metrics["throughput"] = len(done) / elapsed if elapsed > 0 else None
    if lags:
        metrics["schedule_lag"] = _spread(lags)
    return metrics


def _statuses(calls: Sequence[CallRecord]) -> dict[str, int]:
    counts = Counter(c.status for c in calls)
    ordered = sorted(counts.items(), key=lambda item: -1 if item[0] is None else item[0])
    return {("none" if status is None else str(status)): n for status, n in ordered}


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }
