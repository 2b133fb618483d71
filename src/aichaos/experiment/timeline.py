"""Faults on and off for each phase or stage of a run, and when each was really active.

The engine holds no fault outside an injecting phase (the inject phase, or a stage with
faults). At its start the phase's faults are added (fresh copies: stateful limiters start
empty) and the engine's clock restarts, so windows and ramps count from there; when it
ends, or the run stops, they are removed at once. Each fault's active window is kept
(`PhaseResult.fault_windows`) for `during:` checks, reports and traces, and the end of the
last one for `recovery_time`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aichaos.experiment.results import FaultWindow, PhaseResult
from aichaos.faults.base import Fault
from aichaos.faults.engine import FaultEngine


def fault_windows(
    faults: Sequence[Fault], started: float, ended: float
) -> tuple[list[FaultWindow], float]:
    """The windows of the faults that opened before `ended` (faults on from `started`),
    and when the last fault stopped acting: the latest window end, cut at `ended`."""
    windows, last = [], started
    for fault in faults:
        window = fault.window
        opens = started + (window.start if window is not None else 0.0)
        end = window.end if window is not None else None
        closes = ended if end is None else min(ended, started + end)
        last = max(last, closes)
        if opens < ended:
            label = fault.name or fault.label()
            windows.append(
                FaultWindow(label, fault.kind, fault.backends_text, opens, closes, fault.name)
            )
    return windows, last


class FaultSwitch:
    """Puts one phase's faults into the engine and takes them out again."""

    def __init__(self, engine: FaultEngine, now: Callable[[], float]) -> None:
        self.engine, self.now = engine, now
        self.stats: list[dict[str, Any]] = []  # what each fault did, every phase's
        self.fault_end: float | None = None  # when the last fault window ended
        self._on: tuple[PhaseResult, Sequence[Fault], float] | None = None

    def on(self, phase: PhaseResult, faults: Sequence[Fault], *, local: bool = True) -> str | None:
        """Add the faults and restart the engine's clock at the phase's start (windows count
        from there); returns a note, if any fault. `local=False`: a live proxy applies them
        (`run --proxy`), the windows are still kept here."""
        if local:
            for fault in faults:
                self.engine.add(fault.model_copy(deep=True))
        self.engine.start()
        self._on = (phase, faults, phase.started)
        if not faults:
            return None
        labels = ", ".join(f"{f.name or f.label()} on {f.backends_text}" for f in faults)
        where = f" ({phase.name})" if phase.stage else ""
        return f"faults on{where}: {labels}"

    def off(self, at: float | None = None) -> str | None:
        """Remove every fault at once (idempotent), `at` seconds from the run's start (default
        now); returns a note when any was on."""
        held = self._on
        self._on = None
        if held is None:
            return None
        phase, faults, started = held
        stats = self.engine.stats()
        self.engine.clear()
        if not faults:
            return None
        self.stats += [removed(entry, phase.name) for entry in stats]
        ended = self.now() if at is None else at
        phase.fault_windows, self.fault_end = fault_windows(faults, started, ended)
        return f"faults off ({phase.name})" if phase.stage else "faults off"

    def windows(self, phases: Sequence[PhaseResult]) -> dict[str, list[tuple[float, float]]]:
        """Every named fault's active windows over the run, in order."""
        found: dict[str, list[tuple[float, float]]] = {}
        for phase in phases:
            for window in phase.fault_windows:
                if window.name is not None:
                    found.setdefault(window.name, []).append((window.start, window.end))
        return found


def removed(entry: dict[str, Any], phase: str) -> dict[str, Any]:
    """A fault's counters as the journal keeps them once its phase removed it: `state` is
    `removed`, and `state_at_removal` where its window stood then (pending, active, expired)."""
    return {**entry, "state": "removed", "state_at_removal": entry.get("state"), "phase": phase}
