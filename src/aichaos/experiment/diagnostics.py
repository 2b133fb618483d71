"""Pydantic validation errors turned into problems a person can act on.

Each problem gets the clean key path (union tags stripped), the position of
the offending key or value in the YAML file, what was expected, and the nearest
valid word for a typo (unknown keys, fault kinds, check names, enum values).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from aichaos.experiment.errors import KeyPath, Problem
from aichaos.experiment.yamlpos import Positions
from aichaos.suggest import nearest

_DISCRIMINATORS = ("kind", "check")
_WHAT = {"kind": "fault kind", "check": "check"}
_QUOTED = re.compile(r"'([^']*)'")
_ONE_OF = re.compile(r"(?:one of|known[^:]*:)\s+([^;()]+)")
_TYPE_NAME = re.compile(r"^(str|int|float|bool|none|bytes|[\w-]+\[.*\])$")


@cache
def experiment_schema() -> dict[str, Any]:
    """The experiment's JSON Schema (cached), used to name the valid keys at a path."""
    from aichaos.experiment.model import Experiment

    return Experiment.model_json_schema()


def clean_path(loc: Sequence[str | int], data: Any) -> KeyPath:
    """The key path of a pydantic `loc` in the data, without union tags and validator names."""
    path: list[str | int] = []
    value = data
    for part in loc:
        in_dict = isinstance(value, dict) and part in value
        in_list = isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)
        if in_dict or in_list:
            path.append(part)
            value = value[part]
        elif isinstance(part, str) and part.startswith("["):
            continue  # `[key]` of a dict-key error
        elif not isinstance(value, (dict, list)):
            continue  # a union member name under a scalar
        elif isinstance(value, dict) and any(value.get(d) == part for d in _DISCRIMINATORS):
            continue  # the tag of a discriminated union
        elif isinstance(value, dict) and isinstance(part, str) and not _is_type_name(part):
            path.append(part)  # a key that is missing from the data
            value = None
    return tuple(path)


def _is_type_name(part: str) -> bool:
    # Union members (`str`, `list[str]`, `function-after[...]`) appear in locs.
    return bool(_TYPE_NAME.match(part))


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    root = experiment_schema()
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _branch(schema: dict[str, Any], value: Any) -> dict[str, Any]:
    """The member of a union schema that fits `value` (by discriminator, else the object one)."""
    schema = _resolve(schema)
    discriminator = schema.get("discriminator")
    if discriminator and isinstance(value, dict):
        target = discriminator.get("mapping", {}).get(value.get(discriminator["propertyName"]))
        if target:
            return _resolve({"$ref": target})
    for key in ("anyOf", "oneOf"):
        for option in schema.get(key, []):
            option = _branch(option, value)
            if isinstance(value, dict) and "properties" in option:
                return option
            if isinstance(value, list) and option.get("type") == "array":
                return option
    return schema


def keys_at(path: KeyPath, data: Any) -> list[str]:
    """The keys a mapping at `path` may have, from the experiment's JSON Schema."""
    schema: dict[str, Any] = experiment_schema()
    value = data
    for part in path:
        schema = _branch(schema, value)
        if isinstance(part, int):
            schema = schema.get("items", {})
            value = value[part] if isinstance(value, list) and part < len(value) else None
        else:
            props = schema.get("properties", {})
            extra = schema.get("additionalProperties")
            schema = props.get(part) or (extra if isinstance(extra, dict) else {})
            value = value.get(part) if isinstance(value, dict) else None
    return list(_branch(schema, value).get("properties", {}))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def problems_from(
    error: ValidationError, data: Any, positions: Positions, file: str | None
) -> list[Problem]:
    """One problem per mistake (union branches failing on one value are merged)."""
    by_path: dict[KeyPath, list[ErrorDetails]] = {}
    for details in error.errors():
        by_path.setdefault(clean_path(details["loc"], data), []).append(details)
    problems = []
    for path, errors in by_path.items():
        problems.append(_problem(path, errors, data, positions, file))
    return problems


def _problem(
    path: KeyPath, errors: list[ErrorDetails], data: Any, positions: Positions, file: str | None
) -> Problem:
    first = errors[0]
    kind = first["type"]
    on_key = False
    if kind == "extra_forbidden":
        key = path[-1] if path else ""
        valid = keys_at(path[:-1], data)
        problem = Problem(
            f"unknown key {key!r}",
            path,
            expected="one of " + ", ".join(valid) if valid else None,
            suggestion=nearest(key, valid),
        )
        on_key = True
    elif kind == "missing":
        problem = Problem(f"missing required key {path[-1]!r}" if path else "missing", path)
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        problem = _tag_problem(path, first)
        path = problem.path
    elif kind == "literal_error":
        listed = str((first.get("ctx") or {}).get("expected", ""))
        options = _QUOTED.findall(listed) or [
            word.strip() for word in re.split(r",| or ", listed) if word.strip()
        ]
        problem = Problem(
            f"{_short(first['input'])} is not a valid choice",
            path,
            expected="one of " + ", ".join(options) if options else None,
            suggestion=nearest(first["input"], options),
        )
    elif kind in ("value_error", "assertion_error"):
        message = first["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        one_of = _ONE_OF.search(message)
        problem = Problem(message, path)
        if one_of and isinstance(first["input"], str):
            words = [w.strip(" '\"`") for w in re.split(r",|\bor\b", one_of.group(1))]
            problem.suggestion = nearest(first["input"], [w for w in words if w])
    else:
        expected = [_plain(e["msg"].removeprefix("Input should be ")) for e in errors]
        if all(e["msg"].startswith("Input should be ") for e in errors):
            wanted = " or ".join(dict.fromkeys(expected))
            problem = Problem(f"got {_short(first['input'])}", path, expected=wanted)
            entry = (
                _ENTRY.get(str(path[0])) if len(path) == 2 and isinstance(path[1], int) else None
            )
            if entry and isinstance(first["input"], str):
                problem.expected = f"a mapping like {{{entry}: {first['input']}, ...}}"
        else:
            problem = Problem("; ".join(e["msg"] for e in errors), path)
    mark = positions.of(path, key=on_key)
    problem.file = file
    if mark is not None:
        problem.line, problem.column = mark.line, mark.column
    return problem


_ENTRY = {"faults": "kind", "hypothesis": "check", "stop_when": "check"}
_PLAIN = [
    (
        re.compile(r"a valid dictionary or (instance of \w+|object to extract fields from)"),
        "a mapping",
    ),
    (re.compile(r"a valid dictionary"), "a mapping"),
    (re.compile(r"a valid (list|string|number|integer|boolean)"), r"a \1"),
    (re.compile(r"^a integer"), "an integer"),
]


def _plain(expected: str) -> str:
    """Pydantic's wording in a YAML user's words."""
    text = re.split(r", (unable|got) ", expected)[0]
    for pattern, replacement in _PLAIN:
        text = pattern.sub(replacement, text)
    return text.replace("a boolean", "true or false")


def _tag_problem(path: KeyPath, details: ErrorDetails) -> Problem:
    ctx = details.get("ctx") or {}
    field = str(ctx.get("discriminator", "'kind'")).strip("'")
    what = _WHAT.get(field, field)
    if details["type"] == "union_tag_not_found":
        return Problem(f"missing {field!r}: every entry here names its {what}", path)
    tags = _QUOTED.findall(str(ctx.get("expected_tags", "")))
    tag = ctx.get("tag")
    return Problem(
        f"unknown {what} {tag!r}",
        (*path, field),
        expected="one of " + ", ".join(tags),
        suggestion=nearest(tag, tags),
    )
