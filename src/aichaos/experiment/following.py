"""The run's side of `--proxy`: the live proxy's records into the run's own records.

`Follower` polls the proxy (`LiveProxy`) during the run: each attempt is recorded in the
run's `Recorder` as if the run's own proxy had carried it (listeners, attribution and
reports see no difference) with its trace id and prompt noted for attribution; each fault
change becomes a line of the run's events (with the record under `fault_change`) and a
window the fault was active in, for `recovery_time`'s end of faults and, for faults added by
others (`aichaos fault add`, or held when the run began), for the phases' fault windows that
reports show on the timeline (`live_windows`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx

from aichaos.experiment.attribution import RequestNotes
from aichaos.experiment.errors import ExperimentError, Problem
from aichaos.experiment.live_proxy import LiveProxy, Poll, describe_event
from aichaos.experiment.model import Experiment
from aichaos.experiment.results import CheckResult, FaultWindow, PhaseResult
from aichaos.experiment.timeline import removed
from aichaos.faults.base import Fault
from aichaos.records import Recorder

POLL_INTERVAL = 0.2  # seconds between reads of the proxy's feeds
READS_ATTEMPTS = frozenset(
    {"served_by", "attempts", "incomplete_answers", "recovery_time", "python"}
)
"""Check kinds whose verdict depends on the upstream attempts (or the fault windows)."""


class Follower:
    """Follows one live proxy for one run (see the module docstring)."""

    def __init__(
        self,
        live: LiveProxy,
        recorder: Recorder,
        notes: RequestNotes | None,
        event: Callable[[float, str, dict[str, Any]], None] = lambda at, message, record: None,
    ) -> None:
        self.live, self.recorder, self.notes, self.event = live, recorder, notes, event
        self.windows: dict[str, list[float | None]] = {}  # fault id -> [start, end] (perf)
        self.own: set[str] = set()
        self.labels: dict[str, tuple[str, str, str]] = {}  # fault id -> label, kind, backends
        self.phase = ""  # the phase the run's own faults were added for
        self.paused: dict[str, float | None] = {}  # fault id -> its window's end before a pause
        self._lock = anyio.Lock()

    async def follow(self) -> None:
        """Read the feeds until cancelled (a failed read is retried at the next tick)."""
        while True:
            await anyio.sleep(POLL_INTERVAL)
            await self.catch_up(quiet=True)

    async def catch_up(self, *, quiet: bool = False) -> Poll:
        """Read everything new now; `quiet`: a proxy that does not answer is tried again."""
        async with self._lock:  # one reader at a time: cursors move in order
            try:
                poll = await self.live.poll()
            except Exception:
                if quiet:
                    return Poll()
                raise
            for record in poll.attempts:
                attempt = record.attempt
                if self.notes is not None:
                    self.notes.note(attempt, record.trace_id, record.prompt)
                self.recorder.begin(attempt)
                self.recorder.finish(attempt)
            for change in poll.events:
                self._change(change)
            return poll

    async def finish(self, seconds: float) -> None:
        """The last read, at the end of the run: what the proxy finished since the last one.
        A proxy that cannot be read now leaves the records incomplete, which is said."""
        try:
            with anyio.fail_after(seconds):
                await self.catch_up()
        except Exception as exc:
            self.live.lost.append(f"the proxy's last records could not be read ({exc})")

    async def settle(self, seconds: float) -> None:
        """Read until the proxy has no attempt in flight (at most `seconds`): an attempt's
        end is recorded just after its app has the answer, so maybe after the call returned."""
        deadline = time.perf_counter() + seconds
        while True:
            try:
                poll = await self.catch_up()
            except Exception:
                return
            if poll.in_flight == 0 or time.perf_counter() >= deadline:
                return
            await anyio.sleep(0.05)

    def _change(self, change: dict[str, Any]) -> None:
        at = float(change["at"])
        action = change.get("action")
        message = describe_event(change)
        fault_id = str(change.get("id", ""))
        if fault_id in self.own:
            message += " (this run)"
        if action == "added":
            window = change.get("window") or {}
            start = at + float(window.get("start") or 0.0)
            end = window.get("end")
            self.windows[fault_id] = [start, None if end is None else at + float(end)]
            self.labels[fault_id] = _label(change)
        elif action in ("removed", "cleared"):
            gone = [fault_id] if action == "removed" else [f["id"] for f in change["faults"]]
            for name in gone:
                self.paused.pop(str(name), None)
                span = self.windows.setdefault(str(name), [None, None])
                if span[1] is None or span[1] > at:
                    span[1] = at
        elif action == "paused":  # the kill switch ends every fault's window, for now
            for name, span in self.windows.items():
                if span[1] is None or span[1] > at:
                    self.paused[name], span[1] = span[1], at
        elif action == "resumed":  # ...and resuming opens those again
            for name, end in self.paused.items():
                self.windows[name][1] = end
            self.paused.clear()
        self.event(at, message, change)

    def present(self, at: float) -> None:
        """Note the faults the proxy held when the run began (active from then on)."""
        for fault in self.live.present:
            if fault.get("state") == "expired":
                continue
            label, backend = fault.get("label"), fault.get("backend")
            backends = ", ".join(backend) if isinstance(backend, list) else backend
            state = "paused" if fault.get("paused") else fault.get("state")
            self.windows[str(fault.get("id"))] = [at, None]
            self.labels[str(fault.get("id"))] = _label(fault)
            self.event(
                at, f"proxy: fault {fault.get('id')} {label} on {backends} held ({state})", {}
            )

    def fault_end(self, own: float | None, origin: float) -> float | None:
        """When faults ended (seconds from `origin`): the run's own (`own`), or the latest end
        of a live fault window that closed during the run, whichever is later."""
        now = time.perf_counter()
        ends = [end for _, end in self.windows.values() if end is not None and end <= now]
        if not ends:
            return own
        live = max(ends) - origin
        return live if own is None else max(own, live)

    def live_windows(self, phases: list[PhaseResult], origin: float) -> None:
        """Add to each phase's `fault_windows` the windows, cut to the phase, of the faults
        others added to the proxy (or it held at the start): the timeline shows them as the
        run's own. Their `name` stays None: `during:` names only the experiment's faults."""
        now = time.perf_counter()
        for fault_id, (start, end) in self.windows.items():
            if fault_id in self.own or fault_id not in self.labels or start is None:
                continue
            label, kind, backend = self.labels[fault_id]
            opens, closes = start - origin, (now if end is None else end) - origin
            for phase in phases:
                ended = phase.ended if phase.ended is not None else closes
                lo, hi = max(opens, phase.started), min(closes, ended)
                if lo < hi:
                    window = FaultWindow(f"{fault_id} {label} (live)", kind, backend, lo, hi)
                    phase.fault_windows.append(window)

    def lost(self) -> list[str]:
        """Why the records are incomplete, once each."""
        return list(dict.fromkeys(self.live.lost))

    async def faults_on(self, faults: list[Fault], phase: str) -> None:
        self.phase = phase
        self.own.update(await self.live.add(faults))

    async def faults_off(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Remove the run's faults from the proxy: (their counters, what could not be removed)."""
        if not self.live.held:
            return [], []
        try:
            stats = await self.live.fault_stats()
        except Exception:
            stats = []
        failed = await self.live.remove()
        return [
            {**entry, "phase": self.phase}
            if entry.get("id") in self.live.held  # could not be removed: as the proxy has it
            else removed(entry, self.phase)
            for entry in stats
        ], failed

    def judge(self, checks: list[CheckResult]) -> None:
        """Checks that read attempts cannot be decided on records the proxy lost."""
        if not self.live.lost:
            return
        why = "; ".join(self.lost())
        for check in checks:
            if check.check in READS_ATTEMPTS:
                check.passed, check.inconclusive = False, True
                check.detail = f"records were lost, the verdict is INCONCLUSIVE: {why}"


