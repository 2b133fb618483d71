"""The driver interface and registry: one driver per kind of target (`python`, `http`, `command`).

A driver module registers its opener with `@register_driver("kind")`; the
`aichaos.experiment.targets` package imports the built-in ones, so they are
registered before any of its modules is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import anyio

from aichaos.experiment.errors import ExperimentError, Problem
from aichaos.experiment.model import Experiment
from aichaos.experiment.observer import Observer
from aichaos.experiment.prompts import PromptRecord
from aichaos.experiment.results import CallRecord
from aichaos.intercept.injection import Injection


class TargetError(ExperimentError):
    """The target cannot be driven at all (it did not start, a needed part is missing)."""

    def __init__(self, message: str) -> None:
        super().__init__([Problem(message, ("target",))])

    def format(self) -> str:
        return f"target: {self.problems[0].message}"


@dataclass
class RunContext:
    """What a driver may need from the run."""

    experiment: Experiment
    injection: Injection
    observer: Observer
    clock_origin: float  # perf_counter() at the start of the run
    max_in_flight: int
    stopping: anyio.Event = field(default_factory=anyio.Event)  # set by stop_when or Ctrl-C
    abort: Callable[[str], None] | None = None  # end the run now, as aborted, with a reason
    hurry: anyio.Event = field(default_factory=anyio.Event)  # a second Ctrl-C: no waiting
    # `run --proxy`: each backend's URL at the live proxy the app goes through (no own proxy)
    backend_urls: dict[str, str] | None = None


class Driver(Protocol):
    """Calls the target once per request."""

    async def call(self, call: CallRecord, prompt: PromptRecord) -> None:
        """Make the call and record its outcome (ok, status, error, output, ttft, attempts).

        Exceptions of the target are recorded, never raised; cancellation propagates.
        """


DriverOpener = Callable[[RunContext], contextlib.AbstractAsyncContextManager[Driver]]
"""Sets a driver up for the run (an async context manager) and tears it down after it."""

_DRIVERS: dict[str, DriverOpener] = {}
OpenerT = TypeVar("OpenerT", bound=DriverOpener)


def register_driver(kind: str) -> Callable[[OpenerT], OpenerT]:
    """Register the opener of the driver for targets of `kind` (the key under `target:`)."""

    def register(opener: OpenerT) -> OpenerT:
        _DRIVERS[kind] = opener
        return opener

    return register


def driver_kinds() -> dict[str, DriverOpener]:
    """Every registered driver opener by target kind."""
    return dict(_DRIVERS)


@contextlib.asynccontextmanager
async def open_driver(ctx: RunContext) -> AsyncIterator[Driver]:
    """The driver for the experiment's target, set up for the run and torn down after it."""
    async with _DRIVERS[ctx.experiment.target.kind](ctx) as driver:
        yield driver


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message, clipped."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an exception carries (SDK status errors, httpx status errors)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None
