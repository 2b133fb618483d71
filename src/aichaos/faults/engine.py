"""The fault engine: decides, request by request, which faults hit and builds the plan.

Seeded: each fault draws from its own random generator seeded by the engine seed
and the fault's position, once per matching request, so the same seed gives the
same faults on the same request sequence whatever other faults do.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aichaos.faults.base import Fault
from aichaos.faults.plan import Plan
from aichaos.providers.base import Dialect
from aichaos.providers.provider import Provider
from aichaos.wire.exchange import RequestInfo


@dataclass
class ArmedFault:
    """A fault in the engine, with its seeded generator and counters."""

    id: str
    fault: Fault
    rng: random.Random
    matched: int = 0
    injected: int = 0
    by_backend: dict[str, int] = field(default_factory=dict)
    added_at: float = 0.0  # seconds after the start of injection; windows count from here
    tag: str = ""  # its label in records: the name, else the label, made unique by the id

    def state(self, elapsed: float) -> str:
        """`pending`, `active` or `expired`: where `elapsed` falls in the fault's window."""
        window = self.fault.window
        since = elapsed - self.added_at
        if window is None:
            return "active"
        if since < window.start:
            return "pending"
        end = window.end
        return "expired" if end is not None and since >= end else "active"


def _answer_of(plan: Plan) -> tuple[object, ...]:
    """What in a plan acts whatever the answer: delay, failure, reply, a cut of the body."""
    return (plan.delay, plan.failure, plan.reply, plan.abort_after_bytes)


class FaultEngine:
    """Holds the active faults and turns each request into a `Plan`.

    Thread-safe: sync clients may call it from many threads at once. Faults can
    be added and removed live (the proxy's admin API) and paused as a whole. A fault's
    window (and ramp) counts from the start of injection, or, for a fault added after
    it, from the moment it was added: `window.start` delays it from there.
    """

    def __init__(
        self,
        faults: Iterable[Fault] = (),
        *,
        seed: int | str = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seed = seed
        self._clock = clock
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._armed: list[ArmedFault] = []
        self._started_at: float | None = None
        self.paused = False
        for fault in faults:
            self.add(fault)

    # --- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        """Mark the start of injection: windows and ramps of the faults held are relative to it
        (of faults added later, to when they are added)."""
        with self._lock:
            self._started_at = self._clock()
            for armed in self._armed:
                armed.added_at = 0.0

    @property
    def elapsed(self) -> float:
        if self._started_at is None:
            self.start()
        assert self._started_at is not None
        return self._clock() - self._started_at

    def add(self, fault: Fault) -> str:
        added_at = 0.0 if self._started_at is None else self._clock() - self._started_at
        with self._lock:
            index = next(self._ids)
            fault_id = f"f{index}"
            rng = random.Random(f"{self.seed}:{index}:{fault.kind}")
            tag = fault.name or fault.label()
            if any(a.tag == tag for a in self._armed):  # two rate_limit faults: two counts
                tag = f"{tag}#{fault_id}"
            self._armed.append(ArmedFault(fault_id, fault, rng, added_at=added_at, tag=tag))
            return fault_id

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._armed)
            self._armed = [a for a in self._armed if a.id != fault_id]
            return len(self._armed) != before

    def clear(self) -> None:
        with self._lock:
            self._armed = []

    @property
    def faults(self) -> list[ArmedFault]:
        with self._lock:
            return list(self._armed)

    # --- decisions -------------------------------------------------------------
    def may_act_on(self, backend: str) -> bool:
        """Whether a fault could act on a request to `backend` planned now: one that targets
        it and whose window is open (what the request says is not looked at)."""
        if self.paused or not self._armed:
            return False
        elapsed = self.elapsed
        with self._lock:
            return any(
                a.fault.targets(backend) and a.state(elapsed) == "active" for a in self._armed
            )

    def plan(self, req: RequestInfo, provider: Provider, dialect: Dialect | None) -> Plan:
        plan = Plan(req=req, provider=provider, dialect=dialect)
        if self.paused or not self._armed:
            return plan
        elapsed = self.elapsed
        with self._lock:
            acted: list[tuple[ArmedFault, bool]] = []
            for armed in self._armed:
                fault = armed.fault
                if not self._hits(armed, req, elapsed):
                    continue
                if fault.terminal and plan.terminal:
                    continue
                before = _answer_of(plan)
                if fault.apply(plan, armed.rng):
                    acted.append((armed, _answer_of(plan) == before))
            # Edits of the answer act on a 2xx answer only: after a failure or an error reply
            # they change nothing, so they are not hits.
            moot = plan.failure is not None or (
                plan.reply is not None and not 200 <= plan.reply.status < 300
            )
            for armed, edits_only in acted:
                if moot and edits_only:
                    continue
                plan.faults.append(armed.tag)
                armed.injected += 1
                armed.by_backend[req.backend] = armed.by_backend.get(req.backend, 0) + 1
        return plan

    def _hits(self, armed: ArmedFault, req: RequestInfo, elapsed: float) -> bool:
        fault = armed.fault
        if not fault.targets(req.backend):
            return False
        if fault.match is not None and not fault.match.matches(req):
            return False
        since_added = elapsed - armed.added_at
        if fault.window is not None and not fault.window.contains(since_added):
            return False
        armed.matched += 1
        draw = armed.rng.random()  # drawn for every matching request: keeps sequences stable
        if fault.first is not None and armed.matched > fault.first:
            return False
        if fault.every is not None and armed.matched % fault.every:
            return False
        if fault.ramp is not None:
            since = since_added - (fault.window.start if fault.window is not None else 0.0)
            return draw < fault.ramp.probability(since)
        return draw < fault.probability

    def observe(self, plan: Plan, status: int, tokens: int) -> None:
        """Tell stateful faults (rate limiters) what a completed request used."""
        with self._lock:
            for armed in self._armed:
                if armed.fault.targets(plan.req.backend):
                    armed.fault.observe(plan, status, tokens)

    def stats(self) -> list[dict[str, object]]:
        """One entry per fault: id, kind, label, backend, counters, `added_at` (seconds after
        the start of injection) and `state` (`pending`, `active` or `expired`)."""
        elapsed = self.elapsed
        with self._lock:
            return [
                {
                    "id": a.id,
                    "kind": a.fault.kind,
                    "label": a.tag,
                    "backend": a.fault.backend,
                    "matched": a.matched,
                    "injected": a.injected,
                    "added_at": round(a.added_at, 3),
                    "state": a.state(elapsed),
                }
                for a in self._armed
            ]
