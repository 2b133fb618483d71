"""Faults written on a command line or sent to the admin API, with the YAML's syntax.

`kind=outage backend=openai probability=0.5 window.duration=30s` is the same
fault as the YAML mapping `{kind: outage, backend: openai, probability: 0.5,
window: {duration: 30s}}`: values are read as YAML scalars (numbers, booleans,
`[a, b]` lists), dotted keys build nested mappings.
"""

from __future__ import annotations

import typing
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from aichaos.faults.base import Fault, fault_kinds, parse_fault
from aichaos.safe_yaml import safe_load
from aichaos.suggest import did_you_mean, nearest, suggest


class FaultSpecError(ValueError):
    """A fault description that is not valid; the message says what to fix."""


def _scalar(text: str) -> Any:
    if text == "":
        return ""
    try:
        value = safe_load(text)
    except yaml.YAMLError:
        return text  # e.g. `*` or `gpt-4*`: a plain string
    return text if value is None else value


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """`["kind=outage", "window.start=5s"]` -> `{"kind": "outage", "window": {"start": "5s"}}`."""
    data: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise FaultSpecError(f"expected key=value, got {item!r} (e.g. kind=outage)")
        target = data
        *parents, leaf = key.split(".")
        for part in parents:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                raise FaultSpecError(f"{key}: {part!r} is already set to a value")
            target = nested
        target[leaf] = _scalar(text)
    return data


def parse_yaml(text: str, language: str = "YAML") -> list[dict[str, Any]]:
    """One fault mapping, or a list of them, written as YAML (or JSON: JSON is YAML);
    `language` names what the sender meant to write, in errors."""
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        raise FaultSpecError(f"not valid {language}: {exc}") from None
    items = data if isinstance(data, list) else [data]
    for item in items:
        if not isinstance(item, dict):
            raise FaultSpecError("a fault is a mapping such as {kind: outage, backend: openai}")
    return items


def _location(loc: Iterable[Any]) -> str:
    parts = [str(p) for p in loc if not str(p).startswith("function-")]
    return ".".join(parts) or "fault"


def _message(error: ErrorDetails, cls: type[BaseModel]) -> str:
    """Pydantic's message, except for an unknown key: the valid keys and the nearest one,
    worded as the experiment loader words it (`unknown key 'dealy'; expected one of ...`)."""
    if error["type"] != "extra_forbidden":
        return str(error["msg"]).removeprefix("Value error, ")
    loc = [part for part in error["loc"] if not str(part).startswith("function-")]
    model: type[BaseModel] | None = cls
    for part in loc[:-1]:
        model = _nested_model(model, part) if model is not None else None
    key = str(loc[-1]) if loc else ""
    if model is None:
        return f"unknown key {key!r}"
    valid = [field.alias or name for name, field in model.model_fields.items()]
    return f"unknown key {key!r}; expected one of {', '.join(valid)}{suggest(key, valid)}"


def _nested_model(model: type[BaseModel], part: object) -> type[BaseModel] | None:
    for name, field in model.model_fields.items():
        if part in (name, field.alias):
            return _model_in(field.annotation)
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def build_fault(data: Mapping[str, Any], *, backends: Iterable[str] | None = None) -> Fault:
    """Validate one fault mapping; `backends`, when given, are the names it may target."""
    kind = data.get("kind")
    kinds = fault_kinds()
    if kind is None:
        raise FaultSpecError(f"a fault needs a kind, one of: {', '.join(kinds)}")
    if not isinstance(kind, str) or kind not in kinds:
        hint = suggest(str(kind), kinds)
        raise FaultSpecError(f"unknown fault kind {kind!r}{hint}; `aichaos faults` lists them")
    try:
        fault = parse_fault(dict(data))
    except ValidationError as exc:
        cls = kinds[kind]
        problems = "; ".join(
            f"{_location(err['loc'])}: {_message(err, cls)}"
            for err in exc.errors(include_url=False)
        )
        raise FaultSpecError(f"fault {kind!r}: {problems}") from None
    if backends is not None:
        for unknown in unknown_backends(fault, list(backends)):
            raise FaultSpecError(f"fault {kind!r}: {unknown}")
    return fault


@dataclass(frozen=True)
class UnknownBackend:
    """A backend name that is not declared, with the declared name nearest to it."""

    name: str
    known: tuple[str, ...]
    nearest: str | None

    def __str__(self) -> str:
        """`unknown backend 'opnai' (did you mean 'openai'?); backends: openai, anthropic`."""
        hint = did_you_mean(self.nearest)
        return f"unknown backend {self.name!r}{hint}; backends: {', '.join(self.known)}"


def unknown_backend(name: str, known: Collection[str]) -> UnknownBackend | None:
    """The one check of a backend name (a fault's, a check's, a `{{backends.NAME.url}}`
    template's): None when `name` is declared in `known`."""
    if name in known:
        return None
    return UnknownBackend(name, tuple(known), nearest(name, known))


def unknown_backends(fault: Fault, known: Collection[str]) -> list[UnknownBackend]:
    """The backends a fault targets that are not declared (`*` stands for any)."""
    targets = [fault.backend] if isinstance(fault.backend, str) else fault.backend
    found = [unknown_backend(name, known) for name in targets if name != "*"]
    return [unknown for unknown in found if unknown is not None]


def describe_fault(fault: Fault) -> dict[str, Any]:
    """The fault as the mapping one would write in YAML (defaults left out)."""
    data = fault.model_dump(mode="json", exclude_defaults=True, by_alias=True)
    return {"kind": fault.kind, **{k: v for k, v in data.items() if k != "kind"}}


__all__ = [
    "FaultSpecError",
    "UnknownBackend",
    "build_fault",
    "describe_fault",
    "parse_assignments",
    "parse_yaml",
    "unknown_backend",
    "unknown_backends",
]
