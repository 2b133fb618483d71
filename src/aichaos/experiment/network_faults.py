"""The run's network faults (Toxiproxy): the controller, checked before the run, and what it
did, as run events. Nothing is imported from `aichaos.network` without a `network` fault."""

from __future__ import annotations

import contextlib
from typing import Any, TypeVar

from aichaos.experiment.errors import ExperimentError, Problem
from aichaos.experiment.model import Experiment

E = TypeVar("E", bound=BaseException)


class NoNetwork:
    """Stands in for `NetworkFaults` when no `network` fault is declared (nothing to import)."""

    empty = True
    events: list[Any] = []
    leftovers: list[str] = []

    def proxies(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return contextlib.nullcontext()

    def injecting(self, only: Any = None) -> contextlib.AbstractAsyncContextManager[Any]:
        return contextlib.nullcontext()


async def network_faults(experiment: Experiment) -> Any:
    """The Toxiproxy controller for the experiment's `network` faults (those of every stage
    too, numbered in `Experiment.all_faults` order), checked before the run.

    Raises `ExperimentError` (exit 2, nothing injected) when Toxiproxy cannot carry them.
    """
    every = experiment.all_faults()
    if not any(fault.kind == "network" for _, fault in every):
        return NoNetwork()
    from aichaos.experiment.errors import format_path
    from aichaos.network import NetworkError, NetworkFaults

    places = [format_path(place) for place, _ in every]
    net = NetworkFaults.from_faults([fault for _, fault in every], places=places)
    try:
        await net.check()
    except NetworkError as exc:
        raise ExperimentError([Problem(f"network faults: {exc}", ("faults",))]) from None
    return net


def find_error(exc: BaseException, cls: type[E]) -> E | None:
    """The first `cls` in an exception or the exception groups around it."""
    if isinstance(exc, cls):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = find_error(inner, cls)
        if found is not None:
            return found
    return None


def network_events(net: Any, seen: int, from_start: float) -> tuple[list[tuple[float, str]], int]:
    """The controller's events after the first `seen` as (seconds from the run's start, the
    message), and how many it has now; `from_start` is when the phase's injection began."""
    fresh = []
    for event in net.events[seen:]:
        what = " ".join(x for x in (event.action, event.proxy, event.toxic or "") if x)
        detail = f": {event.detail}" if event.detail else ""
        fresh.append((from_start + event.at, f"network: {what}{detail}"))
    return fresh, len(net.events)
