"""Value types as they appear in YAML: durations (`250ms`, `30s`, `2m`, `1h`), rates
(`20/s`, `600/m`) and regular expressions (checked when the file is read)."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(ms|s|m|h|sec|min|second|minute|hour)\s*$")
_RATE_UNIT = {"ms": 0.001, "s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_RATE_UNIT.update({"h": 3600, "hour": 3600})


def parse_duration(value: Any) -> float:
    """Seconds from `250ms`, `1.5s`, `2m`, `1h` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 250ms, 30s or 2m")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"a duration must be a finite number, got {value!r}")
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ValueError(f"expected a duration like 250ms, 30s or 2m, got {value!r}")


def parse_rate(value: Any) -> float:
    """Events per second from `20/s`, `600/m` or a plain number per second."""
    if isinstance(value, bool):
        raise ValueError("expected a rate like 20/s or 600/m")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"a rate must be a positive finite number, got {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _RATE.match(value)
        if match and float(match.group(1)) > 0:
            return float(match.group(1)) / _RATE_UNIT[match.group(2)]
    raise ValueError(f"expected a rate like 20/s or 600/m, got {value!r}")


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds < 60 or seconds % 60:
        return f"{seconds:g}s"
    return f"{seconds / 60:g}m"


_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"},
    ],
    "examples": ["250ms", "30s", "2m"],
}
_RATE_SCHEMA = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0},
        {
            "type": "string",
            "pattern": r"^\s*\d+(\.\d+)?\s*/\s*(ms|s|m|h|sec|min|second|minute|hour)\s*$",
        },
    ],
    "examples": ["20/s", "600/m"],
}

# The JSON Schema says what YAML accepts (`250ms`), so editors do not flag valid files.
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(_DURATION_SCHEMA, mode="validation"),
]
"""Seconds, written in YAML as `250ms`, `30s`, `2m` (or a number of seconds)."""

Rate = Annotated[
    float, BeforeValidator(parse_rate), WithJsonSchema(_RATE_SCHEMA, mode="validation")
]
"""Events per second, written in YAML as `20/s` or `600/m`."""


def _compiles(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    return value


Regex = Annotated[str, AfterValidator(_compiles)]
"""A regular expression, rejected with a clear message when it does not compile."""
