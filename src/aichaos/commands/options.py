"""Argument types shared by the commands: every number checked, every time a duration.

Each raises `argparse.ArgumentTypeError`, which argparse turns into a usage error
(exit 2) naming the flag, never a traceback or a value quietly used as something else.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from aichaos.paths import creation_problem

MAX_DURATION = 7 * 24 * 3600.0
"""A week: longer than any timeout or pause anyone means on a command line."""

T = TypeVar("T")


ADMIN_TOKEN_ENV = "AICHAOS_ADMIN_TOKEN"


def add_admin_token(
    parser: argparse.ArgumentParser,
    help: str,
    flag: str = "--admin-token",
    metavar: str = "T",
    aliases: tuple[str, ...] = (),
) -> None:
    """The proxy admin API's token option (`aichaos proxy`, `run --proxy`, `fault`): `flag`
    (and `aliases`), read from the environment's `AICHAOS_ADMIN_TOKEN` when not given."""
    parser.add_argument(
        flag,
        *aliases,
        default=os.environ.get(ADMIN_TOKEN_ENV),
        metavar=metavar,
        help=f"{help} (env {ADMIN_TOKEN_ENV})",
    )


def _checked(read: Callable[[str], T], ok: Callable[[T], bool], problem: str) -> Callable[[str], T]:
    """An argument type: `read` the text, then refuse the value unless `ok(value)`, saying
    `problem` (which may name `{text}`, the text as given, quoted, and `{value}`)."""

    def parse(text: str) -> T:
        value = read(text)
        if not ok(value):
            raise argparse.ArgumentTypeError(problem.format(text=repr(text), value=value))
        return value

    return parse


def _reader(convert: Callable[[str], T], expected: str) -> Callable[[str], T]:
    """`convert`, its `ValueError` said as `{expected}, got '...'`."""

    def read(text: str) -> T:
        try:
            return convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{expected}, got {text!r}") from None

    return read


def _seconds(text: str) -> float:
    from aichaos.units import parse_duration  # pydantic: only once a duration is given

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_number = _reader(float, "expected a number")
_whole = _reader(int, "expected a whole number")

port = _checked(
    _reader(int, "expected a port number"),
    lambda value: 0 <= value <= 65535,
    "a port is 0 to 65535 (0 = any free port), got {value}",
)
"""A TCP port, 0 (any free port) to 65535."""

duration = _checked(
    _seconds, lambda seconds: seconds <= MAX_DURATION, "{text} is longer than a week"
)
"""Seconds from `200ms`, `2s`, `1m` (a bare number is seconds), 0 up to a week."""

positive_duration = _checked(
    duration, lambda seconds: seconds > 0, "expected a duration above 0 like 30s, got {text}"
)
"""Like `duration`, above 0 (a timeout of 0 would fail everything at once)."""

positive_number = _checked(
    _number,
    lambda value: math.isfinite(value) and value > 0,
    "expected a positive number, got {text}",
)
"""A finite number above 0."""

fraction = _checked(
    _number, lambda value: 0 <= value <= 1, "expected a number from 0 to 1, got {text}"
)
"""A number from 0 to 1 (a share, a significance level)."""

positive_int = _checked(_whole, lambda value: value > 0, "expected a number above 0, got {value}")
"""A whole number above 0."""

seed = _checked(_whole, lambda value: value >= 0, "a seed is 0 or more, got {value}")
"""A non-negative integer seed."""


def writable_path(flag: str, path: Path) -> str | None:
    """Why `path` cannot be written (None when it can), checked before any work is done."""
    if path.is_dir():
        return f"{flag} {str(path)!r} is a directory"
    if path.exists():
        return None if os.access(path, os.W_OK) else f"{flag} {str(path)!r} is not writable"
    problem = creation_problem(path.parent)
    return f"{flag} {str(path)!r}: {problem}" if problem else None


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2}
_SIZE_UNITS.update({"gb": 1000**3, "gib": 1024**3})


def size(text: str) -> int:
    """Bytes from `32MiB`, `500kB`, `1GB` or a plain number of bytes; above 0."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a size like 32MiB or 500kB, got {text!r}")
    value = int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])
    if value <= 0:
        raise argparse.ArgumentTypeError(f"a size must be above 0, got {text!r}")
    return value


__all__ = [
    "MAX_DURATION",
    "duration",
    "fraction",
    "port",
    "positive_duration",
    "positive_int",
    "positive_number",
    "seed",
    "size",
    "writable_path",
]
