"""`--dry-run`: the resolved plan of an experiment, in words, without sending anything."""

from __future__ import annotations

import inspect
import json

from aichaos.experiment.model import Experiment
from aichaos.experiment.phases import faults_of, plan_phases
from aichaos.faults.base import Fault
from aichaos.units import format_duration


def _value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _fault_line(fault: Fault) -> str:
    named = f"{fault.name}: " if fault.name else ""
    parts = [f"{named}{fault.label()} on {fault.backends_text}"]
    own = [name for name in type(fault).model_fields if name not in Fault.model_fields]
    values = fault.model_dump(mode="json", by_alias=True, include=set(own), exclude_none=True)
    if values:  # the kind's own parameters, defaults included: what will really be injected
        parts.append(" ".join(f"{key}={_value(value)}" for key, value in values.items()))
    if fault.ramp is not None:
        ramp = fault.ramp
        parts.append(f"ramp {ramp.from_:g} -> {ramp.to:g} over {format_duration(ramp.over)}")
    elif fault.probability < 1:
        parts.append(f"probability {fault.probability:g}")
    if fault.first is not None:
        parts.append(f"first {fault.first}")
    if fault.every is not None:
        parts.append(f"every {fault.every}")
    if fault.window is not None:
        end = fault.window.end
        until = f"{format_duration(end)}" if end is not None else "the end of its phase"
        parts.append(f"from {format_duration(fault.window.start)} to {until}")
    if fault.match is not None:
        parts.append(f"match {fault.match.model_dump(exclude_defaults=True)}")
    return ", ".join(parts)


def describe(experiment: Experiment, seed: int, seed_origin: str, proxy: str | None = None) -> str:
    """What a run of this experiment would do (`proxy`: the live proxy of `run --proxy`)."""
    lines = [f"experiment: {experiment.name}"]
    if experiment.source is not None:
        lines.append(f"file: {experiment.source}")
    lines.append(f"seed: {seed} ({seed_origin})")
    lines.append("backends:")
    for name, spec in experiment.backends.items():
        if proxy is not None:  # the live proxy's backend of that name, its upstream
            lines.append(f"  {name}: provider {spec.provider}, through the live proxy {proxy}")
            continue
        # host claims are an in-process rule: an http or command target only uses the proxy
        via = f"claims {spec.claimed_host()} in-process"
        if experiment.target.python is None:
            via = "through the run's proxy"
        lines.append(f"  {name}: provider {spec.provider}, upstream {spec.public_upstream}, {via}")
    target = experiment.target
    if target.python is not None:
        fn = target.python.resolved
        kind = "async" if inspect.iscoroutinefunction(fn) else "sync"
        lines.append(f"target: python {target.python.function} ({kind}, in-process,")
        lines[-1] += f" receives the {target.python.receives})"
    elif target.http is not None:
        lines.append(f"target: http {target.http.method} {target.http.url} (backends via proxy)")
    elif target.command is not None:
        command = target.command
        run = command.run if isinstance(command.run, str) else " ".join(command.run)
        lines.append(f"target: command `{run}`, then {command.http.method} {command.http.url}")
    load = experiment.load
    sources = sorted({p.source for p in experiment.prompts})
    lines.append(
        f"prompts: {len(experiment.prompts)} ({', '.join(sources)}), used in turn;"
        f" timeout {format_duration(load.timeout)} per call"
    )
    lines.append("phases:" if experiment.stages is None else "timeline (one running target):")
    plans = plan_phases(experiment)
    for plan in plans:
        lines.append(f"  {plan.describe()}")
        if plan.stage:
            lines += [f"    {_fault_line(f)}" for f in faults_of(experiment, plan)]
    if not plans:
        lines.append("  (none: every phase is off)")
    if experiment.stages is None:
        lines.append("faults (inject phase only):" if experiment.faults else "faults: none")
        lines += [f"  {_fault_line(f)}" for f in experiment.faults]
    every = experiment.all_faults()
    if any(f.kind == "network" for _, f in every):
        from aichaos.experiment.errors import format_path
        from aichaos.network import NetworkFaults

        net = NetworkFaults.from_faults(
            [f for _, f in every], places=[format_path(p) for p, _ in every]
        )
        lines.append("network toxics (Toxiproxy, checked before the run):")
        lines += [f"  {line}" for line in net.describe()]
    lines.append("hypothesis:" if experiment.hypothesis else "hypothesis: none (nothing judged)")
    lines += [f"  {c.label()}" for c in experiment.hypothesis]
    if experiment.stop_when:
        lines.append("stop_when (sliding window):")
        lines += [f"  {c.label()}" for c in experiment.stop_when]
    return "\n".join(lines)
