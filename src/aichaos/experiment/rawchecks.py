"""Checks on the raw YAML data, so that one pass reports every mistake, and warnings.

When the schema refuses a file, pydantic skips the checks that need a valid model
(a model's own cross-field rules, the names that must refer to a backend). So a
typo'd backend next to a bad duration would take two runs to find. `raw_problems`
repeats those few rules on the plain data, for the loader to add to the schema's
problems.

`duration_warnings` flags bare numbers that are implausible as seconds for their
field (`max: 500` on a latency check is 500 seconds, probably meant as 500ms).
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel

from aichaos.experiment.errors import KeyPath, Problem, unknown_backend_problem
from aichaos.experiment.errors import format_path as _format_path
from aichaos.faults.spec import unknown_backend
from aichaos.intercept.backends import DEFAULT_BACKENDS
from aichaos.suggest import nearest
from aichaos.units import parse_duration

_EXCLUSIVE = ("concurrency", "rate")
# A bare number of seconds above these is more likely a number of milliseconds.
_PLAUSIBLE_SECONDS = 120.0
_PLAUSIBLE_LONG_SECONDS = 7 * 24 * 3600.0
_LONG_FIELDS = ("duration", "window", "start", "within", "every", "after", "for")


_PHASES = ("baseline", "inject", "recovery")


def raw_problems(data: dict[str, Any]) -> list[Problem]:
    """Backend references and exclusive keys, checked on data the schema refused."""
    problems: list[Problem] = []
    raw_backends = data.get("backends", DEFAULT_BACKENDS)
    backends = [str(name) for name in raw_backends] if isinstance(raw_backends, dict) else []
    if backends:
        for path, name in _backend_references(data):
            unknown = unknown_backend(name, backends) if name != "*" else None
            if unknown is not None:
                problems.append(unknown_backend_problem(path, unknown, wildcard="faults" in path))
    sections: list[tuple[KeyPath, Any]] = [(("load",), data.get("load"))]
    phases = data.get("phases")
    if isinstance(phases, dict):
        sections += [(("phases", str(name)), spec) for name, spec in phases.items()]
    for path, section in sections:
        if isinstance(section, dict) and all(section.get(key) is not None for key in _EXCLUSIVE):
            problems.append(
                Problem("give `concurrency` (closed loop) or `rate` (open loop), not both", path)
            )
    return problems


def _raw_faults(data: dict[str, Any]) -> Iterator[tuple[KeyPath, dict[str, Any]]]:
    """Every fault mapping with its place: `faults`, then each stage's."""
    faults = data.get("faults")
    for i, fault in enumerate(faults if isinstance(faults, list) else []):
        if isinstance(fault, dict):
            yield ("faults", i), fault
    stages = data.get("stages")
    for i, stage in enumerate(stages if isinstance(stages, list) else []):
        faults = stage.get("faults") if isinstance(stage, dict) else None
        for j, fault in enumerate(faults if isinstance(faults, list) else []):
            if isinstance(fault, dict):
                yield ("stages", i, "faults", j), fault


def _backend_references(data: dict[str, Any]) -> Iterator[tuple[KeyPath, str]]:
    for path, fault in _raw_faults(data):
        backend = fault.get("backend")
        names = backend if isinstance(backend, list) else [backend]
        for name in names:
            if isinstance(name, str):
                yield (*path, "backend"), name
    for section in ("hypothesis", "stop_when"):
        checks = data.get(section)
        for i, check in enumerate(checks if isinstance(checks, list) else []):
            if isinstance(check, dict) and isinstance(check.get("backend"), str):
                yield (section, i, "backend"), check["backend"]


