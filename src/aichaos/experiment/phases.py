"""The phases an experiment will run, resolved from `phases`, `stages` and `load`.

With `stages`, each stage takes the inject phase's place on the timeline, in order,
under its own name: baseline, stage 1, stage 2, ..., recovery.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from aichaos.experiment.model import Experiment, LoadOverride, PhaseSpec
from aichaos.faults.base import Fault
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
    stage: bool = False  # one stage of the timeline (its name is the stage's)

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
        kind = "stage " if self.stage else ""
        return f"{kind}{self.name}: {' or '.join(size)}, {mode}{faults}"

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data (the journal's `planned`)."""
        return asdict(self)


def plan_phases(experiment: Experiment) -> list[PhasePlan]:
    """The phases to run, in order; switched-off and empty phases are left out."""
    plans = []
    for name in ("baseline", "inject", "recovery"):
        if name == "inject" and experiment.stages is not None:
            for stage in experiment.stages:
                pace = stage.load or LoadOverride()
                size = PhaseSpec(
                    requests=stage.requests,
                    duration=stage.duration,
                    concurrency=pace.concurrency,
                    rate=pace.rate,
                )
                plan = _plan(experiment, stage.name, size, faults=bool(stage.faults), stage=True)
                if plan is not None:
                    plans.append(plan)
            continue
        spec: PhaseSpec | None = getattr(experiment.phases, name)
        if spec is None:
            continue
        plan = _plan(experiment, name, spec, faults=name == "inject")
        if plan is not None:
            plans.append(plan)
    return plans


def faults_of(experiment: Experiment, plan: PhasePlan) -> list[Fault]:
    """The faults a phase injects: a stage's own, the experiment's in inject, else none."""
    if plan.stage:
        return next(s.faults for s in experiment.stages or [] if s.name == plan.name)
    return list(experiment.faults) if plan.name == "inject" else []


def _plan(
    experiment: Experiment, name: str, spec: PhaseSpec, *, faults: bool, stage: bool = False
) -> PhasePlan | None:
    load = experiment.load
    if spec.requests is not None or spec.duration is not None:
        requests, duration = spec.requests, spec.duration
    else:
        requests, duration = load.requests, load.duration
    if requests == 0 or (requests is None and not duration):
        return None
    rate, concurrency = spec.rate, spec.concurrency
    if rate is None and concurrency is None:
        rate, concurrency = load.rate, load.concurrency
    if rate is None and concurrency is None:
        concurrency = 1
    return PhasePlan(
        name=name,
        requests=requests,
        duration=duration,
        concurrency=concurrency,
        rate=rate,
        arrivals=load.arrivals,
        faults=faults,
        stage=stage,
    )
