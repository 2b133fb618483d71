"""Tying upstream attempts to the target calls that caused them."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from aichaos.experiment.results import CallRecord
from aichaos.records import Attempt


def attribute(calls: Sequence[CallRecord], attempts: Sequence[Attempt], origin: float) -> int:
    """Attach attempts to their calls; returns how many could not be tied to any call.

    An attempt that names its call (in-process call scope, or the `x-aichaos-call`
    header through the proxy) goes to that call. One that does not goes to the only
    call in flight when it started; with several calls in flight it stays untied.
    """
    by_id = {call.id: call for call in calls}
    ordered = sorted(calls, key=lambda c: c.started)
    starts = [c.started for c in ordered]
    longest = max((c.duration or 0.0 for c in calls), default=0.0)
    untied = 0
    for attempt in attempts:
        call = by_id.get(attempt.call_id or "")
        if call is None:
            call = _only_call_at(ordered, starts, attempt.started - origin, longest)
            if call is None:
                untied += 1
                continue
            attempt.call_id = call.id
        if not any(a is attempt for a in call.attempts):
            call.attempts.append(attempt)
    for call in calls:
        call.attempts.sort(key=lambda a: a.started)
    return untied


def _only_call_at(
    ordered: Sequence[CallRecord], starts: Sequence[float], moment: float, longest: float
) -> CallRecord | None:
    found = None
    first = bisect.bisect_left(starts, moment - longest)
    for call in ordered[first : bisect.bisect_right(starts, moment)]:
        if call.ended is None or call.ended >= moment:
            if found is not None:
                return None
            found = call
    return found
