"""Load generation: closed loop (a fixed number of calls in flight) or open loop (arrivals on a
schedule that does not wait for the app, as real users do)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.lowlevel

from aichaos.experiment.phases import PhasePlan

Fire = Callable[[int, float | None], Coroutine[Any, Any, None]]
"""Runs call number `index`; `scheduled` is its due time (perf_counter) in open loop."""
Shed = Callable[[int, float], None]
"""Records call number `index`, due at `scheduled`, as shed: it was never made."""


async def drive(
    plan: PhasePlan,
    fire: Fire,
    rng: random.Random,
    *,
    limit: int | None = None,
    shed: Shed | None = None,
) -> None:
    """Run one phase's calls; returns when all of them have finished.

    Open loop: an arrival that finds `limit` calls already in flight is not made but
    handed to `shed` (an app that cannot keep up gets a bounded queue, and the phase
    still ends on time: each call in flight ends by its own timeout).
    """
    deadline = None if plan.duration is None else time.perf_counter() + plan.duration
    if plan.rate is not None:
        await _open_loop(plan, plan.rate, deadline, fire, rng, limit, shed)
    else:
        await _closed_loop(plan.concurrency or 1, plan.requests, deadline, fire)


async def _closed_loop(
    concurrency: int, requests: int | None, deadline: float | None, fire: Fire
) -> None:
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while (requests is None or next_index < requests) and (
            deadline is None or time.perf_counter() < deadline
        ):
            index = next_index
            next_index += 1
            await fire(index, None)
            # A target that never waits must not starve the monitor, signals and faults.
            await anyio.lowlevel.checkpoint()

    workers = concurrency if requests is None else min(concurrency, requests)
    async with anyio.create_task_group() as group:
        for _ in range(workers):
            group.start_soon(worker)


async def _open_loop(
    plan: PhasePlan,
    rate: float,
    deadline: float | None,
    fire: Fire,
    rng: random.Random,
    limit: int | None,
    shed: Shed | None,
) -> None:
    start = time.perf_counter()
    offset = 0.0
    index = 0
    poisson = plan.arrivals == "poisson"
    in_flight = 0

    async def counted(index: int, due: float) -> None:
        nonlocal in_flight
        try:
            await fire(index, due)
        finally:
            in_flight -= 1

    async with anyio.create_task_group() as group:
        while plan.requests is None or index < plan.requests:
            due = start + offset
            if deadline is not None and due >= deadline:
                break
            wait = due - time.perf_counter()
            if wait > 0:
                await anyio.sleep(wait)
            # Arrivals never wait for earlier calls: a slow app gets a queue, up to `limit`.
            if limit is not None and shed is not None and in_flight >= limit:
                shed(index, due)
            else:
                in_flight += 1  # counted when started, not when its task first runs
                group.start_soon(counted, index, due)
            index += 1
            offset = offset + rng.expovariate(rate) if poisson else (index / rate)
