"""HTTP status patterns as written in YAML: `503`, `5xx`, `2xx`."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_CLASS = re.compile(r"^[1-5]xx$")


def _check_pattern(value: int | str) -> int | str:
    if isinstance(value, bool):
        raise ValueError("expected a status like 503 or a class like 5xx")
    if isinstance(value, int):
        if not 100 <= value <= 599:
            raise ValueError(f"{value} is not an HTTP status (100-599)")
        return value
    text = value.strip().lower()
    if text.isdigit():
        return _check_pattern(int(text))
    if not _CLASS.match(text):
        raise ValueError(f"expected a status like 503 or a class like 5xx, got {value!r}")
    return text


StatusPattern = Annotated[int | str, AfterValidator(_check_pattern)]
"""An HTTP status (`503`) or a class of them (`5xx`)."""


def status_matches(pattern: int | str, status: int | None) -> bool:
    """Whether a status is the pattern (`503`) or in its class (`5xx`)."""
    if status is None:
        return False
    if isinstance(pattern, int):
        return status == pattern
    return str(status)[0] == pattern[0]


def any_matches(patterns: list[int | str], status: int | None) -> bool:
    """Whether a status matches any of the patterns."""
    return any(status_matches(p, status) for p in patterns)
