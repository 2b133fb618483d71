"""The phases an experiment will run, resolved from `phases` and `load`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from aichaos.experiment.model import Experiment, PhaseSpec
from aichaos.units import format_duration


@dataclass(frozen=True)
class PhasePlan:
    """One phase, fully resolved: how many requests or how long, closed or open loop."""

    name: str
    requests: int | None
    duration: float | None
    concurrency: int | None  # closed loop
    rate: float | None  # open loop, arrivals per second
    arrivals: str = "constant"
    faults: bool = False

    def describe(self) -> str:
        """One line for dry runs and the console, e.g. `inject: 30 requests, closed loop, ...`."""
        size = []
        if self.requests is not None:
            size.append(f"{self.requests} requests")
        if self.duration is not None:
            size.append(f"{format_duration(self.duration)}")
        mode = (
            f"open loop at {self.rate:g}/s ({self.arrivals})"
            if self.rate is not None
            else f"closed loop, concurrency {self.concurrency}"
        )
        faults = ", faults on" if self.faults else ""
        return f"{self.name}: {' or '.join(size)}, {mode}{faults}"

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data (the journal's `planned`)."""
        return asdict(self)


def plan_phases(experiment: Experiment) -> list[PhasePlan]:
    """The phases to run, in order; switched-off and empty phases are left out."""
    load = experiment.load
    plans = []
    for name in ("baseline", "inject", "recovery"):
        spec: PhaseSpec | None = getattr(experiment.phases, name)
        if spec is None:
            continue
        if spec.requests is not None or spec.duration is not None:
            requests, duration = spec.requests, spec.duration
        else:
            requests, duration = load.requests, load.duration
        if requests == 0 or (requests is None and not duration):
            continue
        rate = spec.rate if spec.rate is not None else None
        concurrency = spec.concurrency
        if rate is None and concurrency is None:
            rate, concurrency = load.rate, load.concurrency
        if rate is None and concurrency is None:
            concurrency = 1
        plans.append(
            PhasePlan(
                name=name,
                requests=requests,
                duration=duration,
                concurrency=concurrency,
                rate=rate,
                arrivals=load.arrivals,
                faults=name == "inject",
            )
        )
    return plans
