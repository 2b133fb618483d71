"""Stopping a run early: stop_when (checks judged continuously over a sliding window of recent
calls) and SIGINT/SIGTERM."""

from __future__ import annotations

import signal
import sys
from collections import deque
from collections.abc import Callable, Collection, Sequence

import anyio

from aichaos.experiment.checks.base import Check, CheckContext
from aichaos.experiment.results import CallRecord
from aichaos.experiment.run_result import Status

DEFAULT_WINDOW = 5.0
DEFAULT_MIN_CALLS = 10


class StopMonitor:
    """Keeps recent calls and says when a stop_when condition no longer holds."""

    def __init__(self, conditions: Sequence[Check], stages: Collection[str] = ()) -> None:
        self.conditions = list(conditions)
        self.horizon = max((c.window or DEFAULT_WINDOW for c in self.conditions), default=0.0)
        self.recent: deque[CallRecord] = deque()
        self.phase: str | None = None  # the phase running now: a window covers only its calls
        self.scopes = CheckContext([], stages=frozenset(stages))  # `stage:`, `phase: inject`

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def feed(self, call: CallRecord) -> None:
        """A call has ended: keep it for the windows."""
        if self.conditions:
            self.recent.append(call)

    def fired(self, now: float) -> str | None:
        """The reason to stop, or None. `now` is seconds from the run's start."""
        while self.recent and self.recent[0].ended is not None:
            if self.recent[0].ended >= now - self.horizon:
                break
            self.recent.popleft()
        for condition in self.conditions:
            window = condition.window or DEFAULT_WINDOW
            scoped = condition.scope() != "all"  # else: the phase running now
            calls = [
                c
                for c in self.recent
                if c.ended is not None
                and c.ended >= now - window
                and (self.scopes.selects(condition, c) if scoped else self.phase in (None, c.phase))
            ]
            if len(calls) < (condition.min_calls or DEFAULT_MIN_CALLS):
                continue
            result = condition.measure(calls, CheckContext(calls))
            if not result.passed:
                return (
                    f"stop_when {condition.label()} fired over the last {window:g}s"
                    f" ({len(calls)} calls): {result.detail}"
                )
        return None


async def stop_on_signals(
    stop: Callable[[Status, str], None], interrupted: Callable[[], bool], hurry: anyio.Event
) -> None:
    """The first SIGINT/SIGTERM stops the run (status `interrupted`); a second one hurries
    its cleanup (the app is killed at once); later ones are ignored, quietly: the outputs
    of the calls made are still written. Once interrupted, the run returns with both
    signals ignored (the program is stopping; the caller restores them to go on)."""
    if sys.platform == "win32":  # pragma: no cover
        return
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                if not interrupted():
                    stop("interrupted", f"interrupted by {signal.Signals(signum).name}")
                elif not hurry.is_set():
                    # clean up without waiting (the app is killed at once); the outputs
                    # of the calls already made are still written
                    hurry.set()
    finally:
        if interrupted():
            # the receiver put the default handlers back: a late Ctrl-C would now raise
            # KeyboardInterrupt in the middle of the verdict or the outputs
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
