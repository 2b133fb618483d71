"""Error answers as data and the values of reply headers, shared by every provider."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aichaos.wire.exchange import Reply


@dataclass(frozen=True)
class ErrorAnswer:
    """One canonical error answer of a provider, as data: the status and the body's fields
    (`None` fields take the provider's defaults for the status). `message` may name
    `{model}`, `{method}`, `{path}` and the values a fault passes (`{limit}`, `{tokens}`,
    `{field}`)."""

    status: int
    type: str | None = None
    code: str | int | None = None
    message: str | None = None
    param: str | None = None


ANSWER_NAMES = (
    "outage",
    "auth_error",
    "model_not_found",
    "context_length",
    "quota_exhausted",
    "invalid_json",
    "missing_field",
    "not_found",
)
"""The canonical answers a provider may define (`quota_exhausted.VARIANT` for variants)."""

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def seconds_text(seconds: float) -> str:
    """A delay in seconds as a header value: an integer when whole, else a decimal."""
    text = f"{max(seconds, 0.0):.3f}".rstrip("0").rstrip(".")
    return text or "0"


def merge_headers(
    base: list[tuple[str, str]], extra: list[tuple[str, str]] | None
) -> list[tuple[str, str]]:
    """`base` with `extra` appended; an `extra` header replaces any `base` one of that name."""
    if not extra:
        return list(base)
    names = {k.lower() for k, _ in extra}
    return [(k, v) for k, v in base if k.lower() not in names] + list(extra)


def json_reply(
    status: int,
    body: Any,
    base: list[tuple[str, str]],
    extra: list[tuple[str, str]] | None = None,
) -> Reply:
    """A JSON reply with the provider's `base` headers; an `extra` header replaces every
    header of its name, `content-type` included (never a second one)."""
    reply = Reply.json(status, body, base)
    return Reply(status, merge_headers(reply.headers, extra), reply.body)


def whole_seconds(seconds: float) -> str:
    """A delay as `retry-after` delay-seconds: a whole number, rounded up (0.2 -> `1`)."""
    return str(math.ceil(round(max(seconds, 0.0), 6)))  # float noise never adds a second


def fill(template: str, values: Mapping[str, str]) -> str:
    """`{name}` replaced by its value; unknown names and other braces stay as they are."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