def stage_problems(data: dict[str, Any]) -> list[Problem]:
    """Names that must be unique or refer to something: stage names, fault names, checks'
    `stage:` and `during:`; and `stages` beside an inject phase of the single form.

    Read from the plain data, so they are found whether or not the schema accepts the rest.
    """
    problems: list[Problem] = []
    stages = data.get("stages")
    staged = isinstance(stages, list)
    listed: list[Any] = stages if isinstance(stages, list) else []
    names = _unique(
        [
            (("stages", i, "name"), s.get("name"))
            for i, s in enumerate(listed)
            if isinstance(s, dict)
        ],
        "stage",
        problems,
    )
    faults = _unique(
        [((*path, "name"), fault.get("name")) for path, fault in _raw_faults(data)],
        "fault",
        problems,
    )
    if staged:
        if isinstance(data.get("faults"), list) and data["faults"]:
            problems.append(
                Problem(
                    "with `stages`, faults belong to a stage: move these into the stage(s) where"
                    " they should be on",
                    ("faults",),
                )
            )
        phases = data.get("phases")
        if isinstance(phases, dict) and "inject" in phases:
            problems.append(
                Problem(
                    "with `stages`, the stages take the inject phase's place: remove"
                    " `phases.inject` and size each stage (requests, duration, load)",
                    ("phases", "inject"),
                )
            )
    for section in ("hypothesis", "stop_when"):
        checks = data.get(section)
        for i, check in enumerate(checks if isinstance(checks, list) else []):
            if not isinstance(check, dict):
                continue
            stage, during = check.get("stage"), check.get("during")
            phase = check.get("phase")
            if isinstance(phase, str) and phase in names and phase not in _PHASES:
                problems.append(
                    Problem(
                        f"{phase!r} is a stage, not a phase",
                        (section, i, "phase"),
                        expected=f"`stage: {phase}` (a phase is one of {', '.join(_PHASES)})",
                        replaces=True,
                    )
                )
            if isinstance(stage, str) and stage not in names:
                problems.append(_unknown("stage", stage, names, (section, i, "stage"), staged))
            if isinstance(during, str) and section == "stop_when":
                problems.append(
                    Problem(
                        "`during` scopes hypothesis checks; a stop_when condition takes"
                        " `stage` (or `phase`)",
                        (section, i, "during"),
                    )
                )
            elif isinstance(during, str) and during not in faults:
                problems.append(_unknown("fault", during, faults, (section, i, "during"), True))
    return problems


def _unique(named: list[tuple[KeyPath, Any]], what: str, problems: list[Problem]) -> list[str]:
    """The names given (each once); a name given twice is a problem at its second place."""
    seen: dict[str, KeyPath] = {}
    for path, name in named:
        if not isinstance(name, str):
            continue
        if name in seen:
            first = _format_path(seen[name])
            problems.append(Problem(f"{what} name {name!r} is already used at {first}", path))
        else:
            seen[name] = path
    return list(seen)


def _unknown(what: str, name: str, known: list[str], path: KeyPath, exists: bool) -> Problem:
    if not exists:
        return Problem(
            f"no stage is named {name!r}: this experiment has no `stages`",
            path,
            expected="`phase: baseline | inject | recovery`, or a `stages:` list",
        )
    expected = "one of " + ", ".join(known) if known else f"the `name:` of a {what}"
    return Problem(
        f"no {what} is named {name!r}", path, expected=expected, suggestion=nearest(name, known)
    )


def merge(schema_problems: list[Problem], extra: list[Problem]) -> list[Problem]:
    """The schema's problems plus those it could not see (not at a path it already reports,
    unless the extra one `replaces` the schema's there)."""
    better = {problem.path: problem for problem in extra if problem.replaces}
    seen = {problem.path for problem in schema_problems}
    kept = [better.pop(p.path, p) for p in schema_problems]
    return [*kept, *(p for p in extra if p.path not in seen and not p.replaces), *better.values()]


def duration_warnings(model: BaseModel, data: Any, path: KeyPath = ()) -> list[Problem]:
    """Bare numbers given to duration fields that are implausible as seconds."""
    warnings: list[Problem] = []
    if not isinstance(data, dict):
        return warnings
    for name, field in type(model).model_fields.items():
        key = field.alias or name
        if key not in data:
            continue
        raw, value = data[key], getattr(model, name)
        here: KeyPath = (*path, key)
        duration = _has_duration(field.metadata) or _is_duration(field.annotation)
        if duration and _bare_number(raw):
            limit = _PLAUSIBLE_LONG_SECONDS if _long_field(key) else _PLAUSIBLE_SECONDS
            if float(raw) > limit:
                warnings.append(
                    Problem(
                        f"{raw} is read as {raw} seconds (a bare number is seconds); write"
                        f" `{raw}ms` if you meant milliseconds, or `{raw}s` to keep it",
                        here,
                    )
                )
        elif isinstance(value, BaseModel):
            warnings += duration_warnings(value, raw, here)
        elif isinstance(value, list) and isinstance(raw, list):
            for i, (item, raw_item) in enumerate(zip(value, raw, strict=False)):
                if isinstance(item, BaseModel):
                    warnings += duration_warnings(item, raw_item, (*here, i))
    return warnings


def _bare_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _long_field(key: str) -> bool:
    return any(word in key for word in _LONG_FIELDS)


def _has_duration(metadata: Sequence[Any]) -> bool:
    return any(getattr(meta, "func", None) is parse_duration for meta in metadata)


def _is_duration(annotation: Any) -> bool:
    """Whether a field's type is (an optional) `units.Duration`."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _has_duration(annotation.__metadata__)
    return any(_is_duration(arg) for arg in typing.get_args(annotation))


__all__ = ["duration_warnings", "merge", "raw_problems", "stage_problems"]