def _label(fault: dict[str, Any]) -> tuple[str, str, str]:
    """A proxy fault's (label, kind, backends as people read them) from its record."""
    backend = fault.get("backend")
    backends = ", ".join(backend) if isinstance(backend, list) else str(backend)
    return str(fault.get("label")), str(fault.get("kind")), backends


def refusals(experiment: Experiment) -> list[str]:
    """What `--proxy` cannot do with this experiment (refused before the run)."""
    problems = []
    if experiment.target.kind == "python":
        problems.append(
            "a python target makes its model calls in-process, not through a proxy:"
            " follow a live proxy with an http or command target"
        )
    if any(fault.kind == "network" for fault in experiment.faults):
        problems.append("`network` faults need the run's own Toxiproxy, not a live proxy")
    return problems


@contextlib.asynccontextmanager
async def follow_proxy(
    url: str,
    token: str | None,
    experiment: Experiment,
    recorder: Recorder,
    notes: RequestNotes | None,
) -> AsyncIterator[Follower]:
    """A follower connected to the proxy at `url`; raises `ExperimentError` (a
    `LiveProxyError` when the proxy cannot be used) before anything is sent."""
    problems = refusals(experiment)
    if problems:
        raise ExperimentError([Problem(p, ("--proxy",)) for p in problems])
    names: list[str] = []
    for fault in experiment.faults:
        names += [fault.backend] if isinstance(fault.backend, str) else fault.backend
    async with httpx.AsyncClient(trust_env=False) as client:
        live = LiveProxy(url, token, client)
        await live.connect(list(dict.fromkeys(names)))
        yield Follower(live, recorder, notes)


__all__ = ["POLL_INTERVAL", "READS_ATTEMPTS", "Follower", "follow_proxy", "refusals"]
